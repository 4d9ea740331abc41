// bench/api: a real `skiff server` on sqlite, over HTTPS with a client
// certificate, against the sqlite store alone in the same run.
//
// Figures: create, get and list latency (p50, p99) and throughput at 1, 10
// and 100 concurrent clients; LIST of 30,000 pods; 1,000 concurrent watchers
// each receiving one event; server RSS. Each API figure is printed beside
// the store's own figure as a ratio.
// Headline: create p99 (ms) at 100 concurrent clients (goal: <= 50 ms).
// customResources: a CRD's objects' creates/s and LIST latency against
// ConfigMaps of the same size, in the same run (bench/api/custom-resources.ts;
// goal >= 0.8x).
// rbac: creates/s and gets/s with RBAC at 1,000 RoleBindings as a fraction
// of AlwaysAllow's, in the same run (bench/api/rbac.ts; goal >= 0.9).
// The machine is often shared, so the JSON also records the load average at
// start and end and skiff's creates/s as a fraction of the store's, measured
// in the same run (the ratio moves far less with the load than either figure).
//
// The server's CPU time per create is recorded too: it is the figure to
// compare two versions by when the machine is busy.
//
// The server runs as the API server alone (--disable-scheduler,
// --disable-controller-manager, --disable-agent), as upstream benchmarks
// kube-apiserver: with the scheduler in the process every created pod is
// also tried, found unschedulable (there are no nodes) and written back
// with a FailedScheduling condition and an Event, three writes per create.
// BENCH_FULL_SERVER=1 keeps the scheduler and controllers in, for that figure.
//
// BENCH_FROM_SOURCE=1 runs the server from src/ (no build needed);
// BENCH_CPU_PROF=DIR runs it under `node --cpu-prof` and writes its profile
// into DIR when it exits (summarize it with bench/scheduler/profile-summary.ts).

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { createSqliteStore } from '../src/storage/sqlite/sqlite.ts';
import { freePort } from '../test/e2e/harness.ts';
import { customResourceCost } from './api/custom-resources.ts';
import { rbacCost } from './api/rbac.ts';
import { httpsCall, load, percentile, ratio, round, writeResult } from './lib.ts';

const quick = process.env.BENCH_QUICK === '1';
const N = quick ? 500 : 3000;
const LIST_PODS = quick ? 3000 : 30_000;
const WATCHERS = quick ? 200 : 1000;
const root = new URL('../', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'skiff-bench-api-'));
const log = (s: string) => console.log(s);

const pod = (name: string) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, labels: { app: 'bench', tier: 'web' } },
  spec: {
    containers: [
      {
        name: 'app',
        image: 'busybox',
        command: ['sleep', '3600'],
        env: [{ name: 'MODE', value: 'bench' }],
        resources: { requests: { cpu: '10m', memory: '16Mi' } },
      },
    ],
  },
});

const loadAverage = () => loadavg().map((l) => round(l));
const loadAtStart = loadAverage();
log(`load average at start: ${loadAtStart.join(' ')}`);

const cpuProfDir = process.env.BENCH_CPU_PROF;
const fromSource = process.env.BENCH_FROM_SOURCE === '1' || cpuProfDir !== undefined;
const [command, prefix] = fromSource
  ? [
      process.execPath,
      [...(cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${cpuProfDir}`] : []), join(root, 'src/cli/main.ts')],
    ]
  : [join(root, 'bin/skiff'), []];
const fullServer = process.env.BENCH_FULL_SERVER === '1';
const port = await freePort();
const server = spawn(
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
    ...(fullServer ? [] : ['--disable-scheduler', '--disable-controller-manager']),
  ],
  { stdio: ['ignore', 'ignore', 'pipe'] },
);
let serverLog = '';
server.stderr?.on('data', (d) => (serverLog += d));
const deadline = Date.now() + 30_000;
while (!serverLog.includes('apiserver listening')) {
  if (Date.now() > deadline || server.exitCode !== null)
    throw new Error(`server did not start:\n${serverLog}`);
  await new Promise((r) => setTimeout(r, 50));
}
const kubeconfig = parse(readFileSync(join(dir, 'kubeconfig.yaml'), 'utf8'));
const b64 = (s: string) => Buffer.from(s, 'base64');
const agent = new Agent({
  keepAlive: true,
  maxSockets: 2000,
  ca: b64(kubeconfig.clusters[0].cluster['certificate-authority-data']),
  cert: b64(kubeconfig.users[0].user['client-certificate-data']),
  key: b64(kubeconfig.users[0].user['client-key-data']),
});

const call = (method: string, path: string, body?: unknown) => httpsCall(port, agent, method, path, body);

const rssMB = () => {
  const status = readFileSync(`/proc/${server.pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return round(kb / 1024, 1);
};

// The server's CPU time (user + system, all threads) in ms. Per request it
// moves far less with other load on the machine than latency or throughput
// do, so it is what to compare between two versions on a busy machine.
const serverCpuMs = () => {
  const fields = readFileSync(`/proc/${server.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime, stime in USER_HZ (100)
};

const results: Record<string, unknown> = {};
try {
  const base = '/api/v1/namespaces/default/pods';
  // Without the controller manager nothing makes the namespace's default
  // ServiceAccount, and pods need it (ServiceAccount admission).
  if (!fullServer)
    await call('POST', '/api/v1/namespaces/default/serviceaccounts', { metadata: { name: 'default' } });
  // The store alone, same durability, same concurrency, same objects.
  const store = await createSqliteStore({ path: join(dir, 'baseline.db') });
  const storeFigures: Record<string, { createP99: number; createPerSec: number; getP99: number }> = {};
  for (const c of [1, 10, 100]) {
    const cr = await load(N, c, (i) =>
      store.create(`/registry/pods/default/s${c}-${i}`, JSON.stringify(pod(`s${c}-${i}`))),
    );
    const gt = await load(N, c, (i) => store.get(`/registry/pods/default/s${c}-${i}`));
    storeFigures[c] = {
      createP99: percentile(cr.latencies, 99),
      createPerSec: cr.opsPerSec,
      getP99: percentile(gt.latencies, 99),
    };
  }

  log(`server RSS at start: ${rssMB()} MB`);
  for (const c of [1, 10, 100]) {
    // Open the clients' connections first: real clients keep theirs, and
    // 100 TLS handshakes at once would otherwise dominate the tail.
    await load(c, c, () => call('GET', '/version'));
    const cpuBefore = serverCpuMs();
    const cr = await load(N, c, (i) => call('POST', base, pod(`c${c}-${i}`)));
    const cpuUsPerCreate = round(((serverCpuMs() - cpuBefore) * 1000) / N, 0);
    const gt = await load(N, c, (i) => call('GET', `${base}/c${c}-${i}`));
    const ls = await load(Math.max(50, N / 20), c, () =>
      call('GET', `${base}?labelSelector=app%3Dbench&limit=50`),
    );
    const s = storeFigures[c]!;
    const row = {
      createPerSec: cr.opsPerSec,
      createP50Ms: percentile(cr.latencies, 50),
      createP99Ms: percentile(cr.latencies, 99),
      serverCpuUsPerCreate: cpuUsPerCreate,
      getPerSec: gt.opsPerSec,
      getP50Ms: percentile(gt.latencies, 50),
      getP99Ms: percentile(gt.latencies, 99),
      list50PerSec: ls.opsPerSec,
      list50P50Ms: percentile(ls.latencies, 50),
      list50P99Ms: percentile(ls.latencies, 99),
      store: s,
      createP99VsStore: ratio(percentile(cr.latencies, 99), s.createP99),
      createRateVsStore: ratio(cr.opsPerSec, s.createPerSec),
    };
    results[`clients${c}`] = row;
    log(
      `${String(c).padStart(3)} clients: create ${row.createPerSec}/s p50 ${row.createP50Ms} p99 ${row.createP99Ms} ms (store p99 ${s.createP99} ms, ${row.createP99VsStore}x), server CPU ${cpuUsPerCreate} us/create | get ${row.getPerSec}/s p99 ${row.getP99Ms} ms | list(50) p99 ${row.list50P99Ms} ms`,
    );
  }

  // LIST of 30,000 pods.
  const existing = 3 * N;
  await load(LIST_PODS - existing, 100, (i) => call('POST', base, pod(`l-${i}`)));
  const listTimes: number[] = [];
  let bytes = 0;
  for (let r = 0; r < 3; r++) {
    const t = performance.now();
    const res = await call('GET', base);
    listTimes.push(performance.now() - t);
    bytes = res.text.length;
  }
  const count = (JSON.parse((await call('GET', base)).text) as { items: unknown[] }).items.length;
  for (let i = 0; i < LIST_PODS - existing; i++) {
    await store.create(`/registry/pods/default/l-${i}`, JSON.stringify(pod(`l-${i}`)));
  }
  const st = performance.now();
  const storeList = await store.list('/registry/pods/default/');
  const storeListMs = round(performance.now() - st);
  const listMs = round(Math.min(...listTimes));
  results.list = {
    pods: count,
    ms: listMs,
    bytes,
    storeMs: storeListMs,
    storeKeys: storeList.items.length,
    vsStore: ratio(listMs, storeListMs),
  };
  log(
    `LIST of ${count} pods: ${listMs} ms (${round(bytes / 1e6, 1)} MB); store list ${storeListMs} ms (${ratio(listMs, storeListMs)}x)`,
  );
  results.rssAfterListMB = rssMB();

  // WATCHERS concurrent watches, one event each.
  const watchRV = JSON.parse((await call('GET', `${base}?limit=1`)).text).metadata.resourceVersion as string;
  let received = 0;
  let allReceived: () => void = () => {};
  const done = new Promise<void>((r) => {
    allReceived = r;
  });
  const requests = Array.from({ length: WATCHERS }, () => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        agent,
        path: `${base}?watch=true&resourceVersion=${watchRV}&fieldSelector=metadata.name%3Dwatched`,
      },
      (res) => {
        res.on('data', () => {
          if (++received === WATCHERS) allReceived();
        });
      },
    );
    req.end();
    return req;
  });
  await new Promise((r) => setTimeout(r, quick ? 1000 : 3000));
  const t0 = performance.now();
  await call('POST', base, pod('watched'));
  await done;
  const fanoutMs = round(performance.now() - t0);
  results.watch = { watchers: WATCHERS, allReceivedMs: fanoutMs };
  log(`${WATCHERS} watchers all received one event ${fanoutMs} ms after the create was sent`);
  results.rssWithWatchersMB = rssMB();
  for (const r of requests) r.destroy();
  log(
    `server RSS: ${results.rssAfterListMB} MB after the list, ${results.rssWithWatchersMB} MB with ${WATCHERS} watchers`,
  );

  await store.close();
  // Custom resources against a built-in kind of the same size (issue 15).
  results.customResources = await customResourceCost(call, quick ? 300 : 1000, log);
  // What authorizing every request costs: RBAC against AlwaysAllow, as a user bound to a ConfigMap role.
  results.rbac = await rbacCost(command, prefix, quick ? 300 : 1500, log);
  const c100 = results.clients100 as { createP99Ms: number; createRateVsStore: number };
  const headline = c100.createP99Ms;
  results.createRateVsStoreAt100 = c100.createRateVsStore;
  results.loadAverage = { start: loadAtStart, end: loadAverage() };
  log(
    `skiff creates/s / store creates/s at 100 clients: ${c100.createRateVsStore}; load average ${loadAtStart.join(' ')} at start, ${(results.loadAverage as { end: number[] }).end.join(' ')} at end`,
  );
  results.parameters = {
    n: N,
    listPods: LIST_PODS,
    watchers: WATCHERS,
    quick,
    fromSource,
    server: fullServer ? 'API server, scheduler and controllers' : 'API server alone',
  };
  writeResult(
    'api',
    { metric: 'create p99 at 100 concurrent clients', value: headline, unit: 'ms' },
    results,
  );
} finally {
  const exited = new Promise((r) => server.once('exit', r));
  server.kill('SIGTERM');
  agent.destroy();
  // A profile is written as the server exits; wait for it (bounded).
  await Promise.race([exited, new Promise((r) => setTimeout(r, cpuProfDir ? 30_000 : 500))]);
  rmSync(dir, { recursive: true, force: true });
}
process.exit(0);
