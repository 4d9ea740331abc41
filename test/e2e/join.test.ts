// Joining with a token (src/server/node-token.ts, src/agent/join.ts): a real
// `skiff server` writes <data-dir>/node-token, and a separate
// `skiff agent --server URL --token T --runtime hollow` process joins with
// it, as k3s agents do (docs.k3s.io/cli/token). A wrong secret is refused by
// the server; a token whose CA hash is not the server's is refused by the
// agent before it sends the secret, so an impostor server never sees it.
// Each agent's own node password (as k3s's) holds its node name: another
// password for a joined name, or for the server's own node, gets 403.

import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer, request } from 'node:https';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse } from 'yaml';
import type { Node } from '../../src/api/types/core-v1.ts';
import { ensureCA, ensureLeaf } from '../../src/pki/pki.ts';
import { eventually, freePort, ok, type Skiff, startSkiff } from './harness.ts';

const root = new URL('../../', import.meta.url).pathname;
let skiff: Skiff;
let server: string;
const scratch = mkdtempSync(join(tmpdir(), 'skiff-join-'));
const agents: ChildProcess[] = [];
let joined1: ReturnType<typeof agent> | undefined;

before(async () => {
  // With the server's own (hollow) node, whose name a token holder must not get;
  // --disable ingress, which the server passes on to every agent.
  skiff = await startSkiff(['--no-disable-agent', '--runtime', 'hollow', '--disable', 'ingress']);
  server = `https://127.0.0.1:${skiff.port}`;
});
after(async () => {
  for (const a of agents) {
    if (a.exitCode !== null || a.signalCode !== null) continue;
    const exited = new Promise((r) => a.once('exit', r));
    a.kill('SIGTERM');
    await exited;
  }
  await skiff?.stop();
  rmSync(scratch, { recursive: true, force: true });
});

const nodeToken = () => readFileSync(join(skiff.dataDir, 'node-token'), 'utf8').trim();

/** Starts `skiff agent` with the hollow runtime; resolves with the process and a view of its output. */
function agent(
  args: string[],
  dataDir: string,
): { proc: ChildProcess; output(): string; exitCode(): number | null; exit: Promise<number> } {
  let output = '';
  const proc = spawn(
    process.execPath,
    [join(root, 'src/cli/main.ts'), 'agent', '--runtime', 'hollow', '--data-dir', dataDir, ...args],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  proc.stdout?.on('data', (d) => (output += d));
  proc.stderr?.on('data', (d) => (output += d));
  agents.push(proc);
  const exit = new Promise<number>((r) => proc.once('exit', (code) => r(code ?? -1)));
  return { proc, output: () => output, exitCode: () => proc.exitCode, exit };
}

/** A GET against the server without a client certificate. */
function get(
  url: string,
  headers: Record<string, string> = {},
  ca?: string,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers, ...(ca ? { ca } : { rejectUnauthorized: false }) }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

const basic = (user: string, password: string) => ({
  authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`,
});

const mismatch = (name: string) =>
  `node password for ${name} does not match; delete Secret kube-system/${name}.node-password.skiff ` +
  `if the node was reinstalled`;

describe('joining with a token', () => {
  it('the server writes K10<sha256 of the CA>::node:<secret> to <data-dir>/node-token, and serves that CA', async () => {
    const token = nodeToken();
    const m = /^K10([0-9a-f]{64})::node:([0-9a-f]{48})$/.exec(token);
    assert.ok(m, token);
    assert.equal(statSync(join(skiff.dataDir, 'node-token')).mode & 0o777, 0o600);
    const caFile = readFileSync(join(skiff.dataDir, 'server', 'tls', 'ca.crt'));
    assert.equal(m[1], createHash('sha256').update(caFile).digest('hex'));
    const served = await get(`${server}/cacerts`);
    assert.equal(served.status, 200);
    assert.equal(served.body, caFile.toString('utf8'));
  });

  it('issues a node certificate only for the secret: anything else gets 401 and nothing else', async () => {
    const secret = nodeToken().split(':').at(-1)!;
    const url = `${server}/v1-skiff/client-kubelet.crt`;
    for (const headers of [
      {},
      basic('node', 'wrong'),
      basic('admin', secret),
      { authorization: 'Bearer x' },
    ]) {
      const r = await get(url, { ...headers, 'skiff-node-name': 'intruder' });
      assert.equal(r.status, 401, JSON.stringify(headers));
      assert.doesNotMatch(r.body, /BEGIN/);
    }
    // The right secret, for a name that is no node name: refused too, after authentication.
    const bad = await get(url, {
      ...basic('node', secret),
      'skiff-node-name': 'Not_A_Name',
      'skiff-node-password': 'p',
    });
    assert.equal(bad.status, 400);
    // The right secret without the node's own password: refused.
    const anonymous = await get(url, { ...basic('node', secret), 'skiff-node-name': 'probe-1' });
    assert.equal(anonymous.status, 400);
    assert.match(anonymous.body, /skiff-node-password/);
    const good = await get(url, {
      ...basic('node', secret),
      'skiff-node-name': 'probe-1',
      'skiff-node-password': 'probe-1-password',
    });
    assert.equal(good.status, 200);
    const cert = new X509Certificate(good.body);
    assert.match(cert.subject, /CN=system:node:probe-1/);
    assert.match(cert.subject, /O=system:nodes/);
    assert.match(good.body, /BEGIN (EC )?PRIVATE KEY/);
  });

  it("serves the cluster's settings (the server's --flannel-backend, --disable ingress) to a token holder only", async () => {
    const secret = nodeToken().split(':').at(-1)!;
    const url = `${server}/v1-skiff/config`;
    for (const headers of [{}, basic('node', 'wrong')]) assert.equal((await get(url, headers)).status, 401);
    const r = await get(url, basic('node', secret));
    assert.equal(r.status, 200);
    // An agent given no --flannel-backend of its own uses this one, and runs no ingress.
    assert.deepEqual(JSON.parse(r.body), { flannelBackend: 'vxlan', disableIngress: true });
    // Nor has the cluster the default IngressClass.
    const classes = await skiff.kubectl(['get', 'ingressclass', '-o', 'name']);
    assert.equal(classes.stdout.trim(), '');
  });

  it('a separate `skiff agent --token` process joins: its node becomes Ready and holds its Lease', async () => {
    const dataDir = join(scratch, 'joined-1');
    const a = agent(['--server', server, '--token', nodeToken(), '--node-name', 'joined-1'], dataDir);
    joined1 = a;
    await eventually(
      'node joined-1 Ready',
      async () => {
        const r = await skiff.kubectl([
          'get',
          'node',
          'joined-1',
          '-o',
          'jsonpath={.status.conditions[?(@.type=="Ready")].status}',
        ]);
        return r.stdout === 'True';
      },
      60_000,
    ).catch((err) => {
      throw new Error(`${err.message}\nagent output:\n${a.output()}`);
    });
    const lease = JSON.parse(
      await ok(skiff, ['get', 'lease', '-n', 'kube-node-lease', 'joined-1', '-o', 'json']),
    );
    assert.equal(lease.spec.holderIdentity, 'joined-1');

    // The agent's credentials: a client certificate for system:node:joined-1,
    // signed by the cluster CA, that the real kubectl can use too.
    const kubeconfigFile = join(dataDir, 'agent', 'kubelet.kubeconfig');
    assert.equal(statSync(kubeconfigFile).mode & 0o777, 0o600);
    const kubeconfig = parse(readFileSync(kubeconfigFile, 'utf8'));
    const cert = new X509Certificate(
      Buffer.from(kubeconfig.users[0].user['client-certificate-data'], 'base64'),
    );
    assert.match(cert.subject, /CN=system:node:joined-1/);
    assert.match(cert.subject, /O=system:nodes/);
    const ca = new X509Certificate(readFileSync(join(skiff.dataDir, 'server', 'tls', 'ca.crt')));
    assert.ok(cert.verify(ca.publicKey), 'signed by the cluster CA');
    const asNode = await skiff.kubectl([
      '--kubeconfig',
      kubeconfigFile,
      'get',
      'node',
      'joined-1',
      '-o',
      'name',
    ]);
    assert.equal(asNode.stdout.trim(), 'node/joined-1', asNode.stderr);

    // Least privilege: the node reads no Secret its pods do not use, and cannot delete another Node.
    await ok(skiff, ['create', 'secret', 'generic', 'unused', '--from-literal=k=v', '-n', 'default']);
    const secret = await skiff.kubectl(['--kubeconfig', kubeconfigFile, 'get', 'secret', 'unused']);
    assert.match(
      secret.stderr,
      /secrets "unused" is forbidden: User "system:node:joined-1" cannot get resource "secrets" in API group "" in the namespace "default": no relationship found between node 'joined-1' and this object/,
    );
    const other = await skiff.kubectl(['--kubeconfig', kubeconfigFile, 'delete', 'node', 'probe-1']);
    assert.match(other.stderr, /User "system:node:joined-1" cannot delete resource "nodes"/);

    // The node's proxy and DNS have their own users, each signed by the cluster CA.
    for (const [file, user] of [
      ['kube-proxy.kubeconfig', 'system:kube-proxy'],
      ['dns.kubeconfig', 'system:skiff-dns'],
    ] as const) {
      const path = join(dataDir, 'agent', file);
      assert.equal(statSync(path).mode & 0o777, 0o600);
      const c = new X509Certificate(
        Buffer.from(parse(readFileSync(path, 'utf8')).users[0].user['client-certificate-data'], 'base64'),
      );
      assert.match(c.subject, new RegExp(`CN=${user}`));
      assert.ok(c.verify(ca.publicKey), `${file} signed by the cluster CA`);
      const slices = await skiff.kubectl(['--kubeconfig', path, 'get', 'endpointslices', '-A', '-o', 'name']);
      assert.equal(slices.code, 0, `${user} lists EndpointSlices: ${slices.stderr}`);
    }

    // So has its NetworkPolicy controller: it lists and watches pods, namespaces and policies, and nothing else.
    const netpol = join(dataDir, 'agent', 'network-policy.kubeconfig');
    assert.equal(statSync(netpol).mode & 0o777, 0o600);
    for (const resource of ['pods', 'namespaces', 'networkpolicies.networking.k8s.io']) {
      const list = await skiff.kubectl(['--kubeconfig', netpol, 'get', resource, '-A', '-o', 'name']);
      assert.equal(list.code, 0, `system:skiff-network-policy lists ${resource}: ${list.stderr}`);
    }
    const denied = await skiff.kubectl(['--kubeconfig', netpol, 'get', 'secrets', '-A']);
    assert.match(denied.stderr, /User "system:skiff-network-policy" cannot list resource "secrets"/);
    const getPod = await skiff.kubectl(['--kubeconfig', netpol, 'auth', 'can-i', 'delete', 'pods', '-A']);
    assert.equal(getPod.stdout.trim(), 'no');
  });

  it('a joined name is held by its node password: another agent gets 403, the node itself rejoins', async () => {
    assert.ok(joined1, 'runs after the test that joins joined-1');
    const dataDir = join(scratch, 'joined-1');
    const passwordFile = join(dataDir, 'agent', 'node-password');
    assert.equal(statSync(passwordFile).mode & 0o777, 0o600);
    const password = readFileSync(passwordFile, 'utf8').trim();
    assert.match(password, /^[0-9a-f]{48}$/);

    // The Secret holds a salted hash, never the password itself.
    const secret = JSON.parse(
      await ok(skiff, ['get', 'secret', '-n', 'kube-system', 'joined-1.node-password.skiff', '-o', 'json']),
    );
    assert.equal(secret.type, 'skiff.io/node-password');
    const hash = Buffer.from(secret.data.hash, 'base64').toString('utf8');
    assert.match(hash, /^scrypt\$/);
    assert.ok(!hash.includes(password));

    // Another machine with the token, claiming the name: refused, and told why.
    const thief = agent(
      ['--server', server, '--token', nodeToken(), '--node-name', 'joined-1'],
      join(scratch, 'thief'),
    );
    assert.equal(await thief.exit, 1);
    assert.ok(thief.output().includes(mismatch('joined-1')), thief.output());
    const secretOnly = nodeToken().split(':').at(-1)!;
    const direct = await get(`${server}/v1-skiff/client-kubelet.crt`, {
      ...basic('node', secretOnly),
      'skiff-node-name': 'joined-1',
      'skiff-node-password': 'not-the-password',
    });
    assert.equal(direct.status, 403);
    assert.equal(direct.body.trim(), mismatch('joined-1'));

    // The node itself, restarted with its own data dir (its own password), joins again.
    joined1.proc.kill('SIGTERM');
    assert.equal(await joined1.exit, 0);
    const again = agent(['--server', server, '--token', nodeToken(), '--node-name', 'joined-1'], dataDir);
    await eventually(
      'joined-1 rejoined',
      async () => again.output().includes('joined the cluster'),
      60_000,
    ).catch((err) => {
      throw new Error(`${err.message}\nagent output:\n${again.output()}`);
    });
    assert.equal(again.exitCode(), null, again.output());
    assert.equal(readFileSync(passwordFile, 'utf8').trim(), password, 'the password is made only once');
  });

  it("a token holder cannot take the server's own node name", async () => {
    const serverNode = hostname().toLowerCase();
    // `skiff server` writes its node's Secret before it listens: there is no window to take the name in.
    const secret = JSON.parse(
      await ok(skiff, [
        'get',
        'secret',
        '-n',
        'kube-system',
        `${serverNode}.node-password.skiff`,
        '-o',
        'json',
      ]),
    );
    assert.equal(secret.type, 'skiff.io/node-password');
    const a = agent(
      ['--server', server, '--token', nodeToken(), '--node-name', serverNode],
      join(scratch, 'server-name'),
    );
    assert.equal(await a.exit, 1);
    assert.ok(a.output().includes(mismatch(serverNode)), a.output());
  });

  it('`skiff agent --hollow-nodes 3 --token` joins hollow-0 … hollow-2 with one fleet credential', async () => {
    const dataDir = join(scratch, 'fleet');
    const a = agent(
      ['--server', server, '--token', nodeToken(), '--hollow-nodes', '3', '--node-name', 'fleet'],
      dataDir,
    );
    const ready = async () => {
      const r = await skiff.kubectl(['get', 'nodes', '-o', 'json']);
      const items = r.code === 0 ? (JSON.parse(r.stdout).items as Node[]) : [];
      return items
        .filter((n) => n.metadata.name?.startsWith('hollow-'))
        .filter((n) => n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'))
        .map((n) => n.metadata.name)
        .sort();
    };
    await eventually('hollow-0 … hollow-2 Ready', async () => (await ready()).length === 3, 60_000).catch(
      (err) => {
        throw new Error(`${err.message}\nagent output:\n${a.output()}`);
      },
    );
    assert.deepEqual(await ready(), ['hollow-0', 'hollow-1', 'hollow-2']);
    const kubeconfig = parse(readFileSync(join(dataDir, 'agent', 'kubelet.kubeconfig'), 'utf8'));
    const cert = new X509Certificate(
      Buffer.from(kubeconfig.users[0].user['client-certificate-data'], 'base64'),
    );
    assert.match(cert.subject, /CN=system:skiff-hollow-fleet/);
    a.proc.kill('SIGTERM');
    assert.equal(await a.exit, 0);
  });

  it('a wrong secret is refused by the server, and the agent says so and exits', async () => {
    const token = nodeToken().replace(/:[0-9a-f]+$/, ':0123456789abcdef');
    const a = agent(
      ['--server', server, '--token', token, '--node-name', 'wrong-secret'],
      join(scratch, 'w'),
    );
    assert.equal(await a.exit, 1);
    assert.match(a.output(), /refused the token \(401 Unauthorized\)/);
    const r = await skiff.kubectl(['get', 'node', 'wrong-secret']);
    assert.notEqual(r.code, 0, 'no node registered');
  });

  it('a token whose CA hash is not the server CA’s is refused before the secret is sent', async () => {
    const tampered = nodeToken().replace(/^K10[0-9a-f]/, (s) => `K10${s.at(-1) === '0' ? '1' : '0'}`);
    const a = agent(['--server', server, '--token', tampered, '--node-name', 'tampered'], join(scratch, 't'));
    assert.equal(await a.exit, 1);
    assert.match(a.output(), /CA certificate does not match the token/);
    assert.match(a.output(), /secret was not sent/);

    // An impostor with a CA of its own, given the real token: it learns nothing.
    const pki = join(scratch, 'impostor');
    const ca = ensureCA(pki, 'impostor-ca');
    const serving = ensureLeaf(ca, pki, 'serving', {
      commonName: 'impostor',
      usage: 'server',
      ips: ['127.0.0.1'],
    });
    const seen: { path: string; authorization?: string }[] = [];
    const impostor = createServer({ key: serving.key, cert: serving.cert }, (req, res) => {
      seen.push({
        path: req.url ?? '',
        ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}),
      });
      if (req.url === '/cacerts') res.end(ca.cert);
      else res.end(serving.cert + serving.key);
    });
    const port = await freePort();
    await new Promise<void>((r) => impostor.listen(port, '127.0.0.1', r));
    try {
      const b = agent(
        ['--server', `https://127.0.0.1:${port}`, '--token', nodeToken(), '--node-name', 'fooled'],
        join(scratch, 'f'),
      );
      assert.equal(await b.exit, 1);
      assert.match(b.output(), /does not match the token/);
      assert.deepEqual(seen, [{ path: '/cacerts' }]);
    } finally {
      impostor.closeAllConnections();
      await new Promise((r) => impostor.close(r));
    }
  });

  it('keeps the token across a server restart', async () => {
    const before = nodeToken();
    await skiff.restart();
    assert.equal(nodeToken(), before);
    const secret = before.split(':').at(-1)!;
    const r = await get(`${server}/v1-skiff/client-kubelet.crt`, {
      ...basic('node', secret),
      'skiff-node-name': 'after-restart',
      'skiff-node-password': 'after-restart-password',
    });
    assert.equal(r.status, 200);
  });
});
