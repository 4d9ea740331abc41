import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { Container, Pod } from '../../api/types/core-v1.ts';
import { parseKubeletArgs } from '../config.ts';
import { createCgroupManager } from './cgroup-manager.ts';
import {
  createContainerManager,
  milliCPUToQuota,
  milliCPUToShares,
  podResource,
  resourceConfigForPod,
} from './container-manager.ts';
import { enforcedAllocatable, nodeAllocatable } from './node-allocatable.ts';

const pod = (uid: string, containers: Container[], extra: Partial<NonNullable<Pod['spec']>> = {}): Pod => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: uid, namespace: 'default', uid },
  spec: { containers, ...extra },
});
const c = (requests?: Record<string, string>, limits?: Record<string, string>): Container => ({
  name: 'c',
  image: 'busybox',
  resources: { ...(requests ? { requests } : {}), ...(limits ? { limits } : {}) },
});

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('pod resources and QoS cgroups', () => {
  it('converts millicores as upstream (shares 2..262144, quota at least 1 ms)', () => {
    assert.equal(milliCPUToShares(0), 2);
    assert.equal(milliCPUToShares(1), 2);
    assert.equal(milliCPUToShares(500), 512);
    assert.equal(milliCPUToShares(1_000_000), 262144);
    assert.equal(milliCPUToQuota(0), 0);
    assert.equal(milliCPUToQuota(5), 1000);
    assert.equal(milliCPUToQuota(250), 25_000);
  });

  it('sums containers, takes the largest init container, adds sidecars and overhead', () => {
    const p = pod('a', [c({ cpu: '100m' }), c({ cpu: '200m' })], {
      initContainers: [
        { name: 'init', image: 'i', resources: { requests: { cpu: '1' } } },
        { name: 'side', image: 's', restartPolicy: 'Always', resources: { requests: { cpu: '50m' } } },
      ],
      overhead: { cpu: '10m' },
    });
    assert.equal(podResource(p, 'cpu', 'requests'), 1000 + 10);
    const q = pod('b', [c({ memory: '64Mi' }, { memory: '128Mi' }), c(undefined, { memory: '32Mi' })]);
    assert.equal(podResource(q, 'memory', 'limits'), 160 * 1024 * 1024);
    // A limit with no request counts as the request (the API defaults it so).
    assert.equal(podResource(q, 'memory', 'requests'), 96 * 1024 * 1024);
  });

  it('limits a pod cgroup by QoS class', () => {
    const guaranteed = pod('g', [c({ cpu: '250m', memory: '64Mi' }, { cpu: '250m', memory: '64Mi' })]);
    assert.deepEqual(resourceConfigForPod(guaranteed), {
      cpuShares: 256,
      cpuQuota: 25_000,
      cpuPeriod: 100_000,
      memoryLimit: 64 * 1024 * 1024,
    });
    // Burstable: a memory limit only because every container declares one; no CPU limit anywhere.
    const burstable = pod('b', [c({ cpu: '100m' }, { memory: '32Mi' }), c(undefined, { memory: '16Mi' })]);
    assert.deepEqual(resourceConfigForPod(burstable), { cpuShares: 102, memoryLimit: 48 * 1024 * 1024 });
    const partly = pod('p', [c({ cpu: '100m' }, { memory: '32Mi' }), c({ cpu: '100m' })]);
    assert.deepEqual(resourceConfigForPod(partly), { cpuShares: 204 });
    assert.deepEqual(resourceConfigForPod(pod('e', [c()])), { cpuShares: 2 });
  });

  it('computes allocatable: capacity less reservations and hard eviction thresholds', () => {
    const cap = { cpuMilli: 4000, memoryBytes: 8 * 1024 ** 3, ephemeralStorageBytes: 100 * 1024 ** 3 };
    const config = parseKubeletArgs([
      'kube-reserved=cpu=500m,memory=1Gi',
      'system-reserved=memory=512Mi,ephemeral-storage=1Gi',
      'eviction-hard=memory.available<256Mi,nodefs.available<10%',
    ]);
    assert.deepEqual(enforcedAllocatable(cap, config), {
      cpuMilli: 3500,
      memoryBytes: 8 * 1024 ** 3 - 1536 * 1024 ** 2,
      ephemeralStorageBytes: 99 * 1024 ** 3,
    });
    const a = nodeAllocatable(cap, config);
    assert.equal(a.memoryBytes, 8 * 1024 ** 3 - 1792 * 1024 ** 2);
    assert.equal(a.ephemeralStorageBytes, 99 * 1024 ** 3 - Math.floor(10 * 1024 ** 3));
  });

  it('makes kubepods (capped when enforced), the QoS cgroups, and pod cgroups under them', async () => {
    const root = mkdtempSync(join(tmpdir(), 'cm-'));
    dirs.push(root);
    for (const s of ['cpu', 'memory']) mkdirSync(join(root, s));
    writeFileSync(join(root, 'cgroup.procs'), '');
    // Plain directories hold their files: removing one removes them (cgroupfs's rmdir does that itself).
    const cgroups = createCgroupManager({ root, mode: 'v1', removeDir: (p) => rm(p, { recursive: true }) });
    const cm = createContainerManager({
      cgroups,
      cgroupRoot: '/node-a',
      capacity: { cpuMilli: 2000, memoryBytes: 4 << 30 },
      allocatable: { cpuMilli: 1500, memoryBytes: 3 << 30 },
      enforcePods: true,
    });
    await cm.start();
    const read = (s: string, path: string, f: string) => readFileSync(join(root, s, path, f), 'utf8');
    assert.equal(read('memory', 'node-a/kubepods', 'memory.limit_in_bytes'), String(3 << 30));
    assert.equal(read('cpu', 'node-a/kubepods', 'cpu.shares'), '1536');
    assert.equal(read('cpu', 'node-a/kubepods/besteffort', 'cpu.shares'), '2');

    const g = pod('1111', [c({ cpu: '1', memory: '64Mi' }, { cpu: '1', memory: '64Mi' })]);
    const b1 = pod('2222', [c({ cpu: '300m' })]);
    const b2 = pod('3333', [c({ cpu: '200m' })]);
    const e = pod('4444', [c()]);
    assert.equal(await cm.ensurePod(g, [g]), '/node-a/kubepods/pod1111');
    assert.equal(await cm.ensurePod(b1, [g, b1]), '/node-a/kubepods/burstable/pod2222');
    assert.equal(await cm.ensurePod(b2, [g, b1]), '/node-a/kubepods/burstable/pod3333');
    assert.equal(await cm.ensurePod(e, [g, b1, b2, e]), '/node-a/kubepods/besteffort/pod4444');
    assert.equal(read('memory', 'node-a/kubepods/pod1111', 'memory.limit_in_bytes'), String(64 << 20));
    // The burstable QoS cgroup's shares: both burstable pods' requests (500m).
    assert.equal(read('cpu', 'node-a/kubepods/burstable', 'cpu.shares'), '512');
    assert.deepEqual([...(await cm.podCgroups()).keys()].sort(), ['1111', '2222', '3333', '4444']);

    assert.equal(await cm.destroyPod('2222'), true);
    await cm.updateQOS([g, b2, e]);
    assert.equal(read('cpu', 'node-a/kubepods/burstable', 'cpu.shares'), '204');
    assert.deepEqual([...(await cm.podCgroups()).keys()].sort(), ['1111', '3333', '4444']);
  });
});
