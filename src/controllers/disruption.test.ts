import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Pod } from '../api/types/core-v1.ts';
import type { PodDisruptionBudget } from '../api/types/policy-v1.ts';
import { disruptionController } from './disruption.ts';
import { type ControllerTest, startControllerTest } from './testing.ts';

let t: ControllerTest;
before(async () => {
  t = await startControllerTest({ disruption: disruptionController });
});
after(() => t.close());

const pod = (name: string, labels: Record<string, string>): Pod => ({
  metadata: { name, labels },
  spec: { containers: [{ name: 'c', image: 'busybox' }] },
});

async function readyPod(name: string, labels: Record<string, string>, ready = true): Promise<void> {
  await t.clients.pods.create('default', pod(name, labels));
  await setReady(name, ready);
}

const setReady = (name: string, ready: boolean) =>
  t.clients.pods.patch(
    'default',
    name,
    'merge',
    { status: { phase: 'Running', conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }] } },
    { subresource: 'status' },
  );

async function ownedPods(rsName: string, replicas: number, names: string[]): Promise<void> {
  const labels = { app: rsName };
  const rs = await t.clients.replicaSets.create('default', {
    metadata: { name: rsName },
    spec: {
      replicas,
      selector: { matchLabels: labels },
      template: { metadata: { labels }, spec: { containers: [{ name: 'c', image: 'busybox' }] } },
    },
  });
  for (const n of names) {
    await t.clients.pods.create('default', {
      ...pod(n, labels),
      metadata: {
        name: n,
        labels,
        ownerReferences: [
          {
            apiVersion: 'apps/v1',
            kind: 'ReplicaSet',
            name: rsName,
            uid: rs.metadata.uid!,
            controller: true,
          },
        ],
      },
    });
    await setReady(n, true);
  }
}

const statusOf = async (name: string) =>
  (await t.clients.podDisruptionBudgets.get('default', name)).status as
    | NonNullable<PodDisruptionBudget['status']>
    | undefined;

describe('disruption controller', () => {
  it('minAvailable as an integer: counts healthy pods and allows the rest to go', async () => {
    for (const n of ['a-1', 'a-2', 'a-3']) await readyPod(n, { app: 'a' });
    await t.clients.podDisruptionBudgets.create('default', {
      metadata: { name: 'a' },
      spec: { minAvailable: 2, selector: { matchLabels: { app: 'a' } } },
    });
    const s = await t.until('status of a', async () => {
      const s = await statusOf('a');
      return s?.currentHealthy === 3 ? s : undefined;
    });
    assert.equal(s.desiredHealthy, 2);
    assert.equal(s.expectedPods, 3);
    assert.equal(s.disruptionsAllowed, 1);
    const cond = s.conditions?.find((c) => c.type === 'DisruptionAllowed');
    assert.equal(cond?.status, 'True');
    assert.equal(cond?.reason, 'SufficientPods');

    // Two pods become unready: one healthy, two required, nothing may go.
    await setReady('a-1', false);
    await setReady('a-2', false);
    const s2 = await t.until('a-1 and a-2 unready counted', async () => {
      const s = await statusOf('a');
      return s?.currentHealthy === 1 ? s : undefined;
    });
    assert.equal(s2.disruptionsAllowed, 0);
    const cond2 = s2.conditions?.find((c) => c.type === 'DisruptionAllowed');
    assert.equal(cond2?.status, 'False');
    assert.equal(cond2?.reason, 'InsufficientPods');
  });

  it('minAvailable as a percentage rounds up; status is not rewritten when nothing changed', async () => {
    // A percentage counts the pods' controllers' scale (as upstream, pods
    // with no controller are not counted), so these belong to a ReplicaSet.
    await ownedPods('b', 3, ['b-1', 'b-2', 'b-3']);
    await t.clients.podDisruptionBudgets.create('default', {
      metadata: { name: 'b' },
      spec: { minAvailable: '50%', selector: { matchLabels: { app: 'b' } } },
    });
    const s = await t.until('status of b', async () => {
      const s = await statusOf('b');
      return s?.currentHealthy === 3 ? s : undefined;
    });
    assert.equal(s.expectedPods, 3);
    assert.equal(s.desiredHealthy, 2, 'ceil(50% of 3)');
    assert.equal(s.disruptionsAllowed, 1);
    const rv = (await t.clients.podDisruptionBudgets.get('default', 'b')).metadata.resourceVersion;
    // A change to a pod that changes no count writes nothing.
    await t.clients.pods.patch('default', 'b-1', 'merge', { metadata: { annotations: { touched: 'yes' } } });
    await new Promise((r) => setTimeout(r, 500));
    assert.equal((await t.clients.podDisruptionBudgets.get('default', 'b')).metadata.resourceVersion, rv);
  });

  it('maxUnavailable takes the expected count from the owning ReplicaSet scale', async () => {
    // Only two of the four replicas exist (no ReplicaSet controller runs here).
    await ownedPods('c', 4, ['c-1', 'c-2']);
    await t.clients.podDisruptionBudgets.create('default', {
      metadata: { name: 'c' },
      spec: { maxUnavailable: 1, selector: { matchLabels: { app: 'c' } } },
    });
    const s = await t.until('status of c', async () => {
      const s = await statusOf('c');
      return s?.currentHealthy === 2 ? s : undefined;
    });
    assert.equal(s.expectedPods, 4, 'from the ReplicaSet, not the pods that exist');
    assert.equal(s.desiredHealthy, 3);
    assert.equal(s.disruptionsAllowed, 0);
  });
});
