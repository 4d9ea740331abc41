import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { rfc3339 } from '../api/meta.ts';
import type { ReplicaSet } from '../api/types/apps-v1.ts';
import type { Pod } from '../api/types/core-v1.ts';
import { createClientset } from '../client/clientset.ts';
import { createInformerFactory } from '../client/informer-factory.ts';
import type { Transport } from '../client/transport.ts';
import type { ControllerFactory } from './context.ts';
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
let offsetMs = 0;
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

describe('replicaset controller: ownership', () => {
  it('adopts matching orphans, counting them, and releases pods whose labels stop matching', async () => {
    // An orphan that matches the selector but lacks the template's `tier` label.
    const orphan = await t.clients.pods.create(NS, {
      metadata: { name: 'stray', namespace: NS, labels: { app: 'adopt' } },
      spec: { containers: [{ name: 'c', image: 'busybox' }] },
    });
    const rs = await t.clients.replicaSets.create(NS, replicaSet('adopt', 2));
    const owned = await t.until('2 pods, the orphan adopted', async () => {
      const p = await podsOf(rs);
      return p.length === 2 && p.some((x) => x.metadata.uid === orphan.metadata.uid) ? p : undefined;
    });
    const adopted = owned.find((x) => x.metadata.uid === orphan.metadata.uid);
    assert.equal(adopted?.metadata.ownerReferences?.[0]?.blockOwnerDeletion, true);
    // Only one of the two carries every template label.
    await t.until('fullyLabeledReplicas 1', async () => {
      const s = await statusOf('adopt');
      return s.replicas === 2 && s.fullyLabeledReplicas === 1;
    });

    // An orphan created later is seen through its labels and adopted; one
    // pod too many, so one is deleted.
    await t.clients.pods.create(NS, {
      metadata: { name: 'late', namespace: NS, labels: { app: 'adopt', tier: 'web' } },
      spec: { containers: [{ name: 'c', image: 'busybox' }] },
    });
    await t.until('back to 2 pods, one of them adopted or deleted', async () => {
      const all = (await t.clients.pods.list(NS, { labelSelector: 'app=adopt' })).items;
      return all.length === 2 && all.every((p) => p.metadata.ownerReferences?.[0]?.uid === rs.metadata.uid);
    });

    // Relabel one: released (no ownerReference left) and replaced.
    const [relabel] = await podsOf(rs);
    await t.clients.pods.patch(NS, relabel?.metadata.name ?? '', 'merge', {
      metadata: { labels: { app: 'other' } },
    });
    await t.until('released', async () => {
      const p = await t.clients.pods.get(NS, relabel?.metadata.name ?? '');
      return (p.metadata.ownerReferences ?? []).length === 0;
    });
    await t.until('replaced', async () => {
      const p = await podsOf(rs);
      return p.length === 2 && !p.some((x) => x.metadata.name === relabel?.metadata.name);
    });
  });

  it('leaves pods another controller owns alone', async () => {
    const other = await t.clients.replicaSets.create(NS, replicaSet('owner-a', 1));
    await t.until('owner-a has its pod', async () => (await podsOf(other)).length === 1);
    // A second ReplicaSet with an overlapping selector does not take it.
    const second = replicaSet('owner-b', 1);
    second.spec = { ...second.spec, selector: { matchLabels: { app: 'owner-a' } } };
    second.spec.template = { ...second.spec.template, metadata: { labels: { app: 'owner-a' } } };
    const b = await t.clients.replicaSets.create(NS, second);
    await t.until('owner-b made its own pod', async () => (await podsOf(b)).length === 1);
    assert.equal((await podsOf(other)).length, 1);
  });
});

describe('replicaset controller: status', () => {
  it('counts ready and available replicas, waiting minReadySeconds (injected clock)', async () => {
    const rs = await t.clients.replicaSets.create(NS, replicaSet('avail', 2, { minReadySeconds: 3600 }));
    const pods = await t.until('2 pods', async () => {
      const p = await podsOf(rs);
      return p.length === 2 ? p : undefined;
    });
    for (const p of pods) await markReady(p.metadata.name ?? '');
    const s = await t.until('2 ready', async () => {
      const st = await statusOf('avail');
      return st.readyReplicas === 2 ? st : undefined;
    });
    assert.equal(s.availableReplicas, undefined, 'not available before minReadySeconds');
    // An hour later (the controller's clock), a sync finds them available.
    offsetMs = 3601_000;
    try {
      await t.clients.replicaSets.patch(NS, 'avail', 'merge', { metadata: { annotations: { poke: '1' } } });
      await t.until('2 available', async () => (await statusOf('avail')).availableReplicas === 2);
    } finally {
      offsetMs = 0;
    }
  });

  it('looks again by itself once minReadySeconds have passed', async () => {
    const rs = await t.clients.replicaSets.create(NS, replicaSet('soon', 1, { minReadySeconds: 1 }));
    const [p] = await t.until('1 pod', async () => {
      const list = await podsOf(rs);
      return list.length === 1 ? list : undefined;
    });
    await markReady(p?.metadata.name ?? '');
    await t.until(
      'available without any other event',
      async () => (await statusOf('soon')).availableReplicas === 1,
    );
  });

  it('sets ReplicaFailure and records FailedCreate when pods are refused, and clears it once they are not', async () => {
    // A template may name an image with surrounding spaces; a pod may not
    // (upstream's validation, applied by the API server on the pod create).
    const bad = replicaSet('refused', 3);
    const container = bad.spec?.template?.spec?.containers?.[0];
    if (container) container.image = ' busybox';
    await t.clients.replicaSets.create(NS, bad);
    const cond = await t.until('ReplicaFailure', async () =>
      (await statusOf('refused')).conditions?.find((c) => c.type === 'ReplicaFailure'),
    );
    assert.equal(cond.status, 'True');
    assert.equal(cond.reason, 'FailedCreate');
    assert.match(cond.message ?? '', /must not have leading or trailing whitespace/);
    const failed = await t.until(
      'FailedCreate event',
      async () => (await eventsOf('refused', 'FailedCreate'))[0],
    );
    assert.equal(failed.type, 'Warning');
    assert.match(failed.message ?? '', /^Error creating: /);
    await t.clients.replicaSets.patch(NS, 'refused', 'json', [
      { op: 'replace', path: '/spec/template/spec/containers/0/image', value: 'busybox' },
    ]);
    await t.until('3 pods and no ReplicaFailure', async () => {
      const s = await statusOf('refused');
      return s.replicas === 3 && !s.conditions?.some((c) => c.type === 'ReplicaFailure');
    });
  });
});

/**
 * The ReplicaSet controller with a pod cache that lags the API server by
 * `lagMs`: every pod watch event reaches it late, as from a slow watch.
 */
function withLaggingPodCache(lagMs: number): ControllerFactory {
  return (ctx) => {
    const inner = ctx.clients.transport;
    const lagging: Transport = {
      request: (req) => inner.request(req),
      watch: (req, onEvent, onClose) =>
        inner.watch(
          req,
          (event) => {
            if (req.path.endsWith('/pods')) setTimeout(() => onEvent(event), lagMs);
            else onEvent(event);
          },
          onClose,
        ),
    };
    const informers = createInformerFactory(createClientset(lagging));
    const c = replicaSetController({ ...ctx, informers });
    return {
      name: c.name,
      run: () => void informers.start().then(() => c.run()),
      stop: async () => {
        await c.stop();
        informers.stop();
      },
    };
  };
}

describe('replicaset controller: expectations', () => {
  let lagging: ControllerTest;
  before(async () => {
    lagging = await startControllerTest({ replicaset: withLaggingPodCache(400) });
  });
  after(() => lagging.close());

  it('never creates a pod twice while its pod cache is behind, through a burst of scale changes', async () => {
    const rs = await lagging.clients.replicaSets.create(NS, replicaSet('burst', 4));
    let creates = 0;
    const stop = lagging.clients.pods.watch(
      NS,
      {},
      (e) => {
        if (e.type === 'ADDED') creates++;
      },
      () => {},
    );
    try {
      // Each change re-syncs the ReplicaSet while the pods it just created
      // are still missing from its cache.
      for (const replicas of [6, 8, 10]) {
        await new Promise((r) => setTimeout(r, 50));
        await lagging.clients.replicaSets.patch(NS, 'burst', 'merge', { spec: { replicas } });
      }
      await lagging.until(
        'status: 10 replicas',
        async () => (await lagging.clients.replicaSets.get(NS, 'burst')).status?.replicas === 10,
        20_000,
      );
      // Several more lag periods: any duplicate would have been made by now.
      await new Promise((r) => setTimeout(r, 1500));
      const pods = (await lagging.clients.pods.list(NS)).items.filter(
        (p) => p.metadata.ownerReferences?.[0]?.uid === rs.metadata.uid,
      );
      assert.equal(pods.length, 10);
      assert.equal(creates, 10, 'exactly one create per replica');
    } finally {
      stop.stop();
    }
  });
});

describe('replicaset controller: terminating pods', () => {
  it('replaces a pod as soon as its graceful deletion starts, not when it is gone', async () => {
    const rs = await t.clients.replicaSets.create(NS, replicaSet('graceful', 1));
    const [p] = await t.until('1 pod', async () => {
      const list = await podsOf(rs);
      return list.length === 1 ? list : undefined;
    });
    const name = p?.metadata.name ?? '';
    // Bound to a node, the pod's deletion waits for its kubelet (30 s grace).
    await t.clients.transport.request({
      method: 'POST',
      path: `/api/v1/namespaces/${NS}/pods/${name}/binding`,
      body: {
        apiVersion: 'v1',
        kind: 'Binding',
        metadata: { name },
        target: { kind: 'Node', name: 'node-1' },
      },
    });
    await t.clients.pods.delete(NS, name);
    const terminating = await t.clients.pods.get(NS, name);
    assert.ok(terminating.metadata.deletionTimestamp, 'still there, terminating');
    const [replacement] = await t.until('a replacement', async () => {
      const list = await podsOf(rs);
      return list.length === 1 && list[0]?.metadata.name !== name ? list : undefined;
    });
    assert.ok(replacement);
    await t.until(
      'status counts only the active pod',
      async () => (await statusOf('graceful')).replicas === 1,
    );
    assert.ok((await t.clients.pods.get(NS, name)).metadata.deletionTimestamp);
  });
});
