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

type PdbStatus = NonNullable<PodDisruptionBudget['status']>;

const statusOf = async (name: string, ns = 'default') =>
  (await t.clients.podDisruptionBudgets.get(ns, name)).status as PdbStatus | undefined;

/** Waits until the PDB's status satisfies `ready`, and returns it. */
const statusWhen = (name: string, what: string, ready: (s: PdbStatus) => boolean, ns = 'default') =>
  t.until(`${name}: ${what}`, async () => {
    const s = await statusOf(name, ns);
    return s && ready(s) ? s : undefined;
  });

const condition = (s: PdbStatus) => s.conditions?.find((c) => c.type === 'DisruptionAllowed');

describe('disruption controller', () => {
  it('minAvailable as an integer: counts healthy pods and allows the rest to go', async () => {
    for (const n of ['a-1', 'a-2', 'a-3']) await readyPod(n, { app: 'a' });
    await t.clients.podDisruptionBudgets.create('default', {
      metadata: { name: 'a' },
      spec: { minAvailable: 2, selector: { matchLabels: { app: 'a' } } },
    });
    const s = await statusWhen('a', 'three healthy', (s) => s.currentHealthy === 3);
    assert.equal(s.desiredHealthy, 2);
    assert.equal(s.expectedPods, 3);
    assert.equal(s.disruptionsAllowed, 1);
    assert.equal(condition(s)?.status, 'True');
    assert.equal(condition(s)?.reason, 'SufficientPods');

    // Two pods become unready: one healthy, two required, nothing may go.
    await setReady('a-1', false);
    await setReady('a-2', false);
    const s2 = await statusWhen('a', 'a-1 and a-2 unready counted', (s) => s.currentHealthy === 1);
    assert.equal(s2.disruptionsAllowed, 0);
    assert.equal(condition(s2)?.status, 'False');
    assert.equal(condition(s2)?.reason, 'InsufficientPods');
  });

  it('minAvailable as a percentage rounds up; status is not rewritten when nothing changed', async () => {
    // A percentage counts the pods' controllers' scale (as upstream, pods
    // with no controller are not counted), so these belong to a ReplicaSet.
    await ownedPods('b', 3, ['b-1', 'b-2', 'b-3']);
    await t.clients.podDisruptionBudgets.create('default', {
      metadata: { name: 'b' },
      spec: { minAvailable: '50%', selector: { matchLabels: { app: 'b' } } },
    });
    const s = await statusWhen('b', 'three healthy', (s) => s.currentHealthy === 3);
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
    const s = await statusWhen('c', 'two healthy', (s) => s.currentHealthy === 2);
    assert.equal(s.expectedPods, 4, 'from the ReplicaSet, not the pods that exist');
    assert.equal(s.desiredHealthy, 3);
    assert.equal(s.disruptionsAllowed, 0);
  });

  it('an empty selector selects every pod of its namespace (policy/v1), a missing one none', async () => {
    await t.clients.namespaces.create(undefined, { metadata: { name: 'everything' } });
    for (const [n, labels] of [
      ['e-1', { app: 'x' }],
      ['e-2', { app: 'y' }],
      ['e-3', {}],
    ] as const) {
      await t.clients.pods.create('everything', pod(n, labels));
      await t.clients.pods.patch(
        'everything',
        n,
        'merge',
        { status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] } },
        { subresource: 'status' },
      );
    }
    await t.clients.podDisruptionBudgets.create('everything', {
      metadata: { name: 'all' },
      spec: { minAvailable: 1, selector: {} },
    });
    await t.clients.podDisruptionBudgets.create('everything', {
      metadata: { name: 'none' },
      spec: { minAvailable: 1 },
    });
    const all = await statusWhen('all', 'three healthy', (s) => s.currentHealthy === 3, 'everything');
    assert.equal(all.expectedPods, 3);
    assert.equal(all.disruptionsAllowed, 2);
    const none = await statusWhen('none', 'synced', (s) => s.observedGeneration === 1, 'everything');
    assert.equal(none.expectedPods, 0);
    assert.equal(none.currentHealthy, 0);
    assert.equal(none.disruptionsAllowed, 0);
  });

  it('a pod whose controller cannot be resolved fails safe: no disruption allowed, SyncFailed', async () => {
    const labels = { app: 'w' };
    for (const n of ['w-1', 'w-2']) {
      await t.clients.pods.create('default', {
        ...pod(n, labels),
        metadata: {
          name: n,
          labels,
          ownerReferences: [
            { apiVersion: 'example.com/v1', kind: 'Widget', name: 'w', uid: 'widget-uid', controller: true },
          ],
        },
      });
      await setReady(n, true);
    }
    await t.clients.podDisruptionBudgets.create('default', {
      metadata: { name: 'w' },
      spec: { maxUnavailable: 1, selector: { matchLabels: labels } },
    });
    const s = await statusWhen('w', 'SyncFailed', (s) => condition(s)?.reason === 'SyncFailed');
    assert.equal(s.disruptionsAllowed, 0);
    assert.equal(condition(s)?.status, 'False');
    assert.match(condition(s)?.message ?? '', /found no controllers for pod "w-[12]"/);
    // Not synced: observedGeneration stays behind, so eviction says "still being processed".
    assert.equal(s.observedGeneration, 0);
    const events = await t.clients.events.list('default');
    assert.ok(
      events.items.some(
        (e) => e.reason === 'CalculateExpectedPodCountFailed' && e.involvedObject?.name === 'w',
      ),
      'a Warning event says why',
    );
  });
});
