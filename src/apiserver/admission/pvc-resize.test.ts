// PersistentVolumeClaimResize through the API server: a claim grows only when
// it is Bound and its class allows expansion; shrinking stays validation's.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer } from '../testing.ts';

describe('PersistentVolumeClaimResize admission', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer();
    for (const [name, allow] of [
      ['grows', true],
      ['fixed', false],
    ] as const)
      await t.request('POST', '/apis/storage.k8s.io/v1/storageclasses', {
        apiVersion: 'storage.k8s.io/v1',
        kind: 'StorageClass',
        metadata: { name },
        provisioner: 'example.com/x',
        allowVolumeExpansion: allow,
      });
  });
  after(() => t.close());

  const path = '/api/v1/namespaces/default/persistentvolumeclaims';
  /** A claim of `cls`, Bound (its status set as the binder would) unless `bound` is false. */
  async function claim(name: string, cls: string, bound = true) {
    const res = await t.request('POST', path, {
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      metadata: { name },
      spec: {
        storageClassName: cls,
        accessModes: ['ReadWriteOnce'],
        resources: { requests: { storage: '1Gi' } },
      },
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    if (bound) {
      const st = await t.request(
        'PATCH',
        `${path}/${name}/status`,
        { status: { phase: 'Bound', capacity: { storage: '1Gi' } } },
        { 'content-type': 'application/merge-patch+json' },
      );
      assert.equal(st.status, 200, JSON.stringify(st.body));
    }
  }
  const grow = (name: string, storage: string) =>
    t.request(
      'PATCH',
      `${path}/${name}`,
      { spec: { resources: { requests: { storage } } } },
      { 'content-type': 'application/merge-patch+json' },
    );

  it('lets a Bound claim of a class with allowVolumeExpansion grow', async () => {
    await claim('a', 'grows');
    const res = await grow('a', '2Gi');
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.spec.resources.requests.storage, '2Gi');
  });

  it('refuses to grow a claim whose class does not allow it, or that is not Bound, with 403 (422 before it is Bound)', async () => {
    await claim('b', 'fixed');
    const fixed = await grow('b', '2Gi');
    assert.equal(fixed.status, 403);
    assert.equal(fixed.body.reason, 'Forbidden');
    assert.equal(
      fixed.body.message,
      'persistentvolumeclaims "b" is forbidden: only dynamically provisioned pvc can be resized and the storageclass that provisions the pvc must support resize',
    );
    // A claim not yet Bound: validation (which runs first, as upstream) already refuses any spec change.
    await claim('c', 'grows', false);
    const pending = await grow('c', '2Gi');
    assert.equal(pending.status, 422);
    assert.match(pending.body.message, /spec is immutable after creation except resources.requests/);
  });

  it('leaves shrinking to validation (422) and lets other updates through', async () => {
    const shrink = await grow('b', '512Mi');
    assert.equal(shrink.status, 422);
    const label = await t.request(
      'PATCH',
      `${path}/b`,
      { metadata: { labels: { x: 'y' } } },
      { 'content-type': 'application/merge-patch+json' },
    );
    assert.equal(label.status, 200);
  });
});
