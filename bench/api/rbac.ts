// bench/api's RBAC figure (issue 13): what authorizing every request costs.
// Two `skiff server`s side by side, one with --authorization-mode Node,RBAC
// (the default) and one with AlwaysAllow, each holding 1,000 RoleBindings
// in the namespace; a user bound to a role for ConfigMaps (not system:masters, which
// authorization lets through before RBAC looks) creates and gets
// ConfigMaps on both, in five alternating rounds (medians). The figure is RBAC's
// throughput as a fraction of AlwaysAllow's (goal >= 0.9).

import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { freePort } from '../../test/e2e/harness.ts';
import { httpsCall, load, round } from '../lib.ts';

const BINDINGS = 1000;
const CLIENTS = 32;

interface Server {
  proc: ChildProcess;
  dir: string;
  /** As bench-user (bound to bench-configmaps in default). */
  call(method: string, path: string, body?: unknown): Promise<void>;
  /** As the admin (system:masters). */
  adminCall(method: string, path: string, body?: unknown): Promise<void>;
  admin: Agent;
  user: Agent;
  close(): Promise<void>;
}

async function startServer(command: string, prefix: string[], mode: string): Promise<Server> {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-bench-rbac-'));
  const port = await freePort();
  const proc = spawn(
    command,
    [
      ...prefix,
      'server',
      '--data-dir',
      dir,
      '--https-listen-port',
      String(port),
      '--bind-address',
      '127.0.0.1',
      '--disable-agent',
      '--disable-scheduler',
      '--disable-controller-manager',
      '--authorization-mode',
      mode,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let output = '';
  proc.stderr?.on('data', (d) => (output += d));
  const deadline = Date.now() + 30_000;
  while (!output.includes('apiserver listening')) {
    if (Date.now() > deadline || proc.exitCode !== null) throw new Error(`server did not start:\n${output}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const agentFor = (file: string) => {
    const kc = parse(readFileSync(file, 'utf8'));
    const b64 = (s: string) => Buffer.from(s, 'base64');
    return new Agent({
      keepAlive: true,
      maxSockets: CLIENTS,
      ca: b64(kc.clusters[0].cluster['certificate-authority-data']),
      cert: b64(kc.users[0].user['client-certificate-data']),
      key: b64(kc.users[0].user['client-key-data']),
    });
  };
  const userFile = join(dir, 'bench-user.kubeconfig');
  execFileSync(command, [...prefix, 'kubeconfig', '--user', 'bench-user', '--data-dir', dir, '-o', userFile]);
  const admin = agentFor(join(dir, 'kubeconfig.yaml'));
  const user = agentFor(userFile);
  const send = async (agent: Agent, method: string, path: string, body?: unknown) => {
    await httpsCall(port, agent, method, path, body);
  };
  return {
    proc,
    dir,
    admin,
    user,
    call: (method, path, body) => send(user, method, path, body),
    adminCall: (method, path, body) => send(admin, method, path, body),
    async close() {
      admin.destroy();
      user.destroy();
      proc.kill('SIGTERM');
      await new Promise((r) => proc.once('exit', r));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const binding = (name: string, user: string, role: string) => ({
  apiVersion: 'rbac.authorization.k8s.io/v1',
  kind: 'RoleBinding',
  metadata: { name },
  roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
  subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: user }],
});

export interface RbacFigures {
  ratio: number;
  roleBindings: number;
  clients: number;
  createPerSec: { rbac: number; alwaysAllow: number; ratio: number };
  getPerSec: { rbac: number; alwaysAllow: number; ratio: number };
  rounds: number;
}

/** Runs the comparison; `n` creates and gets per round and server. */
export async function rbacCost(command: string, prefix: string[], n: number, log: (s: string) => void) {
  const servers = {
    rbac: await startServer(command, prefix, 'Node,RBAC'),
    alwaysAllow: await startServer(command, prefix, 'AlwaysAllow'),
  };
  try {
    const rbPath = '/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings';
    for (const s of Object.values(servers)) {
      await load(BINDINGS, 32, (i) =>
        s.adminCall('POST', rbPath, binding(`filler-${i}`, `user-${i}`, 'view')),
      );
      // Its own role: edit's rules come by aggregation, a controller these servers do not run.
      await s.adminCall('POST', '/apis/rbac.authorization.k8s.io/v1/clusterroles', {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRole',
        metadata: { name: 'bench-configmaps' },
        rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['create', 'get', 'list'] }],
      });
      await s.adminCall('POST', rbPath, binding('bench-user', 'bench-user', 'bench-configmaps'));
    }
    // RBAC's informers see the binding within moments.
    const cm = (name: string) => ({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name },
      data: { k: 'v' },
    });
    const base = '/api/v1/namespaces/default/configmaps';
    for (let tries = 0; ; tries++) {
      try {
        await servers.rbac.call('POST', base, cm('probe'));
        break;
      } catch (err) {
        if (tries > 100) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    const rates = {
      rbac: { create: [] as number[], get: [] as number[] },
      alwaysAllow: { create: [] as number[], get: [] as number[] },
    };
    const ROUNDS = 5;
    for (let r = 0; r < ROUNDS; r++) {
      // Alternating, so drifting load on the machine falls on both alike.
      for (const name of (r % 2
        ? ['alwaysAllow', 'rbac']
        : ['rbac', 'alwaysAllow']) as (keyof typeof servers)[]) {
        const s = servers[name];
        await load(CLIENTS, CLIENTS, () => s.call('GET', '/version'));
        const cr = await load(n, CLIENTS, (i) => s.call('POST', base, cm(`r${r}-${i}`)));
        const gt = await load(n, CLIENTS, (i) => s.call('GET', `${base}/r${r}-${i}`));
        rates[name].create.push(cr.opsPerSec);
        rates[name].get.push(gt.opsPerSec);
      }
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const pair = (k: 'create' | 'get') => {
      const rbac = round(median(rates.rbac[k]));
      const alwaysAllow = round(median(rates.alwaysAllow[k]));
      return { rbac, alwaysAllow, ratio: round(rbac / alwaysAllow, 3) };
    };
    const figures: RbacFigures = {
      ratio: 0,
      roleBindings: BINDINGS + 1,
      clients: CLIENTS,
      createPerSec: pair('create'),
      getPerSec: pair('get'),
      rounds: ROUNDS,
    };
    figures.ratio = Math.min(figures.createPerSec.ratio, figures.getPerSec.ratio);
    log(
      `RBAC at ${BINDINGS} RoleBindings vs AlwaysAllow: creates/s ${figures.createPerSec.rbac} / ${figures.createPerSec.alwaysAllow} (${figures.createPerSec.ratio}), gets/s ${figures.getPerSec.rbac} / ${figures.getPerSec.alwaysAllow} (${figures.getPerSec.ratio}); rbac.ratio ${figures.ratio} (goal >= 0.9)`,
    );
    return figures;
  } finally {
    await Promise.all(Object.values(servers).map((s) => s.close()));
  }
}
