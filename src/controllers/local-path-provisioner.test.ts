// The built-in local-path provisioner with the PV binder: a claim provisioned
// on its selected node, then grown as a resizer does it (the volume first,
// the claim waiting in FileSystemResizePending for its node).

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { localPathProvisionerController } from './local-path-provisioner.ts';
import { persistentVolumeBinderController } from './persistentvolume.ts';
import { type ControllerTest, startControllerTest } from './testing.ts';

let t: ControllerTest;
before(async () => {
  t = await startControllerTest({
    'persistentvolume-binder': persistentVolumeBinderController,
    'local-path-provisioner': localPathProvisionerController,
  });
});
after(() => t.close());

const ns = 'default';
const getClaim = (name: string) => t.clients.persistentVolumeClaims.get(ns, name);

describe('local-path provisioner', () => {
  it('grows a Bound claim of an expandable class: the volume, then FileSystemResizePending for the node', async () => {
    await t.clients.storageClasses.create(undefined, {
      metadata: { name: 'lp' },
      provisioner: 'rancher.io/local-path',
      volumeBindingMode: 'WaitForFirstConsumer',
      allowVolumeExpansion: true,
    });
    await t.clients.persistentVolumeClaims.create(ns, {
      metadata: { name: 'data', annotations: { 'volume.kubernetes.io/selected-node': 'node-1' } },
      spec: {
        storageClassName: 'lp',
        accessModes: ['ReadWriteOnce'],
        resources: { requests: { storage: '1Gi' } },
      },
    });
    const bound = await t.until('the claim Bound', async () => {
      const c = await getClaim('data');
      return c.status?.phase === 'Bound' ? c : undefined;
    });
    const volume = bound.spec?.volumeName ?? '';
    assert.equal(volume, `pvc-${bound.metadata.uid}`);
    assert.equal(bound.status?.capacity?.storage, '1Gi');

    await t.clients.persistentVolumeClaims.patch(ns, 'data', 'merge', {
      spec: { resources: { requests: { storage: '3Gi' } } },
    });
    const pending = await t.until('FileSystemResizePending', async () => {
      const c = await getClaim('data');
      return c.status?.conditions?.some((x) => x.type === 'FileSystemResizePending' && x.status === 'True')
        ? c
        : undefined;
    });
    assert.equal((await t.clients.persistentVolumes.get(undefined, volume)).spec?.capacity?.storage, '3Gi');
    // The claim's own capacity is the node's to change, once it has done its part.
    assert.equal(pending.status?.capacity?.storage, '1Gi');
    assert.deepEqual(pending.status?.allocatedResources, { storage: '3Gi' });
    assert.deepEqual(pending.status?.allocatedResourceStatuses, { storage: 'NodeResizePending' });
    const reasons = (await t.clients.events.list(ns)).items
      .filter((e) => e.involvedObject?.name === 'data')
      .map((e) => e.reason);
    assert.ok(reasons.includes('Resizing') && reasons.includes('FileSystemResizeRequired'), String(reasons));
  });
});
