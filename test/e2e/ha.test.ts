// High availability (docs/ha.md): three real `skiff server` processes on
// one real etcd, sharing a token, each on its own loopback address as three
// machines would be. They come up with one CA (bootstrap data sealed in
// etcd with the token), list each other in the `kubernetes` endpoints, and
// elect one leader each for the controller manager and the scheduler.
// SIGKILL of the controller manager's leader during a write storm: every
// acknowledged write is there afterwards, another server takes the Lease,
// and a Deployment scaled up meanwhile converges. A hollow agent joined
// through the killed server keeps its node Ready through its client-side
// load balancer. The killed server restarts and rejoins as a follower.
//
// Lease timings are shortened by flag (6 s / 4 s / 1 s) to keep the file
// short; bench/ha.ts measures failover with upstream's defaults.

import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type EtcdCluster, startEtcd } from '../../src/storage/etcd/etcd-harness.ts';
import { eventually, freePort, type KubectlResult, kubectlPath, skiffCommand } from './harness.ts';

const scratch = mkdtempSync(join(tmpdir(), 'skiff-ha-'));
const token = `ha-e2e-${randomBytes(12).toString('hex')}`;
let etcd: EtcdCluster;

interface Server {
  name: string;
  ip: string;
  port: number;
  dataDir: string;
  proc?: ChildProcess;
  output: string;
}
const servers: Server[] = [];
const agents: ChildProcess[] = [];
let agentOutput = '';

/** A hollow `skiff agent` joined through one server, with its load balancer. */
function startAgent(via: Server): ChildProcess {
  const [command, prefix] = skiffCommand();
  const nodeToken = readFileSync(join(via.dataDir, 'node-token'), 'utf8').trim();
  const proc = spawn(
    command,
    [
      ...prefix,
      'agent',
      '--server',
      `https://${via.ip}:${via.port}`,
      '--token',
      nodeToken,
      '--runtime',
      'hollow',
      '--node-name',
      'ha-agent',
      '--data-dir',
      join(scratch, 'agent'),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  proc.stdout?.on('data', (d) => (agentOutput += d));
  proc.stderr?.on('data', (d) => (agentOutput += d));
  agents.push(proc);
  return proc;
}

const nodeReady = (n: any) => n.status?.conditions?.find((c: any) => c.type === 'Ready')?.status === 'True';

async function launch(s: Server): Promise<void> {
  const [command, prefix] = skiffCommand();
  s.output = '';
  const proc = spawn(
    command,
    [
      ...prefix,
      'server',
      '--data-dir',
      s.dataDir,
      '--datastore-endpoint',
      `etcd://${etcd.endpoints.map((e) => e.replace('http://', '')).join(',')}`,
      '--token',
      token,
      '--bind-address',
      s.ip,
      '--advertise-address',
      s.ip,
      '--https-listen-port',
      String(s.port),
      '--node-name',
      s.name,
      '--disable-agent',
      '--controller-manager-secure-port',
      '0',
      '--scheduler-secure-port',
      '0',
      '--leader-elect-lease-duration',
      '6s',
      '--leader-elect-renew-deadline',
      '4s',
      '--leader-elect-retry-period',
      '1s',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  s.proc = proc;
  proc.stdout?.on('data', (d) => (s.output += d));
  proc.stderr?.on('data', (d) => (s.output += d));
  await eventually(
    `${s.name} to listen`,
    async () => {
      if (proc.exitCode !== null) throw new Error(`${s.name} exited (${proc.exitCode}):\n${s.output}`);
      return s.output.includes('apiserver listening');
    },
    60_000,
  );
}

function kubectl(s: Server, args: string[], input?: string): Promise<KubectlResult> {
  return new Promise((resolve) => {
    const child = execFile(
      kubectlPath('1.32'),
      args,
      {
        env: {
          PATH: process.env.PATH ?? '',
          HOME: join(s.dataDir, 'home'),
          KUBECONFIG: join(s.dataDir, 'kubeconfig.yaml'),
        },
        timeout: 30_000,
      },
      (err, stdout, stderr) =>
        resolve({ code: err ? Number((err as { code?: unknown }).code) || 1 : 0, stdout, stderr }),
    );
    if (input !== undefined) child.stdin?.end(input);
  });
}

async function ok(s: Server, args: string[], input?: string): Promise<string> {
  const r = await kubectl(s, args, input);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} via ${s.name}: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

async function json<T = Record<string, any>>(s: Server, args: string[]): Promise<T> {
  return JSON.parse(await ok(s, [...args, '-o', 'json'])) as T;
}

const live = () => servers.filter((s) => s.proc && s.proc.exitCode === null && s.proc.signalCode === null);

/** The server holding a leader-election Lease (holder identities are <node-name>_<uuid>). */
async function holder(via: Server, lease: string): Promise<Server | undefined> {
  const l = await json(via, ['get', 'lease', '-n', 'kube-system', lease]);
  const id: string = l.spec?.holderIdentity ?? '';
  return servers.find((s) => id.startsWith(`${s.name}_`));
}

before(async () => {
  etcd = await startEtcd({ members: 1 });
  for (let i = 0; i < 3; i++) {
    servers.push({
      name: `ha-server-${i}`,
      ip: `127.0.0.${i + 2}`,
      port: await freePort(),
      dataDir: join(scratch, `server-${i}`),
      output: '',
    });
  }
  // The first makes the cluster's CA and keys; the others find them in etcd.
  await launch(servers[0]!);
  await Promise.all(servers.slice(1).map(launch));
});

after(async () => {
  for (const p of [...agents, ...servers.map((s) => s.proc)]) {
    if (!p || p.exitCode !== null || p.signalCode !== null) continue;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGTERM');
    const t = setTimeout(() => p.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(t);
  }
  await etcd?.stop();
  rmSync(scratch, { recursive: true, force: true });
});

describe('three servers on one etcd', () => {
  it('share one CA and answer kubectl each; the kubernetes endpoints list all three', async () => {
    const ca = readFileSync(join(servers[0]!.dataDir, 'server/tls/ca.crt'), 'utf8');
    for (const s of servers) {
      assert.equal(readFileSync(join(s.dataDir, 'server/tls/ca.crt'), 'utf8'), ca, s.name);
      assert.match(await ok(s, ['get', 'namespaces']), /kube-system/);
    }
    // The second and third servers read the bootstrap data rather than making their own.
    assert.match(servers[1]!.output, /bootstrap data read from the datastore/);
    await eventually('the kubernetes endpoints to list three servers', async () => {
      const ep = await json(servers[1]!, ['get', 'endpoints', 'kubernetes']);
      const addrs = (ep.subsets ?? []).flatMap((sub: any) =>
        sub.addresses.map((a: any) => `${a.ip}:${sub.ports[0].port}`),
      );
      return (
        addrs.sort().join(',') ===
        servers
          .map((s) => `${s.ip}:${s.port}`)
          .sort()
          .join(',')
      );
    });
    const identities = await json(servers[2]!, [
      'get',
      'leases',
      '-n',
      'kube-system',
      '-l',
      'apiserver.kubernetes.io/identity=kube-apiserver',
    ]);
    assert.equal(identities.items.length, 3);
  });

  it('one leader each for the controller manager and the scheduler', async () => {
    for (const lease of ['kube-controller-manager', 'kube-scheduler']) {
      const leader = await eventually(`a ${lease} leader`, () => holder(servers[0]!, lease));
      assert.match(leader.output, new RegExp(`successfully acquired lease.*${lease}`));
      for (const s of servers.filter((x) => x !== leader))
        assert.doesNotMatch(s.output, new RegExp(`successfully acquired lease.*${lease}`), s.name);
    }
    // An agent joins through the controller manager's leader, the server the next test kills.
    const leader = (await holder(servers[0]!, 'kube-controller-manager'))!;
    startAgent(leader);
    await eventually(
      'the agent’s node to be Ready',
      async () => nodeReady(await json(servers[0]!, ['get', 'node', 'ha-agent'])),
      60_000,
    );
    // kubectl get nodes through each server.
    for (const s of servers) assert.match(await ok(s, ['get', 'nodes']), /ha-agent\s+Ready/, s.name);
    await eventually('the agent’s load balancer to learn all three servers', async () =>
      agentOutput.includes('load balancer: servers changed'),
    );
    // The controllers and the scheduler run on the leaders only: the pod is placed and runs.
    await ok(servers[0]!, ['create', 'namespace', 'ha-e2e']);
    await ok(servers[0]!, ['-n', 'ha-e2e', 'create', 'deployment', 'web', '--image=pause', '--replicas=1']);
    await eventually('the Deployment’s pod to be ready', async () => {
      const d = await json(servers[1]!, ['-n', 'ha-e2e', 'get', 'deployment', 'web']);
      return d.status?.readyReplicas === 1;
    });
  });

  it('SIGKILL of the controller manager leader in a write storm: no acknowledged write lost, another server leads, the Deployment converges', async () => {
    const leader = (await holder(servers[0]!, 'kube-controller-manager'))!;
    const others = servers.filter((s) => s !== leader);
    const acknowledged: string[] = [];
    let stop = false;
    // Writes through a surviving server, one after another, while the leader dies.
    const storm = (async () => {
      for (let i = 0; !stop && i < 200; i++) {
        const name = `cm-${i}`;
        const r = await kubectl(others[i % 2]!, [
          '-n',
          'ha-e2e',
          'create',
          'configmap',
          name,
          `--from-literal=i=${i}`,
        ]);
        if (r.code === 0) acknowledged.push(name);
      }
    })();
    await eventually('some writes before the kill', async () => acknowledged.length >= 5);
    const killedAt = Date.now();
    leader.proc!.kill('SIGKILL');
    await new Promise((r) => leader.proc!.once('exit', r));
    await ok(others[0]!, ['-n', 'ha-e2e', 'scale', 'deployment', 'web', '--replicas=4']);
    const next = await eventually(
      'another server to take the controller manager Lease',
      async () => {
        const h = await holder(others[0]!, 'kube-controller-manager');
        return h && h !== leader ? h : undefined;
      },
      30_000,
    );
    await eventually(
      'the Deployment to converge on 4 pods',
      async () =>
        (await json(others[1]!, ['-n', 'ha-e2e', 'get', 'deployment', 'web'])).status?.replicas === 4,
      30_000,
    );
    const resumedInMs = Date.now() - killedAt;
    assert.ok(resumedInMs < 20_000, `controllers resumed ${resumedInMs} ms after the kill`);
    stop = true;
    await storm;
    const present = new Set(
      (await json(next, ['-n', 'ha-e2e', 'get', 'configmaps'])).items.map((c: any) => c.metadata.name),
    );
    for (const name of acknowledged) assert.ok(present.has(name), `acknowledged ${name} is missing`);
    assert.ok(acknowledged.length >= 5);
    // Only one ReplicaSet's worth of pods: nothing ran twice; all run on the agent.
    const pods = await json(next, ['-n', 'ha-e2e', 'get', 'pods']);
    assert.equal(pods.items.length, 4);
    for (const p of pods.items) assert.equal(p.status?.phase, 'Running', p.metadata.name);
    // The agent, which talked to the killed server, renews its node Lease through another one.
    await eventually(
      'the agent’s node Lease renewed after the kill',
      async () => {
        const l = await json(next, ['get', 'lease', '-n', 'kube-node-lease', 'ha-agent']);
        return Date.parse(l.spec.renewTime) > killedAt;
      },
      30_000,
    );
    assert.ok(nodeReady(await json(next, ['get', 'node', 'ha-agent'])));
    assert.match(agentOutput, /load balancer: switching server/);
    // The dead server drops out of the kubernetes endpoints (15 s TTL).
    await eventually(
      'the killed server to leave the kubernetes endpoints',
      async () => {
        const ep = await json(next, ['get', 'endpoints', 'kubernetes']);
        const addrs = (ep.subsets ?? []).flatMap((sub: any) => sub.addresses.map((a: any) => a.ip));
        return addrs.length === 2 && !addrs.includes(leader.ip);
      },
      40_000,
    );
  });

  it('the killed server restarts, rejoins the endpoints and stays a follower', async () => {
    const dead = servers.find((s) => !live().includes(s))!;
    const leaderBefore = await holder(live()[0]!, 'kube-controller-manager');
    await launch(dead);
    await eventually('the restarted server in the kubernetes endpoints', async () => {
      const ep = await json(dead, ['get', 'endpoints', 'kubernetes']);
      const addrs = (ep.subsets ?? []).flatMap((sub: any) => sub.addresses.map((a: any) => a.ip));
      return addrs.length === 3;
    });
    assert.equal(await holder(dead, 'kube-controller-manager'), leaderBefore);
    await ok(dead, ['delete', 'namespace', 'ha-e2e', '--wait=false']);
  });
});
