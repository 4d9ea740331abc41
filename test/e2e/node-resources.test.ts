// Node resource management with real containers: `skiff server` and its
// agent on containerd, with the kubelet flags given as k3s takes them
// (`--kubelet-arg`). What each test shows is upstream kubelet behaviour:
//
//   - allocatable is capacity less --system-reserved and --eviction-hard;
//   - pods run in the kubepods → burstable/besteffort → pod<uid> cgroup
//     hierarchy, a Guaranteed pod's memory limit enforced at its pod cgroup;
//   - with --enforce-node-allocatable=pods, kubepods is capped, and a
//     BestEffort memory hog is OOM-killed before a Guaranteed pod is touched;
//   - the eviction manager: a pod that fills a memory-backed emptyDir past
//     the memory.available threshold (kubepods' allocatable), and one that
//     fills the node's disk past nodefs.available, are evicted (Failed,
//     Evicted, upstream's message), the node reports MemoryPressure or
//     DiskPressure and gets the matching taint, and both clear afterwards.
//
// The node's disk (--root-dir, nodefs) is a 256 MiB tmpfs this file mounts,
// so the disk test fills it in a second; the thresholds are the file's own.
//
// The node's cgroups are under a root of this file's own
// (--kubelet-arg cgroup-root=...), so nothing here touches another node's
// pods, and kubepods is capped at 600 MiB by reserving the rest of the
// machine's memory for the system. The cgroup tree is removed at the end.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { createCgroupManager } from '../../src/kubelet/cm/cgroup-manager.ts';
import { eventually, ok, type Skiff, startSkiff } from './harness.ts';

const CLUSTER_CIDR = '10.196.0.0/16';
const CGROUP_ROOT = `/skiff-e2e-nr-${process.pid}`;
const KUBEPODS_BYTES = 600 * 1024 * 1024;
const cgroups = createCgroupManager();
const memoryFile = cgroups.mode === 'v2' ? 'memory.max' : 'memory.limit_in_bytes';

let skiff: Skiff;
/** The node's --root-dir: a small tmpfs, the node's disk (nodefs) for the eviction tests. */
const rootDir = mkdtempSync(join(tmpdir(), 'skiff-e2e-nodefs-'));
const ROOT_DIR_BYTES = 256 * 1024 * 1024;

interface PodJSON {
  metadata: { name: string; uid: string };
  status: {
    phase?: string;
    qosClass?: string;
    containerStatuses?: {
      name: string;
      restartCount: number;
      state?: { running?: unknown; terminated?: { reason?: string; exitCode: number } };
      lastState?: { terminated?: { reason?: string } };
    }[];
  };
}

const apply = (yaml: string) => ok(skiff, ['apply', '-f', '-'], { input: yaml });
const getPod = async (name: string): Promise<PodJSON> =>
  JSON.parse(await ok(skiff, ['get', 'pod', name, '-o', 'json']));
const withLogs = (err: unknown) => new Error(`${err}\nserver output:\n${skiff.logs().slice(-20_000)}`);

async function running(name: string): Promise<PodJSON> {
  return eventually(
    `pod ${name} Running`,
    async () => {
      const p = await getPod(name);
      return p.status.phase === 'Running' ? p : undefined;
    },
    90_000,
  ).catch((err) => {
    throw withLogs(err);
  });
}

const podYaml = (name: string, command: string, resources = '', restartPolicy = 'Always') => `
apiVersion: v1
kind: Pod
metadata: {name: ${name}}
spec:
  restartPolicy: ${restartPolicy}
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: busybox
    imagePullPolicy: Never
    command: ["sh", "-c", ${JSON.stringify(command)}]
${resources ? `    resources: ${resources}` : ''}
`;

before(async () => {
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${ROOT_DIR_BYTES}`, 'skiff-e2e-nodefs', rootDir]);
  skiff = await startSkiff([
    '--no-disable-agent',
    '--cluster-cidr',
    CLUSTER_CIDR,
    '--service-cidr',
    '10.197.0.0/16',
    '--kubelet-arg',
    `cgroup-root=${CGROUP_ROOT}`,
    '--kubelet-arg',
    `system-reserved=memory=${totalmem() - KUBEPODS_BYTES}`,
    '--kubelet-arg',
    `root-dir=${rootDir}`,
    // nodefs is the tmpfs; imagefs is containerd's root on the machine's disk, which must not count here.
    '--kubelet-arg',
    'eviction-hard=memory.available<100Mi,nodefs.available<64Mi,imagefs.available<1%,nodefs.inodesFree<1%',
    '--kubelet-arg',
    'housekeeping-interval=1s',
    '--kubelet-arg',
    'eviction-pressure-transition-period=8s',
  ]);
  await eventually(
    'the node Ready',
    async () => {
      const node = JSON.parse(await ok(skiff, ['get', 'nodes', '-o', 'json'])).items[0];
      return node?.status?.conditions?.find((c: { type: string }) => c.type === 'Ready')?.status === 'True';
    },
    120_000,
  ).catch((err) => {
    throw withLogs(err);
  });
});

afterEach(async () => {
  await ok(skiff, ['delete', 'pods', '--all', '--grace-period=1', '--wait=true', '--timeout=60s'], {
    timeoutMs: 70_000,
  });
});

after(async () => {
  await skiff?.stop();
  // The kubelet leaves kubepods and the QoS cgroups, as upstream's does; the pods' are gone.
  await cgroups.destroy(CGROUP_ROOT).catch(() => undefined);
  execFileSync('umount', ['-R', rootDir], { stdio: 'ignore' });
  rmSync(rootDir, { recursive: true, force: true });
});

interface NodeJSON {
  spec: { taints?: { key: string; effect: string }[] };
  status: { conditions: { type: string; status: string; reason: string }[] };
}
const getNode = async (): Promise<NodeJSON> =>
  JSON.parse(await ok(skiff, ['get', 'nodes', '-o', 'json'])).items[0];
const conditionOf = (n: NodeJSON, type: string) => n.status.conditions.find((c) => c.type === type)?.status;

/** Waits for the pod to be evicted, and returns it. */
async function evicted(name: string): Promise<PodJSON & { status: { reason?: string; message?: string } }> {
  return eventually(
    `pod ${name} evicted`,
    async () => {
      const p = (await getPod(name)) as PodJSON & { status: { reason?: string; message?: string } };
      return p.status.phase === 'Failed' ? p : undefined;
    },
    90_000,
  ).catch((err) => {
    throw withLogs(err);
  });
}

/** The pressure condition goes True with its taint, then (the pod gone, the transition period over) False again. */
async function pressureComesAndGoes(
  type: string,
  taint: string,
  whileTrue: () => Promise<void>,
): Promise<void> {
  await eventually(
    `${type} True with the ${taint} taint`,
    async () => {
      const n = await getNode();
      return (
        conditionOf(n, type) === 'True' &&
        n.spec.taints?.some((t) => t.key === taint && t.effect === 'NoSchedule')
      );
    },
    60_000,
  ).catch((err) => {
    throw withLogs(err);
  });
  await whileTrue();
  await eventually(
    `${type} False and the taint gone`,
    async () => {
      const n = await getNode();
      return conditionOf(n, type) === 'False' && !n.spec.taints?.some((t) => t.key === taint);
    },
    60_000,
  ).catch((err) => {
    throw withLogs(err);
  });
}

describe('node resources', () => {
  it('reports allocatable as capacity less system-reserved and the hard eviction threshold', async () => {
    const node = JSON.parse(await ok(skiff, ['get', 'nodes', '-o', 'json'])).items[0];
    const ki = (s: string) => Number(s.replace(/Ki$/, '')) * 1024;
    assert.equal(ki(node.status.capacity.memory), Math.floor(totalmem() / 1024) * 1024);
    assert.equal(ki(node.status.allocatable.memory), KUBEPODS_BYTES - 100 * 1024 * 1024);
    // kubepods itself is capped at capacity less the reservation (the eviction threshold left out).
    assert.equal(Number(await cgroups.read('memory', `${CGROUP_ROOT}/kubepods`, memoryFile)), KUBEPODS_BYTES);
  });

  it('runs pods in the QoS hierarchy, with the pod-level limits', async () => {
    await apply(
      podYaml(
        'guaranteed',
        'sleep 3600',
        '{requests: {cpu: 100m, memory: 64Mi}, limits: {cpu: 100m, memory: 64Mi}}',
      ),
    );
    await apply(podYaml('burstable', 'sleep 3600', '{requests: {cpu: 200m}}'));
    await apply(podYaml('besteffort', 'sleep 3600'));
    const g = await running('guaranteed');
    const b = await running('burstable');
    const e = await running('besteffort');
    assert.deepEqual(
      [g.status.qosClass, b.status.qosClass, e.status.qosClass],
      ['Guaranteed', 'Burstable', 'BestEffort'],
    );
    const gCgroup = `${CGROUP_ROOT}/kubepods/pod${g.metadata.uid}`;
    assert.equal(Number(await cgroups.read('memory', gCgroup, memoryFile)), 64 * 1024 * 1024);
    if (cgroups.mode === 'v1') {
      assert.equal(await cgroups.read('cpu', gCgroup, 'cpu.shares'), '102');
      assert.equal(await cgroups.read('cpu', gCgroup, 'cpu.cfs_quota_us'), '10000');
      // The burstable QoS cgroup's shares follow its pods' requests (200m); besteffort has the least.
      assert.equal(await cgroups.read('cpu', `${CGROUP_ROOT}/kubepods/burstable`, 'cpu.shares'), '204');
      assert.equal(await cgroups.read('cpu', `${CGROUP_ROOT}/kubepods/besteffort`, 'cpu.shares'), '2');
    }
    // The containers' processes are in their pods' cgroups (the sandbox's cgroupParent).
    for (const [p, parent] of [
      [g, `${CGROUP_ROOT}/kubepods`],
      [b, `${CGROUP_ROOT}/kubepods/burstable`],
      [e, `${CGROUP_ROOT}/kubepods/besteffort`],
    ] as const) {
      const pids = await cgroups.pids(`${parent}/pod${p.metadata.uid}`);
      assert.ok(pids.length >= 2, `pause and sleep in ${p.metadata.name}'s cgroup: ${pids}`);
      const comms = pids.map((pid) => readFileSync(`/proc/${pid}/comm`, 'utf8').trim());
      assert.ok(comms.includes('sleep') && comms.includes('pause'), comms.join(','));
    }
    // A deleted pod's cgroup goes with it.
    await ok(skiff, ['delete', 'pod', 'burstable', '--grace-period=1', '--wait=true']);
    await eventually('the burstable pod cgroup removed', async () =>
      cgroups.exists(`${CGROUP_ROOT}/kubepods/burstable/pod${b.metadata.uid}`) ? undefined : true,
    );
  });

  it('enforces a Guaranteed pod memory limit at its cgroup (OOMKilled)', async () => {
    // 64 MiB limit, a 100 MiB buffer filled: the kernel kills it in the pod's cgroup
    // (dd exits 0, Completed, if nothing stops it).
    await apply(
      podYaml(
        'over-limit',
        'dd if=/dev/zero of=/dev/null bs=100M count=1',
        '{requests: {cpu: 50m, memory: 64Mi}, limits: {cpu: 50m, memory: 64Mi}}',
        'Never',
      ),
    );
    const p = await eventually(
      'over-limit OOMKilled',
      async () => {
        const p = await getPod('over-limit');
        return p.status.containerStatuses?.[0]?.state?.terminated ? p : undefined;
      },
      90_000,
    ).catch((err) => {
      throw withLogs(err);
    });
    assert.equal(
      p.status.containerStatuses?.[0]?.state?.terminated?.reason,
      'OOMKilled',
      JSON.stringify(p.status),
    );
  });

  it('OOM-kills a BestEffort memory hog in kubepods before a Guaranteed pod is touched', async () => {
    await apply(
      podYaml(
        'steady',
        'sleep 3600',
        '{requests: {cpu: 50m, memory: 32Mi}, limits: {cpu: 50m, memory: 32Mi}}',
      ),
    );
    await running('steady');
    // 700 MiB in one buffer, more than kubepods' 600 MiB: the OOM killer picks in kubepods, by oom_score_adj.
    await apply(podYaml('hog', 'dd if=/dev/zero of=/dev/null bs=700M count=1', '', 'Never'));
    const hog = await eventually(
      'the hog OOMKilled',
      async () => {
        const p = await getPod('hog');
        return p.status.containerStatuses?.[0]?.state?.terminated ? p : undefined;
      },
      90_000,
    ).catch((err) => {
      throw withLogs(err);
    });
    assert.equal(hog.status.qosClass, 'BestEffort');
    assert.equal(hog.status.containerStatuses?.[0]?.state?.terminated?.reason, 'OOMKilled');
    const steady = await getPod('steady');
    assert.equal(steady.status.phase, 'Running');
    assert.equal(steady.status.containerStatuses?.[0]?.restartCount, 0);
    assert.ok(steady.status.containerStatuses?.[0]?.state?.running);
    assert.ok(existsSync(`/sys/fs/cgroup${cgroups.mode === 'v1' ? '/memory' : ''}${CGROUP_ROOT}/kubepods`));
  });

  it('evicts a pod that fills memory past memory.available, reporting MemoryPressure', async () => {
    await apply(
      podYaml(
        'bystander',
        'sleep 3600',
        '{requests: {cpu: 50m, memory: 32Mi}, limits: {cpu: 50m, memory: 32Mi}}',
      ),
    );
    await running('bystander');
    // 520 MiB in a memory-backed emptyDir: kubepods (600 MiB) has less than 100 MiB left, under its cap.
    await apply(`
apiVersion: v1
kind: Pod
metadata: {name: filler}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: busybox
    imagePullPolicy: Never
    command: ["sh", "-c", "dd if=/dev/zero of=/cache/fill bs=1M count=520; sleep 3600"]
    volumeMounts: [{name: cache, mountPath: /cache}]
  volumes:
  - name: cache
    emptyDir: {medium: Memory}
`);
    const p = await evicted('filler');
    await pressureComesAndGoes('MemoryPressure', 'node.kubernetes.io/memory-pressure', async () => {});
    assert.equal(p.status.reason, 'Evicted');
    assert.match(
      p.status.message ?? '',
      /^The node was low on resource: memory\. Threshold quantity: 100Mi, available: \d+[KMG]i\. Container c was using \d+[KMG]i, request is 0, has larger consumption of memory\. $/,
    );
    const events = await ok(skiff, [
      'get',
      'events',
      '--field-selector',
      'involvedObject.name=filler',
      '-o',
      'jsonpath={.items[*].reason}',
    ]);
    assert.match(events, /\bEvicted\b/);
    // The Guaranteed pod, within its request, was left alone.
    const b = await getPod('bystander');
    assert.equal(b.status.phase, 'Running');
    assert.equal(b.status.containerStatuses?.[0]?.restartCount, 0);
  });

  it('evicts the pod that fills the node disk past nodefs.available, reporting DiskPressure', async () => {
    await apply(podYaml('quiet', 'sleep 3600'));
    await running('quiet');
    // 200 MiB into an emptyDir on the 256 MiB node disk: less than 64 MiB left.
    await apply(`
apiVersion: v1
kind: Pod
metadata: {name: writer}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: busybox
    imagePullPolicy: Never
    command: ["sh", "-c", "dd if=/dev/zero of=/data/fill bs=1M count=200; sleep 3600"]
    volumeMounts: [{name: data, mountPath: /data}]
  volumes:
  - name: data
    emptyDir: {}
`);
    const p = await evicted('writer');
    assert.equal(p.status.reason, 'Evicted');
    assert.match(
      p.status.message ?? '',
      /^The node was low on resource: ephemeral-storage\. Threshold quantity: 64Mi, available: \d+[KMG]i\. /,
    );
    await pressureComesAndGoes('DiskPressure', 'node.kubernetes.io/disk-pressure', async () => {});
    // Its emptyDir went with it, and the quiet pod stayed.
    assert.equal((await getPod('quiet')).status.phase, 'Running');
  });
});
