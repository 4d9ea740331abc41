// Probes and lifecycle hooks: the probe actions against real local servers
// (HTTP, HTTPS, TCP, gRPC), then the kubelet on the hollow runtime with a
// real API server, where readiness, liveness and startup probes and the
// postStart/preStop hooks act on pods. httpGet probes name 127.0.0.1 as
// their host (hollow pod IPs lead nowhere) and reach a server the test
// controls; exec probes follow the hollow runtime's command rules (`true`
// succeeds, `false` and `exit N` fail). Probe periods run on the fake clock.

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { createServer as createNetServer } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import type { Container, Pod } from '../../api/types/core-v1.ts';
import { ensureCA, ensureLeaf } from '../../pki/pki.ts';
import { type KubeletTest, startKubeletTest } from '../testing.ts';
import { grpcProbe } from './grpc.ts';
import { httpProbe, KUBE_PROBE_USER_AGENT, probeHeaders, probeURL } from './http.ts';
import { resolvePort } from './prober.ts';
import { tcpProbe } from './tcp.ts';

/** A server whose answer the test sets; it keeps what it was asked. */
interface TestHTTPServer {
  port: number;
  status: number;
  body: string;
  requests: Array<{ url: string; headers: http.IncomingHttpHeaders }>;
  close(): Promise<void>;
}

async function listen(server: http.Server | https.Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

async function testHTTPServer(handler?: http.RequestListener): Promise<TestHTTPServer> {
  const s: TestHTTPServer = {
    port: 0,
    status: 500,
    body: 'not yet',
    requests: [],
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
  const server = http.createServer((req, res) => {
    s.requests.push({ url: req.url ?? '', headers: req.headers });
    if (handler) return handler(req, res);
    res.writeHead(s.status);
    res.end(s.body);
  });
  server.keepAliveTimeout = 1;
  s.port = await listen(server);
  return s;
}

describe('probe actions', () => {
  it('httpGet: 2xx and 3xx are healthy, others fail with the status code; headers as upstream', async () => {
    const s = await testHTTPServer((req, res) => {
      if (req.url === '/moved') {
        res.writeHead(302, { location: '/healthz' });
        res.end();
      } else if (req.url === '/elsewhere') {
        res.writeHead(301, { location: 'http://example.invalid/' });
        res.end('gone');
      } else if (req.url === '/healthz?verbose=1') {
        res.writeHead(200);
        res.end('ok');
      } else {
        res.writeHead(503);
        res.end('down');
      }
    });
    try {
      const action = {
        path: '/healthz?verbose=1',
        port: s.port,
        httpHeaders: [{ name: 'X-Probe', value: 'yes' }],
      };
      const ok = await httpProbe(probeURL(action, '127.0.0.1', s.port), probeHeaders(action), 1000);
      assert.deepEqual(ok, { result: 'Success', output: 'ok' });
      const sent = s.requests[0]?.headers ?? {};
      assert.equal(sent['user-agent'], KUBE_PROBE_USER_AGENT);
      assert.equal(sent.accept, '*/*');
      assert.equal(sent['x-probe'], 'yes');

      const down = await httpProbe(probeURL({ path: '/' }, '127.0.0.1', s.port), probeHeaders({}), 1000);
      assert.deepEqual(down, { result: 'Failure', output: 'HTTP probe failed with statuscode: 503' });

      // A redirect on the same host is followed; to another host, it ends as a warning (healthy).
      const moved = await httpProbe(
        probeURL({ path: '/moved' }, '127.0.0.1', s.port),
        probeHeaders({}),
        1000,
      );
      assert.equal(moved.result, 'Failure', 'followed to /healthz, which answers 503');
      assert.equal(s.requests.at(-1)?.url, '/healthz');
      const elsewhere = await httpProbe(
        probeURL({ path: '/elsewhere' }, '127.0.0.1', s.port),
        probeHeaders({}),
        1000,
      );
      assert.deepEqual(elsewhere, {
        result: 'Warning',
        output: 'Probe terminated redirects, Response body: gone',
      });

      // A Host header sets the request's host; User-Agent can be replaced.
      const custom = {
        httpHeaders: [
          { name: 'Host', value: 'app.example' },
          { name: 'User-Agent', value: 'mine' },
        ],
      };
      await httpProbe(probeURL({}, '127.0.0.1', s.port), probeHeaders(custom), 1000);
      assert.equal(s.requests.at(-1)?.headers.host, 'app.example');
      assert.equal(s.requests.at(-1)?.headers['user-agent'], 'mine');
    } finally {
      await s.close();
    }
  });

  it('httpGet: HTTPS without verifying the certificate; refused connections and timeouts fail', async () => {
    const dir = await mkdtemp('/tmp/skiff-probe-tls-');
    const ca = ensureCA(dir, 'probe-test-ca');
    const leaf = ensureLeaf(ca, dir, 'pod', { commonName: 'pod', ips: ['10.0.0.1'], usage: 'server' });
    const server = https.createServer({ cert: leaf.cert, key: leaf.key }, (_req, res) => {
      res.writeHead(200);
      res.end('secure');
    });
    const port = await listen(server);
    const hang = http.createServer(() => {});
    const hangPort = await listen(hang);
    try {
      const secure = await httpProbe(
        probeURL({ scheme: 'HTTPS', path: '/' }, '127.0.0.1', port),
        probeHeaders({}),
        2000,
      );
      assert.deepEqual(secure, { result: 'Success', output: 'secure' });

      const closed = await freePort();
      const refused = await httpProbe(probeURL({}, '127.0.0.1', closed), probeHeaders({}), 1000);
      assert.equal(refused.result, 'Failure');
      assert.equal(
        refused.output,
        `Get "http://127.0.0.1:${closed}/": dial tcp 127.0.0.1:${closed}: connect: connection refused`,
      );

      const slow = await httpProbe(probeURL({}, '127.0.0.1', hangPort), probeHeaders({}), 300);
      assert.equal(slow.result, 'Failure');
      assert.match(slow.output, /context deadline exceeded/);
    } finally {
      hang.closeAllConnections();
      await new Promise((r) => hang.close(r));
      await new Promise((r) => server.close(r));
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('tcpSocket: an open port is healthy, a closed one is refused', async () => {
    const server = createNetServer((sock) => sock.end());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    try {
      assert.deepEqual(await tcpProbe('127.0.0.1', port, 1000), { result: 'Success', output: '' });
      const closed = await freePort();
      assert.deepEqual(await tcpProbe('127.0.0.1', closed, 1000), {
        result: 'Failure',
        output: `dial tcp 127.0.0.1:${closed}: connect: connection refused`,
      });
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  it('grpc: the health service answering SERVING is healthy, NOT_SERVING is not', async () => {
    // grpc.health.v1.Health/Check with hand-encoded messages: status = field 1 (varint).
    const statusOf: Record<string, number> = { '': 1, db: 2 };
    const server = new grpc.Server();
    server.addService(
      {
        Check: {
          path: '/grpc.health.v1.Health/Check',
          requestStream: false,
          responseStream: false,
          requestSerialize: (b: Buffer) => b,
          requestDeserialize: (b: Buffer) => ({ service: b.subarray(2).toString('utf8') }),
          responseSerialize: (status: number) => Buffer.from([0x08, status]),
          responseDeserialize: (b: Buffer) => b,
        },
      },
      {
        Check: (call: grpc.ServerUnaryCall<{ service: string }, number>, cb: grpc.sendUnaryData<number>) =>
          cb(null, statusOf[call.request.service] ?? 3),
      },
    );
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) =>
        err ? reject(err) : resolve(p),
      ),
    );
    try {
      assert.deepEqual(await grpcProbe('127.0.0.1', port, '', 2000), { result: 'Success', output: '' });
      assert.deepEqual(await grpcProbe('127.0.0.1', port, 'db', 2000), {
        result: 'Failure',
        output: 'service unhealthy (responded with "NOT_SERVING")',
      });
      const down = await grpcProbe('127.0.0.1', await freePort(), '', 300);
      assert.equal(down.result, 'Failure');
      assert.match(down.output, /^timeout: failed to connect service "127\.0\.0\.1:\d+" within 0\.3s/);
    } finally {
      server.forceShutdown();
    }
  });

  it('resolves named ports from the container', () => {
    const c: Container = { name: 'web', ports: [{ name: 'http', containerPort: 8080 }] };
    assert.equal(resolvePort('http', c), 8080);
    assert.equal(resolvePort(9090, c), 9090);
    assert.throws(() => resolvePort('metrics', c), /couldn't find port: metrics/);
  });
});

async function freePort(): Promise<number> {
  const s = createNetServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

describe('kubelet: probes and lifecycle hooks', () => {
  let t: KubeletTest;
  let dataDir: string;
  before(async () => {
    dataDir = await mkdtemp('/tmp/skiff-prober-');
    t = await startKubeletTest({ probes: true, dataDir });
  });
  after(async () => {
    await t.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  const cond = (pod: Pod | undefined, type: string) => pod?.status?.conditions?.find((c) => c.type === type);
  const events = async (name: string) =>
    (await t.clients.events.list('default', { fieldSelector: `involvedObject.name=${name}` })).items;

  /** Moves the fake clock a second at a time until check passes (probes and syncs run in between). */
  async function advanceUntil<T>(
    what: string,
    check: () => Promise<T>,
    maxSeconds = 300,
  ): Promise<NonNullable<T>> {
    for (let s = 0; ; s++) {
      const v = await check().catch(() => undefined);
      if (v) return v as NonNullable<T>;
      if (s >= maxSeconds) assert.fail(`timed out waiting for ${what} (${maxSeconds} s of fake time)`);
      t.clock.advance(1000);
      await delay(20);
    }
  }
  const podWhere = (name: string, ok: (p: Pod) => boolean) => async () => {
    const p = await t.getPod(name);
    return p && ok(p) ? p : undefined;
  };
  const ready = (p: Pod) => cond(p, 'Ready')?.status === 'True';

  it('readiness: a pod is Ready only while its readiness probe passes, per the thresholds', async () => {
    const s = await testHTTPServer();
    try {
      await t.pod('ready-http', {
        containers: [
          {
            name: 'app',
            image: 'busybox',
            readinessProbe: {
              httpGet: { host: '127.0.0.1', port: s.port, path: '/ready' },
              periodSeconds: 5,
              successThreshold: 2,
              failureThreshold: 2,
            },
          },
        ],
      });
      const unready = await t.until(
        'the container running, not ready',
        podWhere('ready-http', (p) => !!p.status?.containerStatuses?.[0]?.state?.running),
      );
      assert.equal(unready.status?.containerStatuses?.[0]?.ready, false);
      assert.equal(unready.status?.containerStatuses?.[0]?.started, true);
      assert.equal(unready.status?.phase, 'Running');
      assert.equal(cond(unready, 'ContainersReady')?.status, 'False');
      assert.equal(cond(unready, 'ContainersReady')?.message, 'containers with unready status: [app]');
      assert.equal(cond(unready, 'Ready')?.reason, 'ContainersNotReady');
      await advanceUntil('an Unhealthy event', async () =>
        (await events('ready-http')).find(
          (e) =>
            e.reason === 'Unhealthy' &&
            e.message === 'Readiness probe failed: HTTP probe failed with statuscode: 500',
        ),
      );

      s.status = 200;
      const before = s.requests.length;
      const readyPod = await advanceUntil('Ready', podWhere('ready-http', ready));
      // successThreshold 2: two passing probes, a period apart.
      assert.ok(s.requests.length - before >= 2, `${s.requests.length - before} probes`);
      assert.equal(readyPod.status?.containerStatuses?.[0]?.ready, true);
      assert.equal(cond(readyPod, 'ContainersReady')?.status, 'True');
      assert.equal(s.requests.at(-1)?.headers['user-agent'], KUBE_PROBE_USER_AGENT);

      // One failure is not enough (failureThreshold 2); the second one is.
      s.status = 500;
      const atFailure = s.requests.length;
      await advanceUntil('one failed probe', async () => s.requests.length > atFailure);
      assert.ok(ready((await t.getPod('ready-http'))!), 'still Ready after a single failure');
      const notReady = await advanceUntil(
        'not Ready',
        podWhere('ready-http', (p) => !ready(p)),
      );
      assert.ok(s.requests.length - atFailure >= 2);
      assert.equal(notReady.status?.containerStatuses?.[0]?.ready, false);
      // Readiness never restarts anything.
      assert.equal(notReady.status?.containerStatuses?.[0]?.restartCount, 0);
    } finally {
      await s.close();
    }
  });

  it('readiness waits for initialDelaySeconds after the container started', async () => {
    await t.pod('ready-later', {
      containers: [
        {
          name: 'app',
          image: 'busybox',
          readinessProbe: { exec: { command: ['true'] }, initialDelaySeconds: 30, periodSeconds: 5 },
        },
      ],
    });
    const running = await t.until(
      'running',
      podWhere('ready-later', (p) => !!p.status?.containerStatuses?.[0]?.state?.running),
    );
    const startedAt = Date.parse(running.status?.containerStatuses?.[0]?.state?.running?.startedAt ?? '');
    const readyPod = await advanceUntil('Ready', podWhere('ready-later', ready));
    const readyAt = Date.parse(cond(readyPod, 'Ready')?.lastTransitionTime ?? '');
    assert.ok(readyAt - startedAt >= 30_000, `Ready ${(readyAt - startedAt) / 1000} s after start`);
    assert.ok(readyAt - startedAt <= 40_000, `Ready ${(readyAt - startedAt) / 1000} s after start`);
  });

  it('liveness: after failureThreshold failures the container is killed and restarted, with upstream events', async () => {
    await t.pod('alive', {
      containers: [
        {
          name: 'app',
          image: 'busybox',
          command: ['sleep', 'infinity'],
          livenessProbe: {
            exec: { command: ['sh', '-c', 'exit 1'] },
            periodSeconds: 10,
            failureThreshold: 3,
          },
        },
      ],
    });
    const first = await t.until(
      'running',
      podWhere('alive', (p) => !!p.status?.containerStatuses?.[0]?.state?.running),
    );
    const firstID = first.status?.containerStatuses?.[0]?.containerID;
    const restarted = await advanceUntil(
      'a restart',
      podWhere('alive', (p) => (p.status?.containerStatuses?.[0]?.restartCount ?? 0) >= 1),
    );
    const cs = restarted.status?.containerStatuses?.[0];
    assert.notEqual(cs?.containerID, firstID);
    assert.equal(cs?.lastState?.terminated?.exitCode, 143, 'SIGTERM ended the old instance');
    const ev = await events('alive');
    const unhealthy = ev.filter((e) => e.reason === 'Unhealthy');
    assert.ok(
      unhealthy.length >= 1 &&
        unhealthy.every((e) => e.message === 'Liveness probe failed: ' && e.type === 'Warning'),
    );
    assert.equal(
      unhealthy.reduce((n, e) => n + (e.count ?? 1), 0) >= 3,
      true,
      'three failures before the kill',
    );
    assert.ok(
      ev.some(
        (e) =>
          e.reason === 'Killing' && e.message === 'Container app failed liveness probe, will be restarted',
      ),
      ev.map((e) => `${e.reason}: ${e.message}`).join('\n'),
    );
    // The pod stays Running: a liveness restart is not a crash loop.
    assert.equal(restarted.status?.phase, 'Running');
  });

  it('liveness under restartPolicy Never: the container is killed and the pod fails', async () => {
    await t.pod('alive-once', {
      restartPolicy: 'Never',
      containers: [
        {
          name: 'app',
          image: 'busybox',
          livenessProbe: { exec: { command: ['false'] }, periodSeconds: 5, failureThreshold: 1 },
        },
      ],
    });
    const failed = await advanceUntil(
      'Failed',
      podWhere('alive-once', (p) => p.status?.phase === 'Failed'),
    );
    assert.equal(failed.status?.containerStatuses?.[0]?.restartCount, 0);
    const ev = await events('alive-once');
    assert.ok(ev.some((e) => e.reason === 'Killing' && e.message === 'Container app failed liveness probe'));
  });

  it('startup: liveness and readiness wait for it; its failure restarts the container', async () => {
    const s = await testHTTPServer();
    try {
      await t.pod('slow-start', {
        containers: [
          {
            name: 'app',
            image: 'busybox',
            startupProbe: {
              httpGet: { host: '127.0.0.1', port: s.port, path: '/started' },
              periodSeconds: 2,
              failureThreshold: 30,
            },
            // Would restart the container at once if it ran before the startup probe passed.
            livenessProbe: { exec: { command: ['true'] }, periodSeconds: 2, failureThreshold: 1 },
            readinessProbe: { exec: { command: ['true'] }, periodSeconds: 2 },
          },
        ],
      });
      await advanceUntil('a few startup probes', async () => s.requests.length >= 5);
      const starting = (await t.getPod('slow-start'))!;
      const cs = starting.status?.containerStatuses?.[0];
      assert.equal(cs?.started, false);
      assert.equal(cs?.ready, false);
      assert.ok(cs?.state?.running);
      assert.equal(cs?.restartCount, 0);

      s.status = 200;
      const up = await advanceUntil('started and Ready', podWhere('slow-start', ready));
      assert.equal(up.status?.containerStatuses?.[0]?.started, true);
      // Once started, the startup probe is not run again.
      const afterStart = s.requests.length;
      for (let i = 0; i < 10; i++) {
        t.clock.advance(1000);
        await delay(10);
      }
      assert.equal(s.requests.length, afterStart);
    } finally {
      await s.close();
    }

    await t.pod('never-starts', {
      containers: [
        {
          name: 'app',
          image: 'busybox',
          startupProbe: { exec: { command: ['false'] }, periodSeconds: 3, failureThreshold: 2 },
        },
      ],
    });
    await advanceUntil(
      'a restart',
      podWhere('never-starts', (p) => (p.status?.containerStatuses?.[0]?.restartCount ?? 0) >= 1),
    );
    const ev = await events('never-starts');
    assert.ok(
      ev.some(
        (e) =>
          e.reason === 'Killing' && e.message === 'Container app failed startup probe, will be restarted',
      ),
    );
    assert.ok(ev.some((e) => e.reason === 'Unhealthy' && e.message?.startsWith('Startup probe failed')));
  });

  it('postStart: runs after the start; a failing hook kills the container (FailedPostStartHook)', async () => {
    const s = await testHTTPServer();
    s.status = 404; // any answer will do for a hook
    try {
      await t.pod('hooked', {
        containers: [
          {
            name: 'app',
            image: 'busybox',
            lifecycle: { postStart: { httpGet: { host: '127.0.0.1', port: s.port, path: '/started' } } },
          },
        ],
      });
      await t.until('Running', podWhere('hooked', ready));
      assert.equal(s.requests.length, 1);
      assert.equal(s.requests[0]?.url, '/started');
      assert.match(String(s.requests[0]?.headers['user-agent']), /^kube-lifecycle\//);
    } finally {
      await s.close();
    }

    const pod = await t.pod('bad-hook', {
      containers: [
        {
          name: 'app',
          image: 'busybox',
          lifecycle: { postStart: { exec: { command: ['sh', '-c', 'exit 3'] } } },
        },
      ],
    });
    const ev = await t.until('FailedPostStartHook', async () => {
      const list = await events('bad-hook');
      return list.some((e) => e.reason === 'FailedPostStartHook') ? list : undefined;
    });
    const failed = ev.find((e) => e.reason === 'FailedPostStartHook');
    assert.equal(failed?.type, 'Warning');
    assert.equal(
      failed?.message,
      `Exec lifecycle hook ([sh -c exit 3]) for Container "app" in Pod "bad-hook_default(${pod.metadata.uid})" failed - error: command 'sh -c exit 3' exited with 3: , message: ""`,
    );
    await t.until('Killing FailedPostStartHook', async () =>
      (await events('bad-hook')).some((e) => e.reason === 'Killing' && e.message === 'FailedPostStartHook'),
    );
    // The killed container restarts per restartPolicy (Always), after its backoff.
    await advanceUntil(
      'a restart',
      podWhere('bad-hook', (p) => (p.status?.containerStatuses?.[0]?.restartCount ?? 0) >= 1),
    );
  });

  it('preStop: runs before the container is stopped, within the grace period', async () => {
    // What the container's state was when the hook's request arrived.
    const statesAtHook: string[] = [];
    let uid = '';
    const s = await testHTTPServer((_req, res) => {
      void t.runtime.listContainers({ labelSelector: { 'io.kubernetes.pod.uid': uid } }).then((cs) => {
        statesAtHook.push(cs[0]?.state ?? 'none');
        res.writeHead(200);
        res.end();
      });
    });
    try {
      const pod = await t.pod('graceful', {
        terminationGracePeriodSeconds: 20,
        containers: [
          {
            name: 'app',
            image: 'busybox',
            command: ['sh', '-c', "trap '' TERM; sleep infinity"],
            lifecycle: { preStop: { httpGet: { host: '127.0.0.1', port: s.port, path: '/shutdown' } } },
          },
        ],
      });
      uid = pod.metadata.uid ?? '';
      await t.until('Ready', podWhere('graceful', ready));
      await t.clients.pods.delete('default', 'graceful');
      await t.until('the preStop request', async () => statesAtHook.length > 0);
      assert.deepEqual(statesAtHook, ['CONTAINER_RUNNING']);
      assert.equal(s.requests[0]?.url, '/shutdown');
      // The container ignores SIGTERM: it goes at the end of the grace period.
      await advanceUntil('the pod gone', async () => !(await t.getPod('graceful')), 60);
    } finally {
      await s.close();
    }

    // A preStop hook longer than the grace period left is cut short (validation only
    // allows sleeps shorter than the pod's grace period; a deletion may give less).
    const sleepy = await t.pod('sleepy-hook', {
      terminationGracePeriodSeconds: 600,
      containers: [{ name: 'app', image: 'busybox', lifecycle: { preStop: { sleep: { seconds: 500 } } } }],
    });
    await t.until('Ready', podWhere('sleepy-hook', ready));
    await t.clients.pods.delete('default', 'sleepy-hook', { gracePeriodSeconds: 10 });
    await advanceUntil('the pod gone', async () => !(await t.getPod('sleepy-hook')), 60);
    const [left] = await t.runtime.listContainers({
      labelSelector: { 'io.kubernetes.pod.uid': sleepy.metadata.uid ?? '' },
    });
    assert.equal(left, undefined);
  });

  it('a failing preStop hook is reported as FailedPreStopHook, and the container still stops', async () => {
    await t.pod('bad-prestop', {
      containers: [
        { name: 'app', image: 'busybox', lifecycle: { preStop: { exec: { command: ['false'] } } } },
      ],
    });
    await t.until('Ready', podWhere('bad-prestop', ready));
    await t.clients.pods.delete('default', 'bad-prestop');
    await advanceUntil('the pod gone', async () => !(await t.getPod('bad-prestop')), 60);
    const ev = await events('bad-prestop');
    assert.ok(ev.some((e) => e.reason === 'FailedPreStopHook' && e.message === 'PreStopHook failed'));
  });
});
