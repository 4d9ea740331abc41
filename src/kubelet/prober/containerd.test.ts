// Probes and volumes with real containers: a kubelet on the CRI runtime,
// against a containerd the test starts the way the agent does (as
// runtime/cri/cri.test.ts), with Skiff's offline busybox image, and a real
// API server (memory store). Covers what the hollow runtime cannot show:
// an exec readiness probe running inside the container, an httpGet liveness
// probe against busybox httpd on the pod IP, a configMap update reaching
// the file a container reads, and an emptyDir two containers share. Needs
// root and the packages scripts/setup.sh installs.

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { unmountUnder } from '../../agent/containerd.ts';
import { type NodeRuntime, startNodeRuntime } from '../../agent/runtime.ts';
import type { Container, Pod } from '../../api/types/core-v1.ts';
import { createInProcessTransport } from '../../apiserver/in-process.ts';
import { startTestServer, type TestServer } from '../../apiserver/testing.ts';
import { type Clientset, createClientset } from '../../client/clientset.ts';
import { deleteBridge } from '../../network/cni.ts';
import { createLog } from '../../util/log.ts';
import { createKubelet, type Kubelet } from '../kubelet.ts';
import { KUBERNETES_CONTAINER_NAME_LABEL, KUBERNETES_POD_UID_LABEL } from '../labels.ts';
import { mountPoints } from '../volumes/mount.ts';

// A podCIDR and bridge of this file's own, so it can run beside cri.test.ts.
const POD_CIDR = '10.42.248.0/24';
const BRIDGE = 'skiffprb0';
const NODE = 'probe-node';

let dataDir: string;
let node: NodeRuntime;
let server: TestServer;
let clients: Clientset;
let admin: Clientset;
let kubelet: Kubelet;
const logLines: string[] = [];

before(async () => {
  dataDir = await mkdtemp('/tmp/skiff-probes-cri-');
  node = await startNodeRuntime({
    dataDir,
    clusterCIDR: '10.42.0.0/16',
    serviceCIDR: '10.43.0.0/16',
    bridge: BRIDGE,
  });
  await node.setPodCIDR(POD_CIDR);
  for (let i = 0; ; i++) {
    const conditions = await node.runtime.status();
    if (conditions.every((c) => c.status)) break;
    if (i > 300) assert.fail('containerd network not ready');
    await delay(100);
  }
  server = await startTestServer();
  await server.api
    .storage('', 'v1', 'namespaces')!
    .create(undefined, { metadata: { name: 'kube-node-lease' } });
  clients = createClientset(
    createInProcessTransport(server.api, { name: `system:node:${NODE}`, groups: ['system:nodes'] }),
  );
  // The test's pods are a user's: NodeRestriction lets a node create only mirror pods.
  admin = createClientset(
    createInProcessTransport(server.api, { name: 'test-admin', groups: ['system:masters'] }),
  );
  kubelet = createKubelet({
    clients,
    runtime: node.runtime,
    nodeName: NODE,
    nodeIP: '127.0.0.1',
    dataDir,
    plegRelistPeriodMs: 200,
    // Not what this file tests: a machine whose disk is nearly full must not evict its pods.
    eviction: false,
    // A short sync period, so a configMap update reaches its volume quickly.
    resyncIntervalMs: 1000,
    log: createLog({ component: 'kubelet' }, (l) => {
      logLines.push(l);
      if (process.env.SKIFF_TEST_LOG) process.stderr.write(l);
    }),
  });
  await kubelet.start();
});

after(async () => {
  // Every pod goes through the kubelet, which removes its containers and volumes.
  for (const p of (await admin.pods.list('default')).items) {
    await admin.pods
      .delete('default', p.metadata.name ?? '', { gracePeriodSeconds: 0 })
      .catch(() => undefined);
  }
  await until(
    'the pods removed',
    async () => (await node.runtime.listPodSandbox()).length === 0,
    60_000,
  ).catch(() => undefined);
  await kubelet.stop();
  // Whatever is left (a failed test) must not outlive containerd.
  for (const s of await node.runtime.listPodSandbox()) {
    await node.runtime.stopPodSandbox(s.id).catch(() => undefined);
    await node.runtime.removePodSandbox(s.id).catch(() => undefined);
  }
  await server.close();
  await node.stop();
  for (const m of (await mountPoints()).filter((p) => p.startsWith(`${dataDir}/pods/`))) {
    await import('../volumes/mount.ts').then((x) => x.unmount(m)).catch(() => undefined);
  }
  await unmountUnder(dataDir);
  await deleteBridge(BRIDGE);
  await rm(dataDir, { recursive: true, force: true });
});

async function until<T>(what: string, check: () => Promise<T>, ms = 60_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      assert.fail(
        `timed out waiting for ${what}${last ? ` (${String(last)})` : ''}\n${logLines.slice(-15).join('')}`,
      );
    }
    await delay(200);
  }
}

const busybox = (c: Container): Container => ({ image: 'busybox', imagePullPolicy: 'IfNotPresent', ...c });
const createPod = (name: string, spec: Partial<NonNullable<Pod['spec']>>) =>
  admin.pods.create('default', {
    metadata: { name },
    spec: { nodeName: NODE, terminationGracePeriodSeconds: 2, containers: [], ...spec },
  });
const getPod = (name: string) => clients.pods.get('default', name);
const cond = (p: Pod, type: string) => p.status?.conditions?.find((c) => c.type === type)?.status;

/** Runs a command in the pod's running container, as `kubectl exec` would. */
async function execIn(pod: Pod, container: string, cmd: string[]): Promise<string> {
  const [c] = await node.runtime.listContainers({
    state: 'CONTAINER_RUNNING',
    labelSelector: {
      [KUBERNETES_POD_UID_LABEL]: pod.metadata.uid ?? '',
      [KUBERNETES_CONTAINER_NAME_LABEL]: container,
    },
  });
  assert.ok(c, `a running ${container}`);
  const r = await node.runtime.execSync(c.id, cmd, 10);
  return r.stdout.toString('utf8');
}

describe('kubelet probes and volumes on containerd', () => {
  it('an exec readiness probe turns the pod Ready once the file it checks exists', async () => {
    await createPod('ready-exec', {
      containers: [
        busybox({
          name: 'app',
          command: ['sh', '-c', 'sleep 3; touch /tmp/ready; exec sleep 3600'],
          readinessProbe: { exec: { command: ['cat', '/tmp/ready'] }, periodSeconds: 1 },
        }),
      ],
    });
    const running = await until('running', async () => {
      const p = await getPod('ready-exec');
      return p.status?.containerStatuses?.[0]?.state?.running ? p : undefined;
    });
    assert.equal(running.status?.containerStatuses?.[0]?.ready, false);
    assert.notEqual(cond(running, 'Ready'), 'True');
    const ready = await until('Ready', async () => {
      const p = await getPod('ready-exec');
      return cond(p, 'Ready') === 'True' ? p : undefined;
    });
    assert.equal(ready.status?.containerStatuses?.[0]?.ready, true);
    const events = (await clients.events.list('default', { fieldSelector: 'involvedObject.name=ready-exec' }))
      .items;
    assert.ok(
      events.some(
        (e) =>
          e.reason === 'Unhealthy' &&
          e.message?.startsWith("Readiness probe failed: cat: can't open '/tmp/ready'"),
      ),
      events.map((e) => `${e.reason}: ${e.message}`).join('\n'),
    );
  });

  it('an httpGet liveness probe against busybox httpd fails once the page is gone, and the container restarts', async () => {
    await createPod('alive-httpd', {
      containers: [
        busybox({
          name: 'httpd',
          command: [
            'sh',
            '-c',
            'mkdir -p /www; echo ok > /www/healthz; (sleep 4; rm /www/healthz) & exec httpd -f -p 8080 -h /www',
          ],
          ports: [{ name: 'http', containerPort: 8080 }],
          livenessProbe: {
            httpGet: { path: '/healthz', port: 'http' },
            periodSeconds: 1,
            failureThreshold: 2,
          },
        }),
      ],
    });
    const eventsOf = async () =>
      (await clients.events.list('default', { fieldSelector: 'involvedObject.name=alive-httpd' })).items;
    const saw404 = (es: Awaited<ReturnType<typeof eventsOf>>) =>
      es.some((e) => e.reason === 'Unhealthy' && e.message?.endsWith('statuscode: 404'));
    // On a loaded machine the first probes may come before httpd listens
    // (connection refused), and a restart can come from those: wait for
    // the restart and the failure the removed page causes.
    const restarted = await until('a restart, and the 404 that the removed page causes', async () => {
      const p = await getPod('alive-httpd');
      const restartedOnce = (p.status?.containerStatuses?.[0]?.restartCount ?? 0) >= 1;
      return restartedOnce && saw404(await eventsOf()) ? p : undefined;
    });
    const podIP = restarted.status?.podIP ?? '';
    assert.match(podIP, /^10\.42\.248\.\d+$/);
    const events = await eventsOf();
    assert.ok(
      events.some(
        (e) =>
          e.reason === 'Unhealthy' &&
          e.message === 'Liveness probe failed: HTTP probe failed with statuscode: 404',
      ),
      events.map((e) => `${e.reason}: ${e.message}`).join('\n'),
    );
    assert.ok(
      events.some(
        (e) =>
          e.reason === 'Killing' && e.message === 'Container httpd failed liveness probe, will be restarted',
      ),
    );
    // The new instance serves again.
    await until('the restarted httpd answering', async () => {
      const res = await fetch(`http://${podIP}:8080/healthz`).catch(() => undefined);
      return res?.status === 200;
    });
  });

  it('a configMap volume: the container reads the file, and an update reaches it', async () => {
    await clients.configMaps.create('default', {
      metadata: { name: 'greeting' },
      data: { message: 'hello' },
    });
    const pod = await createPod('reads-config', {
      volumes: [{ name: 'cfg', configMap: { name: 'greeting' } }],
      containers: [
        busybox({
          name: 'app',
          command: ['sleep', '3600'],
          volumeMounts: [{ name: 'cfg', mountPath: '/etc/greeting' }],
        }),
      ],
    });
    await until(
      'running',
      async () => (await getPod('reads-config')).status?.containerStatuses?.[0]?.state?.running,
    );
    assert.equal(await execIn(pod, 'app', ['cat', '/etc/greeting/message']), 'hello');
    // Read-only: API data volumes cannot be written from inside.
    assert.equal(
      await execIn(pod, 'app', [
        'sh',
        '-c',
        'echo x 2>/dev/null > /etc/greeting/new && echo wrote || echo refused',
      ]),
      'refused\n',
    );
    await clients.configMaps.patch('default', 'greeting', 'merge', { data: { message: 'bonjour' } });
    await until(
      'the update inside the container',
      async () => (await execIn(pod, 'app', ['cat', '/etc/greeting/message'])) === 'bonjour',
    );
  });

  it('two containers share an emptyDir; a Memory emptyDir is a tmpfs inside', async () => {
    const pod = await createPod('shared-dir', {
      volumes: [
        { name: 'shared', emptyDir: {} },
        { name: 'ram', emptyDir: { medium: 'Memory' } },
      ],
      containers: [
        busybox({
          name: 'writer',
          command: ['sh', '-c', 'echo hello-from-writer > /data/msg; exec sleep 3600'],
          volumeMounts: [{ name: 'shared', mountPath: '/data' }],
        }),
        busybox({
          name: 'reader',
          command: ['sleep', '3600'],
          volumeMounts: [
            { name: 'shared', mountPath: '/in' },
            { name: 'ram', mountPath: '/ram' },
          ],
        }),
      ],
    });
    await until('both running', async () => {
      const p = await getPod('shared-dir');
      return p.status?.containerStatuses?.every((s) => s.state?.running);
    });
    await until(
      "the writer's file seen by the reader",
      async () => (await execIn(pod, 'reader', ['cat', '/in/msg'])) === 'hello-from-writer\n',
    );
    const mounts = await execIn(pod, 'reader', ['cat', '/proc/mounts']);
    assert.match(mounts, /^tmpfs \/ram tmpfs /m);
  });
});
