import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { isApiError } from '../api/errors.ts';
import { rfc3339, rfc3339Micro } from '../api/meta.ts';
import type { Node, Pod, Taint, Toleration } from '../api/types/core-v1.ts';
import type { Clientset } from '../client/clientset.ts';
import {
  matchingTolerations,
  minTolerationTime,
  newNodeLifecycleController,
  taintEvictionController,
} from './nodelifecycle.ts';
import { type ControllerTest, startControllerTest } from './testing.ts';

// Real time with a short grace period: a kubelet is played by renewing a
// Lease every 200 ms, which stays far inside the 3 s grace even on a busy machine.
const GRACE_MS = 3_000;

const readyNode = (name: string, ready = 'True'): Node => ({
  metadata: { name },
  status: {
    conditions: [
      {
        type: 'Ready',
        status: ready,
        reason: 'KubeletReady',
        lastHeartbeatTime: rfc3339(new Date()),
        lastTransitionTime: rfc3339(new Date()),
      },
      { type: 'MemoryPressure', status: 'False', lastHeartbeatTime: rfc3339(new Date()) },
    ],
  },
});

/** Creates a node and posts its status, as a kubelet registering. */
async function registerNode(clients: Clientset, name: string, ready = 'True'): Promise<void> {
  const node = readyNode(name, ready);
  const created = await clients.nodes.create(undefined, { metadata: node.metadata });
  await clients.nodes.updateStatus({ ...created, status: node.status ?? {} });
}

/** Renews the node's Lease now and every 200 ms until stopped: a live kubelet. */
function heartbeat(clients: Clientset, name: string): { stop(): void } {
  let stopped = false;
  const renew = async () => {
    const spec = { holderIdentity: name, leaseDurationSeconds: 40, renewTime: rfc3339Micro(new Date()) };
    try {
      const lease = await clients.leases.get('kube-node-lease', name);
      await clients.leases.update({ ...lease, spec });
    } catch (err) {
      if (!isApiError(err, 'NotFound')) throw err;
      await clients.leases.create('kube-node-lease', { metadata: { name }, spec });
    }
  };
  const loop = async () => {
    while (!stopped) {
      await renew().catch(() => {});
      await new Promise((r) => setTimeout(r, 200));
    }
  };
  void loop();
  return {
    stop() {
      stopped = true;
    },
  };
}

const pod = (name: string, nodeName: string, tolerations?: Toleration[]): Pod => ({
  metadata: { name },
  spec: {
    ...(nodeName ? { nodeName } : {}),
    containers: [{ name: 'c', image: 'busybox' }],
    ...(tolerations ? { tolerations } : {}),
  },
});

const hasTaint = (node: Node, key: string, effect: string) =>
  (node.spec?.taints ?? []).some((t) => t.key === key && t.effect === effect);

async function ensureNamespace(clients: Clientset, name: string) {
  try {
    await clients.namespaces.create(undefined, { metadata: { name } });
  } catch (err) {
    if (!isApiError(err, 'AlreadyExists')) throw err;
  }
}

describe('node lifecycle controller', () => {
  let t: ControllerTest;
  const beats: { stop(): void }[] = [];
  before(async () => {
    t = await startControllerTest(
      {
        nodelifecycle: newNodeLifecycleController({ nodeMonitorPeriodMs: 100 }),
        'taint-eviction-controller': taintEvictionController,
      },
      { options: { nodeMonitorGracePeriodMs: GRACE_MS } },
    );
    await ensureNamespace(t.clients, 'kube-node-lease');
    // A healthy node, so that losing another one is not "every node is down".
    await registerNode(t.clients, 'healthy');
    beats.push(heartbeat(t.clients, 'healthy'));
  });
  after(async () => {
    for (const b of beats) b.stop();
    await t.close();
  });

  it('turns a silent node Unknown, taints it unreachable, marks its pods not Ready, evicts by toleration', async () => {
    await registerNode(t.clients, 'lost');
    const lostBeat = heartbeat(t.clients, 'lost');
    // A pod that tolerates unreachable for 1 s, and one with the default 300 s.
    const short = await t.clients.pods.create(
      'default',
      pod('short', 'lost', [
        {
          key: 'node.kubernetes.io/unreachable',
          operator: 'Exists',
          effect: 'NoExecute',
          tolerationSeconds: 1,
        },
      ]),
    );
    await t.clients.pods.create('default', pod('patient', 'lost'));
    for (const name of ['short', 'patient']) {
      await t.clients.pods.patch(
        'default',
        name,
        'merge',
        { status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] } },
        { subresource: 'status' },
      );
    }
    assert.equal(
      short.spec?.tolerations?.filter((x) => x.key === 'node.kubernetes.io/unreachable').length,
      1,
    );

    // While the lease is renewed the node stays Ready with no taints.
    await new Promise((r) => setTimeout(r, GRACE_MS / 2));
    let node = await t.clients.nodes.get(undefined, 'lost');
    assert.equal(node.status?.conditions?.find((c) => c.type === 'Ready')?.status, 'True');
    assert.deepEqual(node.spec?.taints ?? [], []);

    lostBeat.stop();
    node = await t.until(
      'lost node Unknown and tainted',
      async () => {
        const n = await t.clients.nodes.get(undefined, 'lost');
        return hasTaint(n, 'node.kubernetes.io/unreachable', 'NoExecute') ? n : undefined;
      },
      GRACE_MS * 5,
    );
    const ready = node.status?.conditions?.find((c) => c.type === 'Ready');
    assert.equal(ready?.status, 'Unknown');
    assert.equal(ready?.reason, 'NodeStatusUnknown');
    assert.equal(ready?.message, 'Kubelet stopped posting node status.');
    const memory = node.status?.conditions?.find((c) => c.type === 'MemoryPressure');
    assert.equal(memory?.status, 'Unknown');
    // Never posted by the "kubelet": added as NodeStatusNeverUpdated.
    const disk = node.status?.conditions?.find((c) => c.type === 'DiskPressure');
    assert.equal(disk?.status, 'Unknown');
    assert.equal(disk?.reason, 'NodeStatusNeverUpdated');
    assert.ok(hasTaint(node, 'node.kubernetes.io/unreachable', 'NoSchedule'));
    const noExecute = node.spec?.taints?.find((x) => x.effect === 'NoExecute');
    assert.ok(noExecute?.timeAdded, 'NoExecute taints carry timeAdded');

    // Its pods are no longer Ready; the short-tolerating one is evicted after 1 s.
    const evicted = await t.until('short evicted', async () => {
      const p = await t.clients.pods.get('default', 'short');
      return p.metadata.deletionTimestamp ? p : undefined;
    });
    const disruption = evicted.status?.conditions?.find((c) => c.type === 'DisruptionTarget');
    assert.equal(disruption?.status, 'True');
    assert.equal(disruption?.reason, 'DeletionByTaintManager');
    const patient = await t.until('patient not Ready', async () => {
      const p = await t.clients.pods.get('default', 'patient');
      return p.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'False' ? p : undefined;
    });
    assert.equal(patient.metadata.deletionTimestamp, undefined, 'the default 300 s toleration holds');

    // The healthy node was left alone.
    const healthy = await t.clients.nodes.get(undefined, 'healthy');
    assert.equal(healthy.status?.conditions?.find((c) => c.type === 'Ready')?.status, 'True');
    assert.deepEqual(healthy.spec?.taints ?? [], []);

    // The kubelet comes back: posts Ready again, and the taints go.
    const back = heartbeat(t.clients, 'lost');
    beats.push(back);
    const current = await t.clients.nodes.get(undefined, 'lost');
    await t.clients.nodes.updateStatus({ ...current, status: readyNode('lost').status ?? {} });
    await t.until('lost node untainted', async () => {
      const n = await t.clients.nodes.get(undefined, 'lost');
      return (n.spec?.taints ?? []).length === 0;
    });
  });

  it('taints a node that reports Ready=False not-ready, and removes it when Ready', async () => {
    await registerNode(t.clients, 'sick', 'False');
    beats.push(heartbeat(t.clients, 'sick'));
    const node = await t.until('not-ready taints', async () => {
      const n = await t.clients.nodes.get(undefined, 'sick');
      return hasTaint(n, 'node.kubernetes.io/not-ready', 'NoExecute') ? n : undefined;
    });
    assert.ok(hasTaint(node, 'node.kubernetes.io/not-ready', 'NoSchedule'));
    assert.ok(!hasTaint(node, 'node.kubernetes.io/unreachable', 'NoExecute'));
    await t.clients.nodes.updateStatus({ ...node, status: readyNode('sick').status ?? {} });
    await t.until('taints removed', async () => {
      const n = await t.clients.nodes.get(undefined, 'sick');
      return (n.spec?.taints ?? []).length === 0;
    });
  });

  it('mirrors spec.unschedulable (cordon) as the unschedulable taint, leaving other taints alone', async () => {
    const mine: Taint = { key: 'example.com/gpu', value: 'true', effect: 'NoSchedule' };
    await t.clients.nodes.patch(undefined, 'healthy', 'merge', {
      spec: { unschedulable: true, taints: [mine] },
    });
    const node = await t.until('unschedulable taint', async () => {
      const n = await t.clients.nodes.get(undefined, 'healthy');
      return hasTaint(n, 'node.kubernetes.io/unschedulable', 'NoSchedule') ? n : undefined;
    });
    assert.ok(hasTaint(node, 'example.com/gpu', 'NoSchedule'));
    await t.clients.nodes.patch(undefined, 'healthy', 'merge', { spec: { unschedulable: false } });
    const after = await t.until('uncordoned', async () => {
      const n = await t.clients.nodes.get(undefined, 'healthy');
      return hasTaint(n, 'node.kubernetes.io/unschedulable', 'NoSchedule') ? undefined : n;
    });
    assert.deepEqual(after.spec?.taints, [mine]);
  });
});

describe('node lifecycle controller when every node is down', () => {
  it('does not add NoExecute taints (master disruption mode), only NoSchedule', async () => {
    const t = await startControllerTest(
      { nodelifecycle: newNodeLifecycleController({ nodeMonitorPeriodMs: 100 }) },
      { options: { nodeMonitorGracePeriodMs: 500 } },
    );
    try {
      await registerNode(t.clients, 'only');
      const node = await t.until('only node Unknown', async () => {
        const n = await t.clients.nodes.get(undefined, 'only');
        return hasTaint(n, 'node.kubernetes.io/unreachable', 'NoSchedule') ? n : undefined;
      });
      assert.equal(node.status?.conditions?.find((c) => c.type === 'Ready')?.status, 'Unknown');
      // A few more monitor passes: still no NoExecute taint.
      await new Promise((r) => setTimeout(r, 500));
      const again = await t.clients.nodes.get(undefined, 'only');
      assert.ok(!(again.spec?.taints ?? []).some((x) => x.effect === 'NoExecute'));
    } finally {
      await t.close();
    }
  });
});

describe('taint eviction controller', () => {
  let t: ControllerTest;
  before(async () => {
    t = await startControllerTest({ 'taint-eviction-controller': taintEvictionController });
    await t.clients.nodes.create(undefined, { metadata: { name: 'n1' } });
  });
  after(() => t.close());

  const getPod = (name: string) =>
    t.clients.pods.get('default', name).catch((err) => {
      if (isApiError(err, 'NotFound')) return undefined;
      throw err;
    });
  const evicted = async (name: string) => {
    const p = await getPod(name);
    return !p || !!p.metadata.deletionTimestamp;
  };
  const broken: Toleration = { key: 'example.com/broken', operator: 'Exists', effect: 'NoExecute' };

  it('evicts intolerant pods at once, tolerating ones after tolerationSeconds, never the rest', async () => {
    await t.clients.pods.create('default', pod('intolerant', 'n1'));
    await t.clients.pods.create('default', pod('forever', 'n1', [broken]));
    await t.clients.pods.create('default', pod('one-second', 'n1', [{ ...broken, tolerationSeconds: 1 }]));
    await t.clients.pods.create('default', pod('elsewhere', 'n2'));
    const tainted = Date.now();
    await t.clients.nodes.patch(undefined, 'n1', 'merge', {
      spec: { taints: [{ key: 'example.com/broken', effect: 'NoExecute', timeAdded: rfc3339(new Date()) }] },
    });

    await t.until('intolerant evicted', () => evicted('intolerant'));
    const p = await getPod('intolerant');
    if (p) {
      const c = p.status?.conditions?.find((x) => x.type === 'DisruptionTarget');
      assert.equal(c?.reason, 'DeletionByTaintManager');
      assert.equal(c?.message, 'Taint manager: deleting due to NoExecute taint');
    }
    await t.until('one-second evicted', () => evicted('one-second'));
    assert.ok(Date.now() - tainted >= 900, 'not before its toleration ran out');
    assert.equal(await evicted('forever'), false);
    assert.equal(await evicted('elsewhere'), false);

    const events = await t.clients.events.list('default');
    assert.ok(
      events.items.some(
        (e) =>
          e.reason === 'TaintManagerEviction' && e.message === 'Marking for deletion Pod default/intolerant',
      ),
    );
  });

  it('cancels a scheduled eviction when the taint goes', async () => {
    await t.clients.nodes.create(undefined, { metadata: { name: 'n3' } });
    await t.clients.pods.create('default', pod('spared', 'n3', [{ ...broken, tolerationSeconds: 2 }]));
    await t.clients.nodes.patch(undefined, 'n3', 'merge', {
      spec: { taints: [{ key: 'example.com/broken', effect: 'NoExecute' }] },
    });
    await new Promise((r) => setTimeout(r, 300));
    await t.clients.nodes.patch(undefined, 'n3', 'merge', { spec: { taints: null } });
    await t.until('cancel event', async () => {
      const events = await t.clients.events.list('default');
      return events.items.some((e) => e.message === 'Cancelling deletion of Pod default/spared');
    });
    await new Promise((r) => setTimeout(r, 2_500));
    assert.equal(await evicted('spared'), false);
  });
});

describe('toleration matching (upstream GetMatchingTolerations, getMinTolerationTime)', () => {
  const taint: Taint = { key: 'k', value: 'v', effect: 'NoExecute' };
  it('matches by key, value, effect and operator', () => {
    assert.equal(matchingTolerations([taint], [{ key: 'k', value: 'v' }]).allTolerated, true);
    assert.equal(matchingTolerations([taint], [{ key: 'k', value: 'w' }]).allTolerated, false);
    assert.equal(matchingTolerations([taint], [{ operator: 'Exists' }]).allTolerated, true);
    assert.equal(
      matchingTolerations([taint], [{ key: 'k', operator: 'Exists', effect: 'NoSchedule' }]).allTolerated,
      false,
    );
    assert.equal(
      matchingTolerations([taint, { key: 'other', effect: 'NoExecute' }], [{ key: 'k', operator: 'Exists' }])
        .allTolerated,
      false,
    );
  });
  it('takes the smallest tolerationSeconds; none means forever, zero or less means now', () => {
    assert.equal(minTolerationTime([{ tolerationSeconds: 30 }, { tolerationSeconds: 10 }, {}]), 10_000);
    assert.equal(minTolerationTime([{}]), -1);
    assert.equal(minTolerationTime([{ tolerationSeconds: -5 }, { tolerationSeconds: 10 }]), 0);
  });
});

describe('DefaultTolerationSeconds', () => {
  let t: ControllerTest;
  before(async () => {
    t = await startControllerTest({});
  });
  after(() => t.close());

  it('gives pods 300 s for not-ready and unreachable unless they already tolerate them', async () => {
    const plain = await t.clients.pods.create('default', pod('plain', ''));
    assert.deepEqual(plain.spec?.tolerations, [
      {
        key: 'node.kubernetes.io/not-ready',
        operator: 'Exists',
        effect: 'NoExecute',
        tolerationSeconds: 300,
      },
      {
        key: 'node.kubernetes.io/unreachable',
        operator: 'Exists',
        effect: 'NoExecute',
        tolerationSeconds: 300,
      },
    ]);
    const own = await t.clients.pods.create(
      'default',
      pod('own', '', [
        {
          key: 'node.kubernetes.io/unreachable',
          operator: 'Exists',
          effect: 'NoExecute',
          tolerationSeconds: 5,
        },
      ]),
    );
    assert.deepEqual(own.spec?.tolerations, [
      {
        key: 'node.kubernetes.io/unreachable',
        operator: 'Exists',
        effect: 'NoExecute',
        tolerationSeconds: 5,
      },
      {
        key: 'node.kubernetes.io/not-ready',
        operator: 'Exists',
        effect: 'NoExecute',
        tolerationSeconds: 300,
      },
    ]);
    // An empty key with Exists tolerates every taint: nothing is added.
    const all = await t.clients.pods.create('default', pod('all', '', [{ operator: 'Exists' }]));
    assert.deepEqual(all.spec?.tolerations, [{ operator: 'Exists' }]);
    // A NoSchedule toleration does not cover NoExecute.
    const noSchedule = await t.clients.pods.create(
      'default',
      pod('nosched', '', [{ key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoSchedule' }]),
    );
    assert.equal(noSchedule.spec?.tolerations?.length, 3);
  });
});
