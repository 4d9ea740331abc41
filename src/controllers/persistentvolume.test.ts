import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { PersistentVolume, PersistentVolumeClaim } from '../api/types/core-v1.ts';
import { persistentVolumeBinderController } from './persistentvolume.ts';
import { pvProtectionController } from './pv-protection.ts';
import { pvcProtectionController } from './pvc-protection.ts';
import { type ControllerTest, startControllerTest } from './testing.ts';

let t: ControllerTest;
before(async () => {
  t = await startControllerTest({
    'persistentvolume-binder': persistentVolumeBinderController,
    'pvc-protection': pvcProtectionController,
    'pv-protection': pvProtectionController,
  });
});
after(() => t.close());

const ns = 'default';
const pv = (
  name: string,
  size: string,
  extra: Partial<NonNullable<PersistentVolume['spec']>> = {},
  labels?: Record<string, string>,
): PersistentVolume => ({
  metadata: { name, ...(labels ? { labels } : {}) },
  spec: {
    capacity: { storage: size },
    accessModes: ['ReadWriteOnce'],
    hostPath: { path: `/tmp/${name}` },
    storageClassName: '',
    ...extra,
  },
});
const pvc = (
  name: string,
  size: string,
  extra: Partial<NonNullable<PersistentVolumeClaim['spec']>> = {},
): PersistentVolumeClaim => ({
  metadata: { name },
  spec: {
    accessModes: ['ReadWriteOnce'],
    resources: { requests: { storage: size } },
    storageClassName: '',
    ...extra,
  },
});
const getClaim = (name: string) => t.clients.persistentVolumeClaims.get(ns, name);
const getVolume = (name: string) => t.clients.persistentVolumes.get(undefined, name);
const boundTo = (claim: string) =>
  t.until(`${claim} bound`, async () => {
    const c = await getClaim(claim);
    return c.status?.phase === 'Bound' ? c : undefined;
  });
const available = (name: string) =>
  t.until(`${name} Available`, async () =>
    (await getVolume(name)).status?.phase === 'Available' ? true : undefined,
  );
const events = async (name: string) =>
  (await t.clients.events.list(ns)).items.filter((e) => e.involvedObject?.name === name);
const eventWith = (name: string, reason: string) =>
  t.until(`${reason} event for ${name}`, async () => (await events(name)).find((e) => e.reason === reason));

describe('persistentvolume-binder', () => {
  it('keeps a claim used by a pod until the pod is gone, and a volume until it is no longer Bound', async () => {
    await t.clients.persistentVolumes.create(undefined, pv('prot', '1Gi', { storageClassName: 'prot' }));
    await t.clients.persistentVolumeClaims.create(ns, pvc('prot', '1Gi', { storageClassName: 'prot' }));
    const claim = await boundTo('prot');
    assert.deepEqual(claim.metadata.finalizers, ['kubernetes.io/pvc-protection']);
    assert.deepEqual((await getVolume('prot')).metadata.finalizers, ['kubernetes.io/pv-protection']);
    await t.clients.pods.create(ns, {
      metadata: { name: 'prot-user' },
      spec: {
        containers: [{ name: 'c', image: 'busybox' }],
        volumes: [{ name: 'data', persistentVolumeClaim: { claimName: 'prot' } }],
      },
    });
    await t.clients.persistentVolumes.delete(undefined, 'prot');
    await t.clients.persistentVolumeClaims.delete(ns, 'prot');
    await new Promise((r) => setTimeout(r, 300));
    assert.ok((await getClaim('prot')).metadata.deletionTimestamp, 'the claim is being deleted');
    assert.equal((await getVolume('prot')).status?.phase, 'Bound');
    await t.clients.pods.delete(ns, 'prot-user', { gracePeriodSeconds: 0 });
    // The claim goes, the volume is Released and then goes too.
    await t.until('prot claim and volume gone', async () => {
      const left = await Promise.all([
        getClaim('prot').catch(() => undefined),
        getVolume('prot').catch(() => undefined),
      ]);
      return left.every((x) => x === undefined) ? true : undefined;
    });
  });

  it('binds a claim to the smallest Available volume that fits, with both sides annotated and Bound', async () => {
    for (const [n, s] of [
      ['small', '1Gi'],
      ['medium', '5Gi'],
      ['large', '10Gi'],
    ] as const) {
      await t.clients.persistentVolumes.create(undefined, pv(`size-${n}`, s));
      await available(`size-${n}`);
    }
    await t.clients.persistentVolumeClaims.create(ns, pvc('size', '2Gi'));
    const claim = await boundTo('size');
    assert.equal(claim.spec?.volumeName, 'size-medium');
    assert.equal(claim.metadata.annotations?.['pv.kubernetes.io/bind-completed'], 'yes');
    assert.equal(claim.metadata.annotations?.['pv.kubernetes.io/bound-by-controller'], 'yes');
    assert.deepEqual(claim.status?.capacity, { storage: '5Gi' });
    assert.deepEqual(claim.status?.accessModes, ['ReadWriteOnce']);
    const vol = await t.until('size-medium Bound', async () => {
      const v = await getVolume('size-medium');
      return v.status?.phase === 'Bound' ? v : undefined;
    });
    assert.equal(vol.spec?.claimRef?.name, 'size');
    assert.equal(vol.spec?.claimRef?.uid, claim.metadata.uid);
    assert.equal(vol.metadata.annotations?.['pv.kubernetes.io/bound-by-controller'], 'yes');
    assert.equal((await getVolume('size-small')).status?.phase, 'Available');
  });

  it('matches by storageClassName, access modes, volumeMode and selector', async () => {
    await t.clients.persistentVolumes.create(undefined, pv('m-fast', '1Gi', { storageClassName: 'fast' }));
    await t.clients.persistentVolumes.create(
      undefined,
      pv('m-rwx', '1Gi', { accessModes: ['ReadWriteMany', 'ReadWriteOnce'] }),
    );
    await t.clients.persistentVolumes.create(undefined, pv('m-block', '1Gi', { volumeMode: 'Block' }));
    await t.clients.persistentVolumes.create(undefined, pv('m-labelled', '1Gi', {}, { tier: 'gold' }));
    for (const n of ['m-fast', 'm-rwx', 'm-block', 'm-labelled']) await available(n);

    await t.clients.persistentVolumeClaims.create(ns, pvc('m-class', '1Gi', { storageClassName: 'fast' }));
    assert.equal((await boundTo('m-class')).spec?.volumeName, 'm-fast');
    await t.clients.persistentVolumeClaims.create(
      ns,
      pvc('m-modes', '1Gi', { accessModes: ['ReadWriteMany'] }),
    );
    assert.equal((await boundTo('m-modes')).spec?.volumeName, 'm-rwx');
    await t.clients.persistentVolumeClaims.create(ns, pvc('m-mode', '1Gi', { volumeMode: 'Block' }));
    assert.equal((await boundTo('m-mode')).spec?.volumeName, 'm-block');
    await t.clients.persistentVolumeClaims.create(
      ns,
      pvc('m-sel', '1Gi', { selector: { matchLabels: { tier: 'gold' } } }),
    );
    assert.equal((await boundTo('m-sel')).spec?.volumeName, 'm-labelled');
    // Nothing left that fits: a claim with no class stays Pending, saying why.
    await t.clients.persistentVolumeClaims.create(
      ns,
      pvc('m-none', '1Gi', { selector: { matchLabels: { tier: 'gold' } } }),
    );
    const e = await eventWith('m-none', 'FailedBinding');
    assert.equal(e.message, 'no persistent volumes available for this claim and no storage class is set');
    assert.equal((await getClaim('m-none')).status?.phase, 'Pending');
  });

  it('binds a claim with volumeName to that volume, and a pre-bound volume to its claim', async () => {
    await t.clients.persistentVolumes.create(undefined, pv('named-a', '1Gi'));
    await t.clients.persistentVolumes.create(undefined, pv('named-b', '1Gi'));
    await t.clients.persistentVolumeClaims.create(ns, pvc('named', '1Gi', { volumeName: 'named-b' }));
    const claim = await boundTo('named');
    assert.equal(claim.spec?.volumeName, 'named-b');
    // The user named the volume: not bound-by-controller.
    assert.equal(claim.metadata.annotations?.['pv.kubernetes.io/bound-by-controller'], undefined);

    await t.clients.persistentVolumes.create(
      undefined,
      pv('prebound', '3Gi', { claimRef: { namespace: ns, name: 'wants-prebound' } }),
    );
    await t.clients.persistentVolumeClaims.create(ns, pvc('wants-prebound', '1Gi'));
    const c2 = await boundTo('wants-prebound');
    assert.equal(c2.spec?.volumeName, 'prebound');
    const v = await getVolume('prebound');
    assert.equal(v.spec?.claimRef?.uid, c2.metadata.uid);
    assert.equal(v.metadata.annotations?.['pv.kubernetes.io/bound-by-controller'], undefined);

    // A volume too small for the claim that names it is refused, with upstream's message.
    await t.clients.persistentVolumes.create(undefined, pv('tiny', '1Mi'));
    await available('tiny');
    await t.clients.persistentVolumeClaims.create(ns, pvc('too-big', '1Gi', { volumeName: 'tiny' }));
    const e = await eventWith('too-big', 'FailedBinding');
    assert.equal(e.message, 'Cannot bind to requested volume "tiny": requested PV is too small');
  });

  it('binds exactly one of two claims racing for one volume', async () => {
    await t.clients.persistentVolumes.create(undefined, pv('race', '1Gi', { storageClassName: 'race' }));
    await available('race');
    await Promise.all([
      t.clients.persistentVolumeClaims.create(ns, pvc('race-1', '1Gi', { storageClassName: 'race' })),
      t.clients.persistentVolumeClaims.create(ns, pvc('race-2', '1Gi', { storageClassName: 'race' })),
    ]);
    const v = await t.until('race Bound', async () => {
      const x = await getVolume('race');
      return x.status?.phase === 'Bound' ? x : undefined;
    });
    const winner = v.spec?.claimRef?.name ?? '';
    const loser = winner === 'race-1' ? 'race-2' : 'race-1';
    await boundTo(winner);
    await new Promise((r) => setTimeout(r, 300));
    const l = await getClaim(loser);
    assert.equal(l.status?.phase, 'Pending');
    assert.equal(l.spec?.volumeName, undefined);
  });

  it('releases a Retain volume, fails a Delete volume nobody provisioned, and loses a claim whose volume is gone', async () => {
    await t.clients.persistentVolumes.create(
      undefined,
      pv('keep', '1Gi', { storageClassName: 'rel', persistentVolumeReclaimPolicy: 'Retain' }),
    );
    await available('keep');
    await t.clients.persistentVolumeClaims.create(ns, pvc('rel-1', '1Gi', { storageClassName: 'rel' }));
    await boundTo('rel-1');
    await t.clients.persistentVolumeClaims.delete(ns, 'rel-1');
    await t.until('keep Released', async () =>
      (await getVolume('keep')).status?.phase === 'Released' ? true : undefined,
    );
    // A Released volume binds nothing new until its claimRef is removed.
    await t.clients.persistentVolumeClaims.create(ns, pvc('rel-2', '1Gi', { storageClassName: 'rel' }));
    await eventWith('rel-2', 'ProvisioningFailed');
    assert.equal((await getClaim('rel-2')).status?.phase, 'Pending');
    const kept = await getVolume('keep');
    delete kept.spec?.claimRef;
    await t.clients.persistentVolumes.update(kept);
    assert.equal((await boundTo('rel-2')).spec?.volumeName, 'keep');

    await t.clients.persistentVolumes.create(
      undefined,
      pv('del', '1Gi', { storageClassName: 'del', persistentVolumeReclaimPolicy: 'Delete' }),
    );
    await available('del');
    await t.clients.persistentVolumeClaims.create(ns, pvc('del-1', '1Gi', { storageClassName: 'del' }));
    await boundTo('del-1');
    await t.clients.persistentVolumeClaims.delete(ns, 'del-1');
    const failed = await t.until('del Failed', async () => {
      const v = await getVolume('del');
      return v.status?.phase === 'Failed' ? v : undefined;
    });
    assert.match(failed.status?.message ?? '', /no deletable volume plugin matched/);

    await t.clients.persistentVolumes.create(undefined, pv('gone', '1Gi', { storageClassName: 'gone' }));
    await available('gone');
    await t.clients.persistentVolumeClaims.create(ns, pvc('lost', '1Gi', { storageClassName: 'gone' }));
    await boundTo('lost');
    // pv-protection keeps a Bound volume; an administrator forcing it out takes the finalizer off.
    await t.clients.persistentVolumes.delete(undefined, 'gone');
    await t.clients.persistentVolumes.patch(undefined, 'gone', 'merge', { metadata: { finalizers: null } });
    await t.until('lost Lost', async () =>
      (await getClaim('lost')).status?.phase === 'Lost' ? true : undefined,
    );
    assert.equal(
      (await eventWith('lost', 'ClaimLost')).message,
      'Bound claim has lost its PersistentVolume. Data on the volume is lost!',
    );
  });

  it('hands a claim to its class provisioner: at once for Immediate, after a node is selected for WaitForFirstConsumer', async () => {
    await t.clients.storageClasses.create(undefined, {
      metadata: { name: 'now' },
      provisioner: 'example.com/now',
      volumeBindingMode: 'Immediate',
    });
    await t.clients.storageClasses.create(undefined, {
      metadata: { name: 'later' },
      provisioner: 'rancher.io/local-path',
      volumeBindingMode: 'WaitForFirstConsumer',
    });
    await t.clients.persistentVolumeClaims.create(ns, pvc('prov-now', '1Gi', { storageClassName: 'now' }));
    const e = await eventWith('prov-now', 'ExternalProvisioning');
    assert.match(e.message ?? '', /external provisioner 'example.com\/now'/);
    const c = await getClaim('prov-now');
    assert.equal(c.metadata.annotations?.['volume.kubernetes.io/storage-provisioner'], 'example.com/now');

    await t.clients.persistentVolumeClaims.create(
      ns,
      pvc('prov-later', '1Gi', { storageClassName: 'later' }),
    );
    const w = await eventWith('prov-later', 'WaitForFirstConsumer');
    assert.equal(w.message, 'waiting for first consumer to be created before binding');
    assert.equal(
      (await getClaim('prov-later')).metadata.annotations?.['volume.kubernetes.io/storage-provisioner'],
      undefined,
    );
    await t.clients.persistentVolumeClaims.patch(ns, 'prov-later', 'merge', {
      metadata: { annotations: { 'volume.kubernetes.io/selected-node': 'node-1' } },
    });
    await t.until('prov-later handed to the provisioner', async () =>
      (await getClaim('prov-later')).metadata.annotations?.['volume.kubernetes.io/storage-provisioner'] ===
      'rancher.io/local-path'
        ? true
        : undefined,
    );
  });
});
