// The node with real containers, through the real kubectl: `skiff server`
// with its agent running containerd (CRI), Skiff's offline busybox image,
// and the CNI bridge network. What each test shows is upstream node
// behaviour a user sees from kubectl and from the node itself:
//
//   - the server's node registers Ready, with a podCIDR and the control-plane role;
//   - a pod's port answers on its pod IP, and on the node through a hostPort;
//   - a crashing container goes into CrashLoopBackOff, and a failing liveness
//     probe restarts its container;
//   - a readiness probe gates the pod's Ready condition, both ways;
//   - two containers share an emptyDir; env comes from a configMap and a secret;
//   - graceful deletion runs the preStop hook, then SIGTERM;
//   - restarting the server and its agent leaves running containers alone.
//
// Containers serve what the test reads (busybox httpd on the pod IP), so no
// test here depends on kubectl logs or exec (test/e2e/streaming.test.ts
// covers those). Traffic goes only to addresses on this machine: pod IPs on
// the node's bridge and the node's own IP.
//
// Needs root and what scripts/setup.sh installs (containerd, runc, CNI
// plugins, Skiff's offline images).

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { eventually, freePort, ok, type Skiff, startSkiff } from './harness.ts';

// A pod range of this file's own, so that this cluster's pods never share
// addresses with another Skiff cluster running on the machine at the same
// time (the two agents' CNI bridges would otherwise both hand out 10.42.0.x).
const CLUSTER_CIDR = '10.78.0.0/16';

let skiff: Skiff;
let nodeName = '';
let nodeIP = '';
/** A directory on the host that pods mount with hostPath, for what the test must see or change. */
let hostDir = '';

interface PodJSON {
  metadata: { name: string; uid: string };
  spec: { nodeName?: string };
  status: {
    phase?: string;
    podIP?: string;
    conditions?: { type: string; status: string }[];
    containerStatuses?: ContainerStatusJSON[];
  };
}
interface ContainerStatusJSON {
  name: string;
  ready: boolean;
  restartCount: number;
  containerID?: string;
  state?: {
    running?: { startedAt: string };
    waiting?: { reason: string; message?: string };
    terminated?: { exitCode: number; reason?: string };
  };
  lastState?: { terminated?: { exitCode: number; reason?: string; finishedAt?: string } };
}

const apply = (yaml: string) => ok(skiff, ['apply', '-f', '-'], { input: yaml });
const getPod = async (name: string): Promise<PodJSON> =>
  JSON.parse(await ok(skiff, ['get', 'pod', name, '-o', 'json']));
const condition = (p: PodJSON, type: string) => p.status.conditions?.find((c) => c.type === type)?.status;
const container = (p: PodJSON, name: string) => p.status.containerStatuses?.find((c) => c.name === name);

async function running(name: string): Promise<PodJSON> {
  return eventually(
    `pod ${name} Running`,
    async () => {
      const p = await getPod(name);
      return p.status.phase === 'Running' && p.status.podIP ? p : undefined;
    },
    90_000,
  ).catch(async (err) => {
    const described = await skiff.kubectl(['describe', 'pod', name]);
    throw new Error(`${err}\n${described.stdout}\nserver output:\n${skiff.logs().slice(-20_000)}`);
  });
}

/** GET http://host:port/path from this machine; the body, or undefined while nothing answers. */
async function httpGet(host: string, port: number, path = '/'): Promise<string | undefined> {
  try {
    const res = await fetch(`http://${host}:${port}${path}`, { signal: AbortSignal.timeout(3000) });
    return res.ok ? await res.text() : undefined;
  } catch {
    return undefined;
  }
}

/** The reasons of the pod's events, in order (kubectl's own view of them). */
async function eventReasons(pod: string): Promise<string[]> {
  const out = await ok(skiff, [
    'get',
    'events',
    '--field-selector',
    `involvedObject.name=${pod}`,
    '-o',
    'jsonpath={range .items[*]}{.reason}{"\\n"}{end}',
  ]);
  return out.split('\n').filter(Boolean);
}

before(async () => {
  skiff = await startSkiff([
    '--no-disable-agent',
    '--cluster-cidr',
    CLUSTER_CIDR,
    '--service-cidr',
    '10.80.0.0/16',
  ]);
  hostDir = mkdtempSync(join(tmpdir(), 'skiff-node-e2e-'));
  await eventually(
    'the node Ready',
    async () => {
      const nodes = JSON.parse(await ok(skiff, ['get', 'nodes', '-o', 'json'])).items;
      const node = nodes[0];
      const ready = node?.status?.conditions?.find((c: { type: string }) => c.type === 'Ready');
      if (ready?.status !== 'True') return false;
      nodeName = node.metadata.name;
      nodeIP = node.status.addresses.find((a: { type: string }) => a.type === 'InternalIP').address;
      return true;
    },
    120_000,
  ).catch((err) => {
    throw new Error(`${err}\nserver output:\n${skiff.logs()}`);
  });
});

// Every test starts with no pods: what one leaves behind goes, through the kubelet.
afterEach(async () => {
  await ok(skiff, ['delete', 'pods', '--all', '--grace-period=1', '--wait=true', '--timeout=60s'], {
    timeoutMs: 70_000,
  }).catch((err) => {
    throw new Error(`${err}\nserver output:\n${skiff.logs().slice(-30_000)}`);
  });
});

after(async () => {
  await skiff?.stop();
  if (hostDir) rmSync(hostDir, { recursive: true, force: true });
});

describe('a node running containers in containerd', () => {
  it('registers Ready, with a podCIDR from the cluster CIDR and the control-plane role', async () => {
    const table = await ok(skiff, ['get', 'nodes']);
    assert.match(table, new RegExp(`^${nodeName}\\s+Ready\\s+control-plane\\s`, 'm'), table);
    const node = JSON.parse(await ok(skiff, ['get', 'node', nodeName, '-o', 'json']));
    assert.ok('node-role.kubernetes.io/control-plane' in node.metadata.labels);
    assert.equal(node.metadata.labels['kubernetes.io/os'], 'linux');
    assert.match(node.spec.podCIDR, /^10\.78\.\d+\.0\/24$/);
    assert.match(node.status.nodeInfo.containerRuntimeVersion, /^containerd:\/\//);
    assert.equal(node.status.capacity.pods, '110');
  });

  it('serves a container port on the pod IP and on the node IP through a hostPort', async () => {
    const hostPort = await freePort();
    // The page comes from an init container, through an emptyDir: the app
    // container only starts once the init container succeeded.
    await apply(`apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  terminationGracePeriodSeconds: 1
  initContainers:
  - name: page
    image: busybox
    imagePullPolicy: IfNotPresent
    command: [sh, -c, 'echo "hello from $(hostname)" > /www/index.html']
    volumeMounts: [{name: www, mountPath: /www}]
  containers:
  - name: httpd
    image: busybox
    imagePullPolicy: IfNotPresent
    command: [httpd, -f, -p, '8080', -h, /www]
    ports: [{containerPort: 8080, hostPort: ${hostPort}}]
    volumeMounts: [{name: www, mountPath: /www}]
  volumes:
  - {name: www, emptyDir: {}}
`);
    const pod = await running('web');
    const [prefix] = CLUSTER_CIDR.split('.0.0/');
    assert.ok(pod.status.podIP?.startsWith(`${prefix}.`), `pod IP ${pod.status.podIP} in ${CLUSTER_CIDR}`);
    assert.equal(
      await eventually('httpd on the pod IP', () => httpGet(pod.status.podIP!, 8080)),
      'hello from web\n',
    );
    assert.equal(
      await eventually('httpd on the hostPort', () => httpGet(nodeIP, hostPort)),
      'hello from web\n',
    );
  });

  it('backs off a crashing container: CrashLoopBackOff, a growing restartCount, the last exit code', async () => {
    await apply(`apiVersion: v1
kind: Pod
metadata:
  name: crasher
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: busybox
    imagePullPolicy: IfNotPresent
    command: [sh, -c, 'exit 3']
`);
    // The first restart is immediate, the next waits 10 s (upstream's backoff).
    const main = await eventually(
      'the crasher restarted twice and backing off',
      async () => {
        const c = container(await getPod('crasher'), 'main');
        return c && c.restartCount >= 2 && c.state?.waiting?.reason === 'CrashLoopBackOff' ? c : undefined;
      },
      60_000,
    );
    assert.equal(main.lastState?.terminated?.exitCode, 3);
    assert.equal(main.lastState?.terminated?.reason, 'Error');
    assert.match(
      main.state?.waiting?.message ?? '',
      /^back-off \d+s restarting failed container=main pod=crasher_default/,
    );
    assert.equal(condition(await getPod('crasher'), 'Ready'), 'False');
    const table = await ok(skiff, ['get', 'pod', 'crasher', '--no-headers']);
    assert.match(table, /^crasher\s+0\/1\s+(CrashLoopBackOff|Error)\s+[2-9]/, table);
    assert.ok((await eventReasons('crasher')).includes('BackOff'));
  });

  it('restarts a container whose liveness probe fails', async () => {
    // Upstream's exec liveness example (a file that goes away), made quicker.
    await apply(`apiVersion: v1
kind: Pod
metadata:
  name: liveness
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: busybox
    imagePullPolicy: IfNotPresent
    command: [sh, -c, 'touch /tmp/healthy; sleep 3; rm -f /tmp/healthy; sleep 3600']
    livenessProbe:
      exec: {command: [cat, /tmp/healthy]}
      periodSeconds: 1
      failureThreshold: 2
`);
    const main = await eventually(
      'the liveness probe restarted the container',
      async () => {
        const c = container(await getPod('liveness'), 'main');
        return c && c.restartCount >= 1 && c.state?.running ? c : undefined;
      },
      60_000,
    );
    // sh as PID 1 ignores SIGTERM: the runtime kills it once the grace period is over.
    assert.equal(main.lastState?.terminated?.exitCode, 137);
    const reasons = await eventReasons('liveness');
    assert.ok(reasons.includes('Unhealthy'), reasons.join(','));
    assert.ok(reasons.includes('Killing'), reasons.join(','));
    const killing = await ok(skiff, [
      'get',
      'events',
      '--field-selector',
      'involvedObject.name=liveness,reason=Killing',
      '-o',
      'jsonpath={.items[*].message}',
    ]);
    assert.match(killing, /Container main failed liveness probe, will be restarted/);
  });

  it('gates the Ready condition on the readiness probe, both ways', async () => {
    const dir = join(hostDir, 'readiness');
    await apply(`apiVersion: v1
kind: Pod
metadata:
  name: readiness
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: busybox
    imagePullPolicy: IfNotPresent
    command: [sleep, '3600']
    readinessProbe:
      exec: {command: [cat, /probe/ready]}
      periodSeconds: 1
    volumeMounts: [{name: probe, mountPath: /probe}]
  volumes:
  - {name: probe, hostPath: {path: ${dir}, type: DirectoryOrCreate}}
`);
    let pod = await running('readiness');
    // Running, but not Ready: the probe has not succeeded yet.
    await new Promise((r) => setTimeout(r, 3000));
    pod = await getPod('readiness');
    assert.equal(pod.status.phase, 'Running');
    assert.equal(condition(pod, 'Ready'), 'False');
    assert.equal(condition(pod, 'ContainersReady'), 'False');
    assert.equal(container(pod, 'main')?.ready, false);

    writeFileSync(join(dir, 'ready'), 'yes\n');
    await eventually('Ready once the probe passes', async () => {
      const p = await getPod('readiness');
      return condition(p, 'Ready') === 'True' && container(p, 'main')?.ready;
    });
    await ok(skiff, ['wait', '--for=condition=Ready', 'pod/readiness', '--timeout=10s']);

    await rm(join(dir, 'ready'));
    pod = await eventually('not Ready once the probe fails', async () => {
      const p = await getPod('readiness');
      return condition(p, 'Ready') === 'False' ? p : undefined;
    });
    // Readiness never restarts a container.
    assert.equal(container(pod, 'main')?.restartCount, 0);
    assert.equal(pod.status.phase, 'Running');
  });

  it('shares an emptyDir between two containers of a pod', async () => {
    await apply(`apiVersion: v1
kind: Pod
metadata:
  name: shared
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: writer
    image: busybox
    imagePullPolicy: IfNotPresent
    command: [sh, -c, 'while true; do date +%s > /out/now.txt; echo written by writer > /out/index.html; sleep 1; done']
    volumeMounts: [{name: shared, mountPath: /out}]
  - name: server
    image: busybox
    imagePullPolicy: IfNotPresent
    command: [httpd, -f, -p, '8080', -h, /www]
    volumeMounts: [{name: shared, mountPath: /www, readOnly: true}]
  volumes:
  - {name: shared, emptyDir: {}}
`);
    const pod = await running('shared');
    assert.equal(
      await eventually("the writer's file, served by the other container", () =>
        httpGet(pod.status.podIP!, 8080, '/index.html'),
      ),
      'written by writer\n',
    );
    // It keeps changing under the server: one directory, not a copy.
    const first = Number(await httpGet(pod.status.podIP!, 8080, '/now.txt'));
    await eventually('the file updated', async () => {
      const now = Number(await httpGet(pod.status.podIP!, 8080, '/now.txt'));
      return now > first;
    });
  });

  it('takes env from a configMap and a secret (env and envFrom)', async () => {
    await apply(`apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  GREETING: hello from a configMap
  COLOR: blue
---
apiVersion: v1
kind: Secret
metadata:
  name: credentials
stringData:
  password: s3cret
---
apiVersion: v1
kind: Pod
metadata:
  name: env
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: busybox
    imagePullPolicy: IfNotPresent
    command: [sh, -c, 'mkdir /www && env > /www/env.txt && exec httpd -f -p 8080 -h /www']
    envFrom:
    - configMapRef: {name: settings}
      prefix: CM_
    env:
    - name: GREETING
      valueFrom: {configMapKeyRef: {name: settings, key: GREETING}}
    - name: PASSWORD
      valueFrom: {secretKeyRef: {name: credentials, key: password}}
    - name: MESSAGE
      value: $(GREETING) and $(PASSWORD)
    - name: MISSING_OK
      valueFrom: {configMapKeyRef: {name: settings, key: absent, optional: true}}
`);
    const pod = await running('env');
    const body = await eventually('the env file', () => httpGet(pod.status.podIP!, 8080, '/env.txt'));
    const env = new Map(
      body
        .split('\n')
        .filter(Boolean)
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    assert.equal(env.get('GREETING'), 'hello from a configMap');
    assert.equal(env.get('PASSWORD'), 's3cret');
    assert.equal(env.get('MESSAGE'), 'hello from a configMap and s3cret');
    assert.equal(env.get('CM_COLOR'), 'blue');
    assert.equal(env.get('CM_GREETING'), 'hello from a configMap');
    assert.equal(env.has('MISSING_OK'), false);
    assert.equal(env.get('HOSTNAME'), 'env');
    await ok(skiff, ['delete', 'configmap', 'settings']);
    await ok(skiff, ['delete', 'secret', 'credentials']);
  });

  it('runs the preStop hook on graceful deletion, before SIGTERM', async () => {
    const dir = join(hostDir, 'prestop');
    await apply(`apiVersion: v1
kind: Pod
metadata:
  name: goodbye
spec:
  terminationGracePeriodSeconds: 30
  containers:
  - name: main
    image: busybox
    imagePullPolicy: IfNotPresent
    command: [sh, -c, "trap 'echo SIGTERM >> /host/order; exit 0' TERM; echo started >> /host/order; while true; do sleep 1; done"]
    lifecycle:
      preStop:
        exec: {command: [sh, -c, 'echo preStop >> /host/order']}
    volumeMounts: [{name: host, mountPath: /host}]
  volumes:
  - {name: host, hostPath: {path: ${dir}, type: DirectoryOrCreate}}
`);
    await running('goodbye');
    await eventually('the container started', async () =>
      (await readFile(join(dir, 'order'), 'utf8').catch(() => '')).includes('started'),
    );
    const start = Date.now();
    await ok(skiff, ['delete', 'pod', 'goodbye', '--wait=true', '--timeout=60s'], { timeoutMs: 70_000 });
    // The container exits on SIGTERM: the deletion does not wait out the 30 s grace period.
    assert.ok(Date.now() - start < 25_000, `deleted in ${Date.now() - start} ms`);
    assert.equal(await readFile(join(dir, 'order'), 'utf8'), 'started\npreStop\nSIGTERM\n');
    const gone = await skiff.kubectl(['get', 'pod', 'goodbye']);
    assert.match(gone.stderr, /NotFound/);
  });

  it('leaves running containers alone when the server and its agent restart', async () => {
    const hostPort = await freePort();
    await apply(`apiVersion: v1
kind: Pod
metadata:
  name: steady
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: busybox
    imagePullPolicy: IfNotPresent
    command: [sh, -c, 'mkdir /www && date +%s%N > /www/boot.txt && exec httpd -f -p 8080 -h /www']
    ports: [{containerPort: 8080, hostPort: ${hostPort}}]
`);
    const before = await running('steady');
    const boot = await eventually('httpd', () => httpGet(before.status.podIP!, 8080, '/boot.txt'));
    const main = container(before, 'main')!;
    assert.ok(main.containerID?.startsWith('containerd://'), main.containerID);

    await skiff.restart();
    // A pod created now runs only once the new kubelet is up: by then it has
    // listed the pods bound to it (steady among them), relisted CRI, and
    // synced steady against what it found there. A second on top lets any
    // restart it wrongly decided on show in the status.
    await apply(`apiVersion: v1
kind: Pod
metadata:
  name: after-restart
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {name: main, image: busybox, imagePullPolicy: IfNotPresent, command: [sleep, '3600']}
`);
    await running('after-restart');
    await new Promise((r) => setTimeout(r, 1000));
    const after = await getPod('steady');
    const same = container(after, 'main')!;
    assert.equal(after.status.phase, 'Running');
    assert.equal(after.metadata.uid, before.metadata.uid);
    assert.equal(same.containerID, main.containerID);
    assert.equal(same.restartCount, 0);
    assert.equal(same.state?.running?.startedAt, main.state?.running?.startedAt);
    assert.equal(after.status.podIP, before.status.podIP);
    // The same process, still serving, on the pod IP and the hostPort.
    assert.equal(await httpGet(before.status.podIP!, 8080, '/boot.txt'), boot);
    assert.equal(await eventually('the hostPort', () => httpGet(nodeIP, hostPort, '/boot.txt')), boot);
  });
});
