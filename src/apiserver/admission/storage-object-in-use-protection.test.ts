import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { KubeObject } from '../../api/meta.ts';
import type { AdmissionAttributes } from './admission.ts';
import { storageObjectInUseProtectionPlugin } from './storage-object-in-use-protection.ts';

const attrs = (
  resource: string,
  object: KubeObject,
  operation: AdmissionAttributes['operation'] = 'CREATE',
): AdmissionAttributes => ({
  operation,
  group: '',
  version: 'v1',
  kind: resource === 'persistentvolumes' ? 'PersistentVolume' : 'PersistentVolumeClaim',
  resource,
  subresource: '',
  namespace: resource === 'persistentvolumes' ? '' : 'default',
  name: object.metadata.name ?? '',
  object,
  user: { name: 'alice', groups: [] },
  dryRun: false,
});

describe('StorageObjectInUseProtection admission', () => {
  const plugin = storageObjectInUseProtectionPlugin();
  it('adds kubernetes.io/pvc-protection to a new claim and kubernetes.io/pv-protection to a new volume, once', async () => {
    const pvc: KubeObject = { metadata: { name: 'c', finalizers: ['example.com/keep'] } };
    const a = attrs('persistentvolumeclaims', pvc);
    assert.ok(plugin.handles(a));
    await plugin.admit(a);
    await plugin.admit(a);
    assert.deepEqual(pvc.metadata.finalizers, ['example.com/keep', 'kubernetes.io/pvc-protection']);
    const pv: KubeObject = { metadata: { name: 'v' } };
    await plugin.admit(attrs('persistentvolumes', pv));
    assert.deepEqual(pv.metadata.finalizers, ['kubernetes.io/pv-protection']);
  });
  it('leaves updates, other resources and subresources alone', () => {
    const o: KubeObject = { metadata: { name: 'x' } };
    assert.equal(plugin.handles(attrs('persistentvolumeclaims', o, 'UPDATE')), false);
    assert.equal(plugin.handles(attrs('pods', o)), false);
    assert.equal(plugin.handles({ ...attrs('persistentvolumeclaims', o), subresource: 'status' }), false);
  });
});
