// bench/hollow-nodes: N hollow nodes (default 1,000) in one `skiff agent`
// process, joined with the token to a real `skiff server` on sqlite (its
// controllers and scheduler running), both run from src/ in processes of
// their own, as kubemark runs hollow nodes against a real control plane.
//
// Figures:
//   - seconds from the agent's start until all N Nodes exist, and until all
//     are Ready (seen through a watch);
//   - the agent's RSS when all are Ready and its peak; both processes' CPU;
//   - in a steady window with every node Ready: Lease writes/s (upstream's
//     rate is N/10 s: each kubelet renews every 10 s) and Node writes/s
//     (an unchanged status is written at most every 5 min);
//   - pods bound round-robin to the nodes (spec.nodeName set, the scheduler
//     out of the way): seconds until all are Running and Ready, then until
//     all are gone after a graceful delete.
// Headline: seconds until N hollow nodes are Ready.
//
// The raw path, in the same run once the server and agent have stopped: the
// writes a hollow kubelet makes to register (the Node's create, its status
// write, its Lease's create) for N nodes, straight to a fresh sqlite store
// (the server's kind, opened as it opens it), as many nodes at once as the
// agent registers (HOLLOW_START_CONCURRENCY), with the values of a real
// registered Node and Lease. The ratio, seconds to Ready over the raw
// seconds, is what the agent, the client, HTTPS, the API server and the
// watch add on top of the store for the same registrations. The headline's
// seconds start before the agent process is spawned, so its start (Node
// loading the sources, the join) is inside them; at 1,000 nodes it is a
// small part, at a small HOLLOW_NODES it is most of the ratio.
//
// HOLLOW_NODES=N, HOLLOW_PODS=N, HOLLOW_STEADY_S=S override the sizes; BENCH_QUICK=1 runs 200 nodes.

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clientsFromKubeconfig, HOLLOW_START_CONCURRENCY } from '../src/agent/agent.ts';
import { isPodReady } from '../src/api/pod-util.ts';
import type { Lease } from '../src/api/types/coordination-v1.ts';
import type { Node, Pod } from '../src/api/types/core-v1.ts';
import { createInformer } from '../src/client/informer.ts';
import { freePort } from '../test/e2e/harness.ts';
import { ratio, rawStoreWrites, round, until, writeResult } from './lib.ts';

const quick = process.env.BENCH_QUICK === '1';
const N = Number(process.env.HOLLOW_NODES ?? (quick ? 200 : 1000));
const PODS = Number(process.env.HOLLOW_PODS ?? N);
const STEADY_S = Number(process.env.HOLLOW_STEADY_S ?? (quick ? 30 : 60));
const root = new URL('../', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'skiff-bench-hollow-'));
const log = (s: string) => console.log(s);

function start(args: string[], ready: string): Promise<{ proc: ChildProcess; output: () => string }> {
  let output = '';
  const proc = spawn(process.execPath, [join(root, 'src/cli/main.ts'), ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  proc.stderr?.on('data', (d) => {
    output += d;
    if (output.length > 1 << 20) output = output.slice(-(1 << 19));
  });
  return new Promise((resolve, reject) => {
    const check = setInterval(() => {
      if (output.includes(ready)) {
        clearInterval(check);
        resolve({ proc, output: () => output });
      } else if (proc.exitCode !== null) {
        clearInterval(check);
        reject(new Error(`${args[0]} exited (${proc.exitCode}):\n${output.slice(-4000)}`));
      }
    }, 50);
  });
}

const rssMiB = (pid: number): number => {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return round(Number(m?.[1] ?? 0) / 1024, 1);
};
/** user + system CPU seconds of a process so far. */
const cpuSeconds = (pid: number): number => {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
};
const isReady = (n: Node) => n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
const podReady = (p: Pod) => p.status?.phase === 'Running' && isPodReady(p);

const port = await freePort();
log(`hollow-nodes: ${N} nodes, ${PODS} pods, steady window ${STEADY_S} s; server on sqlite in ${dir}`);
const server = await start(
  [
    'server',
    '--data-dir',
    join(dir, 'server'),
    '--https-listen-port',
    String(port),
    '--bind-address',
    '127.0.0.1',
    '--disable-agent',
  ],
  'apiserver listening',
);
let agent: { proc: ChildProcess; output: () => string } | undefined;
// Interrupted: leave no server or agent behind.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    for (const p of [agent?.proc, server.proc]) p?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    process.exit(130);
  });
}
const clients = clientsFromKubeconfig(join(dir, 'server', 'kubeconfig.yaml'));
const nodes = createInformer(clients.nodes);
const leases = createInformer(clients.leases, { namespace: 'kube-node-lease' });
const pods = createInformer(clients.pods, { namespace: 'default' });
try {
  await Promise.all([nodes.start(), leases.start(), pods.start()]);
  let nodeWrites = 0;
  let leaseWrites = 0;
  nodes.on({ update: () => nodeWrites++ });
  // Lease writes per second of the steady window: the stream's evenness.
  const leaseSeconds = new Map<number, number>();
  leases.on({
    update: () => {
      leaseWrites++;
      const sec = Math.floor(performance.now() / 1000);
      leaseSeconds.set(sec, (leaseSeconds.get(sec) ?? 0) + 1);
    },
  });

  const token = readFileSync(join(dir, 'server', 'node-token'), 'utf8').trim();
  const t0 = performance.now();
  const agentStart = start(
    [
      'agent',
      '--server',
      `https://127.0.0.1:${port}`,
      '--token',
      token,
      '--hollow-nodes',
      String(N),
      '--data-dir',
      join(dir, 'agent'),
    ],
    'joined the cluster',
  );
  agent = await agentStart;
  const pid = agent.proc.pid!;
  let peakRss = 0;
  const sampler = setInterval(() => {
    try {
      peakRss = Math.max(peakRss, rssMiB(pid));
    } catch {}
  }, 500);
  const hollow = () => nodes.indexer.list().filter((n) => n.metadata.name?.startsWith('hollow-'));
  await until(`${N} nodes registered`, () => hollow().length === N, 15 * 60_000, 100);
  const registeredS = round((performance.now() - t0) / 1000);
  log(`  all ${N} nodes registered after ${registeredS} s`);
  await until(`${N} nodes Ready`, () => hollow().filter(isReady).length === N, 15 * 60_000, 100);
  const readyS = round((performance.now() - t0) / 1000);
  const rssAtReady = rssMiB(pid);
  log(`  all ${N} nodes Ready after ${readyS} s; agent RSS ${rssAtReady} MiB`);
  // A registered Node and its Lease as stored: the raw path writes their like.
  const sampleNode = nodes.indexer.get('hollow-0');
  const sampleLease = leases.indexer.get('kube-node-lease/hollow-0');
  if (!sampleNode || !sampleLease) throw new Error('no Node or Lease for hollow-0');

  // Steady state: every node Ready, nothing else happening.
  await new Promise((r) => setTimeout(r, 15_000)); // registration's tail settles
  nodeWrites = 0;
  leaseWrites = 0;
  leaseSeconds.clear();
  const cpu0 = { agent: cpuSeconds(pid), server: cpuSeconds(server.proc.pid!) };
  const rssAtSteadyStart = rssMiB(pid);
  const s0 = performance.now();
  await new Promise((r) => setTimeout(r, STEADY_S * 1000));
  const steadyS = (performance.now() - s0) / 1000;
  const steady = {
    seconds: round(steadyS, 1),
    leaseWritesPerSec: round(leaseWrites / steadyS, 1),
    expectedLeaseWritesPerSec: round(N / 10, 1),
    // Whole seconds only (the first and last are partial).
    maxLeaseWritesInOneSecond: Math.max(
      ...[...leaseSeconds.entries()]
        .sort((a, b) => a[0] - b[0])
        .slice(1, -1)
        .map(([, n]) => n),
    ),
    nodeWritesPerSec: round(nodeWrites / steadyS, 2),
    agentCpuPercent: round(((cpuSeconds(pid) - cpu0.agent) / steadyS) * 100, 1),
    serverCpuPercent: round(((cpuSeconds(server.proc.pid!) - cpu0.server) / steadyS) * 100, 1),
    agentRssMiBAtStart: rssAtSteadyStart,
    agentRssMiB: rssMiB(pid),
    serverRssMiB: rssMiB(server.proc.pid!),
    notReadyNodes: N - hollow().filter(isReady).length,
  };
  log(`  steady ${steady.seconds} s: ${JSON.stringify(steady)}`);

  // Pods, bound round-robin: Pending → Running and Ready, then graceful deletion.
  const p0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: 20 }, async () => {
      while (next < PODS) {
        const i = next++;
        await clients.pods.create('default', {
          metadata: { name: `bench-${i}`, labels: { app: 'hollow-bench' } },
          spec: {
            nodeName: `hollow-${i % N}`,
            containers: [{ name: 'app', image: 'busybox', command: ['sleep', '3600'] }],
            terminationGracePeriodSeconds: 1,
          },
        });
      }
    }),
  );
  const createdS = round((performance.now() - p0) / 1000);
  await until(
    `${PODS} pods Ready`,
    () => pods.indexer.list().filter(podReady).length === PODS,
    15 * 60_000,
    100,
  );
  const podsReadyS = round((performance.now() - p0) / 1000);
  log(`  ${PODS} pods created in ${createdS} s, all Running and Ready after ${podsReadyS} s`);
  // With every pod running: the kubelets' periodic work (PLEG relists,
  // housekeeping, status checks) over a pod each.
  const podCpu0 = { agent: cpuSeconds(pid), server: cpuSeconds(server.proc.pid!) };
  const w0 = performance.now();
  await new Promise((r) => setTimeout(r, (STEADY_S / 2) * 1000));
  const withPodsS = (performance.now() - w0) / 1000;
  const withPods = {
    seconds: round(withPodsS, 1),
    agentCpuPercent: round(((cpuSeconds(pid) - podCpu0.agent) / withPodsS) * 100, 1),
    serverCpuPercent: round(((cpuSeconds(server.proc.pid!) - podCpu0.server) / withPodsS) * 100, 1),
    agentRssMiB: rssMiB(pid),
    notReadyPods: PODS - pods.indexer.list().filter(podReady).length,
  };
  log(`  with ${PODS} pods running, ${withPods.seconds} s: ${JSON.stringify(withPods)}`);
  const d0 = performance.now();
  const names = pods.indexer.list().map((p) => p.metadata.name ?? '');
  await Promise.all(
    Array.from({ length: 20 }, async () => {
      for (let name = names.pop(); name !== undefined; name = names.pop()) {
        await clients.pods.delete('default', name);
      }
    }),
  );
  await until('pods gone', () => pods.indexer.list().length === 0, 15 * 60_000, 100);
  const podsGoneS = round((performance.now() - d0) / 1000);
  log(`  deleted; all gone after ${podsGoneS} s`);
  clearInterval(sampler);

  // The raw path, with nothing else running.
  nodes.stop();
  leases.stop();
  pods.stop();
  await stopAll();
  const raw = await rawRegistrations(sampleNode, sampleLease);
  const vsRaw = ratio(readyS, raw.seconds);
  log(
    `  raw: ${N} registrations (Node create, status, Lease) straight to sqlite in ${raw.seconds} s (${raw.writesPerSec} writes/s); Ready / raw ${vsRaw}`,
  );

  writeResult(
    'hollow-nodes',
    { metric: `seconds until ${N} hollow nodes are Ready`, value: readyS, unit: 's' },
    {
      nodes: N,
      datastore: 'sqlite',
      secondsUntilRegistered: registeredS,
      secondsUntilReady: readyS,
      agentRssMiBAtReady: rssAtReady,
      agentPeakRssMiB: peakRss,
      rawPath: `the ${N} registrations' writes (Node create, Node status, Lease create) straight to a fresh sqlite store, ${HOLLOW_START_CONCURRENCY} nodes at once as the agent, with a registered Node's and Lease's values; no agent, client or API server`,
      raw,
      // Seconds until Ready against the raw seconds: how many times the store alone.
      ratio: vsRaw,
      steady,
      pods: {
        count: PODS,
        createSeconds: createdS,
        secondsUntilReady: podsReadyS,
        running: withPods,
        secondsUntilDeleted: podsGoneS,
      },
    },
  );
} catch (err) {
  console.error(String(err));
  if (agent) console.error(`agent log tail:\n${agent.output().slice(-3000)}`);
  console.error(`server log tail:\n${server.output().slice(-3000)}`);
  process.exitCode = 1;
} finally {
  nodes.stop();
  leases.stop();
  pods.stop();
  clients.close();
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
}

/** The agent, then the server: SIGTERM, SIGKILL after 10 s. */
async function stopAll(): Promise<void> {
  for (const p of [agent?.proc, server.proc]) {
    if (!p || p.exitCode !== null) continue;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGTERM');
    const t = setTimeout(() => p.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(t);
  }
}

function rawRegistrations(sampleNode: Node, sampleLease: Lease): ReturnType<typeof rawStoreWrites> {
  const rawDir = join(dir, 'raw');
  return rawStoreWrites({
    endpoint: `sqlite://${join(rawDir, 'state.db')}`,
    dataDir: rawDir,
    n: N,
    concurrency: HOLLOW_START_CONCURRENCY,
    writes: (i) => {
      const name = `hollow-${i}`;
      const uid = `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
      const registered = structuredClone(sampleNode);
      registered.metadata = {
        ...registered.metadata,
        name,
        uid,
        labels: { ...registered.metadata.labels, 'kubernetes.io/hostname': name },
      };
      const created = structuredClone(registered);
      delete created.status;
      const lease = structuredClone(sampleLease);
      lease.metadata = { ...lease.metadata, name };
      lease.spec = { ...lease.spec, holderIdentity: name };
      const key = `/registry/nodes/${name}`;
      return [
        { key, value: JSON.stringify(created) },
        { key, value: JSON.stringify(registered) },
        { key: `/registry/leases/kube-node-lease/${name}`, value: JSON.stringify(lease) },
      ];
    },
  });
}
