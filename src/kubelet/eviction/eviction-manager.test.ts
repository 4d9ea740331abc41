import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Container, Pod } from '../../api/types/core-v1.ts';
import { parseKubeletArgs } from '../config.ts';
import { createEvictionManager, type PodUsage } from './eviction-manager.ts';
import type { Observations } from './signals.ts';

const Mi = 1024 * 1024;
const pod = (name: string, resources: Container['resources'] = {}, priority?: number): Pod => ({
  metadata: { name, namespace: 'default', uid: name },
  spec: {
    containers: [{ name: 'c', image: 'busybox', resources }],
    ...(priority !== undefined ? { priority } : {}),
  },
});

function harness(args: string[], pods: Pod[], usage: Record<string, PodUsage>) {
  let t = 1_000_000;
  let obs: Observations = new Map();
  const evicted: { name: string; grace: number; message: string }[] = [];
  const reclaimed: string[] = [];
  let reclaimFrees: (() => void) | undefined;
  const m = createEvictionManager({
    config: parseKubeletArgs(args),
    signals: { observe: async () => obs },
    activePods: () => pods.filter((p) => !evicted.some((e) => e.name === p.metadata.name)),
    podUsage: async (p) => usage[p.metadata.name ?? ''] ?? {},
    reclaimNodeDisk: async (signal) => {
      reclaimed.push(signal);
      reclaimFrees?.();
    },
    evictPod: async (p, grace, message) => {
      evicted.push({ name: p.metadata.name ?? '', grace, message });
    },
    now: () => t,
  });
  return {
    m,
    evicted,
    reclaimed,
    set(signal: string, available: number, capacity: number) {
      obs = new Map(obs);
      obs.set(signal, { available, capacity });
    },
    advance(ms: number) {
      t += ms;
    },
    onReclaim(fn: () => void) {
      reclaimFrees = fn;
    },
  };
}

describe('eviction manager', () => {
  it('under a hard memory threshold, evicts the pod most over its request first, with a 1 s grace period', async () => {
    const pods = [
      pod('guaranteed', { requests: { memory: '100Mi' }, limits: { memory: '100Mi' } }),
      pod('burstable', { requests: { memory: '200Mi' } }),
      pod('besteffort'),
    ];
    const h = harness(
      ['eviction-hard=memory.available<100Mi', 'eviction-pressure-transition-period=30s'],
      pods,
      { guaranteed: { memory: 90 * Mi }, burstable: { memory: 150 * Mi }, besteffort: { memory: 50 * Mi } },
    );
    h.set('memory.available', 500 * Mi, 1000 * Mi);
    assert.deepEqual(await h.m.synchronize(), []);
    assert.equal(h.m.pressure().memory, false);

    h.set('memory.available', 80 * Mi, 1000 * Mi);
    await h.m.synchronize();
    assert.equal(h.m.pressure().memory, true);
    // The BestEffort pod uses more than its request (0); the others use less than theirs.
    assert.deepEqual(
      h.evicted.map((e) => [e.name, e.grace]),
      [['besteffort', 1]],
    );
    assert.equal(
      h.evicted[0]?.message,
      'The node was low on resource: memory. Threshold quantity: 100Mi, available: 80Mi. Container c was using 50Mi, request is 0, has larger consumption of memory. ',
    );
    // Next: among those under their request, the larger usage over request... both negative; guaranteed is -10Mi, burstable -50Mi.
    await h.m.synchronize();
    assert.deepEqual(
      h.evicted.map((e) => e.name),
      ['besteffort', 'guaranteed'],
    );

    // The condition stays for the transition period after the signal recovers.
    h.set('memory.available', 500 * Mi, 1000 * Mi);
    h.advance(10_000);
    await h.m.synchronize();
    assert.equal(h.m.pressure().memory, true);
    h.advance(25_000);
    await h.m.synchronize();
    assert.equal(h.m.pressure().memory, false);
    assert.equal(h.evicted.length, 2);
  });

  it('ranks by priority after usage over requests, and never evicts critical pods', async () => {
    const pods = [pod('critical', {}, 2_000_000_000), pod('high', {}, 1000), pod('low', {}, 10)];
    const h = harness(['eviction-hard=memory.available<100Mi'], pods, {
      critical: { memory: 500 * Mi },
      high: { memory: 300 * Mi },
      low: { memory: 10 * Mi },
    });
    h.set('memory.available', 10 * Mi, 1000 * Mi);
    for (let i = 0; i < 3; i++) await h.m.synchronize();
    assert.deepEqual(
      h.evicted.map((e) => e.name),
      ['low', 'high'],
    );
  });

  it('waits out a soft threshold grace period, and uses --eviction-max-pod-grace-period', async () => {
    const h = harness(
      [
        'eviction-hard=memory.available<10Mi',
        'eviction-soft=memory.available<200Mi',
        'eviction-soft-grace-period=memory.available=30s',
        'eviction-max-pod-grace-period=5',
      ],
      [pod('a')],
      { a: { memory: 100 * Mi } },
    );
    h.set('memory.available', 150 * Mi, 1000 * Mi);
    await h.m.synchronize();
    assert.equal(h.m.pressure().memory, true);
    assert.equal(h.evicted.length, 0);
    h.advance(20_000);
    await h.m.synchronize();
    assert.equal(h.evicted.length, 0);
    h.advance(10_000);
    await h.m.synchronize();
    assert.deepEqual(
      h.evicted.map((e) => [e.name, e.grace]),
      [['a', 5]],
    );
  });

  it('reclaims node-level disk first, and evicts only if that was not enough', async () => {
    const pods = [pod('writer'), pod('quiet')];
    const h = harness(['eviction-hard=nodefs.available<10%'], pods, {
      writer: { disk: 80 * Mi },
      quiet: { disk: 1 * Mi },
    });
    h.set('nodefs.available', 5 * Mi, 100 * Mi);
    h.onReclaim(() => h.set('nodefs.available', 50 * Mi, 100 * Mi));
    await h.m.synchronize();
    assert.deepEqual(h.reclaimed, ['nodefs.available']);
    assert.equal(h.evicted.length, 0);
    assert.equal(h.m.pressure().disk, true);

    h.onReclaim(() => {});
    h.set('nodefs.available', 5 * Mi, 100 * Mi);
    await h.m.synchronize();
    assert.deepEqual(
      h.evicted.map((e) => e.name),
      ['writer'],
    );
    assert.match(
      h.evicted[0]?.message ?? '',
      /^The node was low on resource: ephemeral-storage\. Threshold quantity: 10Mi, available: 5Mi\. Container c was using 80Mi, request is 0/,
    );
  });

  it('with pods allocatable enforced, watches kubepods against memory.available too', async () => {
    const h = harness(['eviction-hard=memory.available<100Mi'], [pod('a')], { a: { memory: 550 * Mi } });
    h.set('memory.available', 20_000 * Mi, 24_000 * Mi);
    h.set('allocatableMemory.available', 50 * Mi, 600 * Mi);
    await h.m.synchronize();
    assert.equal(h.m.pressure().memory, true);
    assert.deepEqual(
      h.evicted.map((e) => e.name),
      ['a'],
    );
    const off = harness(
      ['eviction-hard=memory.available<100Mi', 'enforce-node-allocatable=none'],
      [pod('a')],
      {},
    );
    off.set('memory.available', 20_000 * Mi, 24_000 * Mi);
    off.set('allocatableMemory.available', 50 * Mi, 600 * Mi);
    await off.m.synchronize();
    assert.equal(off.m.pressure().memory, false);
  });
});
