// Embedded etcd (src/server/embedded-etcd.ts, server-join.ts), as k3s's:
// a server started on SQLite, then with `--cluster-init` on the same data
// dir, moves its objects into an etcd member of its own; two more
// servers join with `--server URL --token T`, each adding its member. One
// server SIGKILLed (its member dies with it): writes go on through the
// others, and it rejoins on restart. A snapshot of the embedded etcd is
// taken. Two of three killed: writes fail with a 5xx Status. `--cluster-reset
// --cluster-reset-restore-path` on the survivor brings the cluster back
// from the snapshot, with the objects' uids.

import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { eventually, freePort, type KubectlResult, kubectlPath, skiffCli, skiffCommand } from './harness.ts';

const scratch = mkdtempSync(join(tmpdir(), 'skiff-embedded-etcd-'));

interface Server {
  name: string;
  ip: string;
  port: number;
  etcdClient: number;
  etcdPeer: number;
  dataDir: string;
  proc?: ChildProcess;
  output: string;
}
const servers: Server[] = [];

const flagsOf = (s: Server) => [
  '--data-dir',
  s.dataDir,
  '--node-name',
  s.name,
  '--advertise-address',
  s.ip,
  '--etcd-client-port',
  String(s.etcdClient),
  '--etcd-peer-port',
  String(s.etcdPeer),
];

async function launch(s: Server, join: string[]): Promise<void> {
  const [command, prefix] = skiffCommand();
  s.output = '';
  const proc = spawn(
    command,
    [
      ...prefix,
      'server',
      ...flagsOf(s),
      ...join,
      '--bind-address',
      s.ip,
      '--https-listen-port',
      String(s.port),
      '--disable-agent',
      '--controller-manager-secure-port',
      '0',
      '--scheduler-secure-port',
      '0',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  s.proc = proc;
  proc.stdout?.on('data', (d) => (s.output += d));
  proc.stderr?.on('data', (d) => (s.output += d));
  const deadline = Date.now() + 60_000;
  while (!s.output.includes('apiserver listening')) {
    if (proc.exitCode !== null) throw new Error(`${s.name} exited (${proc.exitCode}):\n${s.output}`);
    if (Date.now() > deadline) throw new Error(`${s.name} did not start in 60 s:\n${s.output}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function kill(s: Server, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  const p = s.proc;
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise((r) => p.once('exit', r));
  p.kill(signal);
  const t = setTimeout(() => p.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(t);
}

function kubectl(s: Server, args: string[]): Promise<KubectlResult> {
  return new Promise((resolve) => {
    execFile(
      kubectlPath('1.32'),
      args,
      {
        env: {
          PATH: process.env.PATH ?? '',
          HOME: join(s.dataDir, 'home'),
          KUBECONFIG: join(s.dataDir, 'kubeconfig.yaml'),
        },
        timeout: 40_000,
      },
      (err, stdout, stderr) =>
        resolve({ code: err ? Number((err as { code?: unknown }).code) || 1 : 0, stdout, stderr }),
    );
  });
}

async function ok(s: Server, args: string[]): Promise<string> {
  const r = await kubectl(s, args);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} via ${s.name}: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** A raw request with the admin certificate: the status code and the body. */
function call(s: Server, method: string, path: string, body?: unknown): Promise<{ code: number; body: any }> {
  const tls = (f: string) => readFileSync(join(s.dataDir, 'server/tls', f));
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      {
        host: s.ip,
        port: s.port,
        method,
        path,
        ca: tls('ca.crt'),
        cert: tls('client-admin.crt'),
        key: tls('client-admin.key'),
        headers: data ? { 'content-type': 'application/json' } : {},
        timeout: 60_000,
      },
      (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () =>
          resolve({ code: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined }),
        );
      },
    );
    req.on('error', reject);
    req.end(data);
  });
}

before(async () => {
  for (let i = 0; i < 3; i++) {
    servers.push({
      name: `etcd-server-${i}`,
      ip: `127.0.0.${i + 12}`,
      port: await freePort(),
      etcdClient: await freePort(),
      etcdPeer: await freePort(),
      dataDir: join(scratch, `server-${i}`),
      output: '',
    });
  }
  // The first server begins on SQLite; --cluster-init on its data dir moves it into etcd.
  await launch(servers[0]!, []);
  await ok(servers[0]!, ['create', 'namespace', 'embedded-e2e']);
  const cm = JSON.parse(
    await ok(servers[0]!, ['-n', 'embedded-e2e', 'create', 'configmap', 'from-sqlite', '-o', 'json']),
  );
  fromSqlite = { uid: cm.metadata.uid, rv: cm.metadata.resourceVersion };
  await kill(servers[0]!, 'SIGTERM');
  await launch(servers[0]!, ['--cluster-init']);
  const token = readFileSync(join(servers[0]!.dataDir, 'node-token'), 'utf8').trim();
  // One after the other: each join changes the membership.
  for (const s of servers.slice(1))
    await launch(s, ['--server', `https://${servers[0]!.ip}:${servers[0]!.port}`, '--token', token]);
});

after(async () => {
  for (const s of servers) await kill(s, 'SIGTERM');
  rmSync(scratch, { recursive: true, force: true });
});

let snapshotFile = '';
let fromSqlite: { uid: string; rv: string };
let kept: { uid: string; rv: string };

describe('embedded etcd (--cluster-init, --server join)', () => {
  it('the SQLite objects moved into etcd with their uids; three servers, three members, one CA; the endpoints list all three', async () => {
    const ca = readFileSync(join(servers[0]!.dataDir, 'server/tls/ca.crt'), 'utf8');
    for (const s of servers.slice(1)) {
      assert.equal(readFileSync(join(s.dataDir, 'server/tls/ca.crt'), 'utf8'), ca);
      assert.match(s.output, /added this server as an etcd member/);
    }
    await eventually('three servers in the kubernetes endpoints', async () => {
      const ep = JSON.parse(await ok(servers[2]!, ['get', 'endpoints', 'kubernetes', '-o', 'json']));
      return (ep.subsets ?? []).flatMap((x: any) => x.addresses).length === 3;
    });
    // The SQLite cluster's objects moved into etcd with their uids (as k3s's migration).
    assert.match(servers[0]!.output, /migrated the SQLite datastore into etcd/);
    assert.ok(existsSync(join(servers[0]!.dataDir, 'server/db/state.db.migrated')));
    const migrated = JSON.parse(
      await ok(servers[2]!, ['-n', 'embedded-e2e', 'get', 'configmap', 'from-sqlite', '-o', 'json']),
    );
    assert.equal(migrated.metadata.uid, fromSqlite.uid);
    const cm = JSON.parse(
      await ok(servers[1]!, [
        '-n',
        'embedded-e2e',
        'create',
        'configmap',
        'kept',
        '--from-literal=a=b',
        '-o',
        'json',
      ]),
    );
    kept = { uid: cm.metadata.uid, rv: cm.metadata.resourceVersion };
    // resourceVersion order: what was written on SQLite comes before what is written now.
    assert.ok(Number(migrated.metadata.resourceVersion) < Number(kept.rv));
  });

  it('a server SIGKILLed takes its member with it; writes go on through the others; it rejoins on restart', async () => {
    const first = servers[0]!;
    const memberPid = () =>
      new Promise<string>((resolve) =>
        execFile('pgrep', ['-f', '--', `--data-dir=${join(first.dataDir, 'server/db/etcd')}`], (_e, out) =>
          resolve(out.trim()),
        ),
      );
    assert.ok(await memberPid(), 'the member runs');
    await kill(first);
    await eventually('its etcd member to exit too', async () => (await memberPid()) === '');
    await ok(servers[1]!, ['-n', 'embedded-e2e', 'create', 'configmap', 'while-down']);
    await launch(first, ['--cluster-init']);
    assert.match(
      await ok(first, ['-n', 'embedded-e2e', 'get', 'configmap', 'while-down', '-o', 'name']),
      /while-down/,
    );
  });

  it('etcd-snapshot save snapshots the embedded member', async () => {
    const s = servers[1]!;
    const r = await skiffCli([
      'etcd-snapshot',
      'save',
      '--data-dir',
      s.dataDir,
      '--etcd-client-port',
      String(s.etcdClient),
      '--node-name',
      s.name,
    ]);
    assert.equal(r.code, 0, r.stderr);
    const m = /saved to file:\/\/(\S+)/.exec(r.stdout);
    assert.ok(m, r.stdout);
    snapshotFile = m[1]!;
    assert.match(snapshotFile, /on-demand-etcd-server-1-\d+$/);
    await ok(servers[1]!, ['-n', 'embedded-e2e', 'create', 'configmap', 'after-snapshot']);
  });

  it('two of three gone: a write fails with a 5xx Status; --cluster-reset from the snapshot brings it back', async () => {
    const [survivor, a, b] = [servers[1]!, servers[0]!, servers[2]!];
    await kill(a);
    await kill(b);
    const write = await call(survivor, 'POST', '/api/v1/namespaces/embedded-e2e/configmaps', {
      metadata: { name: 'no-quorum' },
    });
    assert.ok(write.code >= 500 && write.code < 600, `status ${write.code}`);
    assert.equal(write.body.kind, 'Status');
    assert.equal(write.body.status, 'Failure');

    await kill(survivor, 'SIGTERM');
    const reset = await skiffCli(
      ['server', ...flagsOf(survivor), '--cluster-reset', '--cluster-reset-restore-path', snapshotFile],
      60_000,
    );
    assert.equal(reset.code, 0, reset.stderr);
    assert.match(reset.stderr, /Start the server again without --cluster-reset/);
    await launch(survivor, []);
    await eventually('writes to work on the reset cluster', async () => {
      const r = await kubectl(survivor, ['-n', 'embedded-e2e', 'create', 'configmap', 'after-reset']);
      return r.code === 0;
    });
    const cm = JSON.parse(
      await ok(survivor, ['-n', 'embedded-e2e', 'get', 'configmap', 'kept', '-o', 'json']),
    );
    assert.equal(cm.metadata.uid, kept.uid);
    assert.equal(cm.metadata.resourceVersion, kept.rv);
    // What was written after the snapshot is not in it.
    const gone = await kubectl(survivor, ['-n', 'embedded-e2e', 'get', 'configmap', 'after-snapshot']);
    assert.notEqual(gone.code, 0);
    assert.match(gone.stderr, /NotFound|not found/);
  });
});
