import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Pod, ReplicationController } from '../api/types/core-v1.ts';
import { replicationControllerController } from './replicationcontroller.ts';
import { type ControllerTest, startControllerTest } from './testing.ts';

// The ReplicationController shares the ReplicaSet controller's core
// (replicaset.test.ts covers that in depth); these tests cover what differs:
// the core/v1 owner, the map selector and the event source.

const NS = 'default';
let t: ControllerTest;
before(async () => {
  t = await startControllerTest({ replicationcontroller: replicationControllerController });
});
after(() => t.close());

const rc = (name: string, replicas: number): ReplicationController => ({
  apiVersion: 'v1',
  kind: 'ReplicationController',
  metadata: { name, namespace: NS },
  // No selector: the API server defaults it to the template's labels.
  spec: {
    replicas,
    template: {
      metadata: { labels: { app: name } },
      spec: { containers: [{ name: 'c', image: 'busybox' }] },
    },
  },
});

async function podsOf(owner: ReplicationController): Promise<Pod[]> {
  return (await t.clients.pods.list(NS)).items.filter(
    (p) =>
      !p.metadata.deletionTimestamp &&
      p.metadata.ownerReferences?.some((r) => r.controller && r.uid === owner.metadata.uid),
  );
}

describe('replicationcontroller controller', () => {
  it('creates pods owned by the ReplicationController and reports them', async () => {
    const owner = await t.clients.replicationControllers.create(NS, rc('legacy', 2));
    assert.deepEqual(owner.spec?.selector, { app: 'legacy' });
    const pods = await t.until('2 pods', async () => {
      const p = await podsOf(owner);
      return p.length === 2 ? p : undefined;
    });
    assert.deepEqual(pods[0]?.metadata.ownerReferences, [
      {
        apiVersion: 'v1',
        kind: 'ReplicationController',
        name: 'legacy',
        uid: owner.metadata.uid,
        controller: true,
        blockOwnerDeletion: true,
      },
    ]);
    assert.match(pods[0]?.metadata.name ?? '', /^legacy-[a-z0-9]{5}$/);
    await t.until('status', async () => {
      const s = (await t.clients.replicationControllers.get(NS, 'legacy')).status;
      return s?.replicas === 2 && s.fullyLabeledReplicas === 2 && s.observedGeneration === 1;
    });
    const events = await t.until('SuccessfulCreate events', async () => {
      const e = (await t.clients.events.list(NS)).items.filter(
        (x) => x.involvedObject?.kind === 'ReplicationController' && x.reason === 'SuccessfulCreate',
      );
      return e.length === 2 ? e : undefined;
    });
    assert.equal(events[0]?.source?.component, 'replication-controller');
  });

  it('scales through /scale and adopts orphans its map selector matches', async () => {
    const owner = await t.clients.replicationControllers.get(NS, 'legacy');
    const orphan = await t.clients.pods.create(NS, {
      metadata: { name: 'legacy-orphan', namespace: NS, labels: { app: 'legacy' } },
      spec: { containers: [{ name: 'c', image: 'busybox' }] },
    });
    await t.clients.replicationControllers.patch(
      NS,
      'legacy',
      'merge',
      { spec: { replicas: 4 } },
      { subresource: 'scale' },
    );
    const pods = await t.until('4 pods, the orphan among them', async () => {
      const p = await podsOf(owner);
      return p.length === 4 ? p : undefined;
    });
    assert.ok(pods.some((p) => p.metadata.uid === orphan.metadata.uid));

    await t.clients.replicationControllers.patch(NS, 'legacy', 'merge', { spec: { replicas: 1 } });
    await t.until('1 pod', async () => (await podsOf(owner)).length === 1);
    await t.until('status 1', async () => {
      const s = (await t.clients.replicationControllers.get(NS, 'legacy')).status;
      return s?.replicas === 1 && s.observedGeneration === 3;
    });
  });
});
