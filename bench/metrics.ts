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
// server's CPU for it) with 1,000 Node objects and the pods stored.
// Not measured here yet: the kubelet's stats collection (no stats
// collection exists yet) and scraping 1,000 hollow kubelets.
//
// BENCH_QUICK=1 for a short run; BENCH_FROM_SOURCE=1 runs src/ (no build).

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { builtinRegistry } from '../src/api/resources/index.ts';
import { ApiServerMetrics } from '../src/apiserver/metrics.ts';
import { parseRequestInfo } from '../src/apiserver/request-info.ts';
import { parseExposition } from '../src/metrics/exposition.ts';
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

log(`load average at start: ${loadNow().join(' ')}`);
const perRequest = recordCostNs();
log(
  `per create: record() ${perRequest.recordNs} ns, the store call's observation ${perRequest.storeObserveNs} ns`,
);
const on = await startServer('on', []);
const off = await startServer('off', ['--disable-metrics']);
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
    },
  );
} finally {
  for (const s of [on, off]) {
    s.proc.kill('SIGTERM');
    await new Promise((r) => s.proc.once('exit', r));
    rmSync(s.dir, { recursive: true, force: true });
  }
}
