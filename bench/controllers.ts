// bench/controllers: the controller manager's throughput, in one process: a
// `skiff server` (startServer) on a sqlite store in a temp dir, with its
// controller manager and scheduler running over the in-process transport
// and its in-process agent on the hollow runtime (NODES hollow nodes, so
// pods get Running and Ready as soon as they are bound; no containers).
//
//   ReplicaSet   one ReplicaSet of 1,000 replicas: seconds from its create
//                to 1,000 pods existing (seen by a watch), and to all Ready.
//   Deployments  100 Deployments of 10 replicas each, created 16 at a time:
//                seconds until every one reports status.availableReplicas 10.
//
// Headline: ReplicaSet pods created per second. Skiff's goal: >= 500 on
// sqlite. For context, kwok's published figure is ~20 pods/s.
//
// The raw path, in the same run after the ReplicaSet: the same 1,000 pods
// (its template, no ownerReference) created straight through the
// ReplicaSet controller's own clientset (the in-process transport, as the
// controller's ServiceAccount) in the controller's own pattern (two bursts
// of BURST_REPLICAS in slow-start batches 1, 2, 4, ...), timed the same way
// (create sent until the watch has seen the last pod). What is left between
// the two is the controller: its informers, the work queue, expectations,
// and the round trip between its syncs. The pods get scheduled and started
// by the hollow nodes in both, and the raw ones are deleted again before
// the Deployments run.
//
//   npm run bench -- controllers

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// Before the server starts: its components read the level when they make their logs.
process.env.SKIFF_LOG_LEVEL ??= 'warn';

import { isPodReady } from '../src/api/pod-util.ts';
import type { Deployment } from '../src/api/types/apps-v1.ts';
import type { Pod } from '../src/api/types/core-v1.ts';
import { createInProcessTransport } from '../src/apiserver/in-process.ts';
import { createClientset } from '../src/client/clientset.ts';
import { createInformer } from '../src/client/informer.ts';
import {
  BURST_REPLICAS,
  SLOW_START_INITIAL_BATCH_SIZE,
  slowStartBatch,
} from '../src/controllers/replicaset.ts';
import { controllerIdentity } from '../src/server/server.ts';
import { load, ratio, round, startBenchServer, until, writeResult } from './lib.ts';

const REPLICAS = 1000;
const DEPLOYMENTS = 100;
const DEPLOYMENT_REPLICAS = 10;
/** 2,000 pods stay at once (the ReplicaSet's are kept); 110 pods a node. */
const NODES = 25;
const GOAL = 500;
const KWOK = 20;

const dataDir = mkdtempSync(join(tmpdir(), 'skiff-bench-controllers-'));
const log = (s: string) => console.log(s);
const sec = (ms: number) => round(ms / 1000, 3);
// The process's CPU time (every thread) since `from`, per pod of a phase:
// it moves far less with other load on the machine than pods/s does.
const cpuUsPerPod = (from: NodeJS.CpuUsage) => {
  const u = process.cpuUsage(from);
  return Math.round((u.user + u.system) / REPLICAS);
};

const template = (app: string) => ({
  metadata: { labels: { app } },
  spec: {
    containers: [{ name: 'main', image: 'registry.k8s.io/pause:3.10' }],
    terminationGracePeriodSeconds: 0,
  },
});

const server = await startBenchServer(dataDir, {
  disableAgent: false,
  agentRuntime: 'hollow',
  hollowNodes: NODES,
});
const admin = createClientset(
  createInProcessTransport(server.api, { name: 'bench', groups: ['system:masters'] }),
);

try {
  // Every hollow node Ready first, so the figures are the controllers' and not the nodes' start.
  const nodes = createInformer(admin.nodes);
  await nodes.start();
  await until(
    `${NODES} hollow nodes Ready`,
    () =>
      nodes.indexer
        .list()
        .filter((n) => n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')).length >=
      NODES,
    60_000,
  );
  nodes.stop();

  // One watch on every pod: when each is first seen, and first seen Ready.
  const seenAt = new Map<string, number>();
  const readyAt = new Map<string, number>();
  const counts = new Map<string, { seen: number; ready: number }>();
  const pods = createInformer(admin.pods);
  const seen = (p: Pod) => {
    const key = `${p.metadata.namespace}/${p.metadata.name}`;
    const ns = p.metadata.namespace ?? '';
    const c = counts.get(ns) ?? { seen: 0, ready: 0 };
    counts.set(ns, c);
    if (!seenAt.has(key)) {
      seenAt.set(key, performance.now());
      c.seen++;
    }
    if (!readyAt.has(key) && isPodReady(p)) {
      readyAt.set(key, performance.now());
      c.ready++;
    }
  };
  pods.on({ add: seen, update: (_old, p) => seen(p) });
  await pods.start();

  // --- one ReplicaSet of 1,000 replicas -------------------------------------------
  await admin.namespaces.create(undefined, { metadata: { name: 'bench-rs' } });
  const rsStart = performance.now();
  const rsCpu = process.cpuUsage();
  await admin.replicaSets.create('bench-rs', {
    apiVersion: 'apps/v1',
    kind: 'ReplicaSet',
    metadata: { name: 'big' },
    spec: { replicas: REPLICAS, selector: { matchLabels: { app: 'big' } }, template: template('big') },
  });
  const rsCount = () => counts.get('bench-rs') ?? { seen: 0, ready: 0 };
  await until(`${REPLICAS} pods`, () => rsCount().seen >= REPLICAS, 60_000);
  const rsCpuUsPerPod = cpuUsPerPod(rsCpu);
  const rsCreatedMs = Math.max(...[...seenAt.values()]) - rsStart;
  await until(`${REPLICAS} pods Ready`, () => rsCount().ready >= REPLICAS, 60_000);
  const rsReadyMs = Math.max(...[...readyAt.values()]) - rsStart;
  const rsReplicaSet = await admin.replicaSets.get('bench-rs', 'big');
  // The controller's own view: readyReplicas in the ReplicaSet's status.
  const rsStatusStart = performance.now();
  let rsStatusReady = rsReplicaSet.status?.readyReplicas ?? 0;
  while (rsStatusReady < REPLICAS && performance.now() - rsStatusStart < 30_000) {
    await new Promise((r) => setTimeout(r, 50));
    rsStatusReady = (await admin.replicaSets.get('bench-rs', 'big')).status?.readyReplicas ?? 0;
  }
  const rsStatusMs = performance.now() - rsStart;
  const rsCreatedPerSec = round(REPLICAS / (rsCreatedMs / 1000), 1);
  const rsReadyPerSec = round(REPLICAS / (rsReadyMs / 1000), 1);
  log(
    `ReplicaSet ${REPLICAS}: ${REPLICAS} pods exist after ${sec(rsCreatedMs)} s (${rsCreatedPerSec} pods/s), all Ready after ${sec(rsReadyMs)} s (${rsReadyPerSec} pods/s), status.readyReplicas ${rsStatusReady} after ${sec(rsStatusMs)} s`,
  );

  // --- the raw path: the same pods without the controller -------------------------
  await admin.namespaces.create(undefined, { metadata: { name: 'bench-raw' } });
  const asController = createClientset(
    createInProcessTransport(server.api, controllerIdentity('replicaset')),
  );
  const rawTemplate = template('raw');
  const rawStart = performance.now();
  const rawCpu = process.cpuUsage();
  for (let left = REPLICAS; left > 0; left -= BURST_REPLICAS) {
    const { error } = await slowStartBatch(
      Math.min(left, BURST_REPLICAS),
      SLOW_START_INITIAL_BATCH_SIZE,
      async () => {
        await asController.pods.create('bench-raw', {
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: { generateName: 'raw-', labels: { ...rawTemplate.metadata.labels } },
          spec: structuredClone(rawTemplate.spec),
        });
      },
    );
    if (error !== undefined) throw error;
  }
  const rawCount = () => counts.get('bench-raw') ?? { seen: 0, ready: 0 };
  await until(`${REPLICAS} raw pods`, () => rawCount().seen >= REPLICAS, 60_000);
  const rawCpuUsPerPod = cpuUsPerPod(rawCpu);
  const rawKeys = [...seenAt.keys()].filter((k) => k.startsWith('bench-raw/'));
  const rawCreatedMs = Math.max(...rawKeys.map((k) => seenAt.get(k)!)) - rawStart;
  const rawCreatedPerSec = round(REPLICAS / (rawCreatedMs / 1000), 1);
  const vsRaw = ratio(rsCreatedPerSec, rawCreatedPerSec);
  log(
    `raw: ${REPLICAS} pods created through the controller's clientset, no controller: all exist after ${sec(rawCreatedMs)} s (${rawCreatedPerSec} pods/s); ReplicaSet / raw ${vsRaw}; CPU per pod created: ReplicaSet ${rsCpuUsPerPod} us, raw ${rawCpuUsPerPod} us`,
  );
  // Gone again (and off the nodes) before the Deployments, which then find the cluster as before.
  await until(`${REPLICAS} raw pods Ready`, () => rawCount().ready >= REPLICAS, 60_000);
  const rawNames = pods.indexer
    .list()
    .filter((p) => p.metadata.namespace === 'bench-raw')
    .map((p) => p.metadata.name ?? '');
  await load(rawNames.length, 32, (i) => admin.pods.delete('bench-raw', rawNames[i]!));
  await until(
    'raw pods gone',
    () => !pods.indexer.list().some((p) => p.metadata.namespace === 'bench-raw'),
    60_000,
  );

  // --- 100 Deployments of 10 replicas ---------------------------------------------
  await admin.namespaces.create(undefined, { metadata: { name: 'bench-deploy' } });
  const available = new Map<string, number>();
  const deployments = createInformer(admin.deployments, { namespace: 'bench-deploy' });
  const seenDeployment = (d: Deployment) => {
    if (!available.has(d.metadata.name ?? '') && d.status?.availableReplicas === DEPLOYMENT_REPLICAS) {
      available.set(d.metadata.name ?? '', performance.now());
    }
  };
  deployments.on({ add: seenDeployment, update: (_old, d) => seenDeployment(d) });
  await deployments.start();
  const dStart = performance.now();
  const creates = await load(DEPLOYMENTS, 16, (i) =>
    admin.deployments.create('bench-deploy', {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: `d-${i}` },
      spec: {
        replicas: DEPLOYMENT_REPLICAS,
        selector: { matchLabels: { app: `d-${i}` } },
        template: template(`d-${i}`),
      },
    }),
  );
  const dCreateMs = performance.now() - dStart;
  const dPods = DEPLOYMENTS * DEPLOYMENT_REPLICAS;
  const dCount = () => counts.get('bench-deploy') ?? { seen: 0, ready: 0 };
  await until(`${dPods} deployment pods`, () => dCount().seen >= dPods, 90_000);
  const dSeenMs = performance.now() - dStart;
  await until(`${DEPLOYMENTS} Deployments available`, () => available.size >= DEPLOYMENTS, 90_000);
  const dAvailableMs = Math.max(...available.values()) - dStart;
  const dPodsPerSec = round(dPods / (dAvailableMs / 1000), 1);
  log(
    `${DEPLOYMENTS} Deployments x ${DEPLOYMENT_REPLICAS}: created in ${sec(dCreateMs)} s, ${dPods} pods exist after ${sec(dSeenMs)} s, all available after ${sec(dAvailableMs)} s (${dPodsPerSec} pods/s)`,
  );
  deployments.stop();
  pods.stop();

  writeResult(
    'controllers',
    { metric: 'ReplicaSet 1000 replicas: pods created per second', value: rsCreatedPerSec, unit: 'pods/s' },
    {
      store: 'sqlite',
      hollowNodes: NODES,
      kubelets:
        'hollow runtime (src/kubelet/runtime/hollow) via startServer agentRuntime hollow: real kubelets, no containers; pods go Running and Ready once bound',
      rawPath: `the same ${REPLICAS} pods (the ReplicaSet's template, no ownerReference) created through the ReplicaSet controller's clientset (in-process transport, its ServiceAccount), in its pattern (bursts of ${BURST_REPLICAS}, slow-start batches), no controller; timed from the first create to the last pod seen by the same watch`,
      raw: {
        secondsToAllCreated: sec(rawCreatedMs),
        createdPodsPerSec: rawCreatedPerSec,
        cpuUsPerPodCreated: rawCpuUsPerPod,
      },
      // The process's CPU per pod, ReplicaSet over raw: what the controller costs, load aside.
      cpuRatio: ratio(rsCpuUsPerPod, rawCpuUsPerPod),
      // ReplicaSet pods/s against the raw creates/s: what the controller keeps of the transport's rate.
      ratio: vsRaw,
      goal: { podsPerSec: GOAL, met: rsCreatedPerSec >= GOAL },
      kwok: { podsPerSec: KWOK, note: "kwok's published figure, for context only (not measured here)" },
      vsKwok: ratio(rsCreatedPerSec, KWOK),
      vsGoal: ratio(rsCreatedPerSec, GOAL),
      replicaSet: {
        replicas: REPLICAS,
        secondsToAllCreated: sec(rsCreatedMs),
        createdPodsPerSec: rsCreatedPerSec,
        cpuUsPerPodCreated: rsCpuUsPerPod,
        secondsToAllReady: sec(rsReadyMs),
        readyPodsPerSec: rsReadyPerSec,
        secondsToStatusReadyReplicas: sec(rsStatusMs),
        statusReadyReplicas: rsStatusReady,
      },
      deployments: {
        deployments: DEPLOYMENTS,
        replicasEach: DEPLOYMENT_REPLICAS,
        createConcurrency: 16,
        secondsToCreateDeployments: sec(dCreateMs),
        deploymentCreatesPerSec: creates.opsPerSec,
        secondsToAllPodsExist: sec(dSeenMs),
        secondsToAllAvailable: sec(dAvailableMs),
        availablePodsPerSec: dPodsPerSec,
      },
      notes:
        'one process: API server, sqlite store, controller manager, scheduler and hollow kubelets share one event loop; times are from the create request until a watch (or the Deployment informer) sees the result. The ReplicaSet pods stay while the Deployments run.',
      rssMB: round(process.memoryUsage().rss / 1024 / 1024, 1),
    },
  );
} finally {
  await server.stop();
  rmSync(dataDir, { recursive: true, force: true });
}
process.exit(0);
