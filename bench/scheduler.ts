// bench/scheduler: the scheduler's throughput and latency, modelled on
// upstream's scheduler_perf (test/integration/scheduler_perf, the
// misc/, affinity/ and topology_spreading/ performance-config.yaml files).
//
// Each workload runs in this one process against a fresh `skiff server`
// (startServer, controllers and scheduler off) on the memory or the sqlite
// store; the scheduler is started as `skiff server` starts it (startScheduler)
// over the in-process transport. As in scheduler_perf there are no kubelets:
// Node objects only, and pods stay bound and Pending.
//
//   SchedulingBasic      nodes, then initPods created and scheduled, then
//                        measurePods created concurrently and measured.
//   SchedulingPodAntiAffinity  required anti-affinity on hostname, pods in
//                        two namespaces (upstream's pod-with-pod-anti-affinity).
//   TopologySpreading    3 zones, maxSkew 5 DoNotSchedule on the zone
//                        (upstream's pod-with-topology-spreading).
//
// Figures per workload: pods/s from the first create sent to the last bind
// seen by a watch (and upstream's per-second samples), p50/p99 latency from
// create sent to bound seen, the API server's responsiveness meanwhile (GET
// /version over HTTPS as an outside client sees it, and the event loop's
// delay), RSS, and the machine's load average (two shared cores: noisy).
//
//   npm run bench -- scheduler [--quick] [--only=NAME-SUBSTRING]
//
// Headline: SchedulingBasic 5000 nodes / 10,000 pods on sqlite, pods/s;
// upstream's CI floor for that workload is 680 pods/s (misc/performance-config.yaml,
// SchedulingBasic 5000Nodes_10000Pods threshold). Skiff's goal: >= 1,000.

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { parse } from 'yaml';
import type { Node, Pod } from '../src/api/types/core-v1.ts';
import { createInProcessTransport } from '../src/apiserver/in-process.ts';
import { createClientset } from '../src/client/clientset.ts';
import { createHttpTransport } from '../src/client/http-transport.ts';
import { createInformer } from '../src/client/informer.ts';
import type { Transport } from '../src/client/transport.ts';
import { startScheduler } from '../src/scheduler/index.ts';
import type { Scheduler } from '../src/scheduler/scheduler.ts';
import { startServer } from '../src/server/server.ts';
import { createLog } from '../src/util/log.ts';
import { load, loadNow, percentile, ratio, rawStoreWrites, round, writeResult } from './lib.ts';
import { type Port, serveTransport } from './scheduler/port-transport.ts';

const quick = process.argv.includes('--quick') || process.env.BENCH_QUICK === '1';
const only = process.argv.find((a) => a.startsWith('--only='))?.slice('--only='.length);
/** upstream's createPods runs its creates in parallel; so do we. */
const CREATE_CONCURRENCY = 32;
const UPSTREAM_FLOOR = 680;
/** How long the control phase (creates without scheduling) runs. */
const CONTROL_SECONDS = quick ? 1.5 : 3;
const GOAL = 1000;

// --- templates, after upstream's templates/node-default.yaml and pod-*.yaml ----

function node(name: string, labels: Record<string, string> = {}): Node {
  const resources = { pods: '110', cpu: '4', memory: '32Gi' };
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, labels: { 'kubernetes.io/hostname': name, ...labels } },
    spec: {},
    status: { capacity: resources, allocatable: resources, conditions: [{ type: 'Ready', status: 'True' }] },
  };
}

const container = {
  name: 'pause',
  image: 'registry.k8s.io/pause:3.10',
  ports: [{ containerPort: 80 }],
  resources: {
    limits: { cpu: '100m', memory: '500Mi' },
    requests: { cpu: '100m', memory: '500Mi' },
  },
};

type PodKind = 'default' | 'antiAffinity' | 'topologySpread';

function pod(name: string, kind: PodKind): Pod {
  switch (kind) {
    case 'default':
      return { apiVersion: 'v1', kind: 'Pod', metadata: { name }, spec: { containers: [container] } };
    case 'antiAffinity':
      return {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name, labels: { color: 'green' } },
        spec: {
          containers: [container],
          affinity: {
            podAntiAffinity: {
              requiredDuringSchedulingIgnoredDuringExecution: [
                {
                  labelSelector: { matchLabels: { color: 'green' } },
                  topologyKey: 'kubernetes.io/hostname',
                  namespaces: ['sched-1', 'sched-0'],
                },
              ],
            },
          },
        },
      };
    case 'topologySpread':
      return {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name, labels: { color: 'blue' } },
        spec: {
          containers: [container],
          topologySpreadConstraints: [
            {
              maxSkew: 5,
              topologyKey: 'topology.kubernetes.io/zone',
              whenUnsatisfiable: 'DoNotSchedule',
              labelSelector: { matchLabels: { color: 'blue' } },
            },
          ],
        },
      };
  }
}

// --- workloads -----------------------------------------------------------------

interface Workload {
  name: string;
  store: 'memory' | 'sqlite';
  nodes: number;
  /** Node label values cycled over the nodes (labelNodePrepareStrategy). */
  zones?: string[];
  initPods: number;
  initKind: PodKind;
  initNamespace: string;
  measurePods: number;
  measureKind: PodKind;
  measureNamespace: string;
  /** upstream's CI threshold for the workload it is modelled on, pods/s. */
  upstreamThreshold?: { value: number; workload: string };
  /** Run the scheduler on a worker thread (the proposal measured) instead of the API server's event loop. */
  worker?: boolean;
}

function basic(store: Workload['store'], nodes: number, initPods: number, measurePods: number): Workload {
  return {
    name: `SchedulingBasic/${nodes}Nodes_${measurePods}Pods/${store}`,
    store,
    nodes,
    initPods,
    initKind: 'default',
    initNamespace: 'default',
    measurePods,
    measureKind: 'default',
    measureNamespace: 'default',
    ...(nodes === 5000 && measurePods === 10_000
      ? { upstreamThreshold: { value: UPSTREAM_FLOOR, workload: 'SchedulingBasic/5000Nodes_10000Pods' } }
      : {}),
  };
}

function antiAffinity(nodes: number, initPods: number, measurePods: number): Workload {
  return {
    name: `SchedulingPodAntiAffinity/${nodes}Nodes_${measurePods}Pods/sqlite`,
    store: 'sqlite',
    nodes,
    initPods,
    initKind: 'antiAffinity',
    initNamespace: 'sched-0',
    measurePods,
    measureKind: 'antiAffinity',
    measureNamespace: 'sched-1',
    ...(nodes === 5000 && measurePods === 2000
      ? { upstreamThreshold: { value: 60, workload: 'SchedulingPodAntiAffinity/5000Nodes_2000Pods' } }
      : {}),
  };
}

function topologySpreading(nodes: number, initPods: number, measurePods: number): Workload {
  return {
    name: `TopologySpreading/${nodes}Nodes_${measurePods}Pods/sqlite`,
    store: 'sqlite',
    nodes,
    zones: ['moon-1', 'moon-2', 'moon-3'],
    initPods,
    initKind: 'default',
    initNamespace: 'default',
    measurePods,
    measureKind: 'topologySpread',
    measureNamespace: 'default',
    ...(nodes === 5000 && measurePods === 5000
      ? { upstreamThreshold: { value: 460, workload: 'TopologySpreading/5000Nodes_5000Pods' } }
      : {}),
  };
}

const HEADLINE = basic('sqlite', 5000, 1000, quick ? 2000 : 10_000).name;

/** The same workload with the scheduler on a worker thread. */
const onWorker = (w: Workload): Workload => ({ ...w, name: `${w.name}/worker`, worker: true });

const workloads: Workload[] = quick
  ? [
      basic('sqlite', 5000, 1000, 2000),
      onWorker(basic('sqlite', 5000, 1000, 2000)),
      basic('memory', 500, 500, 1000),
      antiAffinity(500, 100, 400),
      topologySpreading(500, 500, 500),
    ]
  : [
      basic('sqlite', 5000, 1000, 10_000),
      onWorker(basic('sqlite', 5000, 1000, 10_000)),
      basic('memory', 5000, 1000, 10_000),
      basic('sqlite', 500, 1000, 10_000),
      basic('memory', 500, 1000, 10_000),
      // upstream's sizes for the workloads with a CI threshold, and their 500-node variants.
      antiAffinity(5000, 1000, 2000),
      antiAffinity(500, 100, 400),
      topologySpreading(5000, 5000, 5000),
      onWorker(topologySpreading(5000, 5000, 5000)),
      topologySpreading(500, 1000, 1000),
    ];

/**
 * Over the in-process transport on the memory store a create is promises
 * all the way down: 32 creators chaining them would never let the event loop
 * reach its timers and sockets (watch delivery, HTTPS clients) until every
 * pod is created. Requests from real clients arrive one socket read at a
 * time; each creator waits for the next turn of the loop to act like one.
 */
const nextTurn = () => new Promise<void>((r) => setImmediate(r));

// --- one run ---------------------------------------------------------------------

const quiet = createLog({}, () => {});
const log = (s: string) => console.log(s);
const rssMB = () => round(process.memoryUsage().rss / 1024 / 1024, 1);

/** A workload's figures, with the same pods' bindings straight to the store beside them. */
async function run(w: Workload): Promise<Record<string, unknown>> {
  const { result, bound } = await measure(w);
  const raw = await rawBindings(w, bound);
  const vsRaw = ratio(result.podsPerSec, raw.objectsPerSec);
  log(
    `${''.padEnd(46)} raw: the same creates, binds and Events straight to the ${w.store} store: ${raw.objectsPerSec} pods/s (${raw.writesPerSec} writes/s); ratio ${vsRaw}`,
  );
  return { ...result, rawPath: RAW_PATH, raw, ratio: vsRaw };
}

// The raw path. A measured pod costs the store three writes: its create,
// its binding (an update setting spec.nodeName) and the Scheduled Event.
// Made straight to a fresh store of the workload's kind, 32 pods in flight
// as the bench's creators, they are the floor under the pipeline: every
// millisecond above it is Skiff's own (admission, validation, encoding, the
// watch cache and its fan-out, the informers, the queue, and the filter and
// score walk over the nodes). The other candidate, the filter+score walk
// alone over an in-memory snapshot, would measure only the part the profile
// (results/scheduler-profile.md) puts at ~30% of the process's CPU and leave
// out the API server, validation and the watch path, which take most of the
// rest: it would hide most of Skiff's overhead instead of showing it. The
// store is what Skiff cannot make faster (sqlite's FULL-sync commit), and
// its rate is the anchor bench/api uses too.
const RAW_PATH =
  'the same pod creates, bindings (spec.nodeName updates) and Scheduled Events straight to a fresh store of the same kind (openStore), 32 pods in flight, values encoded beforehand; no API server, watch or scheduler';

async function rawBindings(
  w: Workload,
  bound: { pod: Pod; event: Record<string, unknown> },
): ReturnType<typeof rawStoreWrites> {
  const dataDir = mkdtempSync(join(tmpdir(), 'skiff-bench-scheduler-raw-'));
  const ns = w.measureNamespace;
  try {
    return await rawStoreWrites({
      endpoint: w.store === 'sqlite' ? `sqlite://${join(dataDir, 'state.db')}` : 'memory://',
      dataDir,
      n: w.measurePods,
      concurrency: CREATE_CONCURRENCY,
      writes: (i) => {
        const name = `pod-${i}`;
        const uid = `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
        const pod = structuredClone(bound.pod);
        pod.metadata = { ...pod.metadata, name, uid };
        const unbound = structuredClone(pod);
        delete unbound.spec!.nodeName;
        const event = structuredClone(bound.event) as { metadata: { name: string }; involvedObject: object };
        event.metadata.name = `${name}.${i.toString(16)}`;
        event.involvedObject = { ...event.involvedObject, name, uid };
        const key = `/registry/pods/${ns}/${name}`;
        return [
          { key, value: JSON.stringify(unbound) },
          { key, value: JSON.stringify(pod) },
          { key: `/registry/events/${ns}/${event.metadata.name}`, value: JSON.stringify(event) },
        ];
      },
    });
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** The workload itself; also returns one measured pod as bound, and its Scheduled Event, for the raw path. */
async function measure(w: Workload) {
  const dataDir = mkdtempSync(join(tmpdir(), 'skiff-bench-scheduler-'));
  const loadBefore = loadNow();
  const server = await startServer(
    {
      dataDir,
      datastoreEndpoint: w.store === 'sqlite' ? `sqlite://${join(dataDir, 'state.db')}` : 'memory://',
      bindAddress: '127.0.0.1',
      httpsPort: 0,
      serviceCIDR: '10.43.0.0/16',
      clusterCIDR: '10.42.0.0/16',
      disableAgent: true,
      controllers: false,
      scheduler: false,
    },
    quiet,
  );
  const admin = createClientset(
    createInProcessTransport(server.api, { name: 'bench', groups: ['system:masters'] }),
  );
  // An outside client, as kubectl would be: its GET /version shows how long
  // the API server's event loop leaves requests waiting while the scheduler works.
  const kc = parse(readFileSync(server.kubeconfig, 'utf8'));
  const b64 = (s: string) => Buffer.from(s, 'base64');
  const https = createHttpTransport({
    server: server.url,
    ca: b64(kc.clusters[0].cluster['certificate-authority-data']),
    cert: b64(kc.users[0].user['client-certificate-data']),
    key: b64(kc.users[0].user['client-key-data']),
  });
  const schedulerTransport = createInProcessTransport(server.api, {
    name: 'system:kube-scheduler',
    groups: ['system:authenticated'],
  });
  const scheduler = w.worker
    ? await schedulerOnWorker(schedulerTransport)
    : await schedulerInEventLoop(schedulerTransport);

  try {
    for (const ns of new Set([w.initNamespace, w.measureNamespace])) {
      if (ns !== 'default') await admin.namespaces.create(undefined, { metadata: { name: ns } });
      // No controller manager here to make it; pods need their ServiceAccount (admission).
      await admin.serviceAccounts.create(ns, { metadata: { name: 'default' } });
    }

    // Nodes, with zone labels cycled as labelNodePrepareStrategy does.
    let t = performance.now();
    await load(w.nodes, CREATE_CONCURRENCY, (i) =>
      admin.nodes.create(
        undefined,
        node(
          `scheduler-perf-${i}`,
          w.zones ? { 'topology.kubernetes.io/zone': w.zones[i % w.zones.length]! } : {},
        ),
      ),
    );
    const nodesSeconds = (performance.now() - t) / 1000;
    const until = async (what: string, check: () => boolean | Promise<boolean>, ms: number) => {
      const deadline = Date.now() + ms;
      while (!(await check())) {
        if (Date.now() > deadline) throw new Error(`${w.name}: timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    await until(
      'the scheduler to see every node',
      async () => (await scheduler.status()).nodeCount === w.nodes,
      60_000,
    );

    // A watch on the pods records when each is first seen bound.
    const bound = new Map<string, number>();
    const watched = createInformer(admin.pods);
    const seen = (p: Pod) => {
      if (p.spec?.nodeName && !bound.has(`${p.metadata.namespace}/${p.metadata.name}`)) {
        bound.set(`${p.metadata.namespace}/${p.metadata.name}`, performance.now());
      }
    };
    watched.on({ add: seen, update: (_old, p) => seen(p) });
    await watched.start();

    // Pods already placed: created and scheduled before measuring, as upstream.
    t = performance.now();
    await load(w.initPods, CREATE_CONCURRENCY, async (i) => {
      await nextTurn();
      return admin.pods.create(w.initNamespace, pod(`init-${i}`, w.initKind));
    });
    await until('the initial pods to be bound', () => bound.size >= w.initPods, 300_000);
    const initSeconds = (performance.now() - t) / 1000;

    // The measured pods, with the API server probed meanwhile.
    await https.request({ method: 'GET', path: '/version' }); // the TLS handshake, before measuring
    const probe = startProbe(https);
    const created = new Array<number>(w.measurePods);
    const start = performance.now();
    const creates = await load(w.measurePods, CREATE_CONCURRENCY, async (i) => {
      await nextTurn();
      created[i] = performance.now();
      return admin.pods.create(w.measureNamespace, pod(`pod-${i}`, w.measureKind));
    });
    const createSeconds = (performance.now() - start) / 1000;
    const keys = Array.from({ length: w.measurePods }, (_, i) => `${w.measureNamespace}/pod-${i}`);
    const samples: number[] = [];
    let last = keys.filter((k) => bound.has(k)).length;
    const sampler = setInterval(() => {
      const n = keys.filter((k) => bound.has(k)).length;
      samples.push(n - last);
      last = n;
    }, 1000);
    try {
      await until(
        'the measured pods to be bound',
        () => keys.every((k) => bound.has(k)),
        Math.max(120_000, w.measurePods * 30),
      );
    } finally {
      clearInterval(sampler);
    }
    const probed = await probe.stop();
    const lastBind = Math.max(...keys.map((k) => bound.get(k)!));
    const seconds = (lastBind - start) / 1000;
    const latencies = keys.map((k, i) => bound.get(k)! - created[i]!);
    watched.stop();

    // The control: the same creators, pods for a scheduler nobody runs. What
    // the API server's latency is without scheduling shows what scheduling
    // in its event loop costs it.
    // It runs for a fixed time, so the probe gets enough samples.
    const control = startProbe(https);
    const controlStart = performance.now();
    const controlEnd = controlStart + CONTROL_SECONDS * 1000;
    let controlPods = 0;
    await Promise.all(
      Array.from({ length: CREATE_CONCURRENCY }, async () => {
        while (performance.now() < controlEnd) {
          await nextTurn();
          const p = pod(`control-${controlPods++}`, 'default');
          p.spec!.schedulerName = 'nobody';
          await admin.pods.create(w.measureNamespace, p);
        }
      }),
    );
    const controlCreatesPerSec = Math.round(controlPods / ((performance.now() - controlStart) / 1000));
    const controlProbed = await control.stop();

    const podsPerSec = round(w.measurePods / seconds, 1);
    const result = {
      store: w.store,
      nodes: w.nodes,
      initPods: w.initPods,
      measurePods: w.measurePods,
      podsPerSec,
      vsGoal: ratio(podsPerSec, GOAL),
      ...(w.upstreamThreshold
        ? {
            upstreamThreshold: w.upstreamThreshold,
            vsUpstreamThreshold: ratio(podsPerSec, w.upstreamThreshold.value),
          }
        : {}),
      // upstream's SchedulingThroughput: pods bound in each 1 s interval.
      perSecondSamples: samples.length
        ? {
            average: round(samples.reduce((a, b) => a + b, 0) / samples.length, 1),
            max: Math.max(...samples),
          }
        : undefined,
      seconds: round(seconds),
      latencyMs: {
        p50: percentile(latencies, 50),
        p90: percentile(latencies, 90),
        p99: percentile(latencies, 99),
      },
      createsPerSec: creates.opsPerSec,
      createSeconds: round(createSeconds),
      createP99Ms: percentile(creates.latencies, 99),
      apiDuringRun: probed,
      apiWhileOnlyCreating: {
        pods: controlPods,
        createsPerSec: controlCreatesPerSec,
        getVersionMs: controlProbed.getVersionMs,
        eventLoopDelayMs: controlProbed.eventLoopDelayMs,
      },
      setupSeconds: { nodes: round(nodesSeconds), initPods: round(initSeconds) },
      schedulerThread: w.worker ? 'worker' : 'event loop',
      scheduler: (await scheduler.status()).stats,
      rssMB: { peak: probed.peakRssMB, end: rssMB() },
      loadavg: { before: loadBefore, after: loadNow() },
    };
    log(
      `${w.name.padEnd(46)} ${String(podsPerSec).padStart(7)} pods/s  p50 ${result.latencyMs.p50} ms  p99 ${result.latencyMs.p99} ms  | GET /version p99 ${probed.getVersionMs.p99} ms (creates alone ${controlProbed.getVersionMs.p99}), loop delay p99 ${probed.eventLoopDelayMs.p99} ms (${controlProbed.eventLoopDelayMs.p99}) | RSS ${result.rssMB.peak} MB | load ${result.loadavg.after[0]}`,
    );
    // As stored: the bound pod and the Event the scheduler wrote for it.
    const boundPod = await admin.pods.get(w.measureNamespace, 'pod-0');
    const events = await admin.events.list(w.measureNamespace, {
      fieldSelector: 'involvedObject.name=pod-0,reason=Scheduled',
    });
    const event = events.items[0];
    if (!event) throw new Error(`${w.name}: no Scheduled event for pod-0`);
    return { result, bound: { pod: boundPod, event: event as unknown as Record<string, unknown> } };
  } finally {
    await scheduler.stop();
    https.close();
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

interface SchedulerUnderTest {
  status(): Promise<{ nodeCount: number; stats: Scheduler['stats'] }>;
  stop(): Promise<void>;
}

/** As `skiff server` runs it: in the API server's event loop, over the in-process transport. */
async function schedulerInEventLoop(transport: Transport): Promise<SchedulerUnderTest> {
  const running = await startScheduler({ clients: createClientset(transport), log: quiet });
  return {
    status: async () => ({
      nodeCount: running.scheduler.cache.nodeCount,
      stats: { ...running.scheduler.stats },
    }),
    stop: () => running.stop(),
  };
}

/**
 * The proposal measured: the same scheduler on a worker thread, its requests
 * and watches carried over the worker's message port and served by the
 * in-process transport on the main thread (bench/scheduler/port-transport.ts).
 */
async function schedulerOnWorker(transport: Transport): Promise<SchedulerUnderTest> {
  const worker = new Worker(new URL('./scheduler/worker.ts', import.meta.url));
  serveTransport(worker as unknown as Port, transport);
  const next = (kind: string) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const onMessage = (m: Record<string, unknown>) => {
        if (m.kind !== kind) return;
        worker.off('message', onMessage);
        worker.off('error', reject);
        resolve(m);
      };
      worker.on('message', onMessage);
      worker.once('error', reject);
    });
  await next('started');
  return {
    async status() {
      const reply = next('status');
      worker.postMessage({ kind: 'status' });
      return (await reply) as unknown as { nodeCount: number; stats: Scheduler['stats'] };
    },
    async stop() {
      const stopped = next('stopped');
      worker.postMessage({ kind: 'stop' });
      await stopped;
      await worker.terminate();
    },
  };
}

/** Every 50 ms: GET /version over HTTPS; the event loop's delay; RSS. */
function startProbe(https: ReturnType<typeof createHttpTransport>) {
  const latencies: number[] = [];
  let peakRss = 0;
  let stopped = false;
  const histogram = monitorEventLoopDelay({ resolution: 10 });
  histogram.enable();
  const loop = (async () => {
    while (!stopped) {
      const t = performance.now();
      await https.request({ method: 'GET', path: '/version' });
      latencies.push(performance.now() - t);
      peakRss = Math.max(peakRss, process.memoryUsage().rss);
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  return {
    async stop() {
      stopped = true;
      histogram.disable();
      await loop;
      const ms = (ns: number) => round(ns / 1e6);
      return {
        getVersionMs: {
          samples: latencies.length,
          p50: percentile(latencies, 50),
          p99: percentile(latencies, 99),
          max: round(Math.max(0, ...latencies)),
        },
        eventLoopDelayMs: {
          p50: ms(histogram.percentile(50)),
          p99: ms(histogram.percentile(99)),
          max: ms(histogram.max),
        },
        peakRssMB: round(peakRss / 1024 / 1024, 1),
      };
    },
  };
}

// --- main ------------------------------------------------------------------------
//
// Each workload runs in a child process of its own (still one process for
// API server, store and scheduler, as the workload requires): RSS and
// garbage-collector pressure then belong to that workload alone, not to the
// servers the earlier ones left behind, and the JIT starts cold every time.

const RESULT_PREFIX = 'SCHEDULER-BENCH-RESULT ';
const child = process.argv.find((a) => a.startsWith('--workload='))?.slice('--workload='.length);
if (child !== undefined) {
  const w = workloads.find((x) => x.name === child);
  if (!w) throw new Error(`no workload ${child}`);
  console.log(`${RESULT_PREFIX}${JSON.stringify(await run(w))}`);
  process.exit(0);
}

function runChild(w: Workload): Promise<Record<string, unknown>> {
  const script = new URL(import.meta.url).pathname;
  const args = [...process.execArgv, script, `--workload=${w.name}`, ...(quick ? ['--quick'] : [])];
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.setEncoding('utf8');
    p.stdout.on('data', (d: string) => {
      out += d;
      let nl = out.indexOf('\n');
      while (nl >= 0) {
        const line = out.slice(0, nl);
        out = out.slice(nl + 1);
        if (line.startsWith(RESULT_PREFIX)) resolve(JSON.parse(line.slice(RESULT_PREFIX.length)));
        else console.log(line);
        nl = out.indexOf('\n');
      }
    });
    p.on('close', (code) => reject(new Error(`${w.name}: exited with ${code} before its result`)));
  });
}

const results: Record<string, unknown> = {};
const started = performance.now();
log(`scheduler benchmark${quick ? ' (quick)' : ''}, load average ${loadNow().join(' ')}`);
for (const w of workloads) {
  if (only && !w.name.includes(only)) continue;
  results[w.name] = await runChild(w);
}
const headline = results[HEADLINE] as { podsPerSec: number; raw: { objectsPerSec: number } } | undefined;
const figures = {
  quick,
  rawPath: RAW_PATH,
  // The headline workload's pods/s against its raw path's (per workload: workloads[*].ratio).
  raw: headline ? { podsPerSec: headline.raw.objectsPerSec } : undefined,
  ratio: headline ? ratio(headline.podsPerSec, headline.raw.objectsPerSec) : undefined,
  headlineVsUpstreamFloor: headline ? ratio(headline.podsPerSec, UPSTREAM_FLOOR) : undefined,
  headlineVsGoal: headline ? ratio(headline.podsPerSec, GOAL) : undefined,
  workloads: results,
  totalSeconds: round((performance.now() - started) / 1000),
  loadavg: loadNow(),
};
if (only) {
  // A partial run (for profiling) is printed, not recorded.
  console.log(JSON.stringify(figures, null, 2));
} else {
  writeResult(
    'scheduler',
    {
      metric: `${HEADLINE} pods/s (upstream CI floor ${UPSTREAM_FLOOR}, goal ${GOAL})`,
      value: headline?.podsPerSec ?? 0,
      unit: 'pods/s',
    },
    figures,
  );
}
process.exit(0);
