import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { isApiError } from '../api/errors.ts';
import type { Pod } from '../api/types/core-v1.ts';
import { ephemeralVolumeController } from './ephemeral-volume.ts';
import { type ControllerTest, startControllerTest } from './testing.ts';

let t: ControllerTest;
before(async () => {
  t = await startControllerTest({ 'ephemeral-volume': ephemeralVolumeController });
});
after(() => t.close());

const ns = 'default';
const getClaim = (name: string) =>
  t.clients.persistentVolumeClaims.get(ns, name).catch((err) => {
    if (isApiError(err, 'NotFound')) return undefined;
    throw err;
  });
const podWithScratch = (name: string): Pod => ({
  metadata: { name },
  spec: {
    containers: [{ name: 'c', image: 'busybox', volumeMounts: [{ name: 'scratch', mountPath: '/scratch' }] }],
    volumes: [
      { name: 'cfg', emptyDir: {} },
      {
        name: 'scratch',
        ephemeral: {
          volumeClaimTemplate: {
            metadata: { labels: { type: 'scratch' }, annotations: { note: 'from the template' } },
            spec: {
              accessModes: ['ReadWriteOnce'],
              storageClassName: 'local-path',
              resources: { requests: { storage: '1Gi' } },
            },
          },
        },
      },
    ],
  },
});

describe('ephemeral-volume controller', () => {
  it('makes <pod>-<volume> from the template, controlled by the pod, and makes it again when it is deleted', async () => {
    const pod = await t.clients.pods.create(ns, podWithScratch('app'));
    const claim = await t.until('app-scratch', () => getClaim('app-scratch'));
    assert.deepEqual(claim.metadata.ownerReferences, [
      {
        apiVersion: 'v1',
        kind: 'Pod',
        name: 'app',
        uid: pod.metadata.uid,
        controller: true,
        blockOwnerDeletion: true,
      },
    ]);
    assert.deepEqual(claim.metadata.labels, { type: 'scratch' });
    assert.equal(claim.metadata.annotations?.note, 'from the template');
    assert.equal(claim.spec?.storageClassName, 'local-path');
    assert.equal(claim.spec?.resources?.requests?.storage, '1Gi');
    assert.equal(await getClaim('app-cfg'), undefined, 'only ephemeral volumes get claims');

    // Deleted under its pod (pvc-protection would hold it while the pod runs: its finalizer is dropped by hand).
    await t.clients.persistentVolumeClaims.delete(ns, 'app-scratch');
    await t.clients.persistentVolumeClaims.patch(ns, 'app-scratch', 'merge', {
      metadata: { finalizers: null },
    });
    const again = await t.until('app-scratch made again', async () => {
      const c = await getClaim('app-scratch');
      return c && c.metadata.uid !== claim.metadata.uid ? c : undefined;
    });
    assert.equal(again.metadata.ownerReferences?.[0]?.uid, pod.metadata.uid);
  });

  it("never takes over a claim of the same name that is someone else's", async () => {
    await t.clients.persistentVolumeClaims.create(ns, {
      metadata: { name: 'other-scratch' },
      spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '5Gi' } } },
    });
    await t.clients.pods.create(ns, podWithScratch('other'));
    await new Promise((r) => setTimeout(r, 300));
    const claim = await getClaim('other-scratch');
    assert.equal(claim?.metadata.ownerReferences, undefined);
    assert.equal(claim?.spec?.resources?.requests?.storage, '5Gi');
  });
});
