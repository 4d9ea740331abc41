import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { rfc3339 } from '../api/meta.ts';
import type { ReplicaSet } from '../api/types/apps-v1.ts';
import type { Pod } from '../api/types/core-v1.ts';
import {
  deletesBefore,
  getPodsToDelete,
  isPodAvailable,
  podDeletionCost,
  replicaSetController,
  slowStartBatch,
} from './replicaset.ts';
import { type ControllerTest, startControllerTest } from './testing.ts';

// ---- pure functions: no server ----

let uid = 0;
function pod(
  name: string,
  opts: Partial<{
    node: string;
    phase: string;
    ready: boolean;
    readySince: string;
    created: string;
    restarts: number;
    cost: string;
  }> = {},
): Pod {
  return {
    metadata: {
      name,
      namespace: 'default',
      uid: `uid-${String(++uid).padStart(4, '0')}`,
      creationTimestamp: opts.created ?? '2026-01-01T00:00:00Z',
      ...(opts.cost !== undefined
        ? { annotations: { 'controller.kubernetes.io/pod-deletion-cost': opts.cost } }
        : {}),
    },
    spec: { ...(opts.node ? { nodeName: opts.node } : {}), containers: [{ name: 'c', image: 'busybox' }] },
    status: {
      phase: opts.phase ?? 'Running',
      conditions: [
        {
          type: 'Ready',
          status: opts.ready === false ? 'False' : 'True',
          lastTransitionTime: opts.readySince ?? '2026-01-01T00:00:00Z',
        },
      ],
      containerStatuses: [{ name: 'c', restartCount: opts.restarts ?? 0 }],
    },
  };
}

const NOW = new Date('2026-01-02T00:00:00Z');
const first = (a: Pod, b: Pod, ranks: [number, number] = [0, 0]) => {
  assert.equal(deletesBefore(a, ranks[0], b, ranks[1], NOW), true, `${a.metadata.name} goes first`);
  assert.equal(deletesBefore(b, ranks[1], a, ranks[0], NOW), false, `${b.metadata.name} goes second`);
};

describe('deletion ranking (ActivePodsWithRanks)', () => {
  it('orders by each rule in turn, as upstream', () => {
    // 1. Unassigned < assigned, whatever else holds.
    first(
      pod('unscheduled', { phase: 'Running' }),
      pod('scheduled', { node: 'n1', phase: 'Pending', ready: false }),
    );
    // 2. Pending < Unknown < Running.
    first(pod('pending', { node: 'n1', phase: 'Pending' }), pod('unknown', { node: 'n1', phase: 'Unknown' }));
    first(pod('unknown', { node: 'n1', phase: 'Unknown' }), pod('running', { node: 'n1', phase: 'Running' }));
    // 3. Not ready < ready.
    first(pod('not-ready', { node: 'n1', ready: false }), pod('ready', { node: 'n1' }));
    // 4. Lower deletion cost < higher; an invalid cost counts as 0.
    first(pod('cheap', { node: 'n1', cost: '-5' }), pod('default-cost', { node: 'n1' }));
    first(pod('default-cost', { node: 'n1', cost: 'oops' }), pod('dear', { node: 'n1', cost: '100' }));
    // 5. More related pods on its node < fewer.
    first(pod('crowded', { node: 'n1' }), pod('alone', { node: 'n2' }), [3, 1]);
    // 6. Ready for a shorter time < longer (on a log2 scale).
    first(
      pod('ready-recently', { node: 'n1', readySince: '2026-01-01T23:59:00Z' }),
      pod('ready-long-ago', { node: 'n1', readySince: '2025-12-01T00:00:00Z' }),
    );
    // 7. More restarts < fewer.
    first(pod('crashy', { node: 'n1', restarts: 5 }), pod('steady', { node: 'n1', restarts: 1 }));
    // 8. Newer < older.
    first(
      pod('new', { node: 'n1', created: '2026-01-01T23:00:00Z' }),
      pod('old', { node: 'n1', created: '2025-06-01T00:00:00Z' }),
    );
  });

  it('treats pods of about the same age as equals and breaks the tie by uid (LogarithmicScaleDown)', () => {
    // 10 s and 12 s old: the same power-of-two bucket of nanoseconds.
    const a = pod('a', { node: 'n1', created: '2026-01-01T23:59:50Z' });
    const b = pod('b', { node: 'n1', created: '2026-01-01T23:59:48Z' });
    const [lower, higher] = (a.metadata.uid ?? '') < (b.metadata.uid ?? '') ? [a, b] : [b, a];
    first(lower, higher);
  });

  it('reads the deletion cost as an int32', () => {
    assert.equal(podDeletionCost(pod('p', { cost: '42' })), 42);
    assert.equal(podDeletionCost(pod('p', { cost: '-2147483648' })), -(2 ** 31));
    assert.equal(podDeletionCost(pod('p', { cost: '2147483648' })), 0);
    assert.equal(podDeletionCost(pod('p', { cost: '1.5' })), 0);
    assert.equal(podDeletionCost(pod('p')), 0);
  });

  it('getPodsToDelete picks the first `diff` in ranking order, ranking by related pods per node', () => {
    const onBusyNode = pod('busy', { node: 'busy' });
    const onQuietNode = pod('quiet', { node: 'quiet' });
    const pendingOne = pod('pending', { node: 'quiet', phase: 'Pending' });
    const related = [
      onBusyNode,
      onQuietNode,
      pod('sibling-1', { node: 'busy' }),
      pod('sibling-2', { node: 'busy' }),
    ];
    const chosen = getPodsToDelete([onQuietNode, onBusyNode, pendingOne], related, 2, NOW);
    assert.deepEqual(
      chosen.map((p) => p.metadata.name),
      ['pending', 'busy'],
    );
    // Deleting all of them needs no ranking.
    assert.equal(getPodsToDelete([onQuietNode, onBusyNode], related, 5, NOW).length, 2);
  });

  it('isPodAvailable waits minReadySeconds after the Ready transition', () => {
    const p = pod('p', { readySince: '2026-01-01T23:59:30Z' });
    assert.equal(isPodAvailable(p, 0, NOW), true);
    assert.equal(isPodAvailable(p, 10, NOW), true);
    assert.equal(isPodAvailable(p, 60, NOW), false);
    assert.equal(isPodAvailable(pod('q', { ready: false }), 0, NOW), false);
  });
});

describe('slowStartBatch', () => {
  it('runs in batches of 1, 2, 4, ... and stops at the first failing batch', async () => {
    const batches: number[] = [];
    let inFlight = 0;
    let calls = 0;
    const fn = async () => {
      calls++;
      inFlight++;
      if (inFlight === 1) queueMicrotask(() => batches.push(inFlight));
      await new Promise((r) => setTimeout(r, 1));
      inFlight--;
    };
    assert.deepEqual(await slowStartBatch(10, 1, fn), { successes: 10 });
    assert.deepEqual(batches, [1, 2, 4, 3]);
    assert.equal(calls, 10);

    calls = 0;
    const failing = async () => {
      calls++;
      if (calls >= 3) throw new Error('quota');
    };
    const result = await slowStartBatch(100, 1, failing);
    // Batch 1 (call 1) ok, batch 2 (calls 2, 3) fails on its second: 2 succeeded, 3 tried.
    assert.equal(result.successes, 2);
    assert.equal(calls, 3);
    assert.equal(String(result.error), 'Error: quota');
  });
});

// ---- the controller against a real API server ----

const NS = 'default';
const offsetMs = 0;
let t: ControllerTest;
before(async () => {
  t = await startControllerTest(
    { replicaset: replicaSetController },
    { now: () => new Date(Date.now() + offsetMs) },
  );
});
after(() => t.close());

function replicaSet(
  name: string,
  replicas: number,
  extra: Partial<NonNullable<ReplicaSet['spec']>> = {},
): ReplicaSet {
  return {
    apiVersion: 'apps/v1',
    kind: 'ReplicaSet',
    metadata: { name, namespace: NS },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name, tier: 'web' }, annotations: { note: 'from-template' } },
        spec: { containers: [{ name: 'c', image: 'busybox' }] },
      },
      ...extra,
    },
  };
}

/** The active pods the ReplicaSet controls, from the API server. */
async function podsOf(rs: ReplicaSet | string): Promise<Pod[]> {
  const name = typeof rs === 'string' ? rs : rs.metadata.name;
  const owner = await t.clients.replicaSets.get(NS, name ?? '');
  const all = await t.clients.pods.list(NS);
  return all.items.filter(
    (p) =>
      !p.metadata.deletionTimestamp &&
      p.metadata.ownerReferences?.some((r) => r.controller && r.uid === owner.metadata.uid),
  );
}

const eventsOf = async (name: string, reason: string) =>
  (await t.clients.events.list(NS)).items.filter(
    (e) => e.involvedObject?.name === name && e.involvedObject.kind === 'ReplicaSet' && e.reason === reason,
  );

const markReady = (name: string, since = new Date()) =>
  t.clients.pods.patch(
    NS,
    name,
    'merge',
    {
      status: {
        phase: 'Running',
        conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: rfc3339(since) }],
      },
    },
    { subresource: 'status' },
  );

const statusOf = async (name: string) => (await t.clients.replicaSets.get(NS, name)).status ?? {};

describe('replicaset controller', () => {
  it('creates `replicas` pods from the template, owned by the ReplicaSet, and reports them', async () => {
    const rs = await t.clients.replicaSets.create(NS, replicaSet('web', 3));
    const pods = await t.until('3 pods', async () => {
      const p = await podsOf(rs);
      return p.length === 3 ? p : undefined;
    });
    for (const p of pods) {
      assert.match(p.metadata.name ?? '', /^web-[a-z0-9]{5}$/);
      assert.equal(p.metadata.generateName, 'web-');
      assert.deepEqual(p.metadata.labels, { app: 'web', tier: 'web' });
      assert.equal(p.metadata.annotations?.note, 'from-template');
      assert.deepEqual(p.metadata.ownerReferences, [
        {
          apiVersion: 'apps/v1',
          kind: 'ReplicaSet',
          name: 'web',
          uid: rs.metadata.uid,
          controller: true,
          blockOwnerDeletion: true,
        },
      ]);
      assert.equal(p.spec?.containers?.[0]?.image, 'busybox');
    }
    const status = await t.until('status', async () => {
      const s = await statusOf('web');
      return s.replicas === 3 && s.observedGeneration === 1 ? s : undefined;
    });
    assert.equal(status.fullyLabeledReplicas, 3);
    assert.equal(status.readyReplicas, undefined, 'zero counts are omitted, as upstream');
    const created = await t.until('3 SuccessfulCreate events', async () => {
      const e = await eventsOf('web', 'SuccessfulCreate');
      return e.length === 3 ? e : undefined;
    });
    assert.deepEqual(
      created.map((e) => e.message).sort(),
      pods.map((p) => `Created pod: ${p.metadata.name}`).sort(),
    );
    assert.equal(created[0]?.source?.component, 'replicaset-controller');
  });

  it('replaces a deleted pod, and scales up and down through /scale', async () => {
    const [victim] = await podsOf('web');
    await t.clients.pods.delete(NS, victim?.metadata.name ?? '');
    await t.until('a replacement', async () => {
      const p = await podsOf('web');
      return p.length === 3 && !p.some((x) => x.metadata.name === victim?.metadata.name);
    });

    await t.clients.replicaSets.patch(
      NS,
      'web',
      'merge',
      { spec: { replicas: 5 } },
      { subresource: 'scale' },
    );
    await t.until('5 pods', async () => (await podsOf('web')).length === 5);
    await t.clients.replicaSets.patch(
      NS,
      'web',
      'merge',
      { spec: { replicas: 1 } },
      { subresource: 'scale' },
    );
    await t.until('1 pod', async () => (await podsOf('web')).length === 1);
    const status = await t.until('status after scale-down', async () => {
      const s = await statusOf('web');
      return s.replicas === 1 && s.observedGeneration === 3 ? s : undefined;
    });
    assert.equal(status.fullyLabeledReplicas, 1);
    const deleted = await t.until('4 SuccessfulDelete events', async () => {
      const e = await eventsOf('web', 'SuccessfulDelete');
      return e.length === 4 ? e : undefined;
    });
    assert.match(deleted[0]?.message ?? '', /^Deleted pod: web-[a-z0-9]{5}$/);
  });

  it('deletes pending pods before running, ready ones on scale-down', async () => {
    const rs = await t.clients.replicaSets.create(NS, replicaSet('order', 3));
    const pods = await t.until('3 pods', async () => {
      const p = await podsOf(rs);
      return p.length === 3 ? p : undefined;
    });
    const keep = pods[1]?.metadata.name ?? '';
    await markReady(keep);
    await t.until('1 ready', async () => (await statusOf('order')).readyReplicas === 1);
    await t.clients.replicaSets.patch(NS, 'order', 'merge', { spec: { replicas: 1 } });
    const left = await t.until('1 pod', async () => {
      const p = await podsOf(rs);
      return p.length === 1 ? p : undefined;
    });
    assert.equal(left[0]?.metadata.name, keep);
  });
});
