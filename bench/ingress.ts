// bench/ingress: the ingress proxy on one real node (issue 16). `skiff
// server` with its agent (containerd, runc, CNI, the ingress HAProxy) as a
// child process on ports of its own; one small HTTP backend pod (the
// offline nginx image, its 150-byte welcome page, keep-alive as every real
// backend has; busybox httpd closes every connection, so a bench on it
// measured TCP setup and TIME_WAIT, not the proxy); wrk (Debian's, a C load generator: a Node one
// would be the bottleneck on 2 cores) on loopback.
//
//   1. Throughput: wrk with 16 connections for SECONDS, straight to the pod
//      IP and through the ingress (Host header, keep-alive to the proxy),
//      alternated (ABBA) ROUNDS times in the same run so a machine that gets
//      busier weighs on both; requests/s summed over the rounds.
//   2. Latency at moderate load: 2 connections, p50 and p99 of both; the
//      p99 the ingress adds is the difference.
//   3. Time from an Ingress change to served at 1,000 Ingresses (100
//      Services): a new Ingress (a new host) is created through the API, and
//      the clock runs until a request for its host gets the backend's page;
//      then the throughput again, with the 1,000 in the routing maps.
//
// Goals: ≥ 0.7× of direct throughput; ≤ 2 ms p99 added at moderate load;
// ≤ 1 s from change to served at 1,000 Ingresses.
// Headline: requests/s through the ingress as a ratio of straight to the pod.
//
// Needs root and what scripts/setup.sh installs. `npm run bench -- ingress`.

import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createWriteStream, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';
import { clientsFromKubeconfig } from '../src/agent/agent.ts';
import { unmountUnder } from '../src/agent/containerd.ts';
import type { Ingress } from '../src/api/types/networking-v1.ts';
import { percentile, ratio, round, writeResult } from './lib.ts';

const run = promisify(execFile);
const SECONDS = Number(process.env.BENCH_INGRESS_SECONDS ?? 3);
const ROUNDS = 6;
const LATENCY_ROUNDS = 4;
const INGRESSES = 1000;
const SERVICES = 100;
const CHANGES = 7;
const CLUSTER_CIDR = '10.198.0.0/16';
const SERVICE_CIDR = '10.199.0.0/16';
const NS = 'bench';

const root = new URL('../', import.meta.url).pathname;
const main = join(root, 'src/cli/main.ts');
const dataDir = await mkdtemp('/tmp/skiff-bench-ingress-');
const kubeconfig = join(dataDir, 'kubeconfig.yaml');

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });

const apiPort = await freePort();
const httpPort = await freePort();
const httpsPort = await freePort();

const kubectl = async (args: string[], input?: string): Promise<string> => {
  const child = execFile('/usr/bin/kubectl', args, {
    env: { PATH: process.env.PATH ?? '', HOME: dataDir, KUBECONFIG: kubeconfig },
    maxBuffer: 64 * 1024 * 1024,
    timeout: 300_000,
  });
  if (input !== undefined) child.stdin?.end(input);
  let out = '';
  let err = '';
  child.stdout?.on('data', (d) => (out += d));
  child.stderr?.on('data', (d) => (err += d));
  const code = await new Promise<number>((r) => child.once('exit', (c) => r(c ?? 1)));
  if (code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${err}`);
  return out;
};

let server: ChildProcess | undefined;
async function startServer(): Promise<void> {
  const child = spawn(
    process.execPath,
    [
      main,
      'server',
      '--data-dir',
      dataDir,
      '--https-listen-port',
      String(apiPort),
      '--bind-address',
      '127.0.0.1',
      '--cluster-cidr',
      CLUSTER_CIDR,
      '--service-cidr',
      SERVICE_CIDR,
      '--ingress-http-port',
      String(httpPort),
      '--ingress-https-port',
      String(httpsPort),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  server = child;
  const log = createWriteStream(join(dataDir, 'server.log'));
  let out = '';
  await new Promise<void>((resolve, reject) => {
    const onData = (d: Buffer) => {
      log.write(d);
      if (out.length < 1_000_000) out += d;
      if (out.includes('ingress controller started')) resolve();
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`skiff server exited (${code}):\n${out.slice(-4000)}`)));
    setTimeout(
      () => reject(new Error(`skiff server did not start in 120 s:\n${out.slice(-4000)}`)),
      120_000,
    ).unref();
  });
}

/** One GET to the ingress with a Host header: the status and body. */
const get = (host: string): Promise<{ status: number; body: string }> =>
  new Promise((resolve) => {
    const req = request(
      { host: '127.0.0.1', port: httpPort, path: '/', headers: { host }, agent: false, timeout: 5000 },
      (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve({ status: 0, body: '' }));
    req.end();
  });

// wrk's summary as one line: requests, seconds, errors, p50 and p99 in µs.
const WRK_SCRIPT = join(dataDir, 'report.lua');
writeFileSync(
  WRK_SCRIPT,
  `done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout
  io.write(string.format("RESULT %d %f %d %d %d\\n", summary.requests, summary.duration / 1e6, errors, latency:percentile(50), latency:percentile(99)))
end
`,
);

interface WrkResult {
  requests: number;
  seconds: number;
  errors: number;
  p50Ms: number;
  p99Ms: number;
}

async function wrk(url: string, connections: number, host?: string): Promise<WrkResult> {
  const args = ['-t', '1', '-c', String(connections), '-d', `${SECONDS}s`, '-s', WRK_SCRIPT, url];
  if (host) args.unshift('-H', `Host: ${host}`);
  const { stdout } = await run('wrk', args, { timeout: (SECONDS + 30) * 1000 });
  const m = /^RESULT (\d+) ([\d.]+) (\d+) (\d+) (\d+)$/m.exec(stdout);
  if (!m) throw new Error(`wrk printed no result:\n${stdout}`);
  return {
    requests: Number(m[1]),
    seconds: Number(m[2]),
    errors: Number(m[3]),
    p50Ms: Number(m[4]) / 1000,
    p99Ms: Number(m[5]) / 1000,
  };
}

const rps = (rs: WrkResult[]) =>
  Math.round(rs.reduce((a, r) => a + r.requests, 0) / rs.reduce((a, r) => a + r.seconds, 0));

try {
  await startServer();
  await kubectl(['create', 'namespace', NS]);
  const services = Array.from(
    { length: SERVICES },
    (_, i) => `apiVersion: v1
kind: Service
metadata: {name: svc-${i}, namespace: ${NS}}
spec:
  selector: {app: backend}
  ports: [{port: 80, targetPort: 80}]
`,
  );
  await kubectl(
    ['apply', '-f', '-'],
    [
      `apiVersion: v1
kind: Pod
metadata: {name: backend, namespace: ${NS}, labels: {app: backend}}
spec:
  containers:
  - name: nginx
    image: nginx
    imagePullPolicy: IfNotPresent
    ports: [{containerPort: 80}]
    readinessProbe: {httpGet: {path: /, port: 80}, periodSeconds: 1}
`,
      ...services,
    ].join('---\n'),
  );
  await kubectl(['wait', '-n', NS, '--for=condition=Ready', 'pod/backend', '--timeout=120s']);
  const podIP = (await kubectl(['get', 'pod', '-n', NS, 'backend', '-o', 'jsonpath={.status.podIP}'])).trim();

  const clients = clientsFromKubeconfig(kubeconfig);
  const ingress = (name: string, host: string, service: string): Ingress => ({
    apiVersion: 'networking.k8s.io/v1',
    kind: 'Ingress',
    metadata: { name, namespace: NS },
    spec: {
      rules: [
        {
          host,
          http: {
            paths: [
              {
                path: '/',
                pathType: 'Prefix',
                backend: { service: { name: service, port: { number: 80 } } },
              },
            ],
          },
        },
      ],
    },
  });
  await clients.ingresses.create(NS, ingress('bench', 'bench.test', 'svc-0'));
  const waitServed = async (host: string, timeoutMs = 60_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = await get(host);
      if (r.status === 200 && r.body.includes('Welcome to nginx!')) return;
      if (Date.now() > deadline) throw new Error(`${host} not served in ${timeoutMs} ms (last: ${r.status})`);
      await delay(2);
    }
  };
  await waitServed('bench.test');
  console.log(`backend pod ${podIP}; ingress on 127.0.0.1:${httpPort}`);

  // 1. Throughput, alternated.
  const direct: WrkResult[] = [];
  const through: WrkResult[] = [];
  // In ABBA order, so a drift in the machine's load weighs on both sides alike.
  const pair = async (connections: number, r: number) => {
    const d = () => wrk(`http://${podIP}/`, connections);
    const i = () => wrk(`http://127.0.0.1:${httpPort}/`, connections, 'bench.test');
    if (r % 2 === 0) return { d: await d(), i: await i() };
    const ingressFirst = await i();
    return { d: await d(), i: ingressFirst };
  };
  for (let r = 0; r < ROUNDS; r++) {
    const p = await pair(16, r);
    direct.push(p.d);
    through.push(p.i);
    console.log(
      `round ${r + 1}: direct ${round(direct[r]!.requests / direct[r]!.seconds, 0)} req/s, ingress ${round(through[r]!.requests / through[r]!.seconds, 0)} req/s`,
    );
  }
  // 2. Latency at moderate load, alternated too; the medians of the runs' p50 and p99.
  const directLow: WrkResult[] = [];
  const throughLow: WrkResult[] = [];
  for (let r = 0; r < LATENCY_ROUNDS; r++) {
    const p = await pair(2, r);
    directLow.push(p.d);
    throughLow.push(p.i);
  }
  const med = (rs: WrkResult[], f: (r: WrkResult) => number) => round(percentile(rs.map(f), 50), 3);

  // 3. Change to served at 1,000 Ingresses.
  const t0 = performance.now();
  for (let i = 0; i < INGRESSES; i += 50)
    await Promise.all(
      Array.from({ length: Math.min(50, INGRESSES - i) }, (_, j) =>
        clients.ingresses.create(
          NS,
          ingress(`ing-${i + j}`, `h${i + j}.bench.test`, `svc-${(i + j) % SERVICES}`),
        ),
      ),
    );
  await waitServed(`h${INGRESSES - 1}.bench.test`, 120_000);
  const bulkSeconds = round((performance.now() - t0) / 1000, 2);
  const changeMs: number[] = [];
  for (let i = 0; i < CHANGES; i++) {
    const t = performance.now();
    await clients.ingresses.create(NS, ingress(`probe-${i}`, `probe-${i}.bench.test`, `svc-${i}`));
    await waitServed(`probe-${i}.bench.test`);
    changeMs.push(round(performance.now() - t, 1));
    await delay(300);
  }
  // Throughput again with 1,008 Ingresses in the maps: routing costs the key's length, not the map's size.
  const at1000 = [await pair(16, 0), await pair(16, 1)];
  clients.close();
  const errors = [
    ...direct,
    ...through,
    ...directLow,
    ...throughLow,
    ...at1000.flatMap((p) => [p.d, p.i]),
  ].reduce((a, r) => a + r.errors, 0);

  const headline = ratio(rps(through), rps(direct));
  const result = {
    backend: 'one nginx pod (the offline image: Debian nginx 1.22, its welcome page, keep-alive)',
    loadGenerator: `wrk 1 thread, ${SECONDS} s per run, on loopback; the ingress is HAProxy 2.6 (master-worker, 2 threads)`,
    throughput: {
      connections: 16,
      rounds: ROUNDS,
      directRequestsPerSec: rps(direct),
      ingressRequestsPerSec: rps(through),
      ratio: headline,
      roundRatios: direct.map((d, i) =>
        ratio(through[i]!.requests / through[i]!.seconds, d.requests / d.seconds),
      ),
      goal: '>= 0.7',
    },
    latencyModerateLoad: {
      connections: 2,
      rounds: LATENCY_ROUNDS,
      directMs: { p50: med(directLow, (r) => r.p50Ms), p99: med(directLow, (r) => r.p99Ms) },
      ingressMs: { p50: med(throughLow, (r) => r.p50Ms), p99: med(throughLow, (r) => r.p99Ms) },
      p99AddedMs: round(med(throughLow, (r) => r.p99Ms) - med(directLow, (r) => r.p99Ms), 3),
      goal: 'p99 added <= 2 ms',
    },
    changeToServed: {
      ingresses: INGRESSES + 1,
      services: SERVICES,
      bulkCreateToLastServedSeconds: bulkSeconds,
      newIngressMs: { p50: percentile(changeMs, 50), max: Math.max(...changeMs), runs: changeMs },
      goal: '<= 1000 ms',
    },
    throughputAt1000Ingresses: {
      directRequestsPerSec: rps(at1000.map((p) => p.d)),
      ingressRequestsPerSec: rps(at1000.map((p) => p.i)),
      ratio: ratio(rps(at1000.map((p) => p.i)), rps(at1000.map((p) => p.d))),
    },
    wrkErrors: errors,
  };
  console.log(JSON.stringify(result, null, 2));
  writeResult(
    'ingress',
    { metric: 'ingress requests/s as a ratio of straight to the pod', value: headline, unit: 'x' },
    result,
  );
} finally {
  // The pod first: the agent leaves containers running when it stops (by design).
  await kubectl(['delete', 'pod', '-n', NS, 'backend', '--grace-period=1', '--wait=true']).catch(() => '');
  if (server && server.exitCode === null) {
    const exited = new Promise((r) => server!.once('exit', r));
    server.kill('SIGTERM');
    const timer = setTimeout(() => server?.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(timer);
  }
  await run(process.execPath, [
    main,
    'agent',
    '--cleanup',
    '--data-dir',
    dataDir,
    '--cluster-cidr',
    CLUSTER_CIDR,
    '--service-cidr',
    SERVICE_CIDR,
  ]).catch((e) => console.error(`cleanup: ${e}`));
  await unmountUnder(dataDir).catch(() => undefined);
  await rm(dataDir, { recursive: true, force: true });
}
