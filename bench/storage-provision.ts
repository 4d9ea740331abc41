// bench/storage-provision: what a PersistentVolumeClaim adds to pod startup
// (issue 18, "Benchmarks"). A real `skiff server` on sqlite (its
// controllers, the local-path provisioner and the scheduler running) and a
// `skiff agent` with hollow nodes, both run from src/ in processes of their
// own, as bench/hollow-nodes does.
//
// Phases, one after another in the same run, each with PODS pods created
// CONCURRENCY at a time (the scheduler places them):
//   emptyDir  pods with an emptyDir volume: the baseline;
//   pvc       for each pod first a claim on the default local-path class
//             (WaitForFirstConsumer), then the pod mounting it: the
//             scheduler writes selected-node, the binder hands the claim to
//             the provisioner, the provisioner makes a volume pinned to the
//             node, the binder binds the two.
// After a warm-up of each kind, the emptyDir phase runs before and after
// the pvc phase, and its figures are both runs together, so a machine that
// gets busier or quieter meanwhile (it is shared) weighs on both sides
// alike. Each phase cleans up and lets the cluster settle for 5 s.
//
// A pod's startup runs from just before its first create request (the
// claim's, in the pvc phase) until a watch has seen the pod Running and, in
// the pvc phase, its claim Bound. Hollow kubelets set up no volumes, so a
// hollow pod does not wait for its claim as a real kubelet does: counting
// until both is what the pod would wait for on a real node, less the
// kubelet's own mount (a directory and a bind mount).
//
// The binder alone: BINDER_CLAIMS pre-made Available volumes of an
// Immediate class with no provisioner, then as many claims at once; claims
// bound per second from the first create until a watch saw them all Bound.
//
// Headline: pod startup p50 with a claim over p50 with an emptyDir (goal ≤ 1.2).
// STORAGE_PODS, STORAGE_NODES, STORAGE_CONCURRENCY, BINDER_CLAIMS override the sizes.

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clientsFromKubeconfig } from '../src/agent/agent.ts';
import { ANN_SELECTED_NODE } from '../src/api/pv-util.ts';
import type { PersistentVolumeClaim, Pod } from '../src/api/types/core-v1.ts';
import { createInformer } from '../src/client/informer.ts';
import { freePort } from '../test/e2e/harness.ts';
import { percentile, ratio, round, until, writeResult } from './lib.ts';

const PODS = Number(process.env.STORAGE_PODS ?? 100);
const NODES = Number(process.env.STORAGE_NODES ?? 10);
const CONCURRENCY = Number(process.env.STORAGE_CONCURRENCY ?? 10);
const BINDER_CLAIMS = Number(process.env.BINDER_CLAIMS ?? 500);
const SETTLE_MS = 5000;
const root = new URL('../', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'skiff-bench-storage-provision-'));
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

/** user + system CPU seconds of a process so far. */
const cpuSeconds = (pid: number): number => {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
};

const port = await freePort();
log(`storage-provision: ${PODS} pods per phase on ${NODES} hollow nodes, ${CONCURRENCY} at a time`);
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
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    for (const p of [agent?.proc, server.proc]) p?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    process.exit(130);
  });
}
const clients = clientsFromKubeconfig(join(dir, 'server', 'kubeconfig.yaml'));
const nodes = createInformer(clients.nodes);
const pods = createInformer(clients.pods, { namespace: 'default' });
const claims = createInformer(clients.persistentVolumeClaims, { namespace: 'default' });
const volumes = createInformer(clients.persistentVolumes);

// When a watch first saw each pod Running and each claim Bound (performance.now()).
const runningAt = new Map<string, number>();
const boundAt = new Map<string, number>();
const seePod = (p: Pod) => {
  if (p.status?.phase === 'Running' && !runningAt.has(p.metadata.name ?? ''))
    runningAt.set(p.metadata.name ?? '', performance.now());
};
const seeClaim = (c: PersistentVolumeClaim) => {
  if (c.status?.phase === 'Bound' && !boundAt.has(c.metadata.name ?? ''))
    boundAt.set(c.metadata.name ?? '', performance.now());
};
pods.on({ add: seePod, update: (_o, p) => seePod(p) });
claims.on({ add: seeClaim, update: (_o, c) => seeClaim(c) });

// The claim path's stages, for the breakdown (first time a watch saw each).
const stageAt = {
  podScheduled: new Map<string, number>(),
  claimSelectedNode: new Map<string, number>(),
  volumeCreated: new Map<string, number>(),
};
const first = (m: Map<string, number>, key: string | undefined) => {
  if (key && !m.has(key)) m.set(key, performance.now());
};
pods.on({
  add: (p) => p.spec?.nodeName && first(stageAt.podScheduled, p.metadata.name),
  update: (_o, p) => p.spec?.nodeName && first(stageAt.podScheduled, p.metadata.name),
});
const seeSelected = (c: PersistentVolumeClaim) =>
  c.metadata.annotations?.[ANN_SELECTED_NODE] && first(stageAt.claimSelectedNode, c.metadata.name);
claims.on({ add: seeSelected, update: (_o, c) => seeSelected(c) });
volumes.on({ add: (v) => first(stageAt.volumeCreated, v.spec?.claimRef?.name) });

/** Runs fn(i) for i < n, `CONCURRENCY` at a time. */
async function inParallel(n: number, fn: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < n) await fn(next++);
    }),
  );
}

const podSpec = (name: string, volume: NonNullable<Pod['spec']>['volumes']): Pod => ({
  metadata: { name, labels: { app: 'storage-bench' } },
  spec: {
    containers: [
      {
        name: 'app',
        image: 'busybox',
        command: ['sleep', '3600'],
        volumeMounts: [{ name: 'data', mountPath: '/data' }],
      },
    ],
    volumes: volume,
    terminationGracePeriodSeconds: 0,
  },
});

interface Phase {
  latenciesMs: number[];
  /** p50 of each stage's time since the pod's first create (the claim path only). */
  stagesP50Ms?: Record<string, number>;
  secondsUntilAllRunning: number;
  serverCpuSeconds: number;
}

async function phase(name: string, withClaims: boolean): Promise<Phase> {
  const startedAt = new Map<string, number>();
  const cpu0 = cpuSeconds(server.proc.pid!);
  const t0 = performance.now();
  await inParallel(PODS, async (i) => {
    const pod = `${name}-${i}`;
    startedAt.set(pod, performance.now());
    if (withClaims) {
      await clients.persistentVolumeClaims.create('default', {
        metadata: { name: pod },
        spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
      });
      await clients.pods.create(
        'default',
        podSpec(pod, [{ name: 'data', persistentVolumeClaim: { claimName: pod } }]),
      );
    } else {
      await clients.pods.create('default', podSpec(pod, [{ name: 'data', emptyDir: {} }]));
    }
  });
  const done = (pod: string) => runningAt.has(pod) && (!withClaims || boundAt.has(pod));
  const names = [...startedAt.keys()];
  await until(`${name}: ${PODS} pods Running`, () => names.every(done), 10 * 60_000, 20);
  const secondsUntilAllRunning = round((performance.now() - t0) / 1000);
  const latenciesMs = names.map((pod) => {
    const end = Math.max(runningAt.get(pod) ?? 0, withClaims ? (boundAt.get(pod) ?? 0) : 0);
    return end - (startedAt.get(pod) ?? 0);
  });
  const serverCpuSeconds = round(cpuSeconds(server.proc.pid!) - cpu0);
  const since = (m: Map<string, number>) =>
    percentile(
      names.map((pod) => (m.get(pod) ?? Number.NaN) - (startedAt.get(pod) ?? 0)).filter(Number.isFinite),
      50,
    );
  const stagesP50Ms = withClaims
    ? {
        podScheduled: since(stageAt.podScheduled),
        claimSelectedNode: since(stageAt.claimSelectedNode),
        volumeCreated: since(stageAt.volumeCreated),
        claimBound: since(boundAt),
        podRunning: since(runningAt),
      }
    : undefined;
  if (stagesP50Ms) log(`  ${name} stages (p50 ms since the claim's create): ${JSON.stringify(stagesP50Ms)}`);
  log(
    `  ${name}: all ${PODS} Running after ${secondsUntilAllRunning} s; p50 ${percentile(latenciesMs, 50)} ms, p99 ${percentile(latenciesMs, 99)} ms; server CPU ${serverCpuSeconds} s`,
  );
  // Clean up: pods, then (pvc-protection lets them go) the claims, whose volumes the provisioner deletes.
  await inParallel(PODS, (i) => clients.pods.delete('default', `${name}-${i}`, { gracePeriodSeconds: 0 }));
  await until(`${name}: pods gone`, () => pods.indexer.list().length === 0, 5 * 60_000, 50);
  if (withClaims) {
    await inParallel(PODS, (i) => clients.persistentVolumeClaims.delete('default', `${name}-${i}`));
    await until(`${name}: claims gone`, () => claims.indexer.list().length === 0, 5 * 60_000, 50);
    const volumes = async () => (await clients.persistentVolumes.list()).items.length;
    const deadline = Date.now() + 5 * 60_000;
    while ((await volumes()) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  }
  // The cleanup's tail (kubelets finishing, garbage collection, events) settles before the next phase.
  await new Promise((r) => setTimeout(r, SETTLE_MS));
  return { latenciesMs, secondsUntilAllRunning, serverCpuSeconds, ...(stagesP50Ms ? { stagesP50Ms } : {}) };
}

/** The binder alone: static volumes of an Immediate class, then as many claims at once. */
async function binderThroughput(): Promise<{ claims: number; seconds: number; bindsPerSec: number }> {
  await clients.storageClasses.create(undefined, {
    metadata: { name: 'bench-static' },
    provisioner: 'kubernetes.io/no-provisioner',
    volumeBindingMode: 'Immediate',
    reclaimPolicy: 'Retain',
  });
  await inParallel(BINDER_CLAIMS, (i) =>
    clients.persistentVolumes.create(undefined, {
      metadata: { name: `static-${i}` },
      spec: {
        capacity: { storage: '1Gi' },
        accessModes: ['ReadWriteOnce'],
        storageClassName: 'bench-static',
        persistentVolumeReclaimPolicy: 'Retain',
        hostPath: { path: `/tmp/static-${i}` },
      },
    }),
  );
  // The binder marks each volume Available before it can match a claim.
  const available = async () =>
    (await clients.persistentVolumes.list()).items.filter((v) => v.status?.phase === 'Available').length;
  const deadline = Date.now() + 5 * 60_000;
  while ((await available()) < BINDER_CLAIMS && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 100));
  const t0 = performance.now();
  await inParallel(BINDER_CLAIMS, (i) =>
    clients.persistentVolumeClaims.create('default', {
      metadata: { name: `static-claim-${i}` },
      spec: {
        accessModes: ['ReadWriteOnce'],
        storageClassName: 'bench-static',
        resources: { requests: { storage: '1Gi' } },
      },
    }),
  );
  const names = Array.from({ length: BINDER_CLAIMS }, (_, i) => `static-claim-${i}`);
  await until('static claims Bound', () => names.every((n) => boundAt.has(n)), 10 * 60_000, 20);
  const last = Math.max(...names.map((n) => boundAt.get(n) ?? 0));
  const seconds = round((last - t0) / 1000);
  log(`  binder: ${BINDER_CLAIMS} claims bound to static volumes in ${seconds} s`);
  return { claims: BINDER_CLAIMS, seconds, bindsPerSec: round(BINDER_CLAIMS / seconds, 1) };
}

try {
  await Promise.all([nodes.start(), pods.start(), claims.start(), volumes.start()]);
  const token = readFileSync(join(dir, 'server', 'node-token'), 'utf8').trim();
  agent = await start(
    [
      'agent',
      '--server',
      `https://127.0.0.1:${port}`,
      '--token',
      token,
      '--hollow-nodes',
      String(NODES),
      '--data-dir',
      join(dir, 'agent'),
    ],
    'joined the cluster',
  );
  const ready = () =>
    nodes.indexer
      .list()
      .filter((n) => n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')).length;
  await until(`${NODES} nodes Ready`, () => ready() === NODES, 5 * 60_000, 100);
  // The default class, made by the server on start.
  await clients.storageClasses.get(undefined, 'local-path');

  // A warm-up of each kind, so neither phase pays for the first requests' code loading.
  await phase('warm-pvc', true);
  await phase('warm-empty', false);
  const empty1 = await phase('empty-a', false);
  const pvc = await phase('pvc', true);
  const empty2 = await phase('empty-b', false);
  const emptyLat = [...empty1.latenciesMs, ...empty2.latenciesMs];
  const emptyP50 = percentile(emptyLat, 50);
  const pvcP50 = percentile(pvc.latenciesMs, 50);
  const binder = await binderThroughput();
  const headline = ratio(pvcP50, emptyP50);
  const figures = (p: Phase) => ({
    secondsUntilAllRunning: p.secondsUntilAllRunning,
    p50Ms: percentile(p.latenciesMs, 50),
    p90Ms: percentile(p.latenciesMs, 90),
    p99Ms: percentile(p.latenciesMs, 99),
    serverCpuSeconds: p.serverCpuSeconds,
    ...(p.stagesP50Ms ? { stagesP50Ms: p.stagesP50Ms } : {}),
  });
  writeResult(
    'storage-provision',
    {
      metric: `pod startup p50 with a local-path claim over p50 with an emptyDir, ${PODS} pods on ${NODES} hollow nodes (goal ≤ 1.2)`,
      value: headline,
      unit: 'x',
    },
    {
      pods: PODS,
      hollowNodes: NODES,
      concurrency: CONCURRENCY,
      datastore: 'sqlite',
      startup:
        'from just before the first create (the claim, then the pod) until a watch saw the pod Running and its claim Bound; hollow kubelets set up no volumes',
      emptyDir: {
        runs: [figures(empty1), figures(empty2)],
        p50Ms: emptyP50,
        p90Ms: percentile(emptyLat, 90),
        p99Ms: percentile(emptyLat, 99),
      },
      pvc: figures(pvc),
      ratios: {
        p50: headline,
        p99: ratio(percentile(pvc.latenciesMs, 99), percentile(emptyLat, 99)),
        secondsUntilAllRunning: ratio(
          pvc.secondsUntilAllRunning,
          (empty1.secondsUntilAllRunning + empty2.secondsUntilAllRunning) / 2,
        ),
      },
      binder,
      realNode: 'not measured in this run',
    },
  );
} catch (err) {
  console.error(String(err));
  if (agent) console.error(`agent log tail:\n${agent.output().slice(-3000)}`);
  console.error(`server log tail:\n${server.output().slice(-3000)}`);
  process.exitCode = 1;
} finally {
  nodes.stop();
  pods.stop();
  volumes.stop();
  claims.stop();
  clients.close();
  for (const p of [agent?.proc, server.proc]) {
    if (!p || p.exitCode !== null) continue;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGTERM');
    const t = setTimeout(() => p.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(t);
  }
  rmSync(dir, { recursive: true, force: true });
}
