import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Pod } from '../api/types/core-v1.ts';
import { KUBERNETES_CONTAINER_NAME_LABEL, KUBERNETES_POD_UID_LABEL } from './labels.ts';
import type { ContainerConfig } from './runtime/runtime.ts';
import { type KubeletTest, startKubeletTest, TEST_NODE } from './testing.ts';

let t: KubeletTest;
const created: ContainerConfig[] = [];
before(async () => {
  t = await startKubeletTest();
  const original = t.runtime.createContainer.bind(t.runtime);
  t.runtime.createContainer = async (id: string, config: ContainerConfig) => {
    created.push(config);
    return original(id, config);
  };
});
after(() => t.close());

const cond = (pod: Pod | undefined, type: string) =>
  pod?.status?.conditions?.find((c) => c.type === type)?.status;
const phase = (name: string) => async () => {
  const p = await t.getPod(name);
  return p?.status?.phase;
};

describe('kubelet: node', () => {
  it('registers its Node with capacity, allocatable, addresses, nodeInfo, conditions and labels', async () => {
    const node = await t.clients.nodes.get(undefined, TEST_NODE);
    const labels = node.metadata.labels ?? {};
    assert.equal(labels['kubernetes.io/hostname'], TEST_NODE);
    assert.equal(labels['kubernetes.io/os'], 'linux');
    assert.ok(labels['kubernetes.io/arch']);
    const s = node.status ?? {};
    assert.equal(s.capacity?.cpu, '4');
    assert.equal(s.capacity?.memory, `${8 * 1024 * 1024}Ki`);
    assert.equal(s.capacity?.pods, '110');
    assert.ok(s.capacity?.['ephemeral-storage']);
    // Allocatable is capacity less the hard eviction thresholds (100Mi memory, 10% nodefs).
    assert.equal(s.allocatable?.memory, `${8 * 1024 * 1024 - 100 * 1024}Ki`);
    assert.equal(s.allocatable?.['ephemeral-storage'], String(Math.floor(100 * 1024 ** 3 * 0.9)));
    assert.deepEqual(s.addresses, [
      { type: 'InternalIP', address: '192.0.2.10' },
      { type: 'Hostname', address: TEST_NODE },
    ]);
    assert.equal(s.nodeInfo?.containerRuntimeVersion, 'hollow://0.1.0');
    assert.equal(s.nodeInfo?.operatingSystem, 'linux');
    assert.equal(s.nodeInfo?.machineID, 'test-machine');
    const types = (s.conditions ?? []).map((c) => `${c.type}=${c.status}`);
    assert.deepEqual(types, [
      'MemoryPressure=False',
      'DiskPressure=False',
      'PIDPressure=False',
      'Ready=True',
    ]);
    assert.equal(s.conditions?.[3]?.reason, 'KubeletReady');
    assert.equal(s.daemonEndpoints?.kubeletEndpoint?.Port, 10250);
  });

  it('renews its Lease in kube-node-lease every 10 s, owned by the Node', async () => {
    const node = await t.clients.nodes.get(undefined, TEST_NODE);
    const first = await t.until('the lease', () => t.clients.leases.get('kube-node-lease', TEST_NODE));
    assert.equal(first.spec?.holderIdentity, TEST_NODE);
    assert.equal(first.spec?.leaseDurationSeconds, 40);
    assert.deepEqual(
      first.metadata.ownerReferences?.map((r) => [r.kind, r.name, r.uid]),
      [['Node', TEST_NODE, node.metadata.uid]],
    );
    await t.advance(9000);
    const same = await t.clients.leases.get('kube-node-lease', TEST_NODE);
    assert.equal(same.spec?.renewTime, first.spec?.renewTime);
    await t.advance(1000);
    const renewed = await t.until('a renewal', async () => {
      const l = await t.clients.leases.get('kube-node-lease', TEST_NODE);
      return l.spec?.renewTime !== first.spec?.renewTime ? l : undefined;
    });
    assert.ok(Date.parse(renewed.spec?.renewTime ?? '') - Date.parse(first.spec?.renewTime ?? '') >= 10_000);
  });
  it('rewrites the Node status only when it changes, or every 5 minutes (the Lease is the heartbeat)', async () => {
    const before = await t.clients.nodes.get(undefined, TEST_NODE);
    await t.advance(20_000, 10_000);
    await new Promise((r) => setTimeout(r, 100));
    const quiet = await t.clients.nodes.get(undefined, TEST_NODE);
    assert.equal(
      quiet.metadata.resourceVersion,
      before.metadata.resourceVersion,
      'unchanged status not rewritten',
    );
    await t.advance(300_000, 10_000);
    const reported = await t.until('a status report after 5 minutes', async () => {
      const n = await t.clients.nodes.get(undefined, TEST_NODE);
      return n.metadata.resourceVersion !== before.metadata.resourceVersion ? n : undefined;
    });
    const ready = (n: typeof before) => n.status?.conditions?.find((c) => c.type === 'Ready');
    assert.notEqual(ready(reported)?.lastHeartbeatTime, ready(before)?.lastHeartbeatTime);
    assert.equal(ready(reported)?.lastTransitionTime, ready(before)?.lastTransitionTime);
  });
});

describe('kubelet: pods', () => {
  it('runs a bound pod: sandbox IP from the podCIDR, Running, Ready, conditions and container status', async () => {
    await t.clients.nodes.patch(undefined, TEST_NODE, 'merge', {
      spec: { podCIDR: '10.42.7.0/24', podCIDRs: ['10.42.7.0/24'] },
    });
    await t.until('the kubelet to see its podCIDR', () => t.kubelet.podCIDR());
    await t.pod('web', {
      containers: [{ name: 'nginx', image: 'nginx:1.27', ports: [{ containerPort: 80 }] }],
    });
    const pod = await t.until('web Ready', async () => {
      const p = await t.getPod('web');
      return cond(p, 'Ready') === 'True' ? p : undefined;
    });
    const s = pod.status ?? {};
    assert.equal(s.phase, 'Running');
    assert.match(s.podIP ?? '', /^10\.42\.7\.\d+$/);
    assert.deepEqual(s.podIPs, [{ ip: s.podIP }]);
    assert.equal(s.hostIP, '192.0.2.10');
    assert.ok(s.startTime);
    assert.equal(s.qosClass, 'BestEffort');
    for (const type of [
      'PodReadyToStartContainers',
      'Initialized',
      'ContainersReady',
      'Ready',
      'PodScheduled',
    ]) {
      assert.equal(cond(pod, type), 'True', type);
    }
    const cs = s.containerStatuses?.[0];
    assert.equal(cs?.name, 'nginx');
    assert.equal(cs?.ready, true);
    assert.equal(cs?.started, true);
    assert.equal(cs?.restartCount, 0);
    assert.ok(cs?.state?.running?.startedAt);
    assert.match(cs?.containerID ?? '', /^hollow:\/\/[0-9a-f]{64}$/);
    assert.match(cs?.imageID ?? '', /^sha256:/);
    // The runtime holds the pod's identity in the labels upstream uses.
    const [c] = await t.runtime.listContainers({
      labelSelector: { [KUBERNETES_POD_UID_LABEL]: pod.metadata.uid! },
    });
    assert.equal(c?.labels[KUBERNETES_CONTAINER_NAME_LABEL], 'nginx');
  });

  it('syncs a new pod once: the relists during its first sync only see what that sync starts and reports', async () => {
    // Container starts that take a while, as on containerd, so that the PLEG
    // (every 50 ms here) relists several times while the first sync runs.
    const start = t.runtime.startContainer.bind(t.runtime);
    const list = t.runtime.listContainers.bind(t.runtime);
    const selectors: string[] = [];
    t.runtime.startContainer = async (id: string) => {
      await new Promise((r) => setTimeout(r, 300));
      return start(id);
    };
    t.runtime.listContainers = async (filter = {}) => {
      selectors.push(filter.labelSelector?.[KUBERNETES_POD_UID_LABEL] ?? '');
      return list(filter);
    };
    try {
      const pod = await t.pod('first-sync', { containers: [{ name: 'app', image: 'busybox' }] });
      await t.until('first-sync Running', async () => (await phase('first-sync')()) === 'Running');
      // A few more relists, which see nothing new.
      await new Promise((r) => setTimeout(r, 300));
      // A sync lists the pod's containers twice: before it acts and after.
      assert.equal(selectors.filter((s) => s === pod.metadata.uid).length, 2);
      // A change the sync did not make is still noticed: the container exits.
      const [c] = await list({ labelSelector: { [KUBERNETES_POD_UID_LABEL]: pod.metadata.uid! } });
      await t.runtime.stopContainer(c!.id, 0);
      await t.until('first-sync restarted', async () => {
        const p = await t.getPod('first-sync');
        return p?.status?.containerStatuses?.[0]?.restartCount === 1;
      });
    } finally {
      t.runtime.startContainer = start;
      t.runtime.listContainers = list;
    }
  });

  it('gives containers command, args, workingDir and env from values, fieldRef, resourceFieldRef, configMaps and secrets', async () => {
    await t.clients.configMaps.create('default', {
      metadata: { name: 'settings' },
      data: { MODE: 'fast', LEVEL: '3' },
    });
    await t.clients.secrets.create('default', {
      metadata: { name: 'creds' },
      data: { password: Buffer.from('s3cret').toString('base64') },
    });
    await t.pod(
      'envy',
      {
        containers: [
          {
            name: 'app',
            image: 'busybox',
            command: ['sh', '-c'],
            args: ['echo $(GREETING) $(MISSING) $$(ESCAPED)'],
            workingDir: '/work',
            resources: { limits: { memory: '64Mi', cpu: '500m' } },
            envFrom: [{ configMapRef: { name: 'settings' }, prefix: 'CFG_' }],
            env: [
              { name: 'GREETING', value: 'hello' },
              { name: 'FULL', value: '$(GREETING) world' },
              { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
              { name: 'APP_LABEL', valueFrom: { fieldRef: { fieldPath: "metadata.labels['app']" } } },
              { name: 'NODE', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
              { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
              {
                name: 'MEM_MI',
                valueFrom: { resourceFieldRef: { resource: 'limits.memory', divisor: '1Mi' } },
              },
              { name: 'CPU', valueFrom: { resourceFieldRef: { resource: 'limits.cpu' } } },
              { name: 'MODE', valueFrom: { configMapKeyRef: { name: 'settings', key: 'MODE' } } },
              { name: 'PASSWORD', valueFrom: { secretKeyRef: { name: 'creds', key: 'password' } } },
            ],
          },
        ],
      },
      { labels: { app: 'envy' } },
    );
    const pod = await t.until('envy Running', async () => {
      const p = await t.getPod('envy');
      return p?.status?.phase === 'Running' ? p : undefined;
    });
    const config = created.find((c) => c.labels?.['io.kubernetes.pod.name'] === 'envy');
    assert.ok(config);
    const env = Object.fromEntries((config.envs ?? []).map((e) => [e.key, e.value]));
    assert.deepEqual(config.command, ['sh', '-c']);
    assert.deepEqual(config.args, ['echo hello $(MISSING) $(ESCAPED)']);
    assert.equal(config.workingDir, '/work');
    assert.equal(env.GREETING, 'hello');
    assert.equal(env.FULL, 'hello world');
    assert.equal(env.POD_NAME, 'envy');
    assert.equal(env.APP_LABEL, 'envy');
    assert.equal(env.NODE, TEST_NODE);
    assert.equal(env.POD_IP, pod.status?.podIP);
    assert.equal(env.MEM_MI, '64');
    assert.equal(env.CPU, '1');
    assert.equal(env.MODE, 'fast');
    assert.equal(env.CFG_LEVEL, '3');
    assert.equal(env.PASSWORD, 's3cret');
    // Requests default to the limits: Guaranteed.
    assert.equal(pod.status?.qosClass, 'Guaranteed');
  });

  it('reports CreateContainerConfigError for a missing configMap, and starts once it exists', async () => {
    await t.pod('needs-config', {
      containers: [
        {
          name: 'app',
          image: 'busybox',
          env: [{ name: 'X', valueFrom: { configMapKeyRef: { name: 'late', key: 'x' } } }],
        },
      ],
    });
    const waiting = await t.until('CreateContainerConfigError', async () => {
      const p = await t.getPod('needs-config');
      const w = p?.status?.containerStatuses?.[0]?.state?.waiting;
      return w?.reason === 'CreateContainerConfigError' ? w : undefined;
    });
    assert.equal(waiting.message, 'configmap "late" not found');
    assert.equal((await t.getPod('needs-config'))?.status?.phase, 'Pending');
    await t.clients.configMaps.create('default', { metadata: { name: 'late' }, data: { x: '1' } });
    await t.advance(1000);
    await t.until('needs-config Running', async () => (await phase('needs-config')()) === 'Running');
  });
});

const containerStatus = async (name: string) => (await t.getPod(name))?.status?.containerStatuses?.[0];

describe('kubelet: restart policy', () => {
  it('backs a crashing container off: first restart at once, then 10 s, 20 s (CrashLoopBackOff)', async () => {
    await t.pod('crasher', {
      restartPolicy: 'Always',
      containers: [{ name: 'app', image: 'busybox', command: ['sh', '-c', 'exit 2'] }],
    });
    const backingOff = await t.until('CrashLoopBackOff after the first restart', async () => {
      const cs = await containerStatus('crasher');
      return cs?.state?.waiting?.reason === 'CrashLoopBackOff' ? cs : undefined;
    });
    assert.equal(backingOff.restartCount, 1);
    assert.match(
      backingOff.state?.waiting?.message ?? '',
      /^back-off 10s restarting failed container=app pod=crasher_default/,
    );
    assert.equal(backingOff.lastState?.terminated?.exitCode, 2);
    assert.equal(backingOff.lastState?.terminated?.reason, 'Error');
    assert.equal(backingOff.ready, false);
    const pod = await t.getPod('crasher');
    assert.equal(pod?.status?.phase, 'Running');
    assert.equal(cond(pod, 'Ready'), 'False');
    assert.equal(
      pod?.status?.conditions?.find((c) => c.type === 'ContainersReady')?.reason,
      'ContainersNotReady',
    );

    await t.advance(10_000);
    const second = await t.until('the second restart, then a 20 s backoff', async () => {
      const cs = await containerStatus('crasher');
      return cs?.restartCount === 2 && cs.state?.waiting?.reason === 'CrashLoopBackOff' ? cs : undefined;
    });
    assert.match(second.state?.waiting?.message ?? '', /^back-off 20s /);
    await t.advance(10_000);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal((await containerStatus('crasher'))?.restartCount, 2, 'still backing off after 10 s');
    await t.advance(10_000);
    await t.until('the third restart', async () => (await containerStatus('crasher'))?.restartCount === 3);
    const events = await t.clients.events.list('default', { fieldSelector: 'involvedObject.name=crasher' });
    assert.ok(events.items.some((e) => e.reason === 'BackOff' && e.type === 'Warning'));
    assert.ok(events.items.some((e) => e.reason === 'Started'));
  });

  it('OnFailure restarts a failed container but not a succeeded one (Succeeded)', async () => {
    await t.pod('once', {
      restartPolicy: 'OnFailure',
      containers: [{ name: 'app', image: 'busybox', command: ['sh', '-c', 'sleep 5; exit 0'] }],
    });
    await t.until('once Running', async () => (await phase('once')()) === 'Running');
    await t.advance(5000);
    const pod = await t.until('once Succeeded', async () => {
      const p = await t.getPod('once');
      return p?.status?.phase === 'Succeeded' ? p : undefined;
    });
    const term = pod.status?.containerStatuses?.[0]?.state?.terminated;
    assert.equal(term?.exitCode, 0);
    assert.equal(term?.reason, 'Completed');
    assert.equal(pod.status?.containerStatuses?.[0]?.restartCount, 0);
    assert.equal(pod.status?.conditions?.find((c) => c.type === 'Ready')?.reason, 'PodCompleted');
  });

  it('Never leaves a failed container failed (Failed, exit code kept)', async () => {
    await t.pod('never', {
      restartPolicy: 'Never',
      containers: [{ name: 'app', image: 'busybox', command: ['sh', '-c', 'exit 3'] }],
    });
    const pod = await t.until('never Failed', async () => {
      const p = await t.getPod('never');
      return p?.status?.phase === 'Failed' ? p : undefined;
    });
    assert.equal(pod.status?.containerStatuses?.[0]?.state?.terminated?.exitCode, 3);
    assert.equal(pod.status?.containerStatuses?.[0]?.restartCount, 0);
    // The sandbox of a finished pod is stopped; the container is kept (for logs) until the pod goes.
    const sandboxes = await t.runtime.listPodSandbox({
      labelSelector: { [KUBERNETES_POD_UID_LABEL]: pod.metadata.uid! },
    });
    await t.until('sandbox stopped', async () => {
      const s = await t.runtime.listPodSandbox({
        labelSelector: { [KUBERNETES_POD_UID_LABEL]: pod.metadata.uid! },
      });
      return s[0]?.state === 'SANDBOX_NOTREADY';
    });
    assert.equal(sandboxes.length, 1);
  });

  it('runs init containers in order before the app containers', async () => {
    await t.pod('initd', {
      initContainers: [
        { name: 'first', image: 'busybox', command: ['sh', '-c', 'sleep 3'] },
        { name: 'second', image: 'busybox', command: ['true'] },
      ],
      containers: [{ name: 'app', image: 'busybox' }],
    });
    const pending = await t.until('first init running', async () => {
      const p = await t.getPod('initd');
      return p?.status?.initContainerStatuses?.[0]?.state?.running ? p : undefined;
    });
    assert.equal(pending.status?.phase, 'Pending');
    assert.equal(pending.status?.initContainerStatuses?.[1]?.state?.waiting?.reason, 'PodInitializing');
    assert.equal(pending.status?.containerStatuses?.[0]?.state?.waiting?.reason, 'PodInitializing');
    const init = pending.status?.conditions?.find((c) => c.type === 'Initialized');
    assert.equal(init?.status, 'False');
    assert.equal(init?.message, 'containers with incomplete status: [first second]');
    await t.advance(3000);
    const running = await t.until('initd Running', async () => {
      const p = await t.getPod('initd');
      return p?.status?.phase === 'Running' ? p : undefined;
    });
    assert.deepEqual(
      running.status?.initContainerStatuses?.map((s) => [s.name, s.state?.terminated?.reason]),
      [
        ['first', 'Completed'],
        ['second', 'Completed'],
      ],
    );
    assert.equal(cond(running, 'Initialized'), 'True');
  });

  it('fails the pod when an init container fails and restartPolicy is Never', async () => {
    await t.pod('badinit', {
      restartPolicy: 'Never',
      initContainers: [{ name: 'setup', image: 'busybox', command: ['false'] }],
      containers: [{ name: 'app', image: 'busybox' }],
    });
    await t.until('badinit Failed', async () => (await phase('badinit')()) === 'Failed');
    assert.equal(created.filter((c) => c.labels?.['io.kubernetes.pod.name'] === 'badinit').length, 1);
  });
});

describe('kubelet: termination', () => {
  it('deletes gracefully: SIGTERM, SIGKILL after the grace period, then the pod leaves the API', async () => {
    const pod = await t.pod('stubborn', {
      terminationGracePeriodSeconds: 30,
      containers: [{ name: 'app', image: 'busybox', command: ['sh', '-c', "trap '' TERM; sleep infinity"] }],
    });
    await t.until('stubborn Running', async () => (await phase('stubborn')()) === 'Running');
    await t.clients.pods.delete('default', 'stubborn');
    // The API server waits for the kubelet: the pod is only marked.
    const marked = await t.getPod('stubborn');
    assert.ok(marked?.metadata.deletionTimestamp);
    assert.equal(marked?.metadata.deletionGracePeriodSeconds, 30);
    await t.until('Killing event', async () => {
      const ev = await t.clients.events.list('default', { fieldSelector: 'involvedObject.name=stubborn' });
      return ev.items.some((e) => e.reason === 'Killing');
    });
    await t.advance(29_000);
    await new Promise((r) => setTimeout(r, 200));
    assert.ok(await t.getPod('stubborn'), 'still there within the grace period');
    const [c] = await t.runtime.listContainers({
      labelSelector: { [KUBERNETES_POD_UID_LABEL]: pod.metadata.uid! },
    });
    assert.equal(c?.state, 'CONTAINER_RUNNING');
    await t.advance(1000);
    await t.until('stubborn deleted', async () => !(await t.getPod('stubborn')));
    // Its containers and sandbox are removed from the runtime.
    await t.until('containers removed', async () => {
      const left = await t.runtime.listContainers({
        labelSelector: { [KUBERNETES_POD_UID_LABEL]: pod.metadata.uid! },
      });
      const sandboxes = await t.runtime.listPodSandbox({
        labelSelector: { [KUBERNETES_POD_UID_LABEL]: pod.metadata.uid! },
      });
      return left.length === 0 && sandboxes.length === 0;
    });
  });

  it('a container that handles SIGTERM ends at once; the pod reports Failed before it goes', async () => {
    const pod = await t.pod('polite', { containers: [{ name: 'app', image: 'busybox' }] });
    await t.until('polite Running', async () => (await phase('polite')()) === 'Running');
    const seen: string[] = [];
    const watch = t.clients.pods.watch(
      'default',
      { fieldSelector: 'metadata.name=polite' },
      (e) => {
        const p = e.object as Pod;
        const term = p.status?.containerStatuses?.[0]?.state?.terminated;
        seen.push(`${e.type}:${p.status?.phase}:${term?.exitCode ?? ''}`);
      },
      () => {},
    );
    await t.clients.pods.delete('default', 'polite');
    await t.until('polite deleted', async () => !(await t.getPod('polite')));
    watch.stop();
    assert.ok(seen.includes('MODIFIED:Failed:143'), seen.join(' '));
    void pod;
  });
});

describe('kubelet: restarts', () => {
  it('a restarted kubelet picks up running containers without restarting them', async () => {
    await t.pod('steady', { containers: [{ name: 'app', image: 'busybox' }] });
    const before = await t.until('steady Running', async () => {
      const p = await t.getPod('steady');
      return p?.status?.phase === 'Running' ? p : undefined;
    });
    const id = before.status?.containerStatuses?.[0]?.containerID;
    const steadyCreated = () =>
      created.filter((c) => c.labels?.['io.kubernetes.pod.name'] === 'steady').length;
    const count = steadyCreated();
    await t.restartKubelet();
    await t.advance(1000);
    await new Promise((r) => setTimeout(r, 300));
    const after = await t.getPod('steady');
    assert.equal(after?.status?.containerStatuses?.[0]?.containerID, id);
    assert.equal(after?.status?.containerStatuses?.[0]?.restartCount, 0);
    assert.equal(steadyCreated(), count, 'no container was created');
  });

  it('re-creates a sandbox that stopped under a running pod, and restarts its container in the new one', async () => {
    const pod = await t.pod('resandbox', { containers: [{ name: 'app', image: 'busybox' }] });
    const uid = pod.metadata.uid!;
    const first = await t.until('resandbox Running', async () => {
      const p = await t.getPod('resandbox');
      return p?.status?.phase === 'Running' ? p : undefined;
    });
    const [old] = await t.runtime.listPodSandbox({ labelSelector: { [KUBERNETES_POD_UID_LABEL]: uid } });
    // The sandbox goes (its containers with it), as when the pause container dies.
    await t.runtime.stopPodSandbox(old!.id);
    await t.advance(1000);
    const again = await t.until('resandbox restarted in a new sandbox', async () => {
      const p = await t.getPod('resandbox');
      const cs = p?.status?.containerStatuses?.[0];
      return cs?.state?.running && cs.restartCount === 1 ? p : undefined;
    });
    assert.notEqual(
      again.status?.containerStatuses?.[0]?.containerID,
      first.status?.containerStatuses?.[0]?.containerID,
    );
    const sandboxes = await t.runtime.listPodSandbox({ labelSelector: { [KUBERNETES_POD_UID_LABEL]: uid } });
    const ready = sandboxes.filter((s) => s.state === 'SANDBOX_READY');
    assert.equal(ready.length, 1);
    assert.equal(ready[0]?.metadata.attempt, 1);
    const [c] = await t.runtime.listContainers({
      labelSelector: { [KUBERNETES_POD_UID_LABEL]: uid },
      state: 'CONTAINER_RUNNING',
    });
    assert.equal(c?.podSandboxId, ready[0]?.id, 'the container runs in the new sandbox');
  });

  it('removes the containers of pods deleted while the kubelet was down', async () => {
    const pod = await t.pod('orphan', { containers: [{ name: 'app', image: 'busybox' }] });
    await t.until('orphan Running', async () => (await phase('orphan')()) === 'Running');
    await t.stopKubelet();
    await t.clients.pods.delete('default', 'orphan', { gracePeriodSeconds: 0 });
    await t.startKubelet();
    await t.until('orphan containers removed', async () => {
      const left = await t.runtime.listContainers({
        labelSelector: { [KUBERNETES_POD_UID_LABEL]: pod.metadata.uid! },
      });
      return left.length === 0;
    });
  });
});

describe('kubelet: images, deadlines, sidecars, service links', () => {
  it('reports ErrImagePull, then ImagePullBackOff, for an image it cannot pull', async () => {
    await t.pod('unpullable', { containers: [{ name: 'app', image: 'registry.invalid/app:1' }] });
    // The first failure is ErrImagePull; the syncs that follow within the
    // backoff report ImagePullBackOff (often at once, as upstream's do).
    await t.until('ImagePullBackOff', async () => {
      const w = (await containerStatus('unpullable'))?.state?.waiting;
      return w?.reason === 'ImagePullBackOff';
    });
    const events = await t.clients.events.list('default', {
      fieldSelector: 'involvedObject.name=unpullable',
    });
    const failed = events.items
      .filter((e) => e.reason === 'Failed' && e.type === 'Warning')
      .map((e) => e.message);
    assert.ok(failed.includes('Error: ErrImagePull'), failed.join('; '));
    assert.ok(
      failed.some((m) => m?.startsWith('Failed to pull image "registry.invalid/app:1"')),
      failed.join('; '),
    );
    assert.equal((await t.getPod('unpullable'))?.status?.phase, 'Pending');
  });

  it('fails a pod past its activeDeadlineSeconds (DeadlineExceeded)', async () => {
    await t.pod('deadline', { activeDeadlineSeconds: 60, containers: [{ name: 'app', image: 'busybox' }] });
    await t.until('deadline Running', async () => (await phase('deadline')()) === 'Running');
    await t.advance(60_000, 10_000);
    const pod = await t.until('deadline Failed', async () => {
      const p = await t.getPod('deadline');
      return p?.status?.phase === 'Failed' ? p : undefined;
    });
    assert.equal(pod.status?.reason, 'DeadlineExceeded');
    assert.equal(pod.status?.containerStatuses?.[0]?.state?.terminated?.exitCode, 143);
  });

  it('starts a sidecar (restartable init container) and keeps it running beside the app', async () => {
    await t.pod('sidecar', {
      initContainers: [{ name: 'proxy', image: 'busybox', restartPolicy: 'Always' }],
      containers: [{ name: 'app', image: 'busybox' }],
    });
    const pod = await t.until('sidecar Ready', async () => {
      const p = await t.getPod('sidecar');
      return cond(p, 'Ready') === 'True' ? p : undefined;
    });
    assert.ok(pod.status?.initContainerStatuses?.[0]?.state?.running);
    assert.equal(pod.status?.initContainerStatuses?.[0]?.ready, true);
    assert.ok(pod.status?.containerStatuses?.[0]?.state?.running);
  });

  it("gives containers their namespace's service variables (docker links), unless enableServiceLinks is false", async () => {
    const svc = await t.clients.services.create('default', {
      metadata: { name: 'redis-primary' },
      spec: { ports: [{ name: 'redis', port: 6379, protocol: 'TCP' }] },
    });
    const ip = svc.spec?.clusterIP;
    const envOf = (pod: string) =>
      Object.fromEntries(
        (created.find((c) => c.labels?.['io.kubernetes.pod.name'] === pod)?.envs ?? []).map((e) => [
          e.key,
          e.value,
        ]),
      );
    // The kubelet learns of services through its informer: wait until a new pod sees this one.
    let probes = 0;
    await t.until('the kubelet knows the service', async () => {
      const name = `probe-${probes++}`;
      await t.pod(name, {});
      await t.until(`${name} Running`, async () => (await phase(name)()) === 'Running');
      return envOf(name).REDIS_PRIMARY_SERVICE_HOST === ip;
    });
    await t.pod('linked', { containers: [{ name: 'app', image: 'busybox' }] });
    await t.pod('unlinked', { enableServiceLinks: false, containers: [{ name: 'app', image: 'busybox' }] });
    await t.until(
      'both Running',
      async () => (await phase('linked')()) === 'Running' && (await phase('unlinked')()) === 'Running',
    );
    const linked = envOf('linked');
    assert.equal(linked.REDIS_PRIMARY_SERVICE_HOST, ip);
    assert.equal(linked.REDIS_PRIMARY_SERVICE_PORT, '6379');
    assert.equal(linked.REDIS_PRIMARY_SERVICE_PORT_REDIS, '6379');
    assert.equal(linked.REDIS_PRIMARY_PORT, `tcp://${ip}:6379`);
    assert.equal(linked.REDIS_PRIMARY_PORT_6379_TCP_ADDR, ip);
    assert.equal(envOf('unlinked').REDIS_PRIMARY_SERVICE_HOST, undefined);
  });
});
