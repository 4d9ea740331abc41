// bench/metrics: what Prometheus metrics cost the API server.
//
// Two `skiff server`s from the same code run side by side, one with its
// metrics (the default) and one with --disable-metrics, each the API server
// alone on sqlite (no scheduler, controllers or agent, as bench/api.ts).
// Rounds of pod creates over HTTPS at 32 concurrent clients go to each in
// turn (the order alternating per round), so the machine's load falls on
// both alike; each server's creates/s and CPU per create is the median of
// its rounds, after one uncounted warm-up round each; the ratios are the
// median of the rounds' own ratios (a round's two runs are adjacent in
// time, so the machine's drifting load mostly cancels).
// Headline: creates/s with metrics on as a fraction of off (goal >= 0.97).
//
// Also: one scrape of the API server's /metrics (its time, size, and the
// server's CPU for it) with 1,000 Node objects and the pods stored; the
// kubelet's stats collection (/stats/summary and /metrics/resource) at 110
// pods on one node, on the hollow runtime (the cost of Skiff's code, not of
// containerd's answers); and metrics-server scraping 1,000 hollow kubelets
// (real HTTPS servers in this process), with its own parse-and-store CPU
// measured apart from the kubelets' serving.
//
// BENCH_QUICK=1 for a short run; BENCH_FROM_SOURCE=1 runs src/ (no build).

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { builtinRegistry } from '../src/api/resources/index.ts';
import { createInProcessTransport } from '../src/apiserver/in-process.ts';
import { ApiServerMetrics } from '../src/apiserver/metrics.ts';
import { parseRequestInfo } from '../src/apiserver/request-info.ts';
import { startTestServer } from '../src/apiserver/testing.ts';
import { createClientset } from '../src/client/clientset.ts';
import { KUBERNETES_CONTAINER_NAME_LABEL, KUBERNETES_POD_UID_LABEL } from '../src/kubelet/labels.ts';
import { HollowRuntime } from '../src/kubelet/runtime/hollow/hollow.ts';
import { type KubeletServer, startKubeletServer } from '../src/kubelet/server/server.ts';
import { parseExposition } from '../src/metrics/exposition.ts';
import { MetricsStorage, parseResourceMetrics, startMetricsServer } from '../src/metrics/metrics-server.ts';
import { createStatsProvider, hollowNodeStats } from '../src/metrics/summary.ts';
import { ensureCA, ensureLeaf } from '../src/pki/pki.ts';
import { createLog } from '../src/util/log.ts';
import { freePort } from '../test/e2e/harness.ts';
import { httpsCall, load, loadNow, percentile, round, writeResult } from './lib.ts';

const quick = process.env.BENCH_QUICK === '1';
const ROUNDS = quick ? 4 : 16;
const PER_ROUND = quick ? 500 : 1000;
const CLIENTS = 32;
const NODES = 1000;
const root = new URL('../', import.meta.url).pathname;
const log = (s: string) => console.log(s);

const pod = (name: string) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, labels: { app: 'bench' } },
  spec: { containers: [{ name: 'app', image: 'busybox', command: ['sleep', '3600'] }] },
});

interface BenchServer {
  name: string;
  proc: ChildProcess;
  dir: string;
  call(method: string, path: string, body?: unknown): Promise<{ status: number; text: string }>;
  cpuMs(): number;
}

async function startServer(name: string, extraArgs: string[]): Promise<BenchServer> {
  const dir = mkdtempSync(join(tmpdir(), `skiff-bench-metrics-${name}-`));
  const port = await freePort();
  const [command, prefix] =
    process.env.BENCH_FROM_SOURCE === '1'
      ? [process.execPath, [join(root, 'src/cli/main.ts')]]
      : [join(root, 'bin/skiff'), []];
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
      ...extraArgs,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let output = '';
  proc.stderr?.on('data', (d) => (output += d));
  const deadline = Date.now() + 30_000;
  while (!output.includes('apiserver listening')) {
    if (Date.now() > deadline || proc.exitCode !== null) throw new Error(`${name} did not start:\n${output}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const kubeconfig = parse(readFileSync(join(dir, 'kubeconfig.yaml'), 'utf8'));
  const b64 = (s: string) => Buffer.from(s, 'base64');
  const agent = new Agent({
    keepAlive: true,
    maxSockets: 200,
    ca: b64(kubeconfig.clusters[0].cluster['certificate-authority-data']),
    cert: b64(kubeconfig.users[0].user['client-certificate-data']),
    key: b64(kubeconfig.users[0].user['client-key-data']),
  });
  const call = (method: string, path: string, body?: unknown) => httpsCall(port, agent, method, path, body);
  // Nothing makes the default ServiceAccount without the controllers; pods need it.
  await call('POST', '/api/v1/namespaces/default/serviceaccounts', { metadata: { name: 'default' } });
  // Open the clients' connections first, as api.ts does.
  await load(CLIENTS, CLIENTS, () => call('GET', '/version'));
  const cpuMs = () => {
    const fields = readFileSync(`/proc/${proc.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  };
  return { name, proc, dir, call, cpuMs };
}

const median = (xs: number[]) => percentile(xs, 50);

/**
 * What the metrics add to one create, measured alone in this process: the
 * request's record() and the store call's observation, in ns. Far steadier
 * than the two servers' rates on a shared machine.
 */
function recordCostNs(): { recordNs: number; storeObserveNs: number } {
  const metrics = new ApiServerMetrics(builtinRegistry(), async () => new Map());
  const info = parseRequestInfo('POST', '/api/v1/namespaces/default/pods', new URLSearchParams());
  const request = { dryRun: null, contentType: 'application/json' };
  const n = 1_000_000;
  const time = (fn: () => void) => {
    for (let i = 0; i < 10_000; i++) fn();
    const t = performance.now();
    for (let i = 0; i < n; i++) fn();
    return round(((performance.now() - t) * 1e6) / n, 0);
  };
  return {
    recordNs: time(() => metrics.record(info, request, 201, 0.003)),
    storeObserveNs: time(() => metrics.storeObserver('create', '/registry/pods/default/p', 0.001)),
  };
}

/** A hollow node's runtime with `pods` running pods of one container each, labelled as the kubelet labels them. */
async function hollowNode(pods: number, node: string): Promise<HollowRuntime> {
  const runtime = new HollowRuntime();
  for (let i = 0; i < pods; i++) {
    const metadata = { name: `pod-${i}`, namespace: 'bench', uid: `${node}-uid-${i}`, attempt: 0 };
    const labels = {
      'io.kubernetes.pod.name': metadata.name,
      'io.kubernetes.pod.namespace': 'bench',
      [KUBERNETES_POD_UID_LABEL]: metadata.uid,
    };
    const sandbox = await runtime.runPodSandbox({ metadata, labels });
    const id = await runtime.createContainer(sandbox, {
      metadata: { name: 'app', attempt: 0 },
      image: { image: 'busybox' },
      labels: { ...labels, [KUBERNETES_CONTAINER_NAME_LABEL]: 'app' },
    });
    await runtime.startContainer(id);
  }
  return runtime;
}

const cpuNowMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

/** The kubelet's CPU per stats collection at 110 pods (upstream's default max pods per node). */
async function statsCollectionCost() {
  const runtime = await hollowNode(110, 'stats');
  const stats = createStatsProvider({ runtime, nodeName: 'stats', node: hollowNodeStats() });
  const n = quick ? 100 : 500;
  const measure = async (fn: () => Promise<unknown>) => {
    for (let i = 0; i < 20; i++) await fn();
    const before = cpuNowMs();
    for (let i = 0; i < n; i++) await fn();
    return round((cpuNowMs() - before) / n, 3);
  };
  const summaryMs = await measure(() => stats.summary());
  const resourceMs = await measure(() => stats.resourceMetrics());
  // metrics-server asks once per resolution (15 s): the share of one core that costs.
  return {
    pods: 110,
    summaryCpuMs: summaryMs,
    resourceMetricsCpuMs: resourceMs,
    coreShareAt15s: round(resourceMs / 15_000, 6),
  };
}

/** metrics-server scraping 1,000 hollow kubelets of 10 pods each. */
async function scrapeCost() {
  const NODE_COUNT = quick ? 200 : 1000;
  const dir = mkdtempSync(join(tmpdir(), 'skiff-bench-scrape-'));
  const server = await startTestServer();
  const quiet = createLog({}, () => {});
  const ca = ensureCA(dir);
  const serving = ensureLeaf(ca, dir, 'kubelet', {
    commonName: 'kubelet',
    usage: 'server',
    ips: ['127.0.0.1'],
  });
  const client = ensureLeaf(ca, dir, 'metrics-server', {
    commonName: 'system:metrics-server',
    usage: 'client',
  });
  const admin = createClientset(
    createInProcessTransport(server.api, { name: 'bench', groups: ['system:masters'] }),
  );
  const kubelets: KubeletServer[] = [];
  try {
    for (let i = 0; i < NODE_COUNT; i++) {
      const runtime = await hollowNode(10, `n${i}`);
      const kubelet = await startKubeletServer({
        runtime,
        getPod: () => undefined,
        tls: { cert: serving.cert, key: serving.key, clientCA: ca.cert },
        authorizedUsers: ['system:metrics-server'],
        address: '127.0.0.1',
        port: 0,
        log: quiet,
        stats: createStatsProvider({ runtime, nodeName: `n${i}`, node: hollowNodeStats() }),
      });
      kubelets.push(kubelet);
      const node = await admin.nodes.create(undefined, { metadata: { name: `n${i}` } });
      await admin.nodes.updateStatus({
        ...node,
        status: {
          addresses: [{ type: 'InternalIP', address: '127.0.0.1' }],
          daemonEndpoints: { kubeletEndpoint: { Port: kubelet.port } },
        },
      });
    }
    const storage = new MetricsStorage();
    // A resolution longer than the run: the rounds below are the only scrapes.
    const ms = await startMetricsServer({
      clients: admin,
      tls: { cert: client.cert, key: client.key },
      storage,
      resolutionMs: 3_600_000,
      log: quiet,
    });
    try {
      const rounds: { wallMs: number; cpuMs: number }[] = [];
      for (let r = 0; r < (quick ? 3 : 6); r++) {
        const before = cpuNowMs();
        const t = performance.now();
        await ms.scrape();
        rounds.push({ wallMs: round(performance.now() - t, 1), cpuMs: round(cpuNowMs() - before, 1) });
      }
      // Every pod counts as existing (none were created in the API): the answer's cost at full size.
      const everything = { node: () => ({}), pod: () => ({}) };
      const answer = performance.now();
      const podMetrics = storage.podMetrics(everything).length;
      const nodeMetrics = storage.nodeMetrics(everything).length;
      const listAllMs = round(performance.now() - answer, 1);
      // metrics-server's own share: parsing and storing every node's answer, without the serving.
      const texts = await Promise.all(kubelets.map((_, i) => statsText(i)));
      const replay = new MetricsStorage();
      const before = cpuNowMs();
      for (let i = 0; i < texts.length; i++)
        replay.store(`n${i}`, parseResourceMetrics(texts[i]!, Date.now()));
      const parseStoreMs = round(cpuNowMs() - before, 1);
      return {
        nodes: NODE_COUNT,
        podsPerNode: 10,
        roundWallMs: median(rounds.map((r) => r.wallMs)),
        roundCpuMsWithKubelets: median(rounds.map((r) => r.cpuMs)),
        parseAndStoreCpuMs: parseStoreMs,
        listAllPodMetricsMs: listAllMs,
        podMetrics,
        nodeMetrics,
        rounds,
      };

      async function statsText(i: number): Promise<string> {
        return createStatsProvider({
          runtime: await hollowNode(10, `t${i}`),
          nodeName: `n${i}`,
          node: hollowNodeStats(),
        }).resourceMetrics();
      }
    } finally {
      await ms.stop();
    }
  } finally {
    for (const k of kubelets) await k.close();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

log(`load average at start: ${loadNow().join(' ')}`);
const stats = await statsCollectionCost();
log(
  `kubelet stats at ${stats.pods} pods: /stats/summary ${stats.summaryCpuMs} ms CPU, /metrics/resource ${stats.resourceMetricsCpuMs} ms CPU (${round(stats.coreShareAt15s * 100, 4)}% of a core at one scrape per 15 s)`,
);
const scraping = await scrapeCost();
log(
  `metrics-server, ${scraping.nodes} hollow kubelets: a round ${scraping.roundWallMs} ms, ${scraping.roundCpuMsWithKubelets} ms CPU with the kubelets' serving; its own parse and store ${scraping.parseAndStoreCpuMs} ms; all PodMetrics (${scraping.podMetrics}) in ${scraping.listAllPodMetricsMs} ms`,
);
const perRequest = recordCostNs();
log(
  `per create: record() ${perRequest.recordNs} ns, the store call's observation ${perRequest.storeObserveNs} ns`,
);
const on = await startServer('on', []);
const off = await startServer('off', ['--disable-metrics', '--disable-metrics-server']);
try {
  // A first round for each, uncounted: the JIT warms up on it.
  for (const s of [on, off])
    await load(PER_ROUND, CLIENTS, (i) =>
      s.call('POST', '/api/v1/namespaces/default/pods', pod(`warm-${i}`)),
    );
  const rates: Record<string, number[]> = { on: [], off: [] };
  const cpu: Record<string, number[]> = { on: [], off: [] };
  for (let r = 0; r < ROUNDS; r++) {
    for (const s of r % 2 === 0 ? [on, off] : [off, on]) {
      const before = s.cpuMs();
      const result = await load(PER_ROUND, CLIENTS, (i) =>
        s.call('POST', '/api/v1/namespaces/default/pods', pod(`r${r}-${i}`)),
      );
      rates[s.name]!.push(result.opsPerSec);
      cpu[s.name]!.push(round(((s.cpuMs() - before) * 1000) / PER_ROUND, 0));
    }
    log(
      `round ${r + 1}/${ROUNDS}: metrics on ${rates.on!.at(-1)}/s (${cpu.on!.at(-1)} us CPU/create), off ${rates.off!.at(-1)}/s (${cpu.off!.at(-1)} us)`,
    );
  }
  const throughput = {
    on: { createsPerSec: median(rates.on!), cpuUsPerCreate: median(cpu.on!), rounds: rates.on },
    off: { createsPerSec: median(rates.off!), cpuUsPerCreate: median(cpu.off!), rounds: rates.off },
  };
  // Each round's two runs are next to each other in time, so their ratio
  // cancels most of the machine's drifting load; the median of the rounds'
  // ratios is the headline.
  const paired = (xs: number[], ys: number[]) => {
    const r = xs.map((x, i) => x / ys[i]!).sort((a, b) => a - b);
    return (r[(r.length - 1) >> 1]! + r[r.length >> 1]!) / 2;
  };
  const rateRatio = round(paired(rates.on!, rates.off!), 3);
  const cpuRatio = round(paired(cpu.on!, cpu.off!), 3);
  log(
    `creates/s with metrics on vs off: ${rateRatio}x; CPU per create ${throughput.on.cpuUsPerCreate} vs ${throughput.off.cpuUsPerCreate} us (${cpuRatio}x)`,
  );

  // One scrape, with 1,000 nodes stored beside the pods.
  await load(NODES, CLIENTS, (i) =>
    on.call('POST', '/api/v1/nodes', {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: `bench-node-${i}` },
    }),
  );
  const scrapes: number[] = [];
  const scrapeCpu: number[] = [];
  let text = '';
  for (let i = 0; i < 10; i++) {
    const before = on.cpuMs();
    const t = performance.now();
    text = (await on.call('GET', '/metrics')).text;
    scrapes.push(performance.now() - t);
    scrapeCpu.push(on.cpuMs() - before);
  }
  const samples = parseExposition(text);
  const scrape = {
    ms: median(scrapes),
    serverCpuMs: median(scrapeCpu),
    bytes: text.length,
    series: samples.length,
    nodesStored: samples.find((s) => s.name === 'apiserver_storage_objects' && s.labels.resource === 'nodes')
      ?.value,
  };
  log(
    `/metrics scrape: ${scrape.ms} ms, ${scrape.serverCpuMs} ms server CPU, ${scrape.bytes} bytes, ${scrape.series} samples`,
  );
  writeResult(
    'metrics',
    { metric: 'API server creates/s with metrics on / off', value: rateRatio, unit: 'x (goal >= 0.97)' },
    {
      throughput,
      cpuPerCreateRatio: cpuRatio,
      perRequest,
      clients: CLIENTS,
      createsPerRound: PER_ROUND,
      scrape,
      kubeletStats: stats,
      metricsServerScrape: scraping,
    },
  );
} finally {
  for (const s of [on, off]) {
    s.proc.kill('SIGTERM');
    await new Promise((r) => s.proc.once('exit', r));
    rmSync(s.dir, { recursive: true, force: true });
  }
}
