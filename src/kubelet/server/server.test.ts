// The whole streaming path short of a container: a real `skiff server`
// (HTTPS, client certificates, memory store) proxies pods/log, exec, attach,
// portforward and nodes/proxy to this kubelet server, found through its Node
// object; the kubelet server reads real CRI log files and proxies upgrades to
// a stand-in for the runtime's streaming server, which echoes bytes once
// upgraded. Which streaming protocol is spoken over the upgrade is the two
// ends' business (the e2e tests run real kubectl against real containerd).

import assert from 'node:assert/strict';
import { appendFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer, type IncomingMessage, type Server } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect, type TLSSocket } from 'node:tls';
import { Counter, Registry } from 'prom-client';
import type { Pod } from '../../api/types/core-v1.ts';
import { createInProcessTransport } from '../../apiserver/in-process.ts';
import { type Clientset, createClientset } from '../../client/clientset.ts';
import { createStatsProvider, hollowNodeStats } from '../../metrics/summary.ts';
import { ensureCA, ensureLeaf, type KeyPair } from '../../pki/pki.ts';
import { type RunningServer, startServer } from '../../server/server.ts';
import { createLog } from '../../util/log.ts';
import { HollowRuntime } from '../runtime/hollow/hollow.ts';
import type { Runtime, StreamingRequest } from '../runtime/runtime.ts';
import { subjectAccessReviewer } from './node.ts';
import { KUBE_APISERVER_KUBELET_CLIENT, type KubeletServer, startKubeletServer } from './server.ts';

const quiet = createLog({}, () => {});
const metrics = new Registry();
new Counter({
  name: 'kubelet_test_total',
  help: 'A series the kubelet server serves on /metrics.',
  registers: [metrics],
}).inc(3);
const NODE = 'node-1';

let dataDir: string;
let server: RunningServer;
let clients: Clientset;
let kubelet: KubeletServer;
let streaming: Server;
let admin: KeyPair;
let ca: KeyPair;
let kubeletClient: KeyPair;
const logFiles = new Map<string, string>();
const runningContainers = new Set<string>();
/** What the stand-in runtime was last asked for, and what its streaming server was sent. */
let lastStreaming:
  | { verb: string; req: StreamingRequest | { podSandboxId: string; ports: number[] } }
  | undefined;
let lastUpgrade: { url: string; headers: IncomingMessage['headers'] } | undefined;
const runtimeOnly: Array<{ uid: string; name: string; id: string }> = [];

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = createNetServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** The runtime, as much of it as the kubelet server uses. */
function standInRuntime(): Runtime {
  const base = () => `http://127.0.0.1:${(streaming.address() as { port: number }).port}`;
  const rt = {
    kind: 'stand-in',
    async containerStatus(id: string) {
      const logPath = logFiles.get(id);
      if (!logPath) throw Object.assign(new Error(`container ${id} not found`), { code: 'NotFound' });
      return { id, logPath, state: runningContainers.has(id) ? 'CONTAINER_RUNNING' : 'CONTAINER_EXITED' };
    },
    async exec(req: StreamingRequest) {
      lastStreaming = { verb: 'exec', req };
      return `${base()}/exec/token-exec`;
    },
    async attach(req: StreamingRequest) {
      lastStreaming = { verb: 'attach', req };
      return `${base()}/attach/token-attach`;
    },
    async portForward(podSandboxId: string, ports: number[]) {
      lastStreaming = { verb: 'portforward', req: { podSandboxId, ports } };
      return `${base()}/portforward/token-pf`;
    },
    // Running containers the pod's status does not show yet.
    async listContainers(filter?: { labelSelector?: Record<string, string> }) {
      const name = filter?.labelSelector?.['io.kubernetes.container.name'];
      return [...runtimeOnly]
        .filter((c) => c.name === name && c.uid === filter?.labelSelector?.['io.kubernetes.pod.uid'])
        .map((c) => ({ id: c.id, createdAt: 1n, labels: {}, annotations: {}, state: 'CONTAINER_RUNNING' }));
    },
    async listPodSandbox(filter?: { labelSelector?: Record<string, string> }) {
      const uid = filter?.labelSelector?.['io.kubernetes.pod.uid'];
      return [
        { id: `sandbox-of-${uid}`, createdAt: 1n, labels: {}, annotations: {}, state: 'SANDBOX_READY' },
      ];
    },
  };
  return rt as unknown as Runtime;
}

before(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'skiff-kubelet-server-'));
  server = await startServer(
    {
      dataDir,
      datastoreEndpoint: 'memory://',
      bindAddress: '127.0.0.1',
      httpsPort: await freePort(),
      serviceCIDR: '10.43.0.0/16',
      clusterCIDR: '10.42.0.0/16',
      disableAgent: true,
      controllers: false,
      scheduler: false,
    },
    quiet,
  );
  const tlsDir = join(dataDir, 'server', 'tls');
  ca = ensureCA(tlsDir);
  admin = ensureLeaf(ca, tlsDir, 'client-admin', { commonName: 'system:admin', usage: 'client' });
  kubeletClient = ensureLeaf(ca, tlsDir, 'client-kube-apiserver-kubelet', {
    commonName: KUBE_APISERVER_KUBELET_CLIENT,
    usage: 'client',
  });
  const serving = ensureLeaf(ca, join(dataDir, 'kubelet'), 'serving', {
    commonName: NODE,
    usage: 'server',
    ips: ['127.0.0.1'],
  });
  clients = createClientset(
    createInProcessTransport(server.api, { name: 'test', groups: ['system:masters'] }),
  );
  // No controller manager here to make it: pods need their ServiceAccount (admission).
  await clients.serviceAccounts.create('default', { metadata: { name: 'default' } });

  streaming = createHttpServer((_req, res) => {
    res.writeHead(400);
    res.end('Upgrade request required');
  });
  streaming.on('upgrade', (req, socket) => {
    lastUpgrade = { url: req.url ?? '', headers: req.headers };
    socket.write(
      'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n' +
        'X-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\n',
    );
    socket.pipe(socket);
  });
  await new Promise<void>((r) => streaming.listen(0, '127.0.0.1', r));

  kubelet = await startKubeletServer({
    runtime: standInRuntime(),
    getPod: async (ns, name) => {
      try {
        const p = await clients.pods.get(ns, name);
        return p.spec?.nodeName === NODE ? p : undefined;
      } catch {
        return undefined;
      }
    },
    tls: { cert: serving.cert, key: serving.key, clientCA: ca.cert },
    address: '127.0.0.1',
    port: 0,
    log: quiet,
    followPollMs: 20,
    metrics,
  });
  await clients.nodes.create(undefined, { metadata: { name: NODE } });
  await clients.nodes.patch(
    '',
    NODE,
    'merge',
    {
      status: {
        addresses: [
          { type: 'InternalIP', address: '127.0.0.1' },
          { type: 'Hostname', address: NODE },
        ],
        daemonEndpoints: { kubeletEndpoint: { Port: kubelet.port } },
      },
    },
    { subresource: 'status' },
  );
});

after(async () => {
  await kubelet?.close();
  streaming?.closeAllConnections();
  await new Promise<void>((r) => (streaming ? streaming.close(() => r()) : r()));
  await server?.stop();
  await rm(dataDir, { recursive: true, force: true });
});

/** A pod bound to the node, its containers running with the given runtime ids and log lines. */
async function runningPod(name: string, containers: Record<string, string[]>, extra: Partial<Pod> = {}) {
  const statuses = [];
  for (const [c, lines] of Object.entries(containers)) {
    const id = `${name}-${c}-1`;
    const path = join(dataDir, `${id}.log`);
    await writeFile(path, lines.map((l, i) => `2026-01-02T03:04:0${i}.000000000Z stdout F ${l}\n`).join(''));
    logFiles.set(id, path);
    runningContainers.add(id);
    statuses.push({
      name: c,
      containerID: `containerd://${id}`,
      ready: true,
      restartCount: 0,
      image: 'busybox',
      imageID: '',
      state: { running: { startedAt: '2026-01-02T03:04:00Z' } },
    });
  }
  const pod = await clients.pods.create('default', {
    metadata: { name },
    spec: {
      nodeName: NODE,
      containers: Object.keys(containers).map((c) => ({ name: c, image: 'busybox' })),
      ...extra.spec,
    },
  });
  await clients.pods.patch(
    'default',
    name,
    'merge',
    { status: { phase: 'Running', containerStatuses: statuses, ...extra.status } },
    { subresource: 'status' },
  );
  return pod;
}

function tlsOptions(pair: KeyPair | undefined) {
  return { ca: ca.cert, ...(pair ? { cert: pair.cert, key: pair.key } : {}) };
}

/** A GET to the API server (or, with `port`, the kubelet) as `who`. */
function get(
  path: string,
  opts: { who?: KeyPair | undefined; port?: number; onData?: (s: string) => void } = {},
): Promise<{ status: number; body: string }> {
  const port = opts.port ?? Number(new URL(server.url).port);
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host: '127.0.0.1',
        port,
        path,
        ...tlsOptions('who' in opts ? opts.who : admin),
        rejectUnauthorized: opts.port === undefined,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          body += d;
          opts.onData?.(d);
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** Sends an upgrade request to the API server and returns the response head and the socket. */
function upgrade(
  path: string,
  opts: { who?: KeyPair | undefined; method?: string; protocol?: string } = {},
): Promise<{ status: number; head: string; socket: TLSSocket; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    const socket = connect(
      {
        host: '127.0.0.1',
        port: Number(new URL(server.url).port),
        ...tlsOptions('who' in opts ? opts.who : admin),
        servername: 'localhost',
      },
      () => {
        socket.write(
          `${opts.method ?? 'POST'} ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n` +
            `Upgrade: ${opts.protocol ?? 'SPDY/3.1'}\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\n`,
        );
      },
    );
    let buf = Buffer.alloc(0);
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onData);
      const head = buf.subarray(0, end).toString();
      const status = Number(head.split(' ')[1]);
      resolve({ status, head, socket, rest: buf.subarray(end + 4) });
    };
    socket.on('data', onData);
    socket.on('error', reject);
  });
}

async function readMore(socket: TLSSocket, rest: Buffer, want: number): Promise<string> {
  let buf = rest;
  while (buf.length < want) {
    buf = Buffer.concat([buf, await new Promise<Buffer>((r) => socket.once('data', r))]);
  }
  return buf.toString();
}

describe('pods/log through the API server and the kubelet', () => {
  before(async () => {
    await runningPod('web', { app: ['hello', 'world'] });
    await runningPod('two', { a: ['from a'], b: ['from b'] });
  });

  it('reads the container log file', async () => {
    assert.deepEqual(await get('/api/v1/namespaces/default/pods/web/log'), {
      status: 200,
      body: 'hello\nworld\n',
    });
    const r = await get('/api/v1/namespaces/default/pods/two/log?container=b');
    assert.equal(r.body, 'from b\n');
  });

  it('passes tailLines, timestamps and limitBytes on', async () => {
    assert.equal((await get('/api/v1/namespaces/default/pods/web/log?tailLines=1')).body, 'world\n');
    assert.equal(
      (await get('/api/v1/namespaces/default/pods/web/log?timestamps=true&tailLines=1')).body,
      '2026-01-02T03:04:01.000000000Z world\n',
    );
    assert.equal((await get('/api/v1/namespaces/default/pods/web/log?limitBytes=3')).body, 'hel');
  });

  it('follow streams new lines until the container stops', async () => {
    let seen = '';
    const done = get('/api/v1/namespaces/default/pods/web/log?follow=true', { onData: (d) => (seen += d) });
    await until(() => seen === 'hello\nworld\n');
    await appendFile(logFiles.get('web-app-1')!, '2026-01-02T03:04:09.000000000Z stdout F again\n');
    await until(() => seen === 'hello\nworld\nagain\n');
    runningContainers.delete('web-app-1');
    assert.deepEqual(await done, { status: 200, body: 'hello\nworld\nagain\n' });
    runningContainers.add('web-app-1');
  });

  it('answers with upstream Status errors', async () => {
    const invalid = await get('/api/v1/namespaces/default/pods/web/log?container=nope');
    assert.equal(invalid.status, 400);
    assert.equal(JSON.parse(invalid.body).message, 'container nope is not valid for pod web');
    const choose = await get('/api/v1/namespaces/default/pods/two/log');
    assert.equal(
      JSON.parse(choose.body).message,
      'a container name must be specified for pod two, choose one of: [a b]',
    );
    const missing = await get('/api/v1/namespaces/default/pods/nope/log');
    assert.equal(missing.status, 404);
    assert.equal(JSON.parse(missing.body).message, 'pods "nope" not found');
    // --previous with no terminated container: the kubelet's message, as a 400 Status.
    const previous = await get('/api/v1/namespaces/default/pods/web/log?previous=true');
    assert.equal(previous.status, 400);
    assert.deepEqual(
      [JSON.parse(previous.body).reason, JSON.parse(previous.body).message],
      ['BadRequest', 'previous terminated container "app" in pod "web" not found'],
    );
    const negative = await get('/api/v1/namespaces/default/pods/web/log?tailLines=-1');
    assert.equal(negative.status, 422);
  });

  it('reads the previous container with --previous, and says when a container waits to start', async () => {
    const prev = 'restarted-app-0';
    const path = join(dataDir, `${prev}.log`);
    await writeFile(path, '2026-01-02T03:04:00Z stdout F before the crash\n');
    logFiles.set(prev, path);
    await runningPod('restarted', { app: ['after the restart'] });
    await clients.pods.patch(
      'default',
      'restarted',
      'merge',
      {
        status: {
          containerStatuses: [
            {
              name: 'app',
              containerID: 'containerd://restarted-app-1',
              ready: true,
              restartCount: 1,
              image: 'busybox',
              imageID: '',
              state: { running: { startedAt: '2026-01-02T03:04:00Z' } },
              lastState: { terminated: { exitCode: 1, containerID: `containerd://${prev}` } },
            },
          ],
        },
      },
      { subresource: 'status' },
    );
    assert.equal((await get('/api/v1/namespaces/default/pods/restarted/log')).body, 'after the restart\n');
    assert.equal(
      (await get('/api/v1/namespaces/default/pods/restarted/log?previous=true')).body,
      'before the crash\n',
    );

    await clients.pods.create('default', {
      metadata: { name: 'creating' },
      spec: { nodeName: NODE, containers: [{ name: 'app', image: 'busybox' }] },
    });
    await clients.pods.patch(
      'default',
      'creating',
      'merge',
      {
        status: {
          phase: 'Pending',
          containerStatuses: [
            {
              name: 'app',
              ready: false,
              restartCount: 0,
              image: 'busybox',
              imageID: '',
              state: { waiting: { reason: 'ContainerCreating' } },
            },
          ],
        },
      },
      { subresource: 'status' },
    );
    const waiting = await get('/api/v1/namespaces/default/pods/creating/log');
    assert.equal(waiting.status, 400);
    assert.equal(
      JSON.parse(waiting.body).message,
      'container "app" in pod "creating" is waiting to start: ContainerCreating',
    );
  });

  it('a pod with no node yet has an empty log', async () => {
    await clients.pods.create('default', {
      metadata: { name: 'unscheduled' },
      spec: { containers: [{ name: 'app', image: 'busybox' }] },
    });
    assert.deepEqual(await get('/api/v1/namespaces/default/pods/unscheduled/log'), { status: 200, body: '' });
  });
});

describe('exec, attach and port-forward through the API server and the kubelet', () => {
  before(async () => {
    await runningPod('shell', { sh: [] });
  });

  it('exec: the runtime gets the command and streams, and bytes flow both ways after the upgrade', async () => {
    const { status, head, socket, rest } = await upgrade(
      '/api/v1/namespaces/default/pods/shell/exec?command=echo&command=hi&stdin=true&stdout=true&stderr=true',
    );
    assert.equal(status, 101, head);
    assert.match(head, /X-Stream-Protocol-Version: v4.channel.k8s.io/i);
    assert.deepEqual(lastStreaming, {
      verb: 'exec',
      req: {
        containerId: 'shell-sh-1',
        cmd: ['echo', 'hi'],
        tty: false,
        stdin: true,
        stdout: true,
        stderr: true,
      },
    });
    // The streaming server got the client's own upgrade headers, at the runtime's URL.
    assert.equal(lastUpgrade?.url, '/exec/token-exec');
    assert.equal(lastUpgrade?.headers.upgrade, 'SPDY/3.1');
    assert.equal(lastUpgrade?.headers['x-stream-protocol-version'], 'v4.channel.k8s.io');
    socket.write('ping');
    assert.equal(await readMore(socket, rest, 4), 'ping');
    socket.destroy();
  });

  it('exec over a WebSocket upgrade (GET) is proxied the same way', async () => {
    const { status, socket } = await upgrade(
      '/api/v1/namespaces/default/pods/shell/exec?command=sh&stdin=true&stdout=true&tty=true',
      { method: 'GET', protocol: 'websocket' },
    );
    assert.equal(status, 101);
    assert.equal(lastUpgrade?.headers.upgrade, 'websocket');
    assert.deepEqual(lastStreaming?.req, {
      containerId: 'shell-sh-1',
      cmd: ['sh'],
      tty: true,
      stdin: true,
      stdout: true,
      stderr: false,
    });
    socket.destroy();
  });

  it('attach and portforward reach the runtime with the container and the pod sandbox', async () => {
    const a = await upgrade('/api/v1/namespaces/default/pods/shell/attach?stdin=true&stdout=true');
    assert.equal(a.status, 101);
    assert.equal(lastStreaming?.verb, 'attach');
    assert.equal(lastUpgrade?.url, '/attach/token-attach');
    a.socket.destroy();
    const pod = await clients.pods.get('default', 'shell');
    const pf = await upgrade('/api/v1/namespaces/default/pods/shell/portforward?ports=8080');
    assert.equal(pf.status, 101);
    assert.deepEqual(lastStreaming, {
      verb: 'portforward',
      req: { podSandboxId: `sandbox-of-${pod.metadata.uid}`, ports: [8080] },
    });
    pf.socket.write('through the tunnel');
    assert.equal(await readMore(pf.socket, pf.rest, 18), 'through the tunnel');
    pf.socket.destroy();
  });

  it('exec and attach reach a running ephemeral container by its name', async () => {
    await runningPod('debugged', { app: [] });
    await clients.pods.patch(
      'default',
      'debugged',
      'strategic',
      {
        spec: { ephemeralContainers: [{ name: 'dbg', image: 'busybox', terminationMessagePolicy: 'File' }] },
      },
      { subresource: 'ephemeralcontainers' },
    );
    await clients.pods.patch(
      'default',
      'debugged',
      'merge',
      {
        status: {
          ephemeralContainerStatuses: [
            {
              name: 'dbg',
              containerID: 'containerd://debugged-dbg-1',
              ready: false,
              restartCount: 0,
              image: 'busybox',
              imageID: '',
              state: { running: { startedAt: '2026-01-02T03:04:00Z' } },
            },
          ],
        },
      },
      { subresource: 'status' },
    );
    for (const verb of ['attach', 'exec']) {
      const r = await upgrade(
        `/api/v1/namespaces/default/pods/debugged/${verb}?container=dbg&command=sh&stdin=true&stdout=true`,
      );
      assert.equal(r.status, 101, r.head);
      assert.equal(lastStreaming?.verb, verb);
      assert.equal(
        (lastStreaming?.req as { containerId?: string } | undefined)?.containerId,
        'debugged-dbg-1',
      );
      r.socket.destroy();
    }
  });

  it("finds a running container in the runtime when the pod's status does not show it yet", async () => {
    const pod = await runningPod('fresh', { app: [] });
    await clients.pods.patch(
      'default',
      'fresh',
      'strategic',
      {
        spec: { ephemeralContainers: [{ name: 'new', image: 'busybox', terminationMessagePolicy: 'File' }] },
      },
      { subresource: 'ephemeralcontainers' },
    );
    const path = '/api/v1/namespaces/default/pods/fresh/attach?container=new&stdin=true&stdout=true';
    assert.equal((await upgrade(path)).status, 404, 'not in the runtime either');
    runtimeOnly.push({ uid: pod.metadata.uid ?? '', name: 'new', id: 'fresh-new-1' });
    const r = await upgrade(path);
    assert.equal(r.status, 101, r.head);
    assert.equal((lastStreaming?.req as { containerId?: string } | undefined)?.containerId, 'fresh-new-1');
    r.socket.destroy();
  });

  it('answers with upstream errors before any upgrade', async () => {
    const invalid = await upgrade('/api/v1/namespaces/default/pods/shell/exec?command=ls&container=nope');
    assert.equal(invalid.status, 400);
    invalid.socket.destroy();
    await clients.pods.create('default', {
      metadata: { name: 'nowhere' },
      spec: { containers: [{ name: 'app', image: 'busybox' }] },
    });
    const unscheduled = await upgrade('/api/v1/namespaces/default/pods/nowhere/exec?command=ls&stdout=true');
    assert.equal(unscheduled.status, 400);
    const body = await readMore(unscheduled.socket, unscheduled.rest, 10);
    await new Promise((r) => unscheduled.socket.once('close', r));
    assert.match(body, /pod nowhere does not have a host assigned/);
    // A container that is not running: the kubelet's 404, passed back as it is.
    await clients.pods.create('default', {
      metadata: { name: 'pending' },
      spec: { nodeName: NODE, containers: [{ name: 'app', image: 'busybox' }] },
    });
    const notRunning = await upgrade('/api/v1/namespaces/default/pods/pending/exec?command=ls&stdout=true');
    assert.equal(notRunning.status, 404);
    notRunning.socket.destroy();
    // Without an upgrade: 400, as upstream's streaming handlers.
    const plain = await get('/api/v1/namespaces/default/pods/shell/exec?command=ls');
    assert.equal(plain.status, 400);
    // Without a client certificate.
    const anonymous = await upgrade('/api/v1/namespaces/default/pods/shell/exec?command=ls', {
      who: undefined,
    });
    assert.equal(anonymous.status, 401);
    anonymous.socket.destroy();
  });
});

describe('the kubelet server', () => {
  it('lets in only the API server: 401 without a client certificate, 403 for another user', async () => {
    assert.deepEqual(await get('/healthz', { port: kubelet.port, who: kubeletClient }), {
      status: 200,
      body: 'ok',
    });
    assert.equal((await get('/healthz', { port: kubelet.port, who: undefined })).status, 401);
    const other = await get('/containerLogs/default/web/app', { port: kubelet.port, who: admin });
    assert.equal(other.status, 403);
    assert.match(
      other.body,
      /Forbidden \(user=system:admin, verb=get, resource=nodes, subresource\(s\)=\[proxy\]\)/,
    );
    // A certificate from another CA is no certificate at all.
    const otherCA = ensureCA(join(dataDir, 'other-ca'));
    const stranger = ensureLeaf(otherCA, join(dataDir, 'other-ca'), 'client', {
      commonName: KUBE_APISERVER_KUBELET_CLIENT,
      usage: 'client',
    });
    assert.equal((await get('/healthz', { port: kubelet.port, who: stranger })).status, 401);
  });

  it('authorizes other users with a SubjectAccessReview: metrics-server may read stats and resource metrics, others not', async () => {
    const runtime = new HollowRuntime();
    const asNode = createClientset(
      createInProcessTransport(server.api, {
        name: `system:node:${NODE}`,
        groups: ['system:nodes', 'system:authenticated'],
      }),
    );
    const serving = ensureLeaf(ca, join(dataDir, 'kubelet'), 'serving', {
      commonName: NODE,
      usage: 'server',
    });
    const withStats = await startKubeletServer({
      runtime,
      getPod: () => undefined,
      tls: { cert: serving.cert, key: serving.key, clientCA: ca.cert },
      address: '127.0.0.1',
      port: 0,
      log: quiet,
      stats: createStatsProvider({ runtime, nodeName: NODE, node: hollowNodeStats() }),
      authorizeUser: subjectAccessReviewer(asNode, NODE),
    });
    try {
      const tlsDir = join(dataDir, 'server', 'tls');
      const metricsServer = ensureLeaf(ca, tlsDir, 'client-metrics-server-test', {
        commonName: 'system:metrics-server',
        usage: 'client',
      });
      const bob = ensureLeaf(ca, tlsDir, 'client-bob', { commonName: 'bob', usage: 'client' });
      const resource = await get('/metrics/resource', { port: withStats.port, who: metricsServer });
      assert.equal(resource.status, 200, resource.body);
      assert.match(resource.body, /^node_cpu_usage_seconds_total \S+ \d+$/m);
      const summary = await get('/stats/summary', { port: withStats.port, who: metricsServer });
      assert.equal(summary.status, 200);
      assert.equal(JSON.parse(summary.body).node.nodeName, NODE);
      // nodes/metrics is all metrics-server may get: not the pods' logs (nodes/proxy).
      const logs = await get('/containerLogs/default/web/app', { port: withStats.port, who: metricsServer });
      assert.equal(logs.status, 403);
      const denied = await get('/metrics/resource', { port: withStats.port, who: bob });
      assert.equal(denied.status, 403);
      assert.match(
        denied.body,
        /Forbidden \(user=bob, verb=get, resource=nodes, subresource\(s\)=\[metrics\]\)/,
      );
      // Through the API server as ever, with the API server's own identity.
      assert.equal(
        (await get('/metrics/resource', { port: withStats.port, who: kubeletClient })).status,
        200,
      );
    } finally {
      await withStats.close();
    }
  });

  it('is reachable through nodes/proxy', async () => {
    assert.deepEqual(await get(`/api/v1/nodes/${NODE}/proxy/healthz`), { status: 200, body: 'ok' });
  });

  it('serves its metrics on /metrics, reached as nodes/<name>/proxy/metrics', async () => {
    const r = await get(`/api/v1/nodes/${NODE}/proxy/metrics`);
    assert.equal(r.status, 200);
    assert.match(r.body, /^kubelet_test_total 3$/m);
  });
});

async function until(check: () => boolean, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}
