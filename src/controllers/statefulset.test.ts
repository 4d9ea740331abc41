// The StatefulSet controller against a real API server. There is no kubelet,
// so the tests play its part: they mark pods Running and Ready through the
// pods/status subresource, and they hold pods in Terminating with a
// finalizer to see which pod the controller removes first.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { isApiError } from '../api/errors.ts';
import { rfc3339 } from '../api/meta.ts';
import type { StatefulSet } from '../api/types/apps-v1.ts';
import type { Pod } from '../api/types/core-v1.ts';
import { statefulSetController } from './statefulset.ts';
import { type ControllerTest, startControllerTest } from './testing.ts';

/** Keeps a deleted pod in Terminating until the test lets it go. */
const HOLD = 'skiff.test/hold';

let t: ControllerTest;
before(async () => {
  t = await startControllerTest({ statefulset: statefulSetController });
});
after(() => t.close());

let nsCount = 0;
async function namespace(): Promise<string> {
  const name = `sts-${++nsCount}`;
  await t.clients.namespaces.create(undefined, { metadata: { name } });
  return name;
}

interface SetOptions {
  replicas?: number;
  image?: string;
  policy?: 'OrderedReady' | 'Parallel';
  partition?: number;
  onDelete?: boolean;
  finalizers?: string[];
  spec?: Partial<NonNullable<StatefulSet['spec']>>;
}

function statefulSet(name: string, o: SetOptions = {}): StatefulSet {
  return {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: { name },
    spec: {
      replicas: o.replicas ?? 3,
      serviceName: name,
      selector: { matchLabels: { app: name } },
      podManagementPolicy: o.policy ?? 'OrderedReady',
      updateStrategy: o.onDelete
        ? { type: 'OnDelete' }
        : { type: 'RollingUpdate', rollingUpdate: { partition: o.partition ?? 0 } },
      template: {
        metadata: { labels: { app: name }, ...(o.finalizers ? { finalizers: o.finalizers } : {}) },
        spec: { containers: [{ name: 'app', image: o.image ?? 'nginx:1.27' }] },
      },
      ...o.spec,
    },
  };
}

const getPod = (ns: string, name: string) =>
  t.clients.pods.get(ns, name).catch((err) => {
    if (isApiError(err, 'NotFound')) return undefined;
    throw err;
  });

const podNames = async (ns: string) =>
  (await t.clients.pods.list(ns)).items.map((p) => p.metadata.name ?? '').sort();

const getSet = (ns: string, name: string) => t.clients.statefulSets.get(ns, name);

/** Plays the kubelet: the pod runs and passes its readiness probe. */
async function markReady(ns: string, name: string): Promise<void> {
  await t.clients.pods.patch(
    ns,
    name,
    'merge',
    {
      status: {
        phase: 'Running',
        conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: rfc3339(new Date()) }],
      },
    },
    { subresource: 'status' },
  );
}

/** Waits for a pod to exist (optionally: with another uid than `not`) and marks it Ready. */
async function readyWhenCreated(ns: string, name: string, not?: string): Promise<Pod> {
  const pod = await t.until(`${name} created`, async () => {
    const p = await getPod(ns, name);
    return p && p.metadata.uid !== not ? p : undefined;
  });
  await markReady(ns, name);
  return pod;
}

/** Lets a held pod go: with its finalizer removed, the pending deletion completes. */
async function release(ns: string, name: string): Promise<void> {
  await t.clients.pods.patch(ns, name, 'merge', { metadata: { finalizers: null } });
}

/** Gives the controller time to do something it must not do. */
const settle = () => new Promise((r) => setTimeout(r, 300));

/** Creates a set and walks it to `replicas` Ready pods. */
async function readySet(ns: string, set: StatefulSet): Promise<StatefulSet> {
  await t.clients.statefulSets.create(ns, set);
  const name = set.metadata.name ?? '';
  const replicas = set.spec?.replicas ?? 1;
  const start = set.spec?.ordinals?.start ?? 0;
  for (let i = start; i < start + replicas; i++) await readyWhenCreated(ns, `${name}-${i}`);
  return t.until('all replicas ready', async () => {
    const s = await getSet(ns, name);
    return s.status?.readyReplicas === replicas && s.status.currentRevision === s.status.updateRevision
      ? s
      : undefined;
  });
}

describe('statefulset controller: identity and ordered scaling', () => {
  it('creates web-0, web-1, web-2 one at a time, each after its predecessor is Running and Ready', async () => {
    const ns = await namespace();
    await t.clients.statefulSets.create(ns, statefulSet('web'));

    await t.until('web-0', () => getPod(ns, 'web-0'));
    await settle();
    assert.deepEqual(await podNames(ns), ['web-0'], 'web-1 waits for web-0 to be ready');

    await markReady(ns, 'web-0');
    await t.until('web-1', () => getPod(ns, 'web-1'));
    await settle();
    assert.deepEqual(await podNames(ns), ['web-0', 'web-1']);

    await markReady(ns, 'web-1');
    await readyWhenCreated(ns, 'web-2');

    const set = await t.until('status: 3 ready', async () => {
      const s = await getSet(ns, 'web');
      return s.status?.readyReplicas === 3 && s.status.availableReplicas === 3 ? s : undefined;
    });
    assert.equal(set.status?.replicas, 3);
    assert.equal(set.status?.observedGeneration, set.metadata.generation);
    assert.ok(set.status?.updateRevision?.startsWith('web-'));
    assert.equal(set.status?.currentRevision, set.status?.updateRevision);
    assert.equal(set.status?.currentReplicas, 3);
    assert.equal(set.status?.updatedReplicas, 3);

    // Each pod carries its identity.
    for (const i of [0, 1, 2]) {
      const pod = (await getPod(ns, `web-${i}`)) as Pod;
      assert.equal(pod.metadata.labels?.['statefulset.kubernetes.io/pod-name'], `web-${i}`);
      assert.equal(pod.metadata.labels?.['apps.kubernetes.io/pod-index'], String(i));
      assert.equal(pod.metadata.labels?.['controller-revision-hash'], set.status?.updateRevision);
      assert.equal(pod.metadata.labels?.app, 'web');
      assert.equal(pod.spec?.hostname, `web-${i}`);
      assert.equal(pod.spec?.subdomain, 'web');
      const ref = pod.metadata.ownerReferences?.[0];
      assert.equal(ref?.kind, 'StatefulSet');
      assert.equal(ref?.uid, set.metadata.uid);
      assert.equal(ref?.controller, true);
    }

    // A ControllerRevision records the template.
    const revs = (await t.clients.controllerRevisions.list(ns)).items;
    assert.equal(revs.length, 1);
    assert.equal(revs[0]?.metadata.name, set.status?.updateRevision);
    assert.equal(revs[0]?.revision, 1);

    const events = await t.until('SuccessfulCreate events', async () => {
      const list = (await t.clients.events.list(ns)).items.filter((e) => e.reason === 'SuccessfulCreate');
      return list.length >= 3 ? list : undefined;
    });
    assert.ok(events.some((e) => e.message === 'create Pod web-0 in StatefulSet web successful'));
    assert.equal(events[0]?.involvedObject?.kind, 'StatefulSet');
  });

  it('scales down from the highest ordinal, one pod at a time', async () => {
    const ns = await namespace();
    await readySet(ns, statefulSet('web', { finalizers: [HOLD] }));

    await t.clients.statefulSets.patch(ns, 'web', 'merge', { spec: { replicas: 1 } });
    await t.until('web-2 terminating', async () => (await getPod(ns, 'web-2'))?.metadata.deletionTimestamp);
    await settle();
    assert.equal((await getPod(ns, 'web-1'))?.metadata.deletionTimestamp, undefined, 'web-1 waits for web-2');

    await release(ns, 'web-2');
    await t.until('web-1 terminating', async () => (await getPod(ns, 'web-1'))?.metadata.deletionTimestamp);
    await release(ns, 'web-1');
    await t.until('only web-0 left', async () => (await podNames(ns)).join() === 'web-0');
    const set = await t.until('status replicas 1', async () => {
      const s = await getSet(ns, 'web');
      return s.status?.replicas === 1 ? s : undefined;
    });
    assert.equal(set.status?.readyReplicas, 1);

    const deletes = (await t.clients.events.list(ns)).items.filter((e) => e.reason === 'SuccessfulDelete');
    assert.ok(deletes.some((e) => e.message === 'delete Pod web-2 in StatefulSet web successful'));
  });

  it('Parallel creates and deletes all pods at once, ready or not', async () => {
    const ns = await namespace();
    await t.clients.statefulSets.create(ns, statefulSet('par', { policy: 'Parallel', finalizers: [HOLD] }));
    await t.until('3 pods without any ready', async () => (await podNames(ns)).length === 3);

    await t.clients.statefulSets.patch(ns, 'par', 'merge', { spec: { replicas: 0 } });
    await t.until('all three terminating', async () => {
      const pods = (await t.clients.pods.list(ns)).items;
      return pods.length === 3 && pods.every((p) => p.metadata.deletionTimestamp);
    });
    for (const i of [0, 1, 2]) await release(ns, `par-${i}`);
    await t.until('no pods', async () => (await podNames(ns)).length === 0);
  });

  it('honours spec.ordinals.start', async () => {
    const ns = await namespace();
    await t.clients.statefulSets.create(
      ns,
      statefulSet('db', { replicas: 2, policy: 'Parallel', spec: { ordinals: { start: 5 } } }),
    );
    await t.until('db-5 and db-6', async () => (await podNames(ns)).join() === 'db-5,db-6');
    const pod = (await getPod(ns, 'db-5')) as Pod;
    assert.equal(pod.metadata.labels?.['apps.kubernetes.io/pod-index'], '5');
  });
});

describe('statefulset controller: repairs', () => {
  it('deletes a failed pod and recreates it under the same name', async () => {
    const ns = await namespace();
    await readySet(ns, statefulSet('web', { replicas: 2 }));
    const before = (await getPod(ns, 'web-1')) as Pod;
    await t.clients.pods.patch(
      ns,
      'web-1',
      'merge',
      { status: { phase: 'Failed' } },
      { subresource: 'status' },
    );
    const again = await t.until('web-1 recreated', async () => {
      const p = await getPod(ns, 'web-1');
      return p && p.metadata.uid !== before.metadata.uid ? p : undefined;
    });
    assert.equal(again.status?.phase, 'Pending');
    assert.equal(again.spec?.hostname, 'web-1');
  });

  it('recreates a deleted pod, and restores an identity label that was removed', async () => {
    const ns = await namespace();
    await readySet(ns, statefulSet('web', { replicas: 2 }));
    const before = (await getPod(ns, 'web-0')) as Pod;
    await t.clients.pods.delete(ns, 'web-0');
    await readyWhenCreated(ns, 'web-0', before.metadata.uid);

    await t.clients.pods.patch(ns, 'web-1', 'merge', {
      metadata: { labels: { 'statefulset.kubernetes.io/pod-name': null } },
    });
    const fixed = await t.until('pod-name label back', async () => {
      const p = await getPod(ns, 'web-1');
      return p?.metadata.labels?.['statefulset.kubernetes.io/pod-name'] === 'web-1' ? p : undefined;
    });
    assert.equal(fixed.metadata.labels?.['apps.kubernetes.io/pod-index'], '1');
  });

  it('adopts an orphan that has a member name and matching labels', async () => {
    const ns = await namespace();
    await t.clients.pods.create(ns, {
      metadata: { name: 'web-0', labels: { app: 'web' } },
      spec: { containers: [{ name: 'app', image: 'nginx:1.27' }] },
    });
    await t.clients.statefulSets.create(ns, statefulSet('web', { replicas: 1 }));
    const set = await getSet(ns, 'web');
    const pod = await t.until('web-0 adopted', async () => {
      const p = await getPod(ns, 'web-0');
      return p?.metadata.ownerReferences?.[0]?.uid === set.metadata.uid ? p : undefined;
    });
    assert.equal(pod.metadata.ownerReferences?.[0]?.controller, true);
  });
});

describe('statefulset controller: updates', () => {
  it('RollingUpdate replaces pods from the highest ordinal down to the partition, one Ready pod at a time', async () => {
    const ns = await namespace();
    const initial = await readySet(ns, statefulSet('web', { partition: 1 }));
    const oldRevision = initial.status?.updateRevision;
    const uid = async (i: number) => (await getPod(ns, `web-${i}`))?.metadata.uid;
    const uids = [await uid(0), await uid(1), await uid(2)];

    await t.clients.statefulSets.patch(ns, 'web', 'merge', {
      spec: { template: { spec: { containers: [{ name: 'app', image: 'nginx:1.28' }] } } },
    });
    const set = await t.until('new update revision', async () => {
      const s = await getSet(ns, 'web');
      return s.status?.updateRevision !== oldRevision &&
        s.status?.observedGeneration === s.metadata.generation
        ? s
        : undefined;
    });
    const newRevision = set.status?.updateRevision;
    assert.equal(set.status?.currentRevision, oldRevision);

    // web-2 goes first and comes back at the new revision.
    const web2 = await t.until('web-2 recreated', async () => {
      const p = await getPod(ns, 'web-2');
      return p && p.metadata.uid !== uids[2] ? p : undefined;
    });
    assert.equal(web2.metadata.labels?.['controller-revision-hash'], newRevision);
    assert.equal(web2.spec?.containers?.[0]?.image, 'nginx:1.28');
    await settle();
    assert.equal(await uid(1), uids[1], 'web-1 waits for web-2 to be ready');

    // Once web-2 is ready, web-1 (ordinal >= partition 1) goes next; web-0,
    // below the partition, stays at the old revision.
    await markReady(ns, 'web-2');
    await readyWhenCreated(ns, 'web-1', uids[1]);
    const partitioned = await t.until('2 updated replicas', async () => {
      const s = await getSet(ns, 'web');
      return s.status?.updatedReplicas === 2 && s.status.readyReplicas === 3 ? s : undefined;
    });
    assert.equal(partitioned.status?.currentReplicas, 1);
    assert.equal(partitioned.status?.currentRevision, oldRevision);
    await settle();
    assert.equal(await uid(0), uids[0]);
    const web0 = (await getPod(ns, 'web-0')) as Pod;
    assert.equal(web0.metadata.labels?.['controller-revision-hash'], oldRevision);
    assert.equal(web0.spec?.containers?.[0]?.image, 'nginx:1.27');

    // Lowering the partition to 0 finishes the rollout.
    await t.clients.statefulSets.patch(ns, 'web', 'merge', {
      spec: { updateStrategy: { rollingUpdate: { partition: 0 } } },
    });
    await readyWhenCreated(ns, 'web-0', uids[0]);
    const done = await t.until('rollout complete', async () => {
      const s = await getSet(ns, 'web');
      return s.status?.currentRevision === newRevision && s.status?.readyReplicas === 3 ? s : undefined;
    });
    assert.equal(done.status?.currentReplicas, 3);
    assert.equal(done.status?.updatedReplicas, 3);
    const revs = (await t.clients.controllerRevisions.list(ns)).items.sort(
      (a, b) => (a.revision ?? 0) - (b.revision ?? 0),
    );
    assert.deepEqual(
      revs.map((r) => [r.metadata.name, r.revision]),
      [
        [oldRevision, 1],
        [newRevision, 2],
      ],
    );
  });

  it('OnDelete updates a pod only when the user deletes it', async () => {
    const ns = await namespace();
    const initial = await readySet(ns, statefulSet('web', { replicas: 2, onDelete: true }));
    const oldRevision = initial.status?.updateRevision;
    const web1 = (await getPod(ns, 'web-1')) as Pod;

    await t.clients.statefulSets.patch(ns, 'web', 'merge', {
      spec: { template: { spec: { containers: [{ name: 'app', image: 'nginx:1.28' }] } } },
    });
    const set = await t.until('new update revision', async () => {
      const s = await getSet(ns, 'web');
      return s.status?.updateRevision !== oldRevision ? s : undefined;
    });
    await settle();
    assert.equal((await getPod(ns, 'web-1'))?.metadata.uid, web1.metadata.uid, 'nothing replaced');
    assert.equal(set.status?.currentRevision, oldRevision);
    assert.equal(set.status?.updatedReplicas, 0);

    await t.clients.pods.delete(ns, 'web-1');
    const recreated = await readyWhenCreated(ns, 'web-1', web1.metadata.uid);
    assert.equal(recreated.metadata.labels?.['controller-revision-hash'], set.status?.updateRevision);
    assert.equal(recreated.spec?.containers?.[0]?.image, 'nginx:1.28');
    await t.until('1 updated replica', async () => (await getSet(ns, 'web')).status?.updatedReplicas === 1);
  });

  it('keeps revisionHistoryLimit old revisions, and a rollback re-uses the old revision', async () => {
    const ns = await namespace();
    await readySet(
      ns,
      statefulSet('web', { replicas: 1, onDelete: true, spec: { revisionHistoryLimit: 1 } }),
    );
    const image = (tag: string) => ({
      spec: { template: { spec: { containers: [{ name: 'app', image: `nginx:${tag}` }] } } },
    });
    const revisionsNow = async () =>
      (await t.clients.controllerRevisions.list(ns)).items
        .sort((a, b) => (a.revision ?? 0) - (b.revision ?? 0))
        .map((r) => r.revision);
    const waitForRevision = (n: number) =>
      t.until(`revision ${n}`, async () => {
        const s = await getSet(ns, 'web');
        const revs = (await t.clients.controllerRevisions.list(ns)).items;
        return revs.find((r) => r.metadata.name === s.status?.updateRevision)?.revision === n;
      });

    // web-0 runs revision 1 throughout (OnDelete), so revision 1 is live.
    for (const [tag, n] of [
      ['a', 2],
      ['b', 3],
      ['c', 4],
    ] as const) {
      await t.clients.statefulSets.patch(ns, 'web', 'merge', image(tag));
      await waitForRevision(n);
    }
    // Live: 1 (web-0 and current) and 4 (update); history keeps one more: 3.
    await t.until('history truncated', async () => (await revisionsNow()).join() === '1,3,4');

    // Back to the template of revision 3: it becomes revision 5, no new object.
    await t.clients.statefulSets.patch(ns, 'web', 'merge', image('b'));
    await waitForRevision(5);
    await t.until('renumbered', async () => (await revisionsNow()).join() === '1,4,5');
  });
});

describe('statefulset controller: volumeClaimTemplates', () => {
  it('creates <template>-<set>-<ordinal> claims, mounts them, and keeps them across pod restarts and scale-down', async () => {
    const ns = await namespace();
    const set = statefulSet('db', {
      replicas: 2,
      spec: {
        volumeClaimTemplates: [
          {
            metadata: { name: 'data' },
            spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
          },
        ],
      },
    });
    await readySet(ns, set);

    const claim = await t.clients.persistentVolumeClaims.get(ns, 'data-db-0');
    assert.equal(claim.metadata.labels?.app, 'db');
    assert.equal(claim.status?.phase, 'Pending');
    const claim1 = await t.clients.persistentVolumeClaims.get(ns, 'data-db-1');
    const pod = (await getPod(ns, 'db-1')) as Pod;
    const volume = pod.spec?.volumes?.find((v) => v.name === 'data');
    assert.equal(volume?.persistentVolumeClaim?.claimName, 'data-db-1');

    // A recreated pod mounts the same claim.
    await t.clients.pods.delete(ns, 'db-1');
    const again = await readyWhenCreated(ns, 'db-1', pod.metadata.uid);
    assert.equal(
      again.spec?.volumes?.find((v) => v.name === 'data')?.persistentVolumeClaim?.claimName,
      'data-db-1',
    );
    const claimAfter = await t.clients.persistentVolumeClaims.get(ns, 'data-db-1');
    assert.equal(claimAfter.metadata.uid, claim1.metadata.uid);

    // Scaling down leaves the claims (the Retain policy).
    await t.clients.statefulSets.patch(ns, 'db', 'merge', { spec: { replicas: 1 } });
    await t.until('db-1 gone', async () => !(await getPod(ns, 'db-1')));
    await t.clients.persistentVolumeClaims.get(ns, 'data-db-1');

    const events = (await t.clients.events.list(ns)).items;
    assert.ok(events.some((e) => e.message === 'create Claim data-db-0 Pod db-0 in StatefulSet db success'));
  });
});

describe('statefulset controller: persistentVolumeClaimRetentionPolicy', () => {
  const refsOf = async (ns: string, claim: string) =>
    ((await t.clients.persistentVolumeClaims.get(ns, claim)).metadata.ownerReferences ?? []).map(
      (r) =>
        `${r.kind}/${r.name}/${r.uid === undefined ? '' : 'uid'}/${r.controller}/${r.blockOwnerDeletion}`,
    );
  const claimRefs = (ns: string, claim: string, want: string[]) =>
    t.until(`${claim} owned by ${want.join(', ') || 'nobody'}`, async () => {
      const refs = await refsOf(ns, claim);
      return JSON.stringify(refs) === JSON.stringify(want) ? refs : undefined;
    });
  const withClaims = (name: string, replicas: number, whenDeleted: string, whenScaled: string) =>
    statefulSet(name, {
      replicas,
      policy: 'Parallel',
      spec: {
        persistentVolumeClaimRetentionPolicy: { whenDeleted, whenScaled },
        volumeClaimTemplates: [
          {
            metadata: { name: 'data' },
            spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
          },
        ],
      },
    });

  it('whenDeleted and whenScaled Delete: the set controls the claims, and a condemned pod its own before it goes', async () => {
    const ns = await namespace();
    const set = await readySet(ns, withClaims('kv', 2, 'Delete', 'Delete'));
    const setRef = 'StatefulSet/kv/uid/true/true';
    await claimRefs(ns, 'data-kv-0', [setRef]);
    await claimRefs(ns, 'data-kv-1', [setRef]);
    const claim = await t.clients.persistentVolumeClaims.get(ns, 'data-kv-1');
    assert.equal(claim.metadata.ownerReferences?.[0]?.uid, set.metadata.uid);

    // A pod deleted and made again keeps its claim, still the set's.
    const pod1 = (await getPod(ns, 'kv-1')) as Pod;
    await t.clients.pods.delete(ns, 'kv-1');
    await readyWhenCreated(ns, 'kv-1', pod1.metadata.uid);
    assert.equal(
      (await t.clients.persistentVolumeClaims.get(ns, 'data-kv-1')).metadata.uid,
      claim.metadata.uid,
    );
    await claimRefs(ns, 'data-kv-1', [setRef]);

    // Scaled down: kv-1's claim passes to the pod (the garbage collector removes it with the pod).
    const doomed = (await getPod(ns, 'kv-1')) as Pod;
    await t.clients.statefulSets.patch(ns, 'kv', 'merge', { spec: { replicas: 1 } });
    await t.until('kv-1 gone', async () => !(await getPod(ns, 'kv-1')));
    await claimRefs(ns, 'data-kv-1', ['Pod/kv-1/uid/true/true']);
    const after = await t.clients.persistentVolumeClaims.get(ns, 'data-kv-1');
    assert.equal(after.metadata.ownerReferences?.[0]?.uid, doomed.metadata.uid);
    await claimRefs(ns, 'data-kv-0', [setRef]);
  });

  it("Retain drops the references; whenDeleted Delete alone keeps the set's across a scale-down; another controller is left alone", async () => {
    const ns = await namespace();
    await readySet(ns, withClaims('cache', 2, 'Delete', 'Retain'));
    const setRef = 'StatefulSet/cache/uid/true/true';
    await claimRefs(ns, 'data-cache-1', [setRef]);
    await t.clients.statefulSets.patch(ns, 'cache', 'merge', { spec: { replicas: 1 } });
    await t.until('cache-1 gone', async () => !(await getPod(ns, 'cache-1')));
    await settle();
    await claimRefs(ns, 'data-cache-1', [setRef]);

    // The policy changed to Retain: the live member's claim loses the set's reference.
    await t.clients.statefulSets.patch(ns, 'cache', 'merge', {
      spec: { persistentVolumeClaimRetentionPolicy: { whenDeleted: 'Retain' } },
    });
    await claimRefs(ns, 'data-cache-0', []);

    // A claim some other controller manages keeps its owner, with a warning.
    await t.clients.statefulSets.patch(ns, 'cache', 'merge', {
      spec: { persistentVolumeClaimRetentionPolicy: { whenDeleted: 'Delete' } },
    });
    await claimRefs(ns, 'data-cache-0', [setRef]);
    const foreign = { apiVersion: 'example.com/v1', kind: 'Backup', name: 'b', uid: 'f-1', controller: true };
    const c0 = await t.clients.persistentVolumeClaims.get(ns, 'data-cache-0');
    await t.clients.persistentVolumeClaims.update({
      ...c0,
      metadata: { ...c0.metadata, ownerReferences: [foreign] },
    });
    await t.clients.pods.delete(ns, 'cache-0');
    await t.until('ConflictingController', async () =>
      (await t.clients.events.list(ns)).items.find((e) => e.reason === 'ConflictingController'),
    );
    await claimRefs(ns, 'data-cache-0', ['Backup/b/uid/true/undefined']);
  });
});

describe('statefulset controller: minReadySeconds (injected clock)', () => {
  let clock: ControllerTest;
  let now = Date.parse('2026-01-01T00:00:00Z');
  before(async () => {
    clock = await startControllerTest({ statefulset: statefulSetController }, { now: () => new Date(now) });
  });
  after(() => clock.close());

  it('counts a pod available, and creates the next one, only minReadySeconds after it turned Ready', async () => {
    const c = clock.clients;
    await c.namespaces.create(undefined, { metadata: { name: 'slow' } });
    await c.statefulSets.create('slow', statefulSet('web', { replicas: 2, spec: { minReadySeconds: 30 } }));
    await clock.until('web-0', () => c.pods.get('slow', 'web-0').catch(() => undefined));
    await c.pods.patch(
      'slow',
      'web-0',
      'merge',
      {
        status: {
          phase: 'Running',
          conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: rfc3339(new Date(now)) }],
        },
      },
      { subresource: 'status' },
    );
    const ready = await clock.until('web-0 ready, not available', async () => {
      const s = await c.statefulSets.get('slow', 'web');
      return s.status?.readyReplicas === 1 ? s : undefined;
    });
    assert.equal(ready.status?.availableReplicas, 0);
    await settle();
    assert.equal((await c.pods.list('slow')).items.length, 1, 'web-1 waits for web-0 to be available');

    // 31 s later (by the injected clock) web-0 is available; a change to the
    // set makes the controller look again rather than the 30 s timer.
    now += 31_000;
    await c.statefulSets.patch('slow', 'web', 'merge', { metadata: { annotations: { poke: '1' } } });
    await clock.until('web-1', () => c.pods.get('slow', 'web-1').catch(() => undefined));
    const set = await c.statefulSets.get('slow', 'web');
    assert.equal(set.status?.availableReplicas, 1);
  });
});
