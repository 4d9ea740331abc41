// Node resource management with real containers: `skiff server` and its
// agent on containerd, with the kubelet flags given as k3s takes them
// (`--kubelet-arg`). What each test shows is upstream kubelet behaviour:
//
//   - allocatable is capacity less --system-reserved and --eviction-hard;
//   - pods run in the kubepods → burstable/besteffort → pod<uid> cgroup
//     hierarchy, a Guaranteed pod's memory limit enforced at its pod cgroup;
//   - with --enforce-node-allocatable=pods, kubepods is capped, and a
//     BestEffort memory hog is OOM-killed before a Guaranteed pod is touched.
//
// The node's cgroups are under a root of this file's own
// (--kubelet-arg cgroup-root=...), so nothing here touches another node's
// pods, and kubepods is capped at 600 MiB by reserving the rest of the
// machine's memory for the system. The cgroup tree is removed at the end.

import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { totalmem } from 'node:os';
import { after, afterEach, before, describe, it } from 'node:test';
import { createCgroupManager } from '../../src/kubelet/cm/cgroup-manager.ts';
import { eventually, ok, type Skiff, startSkiff } from './harness.ts';

const CLUSTER_CIDR = '10.196.0.0/16';
const CGROUP_ROOT = `/skiff-e2e-nr-${process.pid}`;
const KUBEPODS_BYTES = 600 * 1024 * 1024;
const cgroups = createCgroupManager();
const memoryFile = cgroups.mode === 'v2' ? 'memory.max' : 'memory.limit_in_bytes';

let skiff: Skiff;

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
    'eviction-hard=memory.available<100Mi,nodefs.available<1%,imagefs.available<1%,nodefs.inodesFree<1%',
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
});

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
});
