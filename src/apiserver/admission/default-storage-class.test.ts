// The DefaultStorageClass admission plugin: alone (which class is the
// default), and through the API server (claims created without a class get
// it, from the watch cache).

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { StorageClass } from '../../api/types/storage-v1.ts';
import { startTestServer, type TestServer } from '../testing.ts';
import type { AdmissionAttributes } from './admission.ts';
import { defaultAdmission } from './chain.ts';
import { defaultStorageClass, defaultStorageClassPlugin } from './default-storage-class.ts';

const sc = (name: string, created: string, annotations?: Record<string, string>): StorageClass => ({
  metadata: { name, creationTimestamp: created, ...(annotations ? { annotations } : {}) },
  provisioner: 'example.com/p',
});
const isDefault = { 'storageclass.kubernetes.io/is-default-class': 'true' };

describe('defaultStorageClass', () => {
  it('is undefined when no class is marked default with "true"', () => {
    assert.equal(defaultStorageClass([]), undefined);
    assert.equal(
      defaultStorageClass([
        sc('a', '2024-01-01T00:00:00Z'),
        sc('b', '2024-01-01T00:00:00Z', { 'storageclass.kubernetes.io/is-default-class': 'True' }),
      ]),
      undefined,
    );
  });

  it('takes the GA or the beta annotation', () => {
    const beta = sc('old', '2024-01-01T00:00:00Z', {
      'storageclass.beta.kubernetes.io/is-default-class': 'true',
    });
    assert.equal(defaultStorageClass([sc('a', '2024-01-01T00:00:00Z'), beta])?.metadata.name, 'old');
  });

  it('picks the newest of several defaults, then the first by name', () => {
    const classes = [
      sc('older', '2024-01-01T00:00:00Z', isDefault),
      sc('zeta', '2024-02-01T00:00:00Z', isDefault),
      sc('alpha', '2024-02-01T00:00:00Z', isDefault),
      sc('newest-not-default', '2024-03-01T00:00:00Z'),
    ];
    assert.equal(defaultStorageClass(classes)?.metadata.name, 'alpha');
    assert.equal(defaultStorageClass(classes.reverse())?.metadata.name, 'alpha');
  });
});

describe('DefaultStorageClass plugin', () => {
  const plugin = defaultStorageClassPlugin({
    listStorageClasses: async () => [sc('standard', '2024-01-01T00:00:00Z', isDefault)],
  });
  const attrs = (over: Partial<AdmissionAttributes>): AdmissionAttributes => ({
    operation: 'CREATE',
    group: '',
    version: 'v1',
    kind: 'PersistentVolumeClaim',
    resource: 'persistentvolumeclaims',
    subresource: '',
    namespace: 'default',
    name: 'c',
    user: { name: 'u', groups: [] },
    dryRun: false,
    ...over,
  });

  it('handles claim creates only, never updates or subresources', () => {
    assert.equal(plugin.handles(attrs({})), true);
    assert.equal(plugin.handles(attrs({ operation: 'UPDATE' })), false);
    assert.equal(plugin.handles(attrs({ subresource: 'status' })), false);
    assert.equal(plugin.handles(attrs({ resource: 'persistentvolumes', kind: 'PersistentVolume' })), false);
  });

  it('leaves a claim alone that names a class, asks for none (""), or has the beta class annotation', async () => {
    const named = { metadata: { name: 'c' }, spec: { storageClassName: 'fast' } };
    const none = { metadata: { name: 'c' }, spec: { storageClassName: '' } };
    const beta = {
      metadata: { name: 'c', annotations: { 'volume.beta.kubernetes.io/storage-class': 'slow' } },
      spec: {},
    };
    for (const object of [named, none, beta]) await plugin.admit(attrs({ object }));
    assert.equal(named.spec.storageClassName, 'fast');
    assert.equal(none.spec.storageClassName, '');
    assert.deepEqual(beta.spec, {});
  });

  it('gives a claim without spec the default', async () => {
    const object: { metadata: { name: string }; spec?: Record<string, unknown> } = {
      metadata: { name: 'c' },
    };
    await plugin.admit(attrs({ object }));
    assert.deepEqual(object.spec, { storageClassName: 'standard' });
  });
});

describe('DefaultStorageClass admission', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer();
  });
  after(() => t.close());

  const createClaim = (name: string, spec: Record<string, unknown> = {}) =>
    t.request('POST', '/api/v1/namespaces/default/persistentvolumeclaims', {
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      metadata: { name },
      spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } }, ...spec },
    });
  const createClass = (name: string, annotations?: Record<string, string>) =>
    t.request('POST', '/apis/storage.k8s.io/v1/storageclasses', {
      apiVersion: 'storage.k8s.io/v1',
      kind: 'StorageClass',
      metadata: { name, ...(annotations ? { annotations } : {}) },
      provisioner: 'example.com/p',
    });

  /** The cache sees a class created a moment ago within moments; wait for the plugin to. */
  async function eventually(check: () => Promise<boolean>) {
    for (let i = 0; i < 100; i++) {
      if (await check()) return;
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.fail('never happened');
  }

  it('leaves the class unset while no class is the default', async () => {
    assert.equal((await createClass('plain')).status, 201);
    const r = await createClaim('before-default');
    assert.equal(r.status, 201);
    assert.equal(r.body.spec.storageClassName, undefined);
  });

  it('sets the default class on a claim without one, and keeps "" and a named class', async () => {
    assert.equal((await createClass('standard', isDefault)).status, 201);
    let n = 0;
    await eventually(async () => {
      const r = await createClaim(`probe-${n++}`);
      assert.equal(r.status, 201);
      return r.body.spec.storageClassName === 'standard';
    });
    const stored = await t.request('GET', `/api/v1/namespaces/default/persistentvolumeclaims/probe-${n - 1}`);
    assert.equal(stored.body.spec.storageClassName, 'standard');
    const none = await createClaim('no-class', { storageClassName: '' });
    assert.equal(none.status, 201);
    assert.equal(none.body.spec.storageClassName, '');
    const named = await createClaim('plain-class', { storageClassName: 'plain' });
    assert.equal(named.body.spec.storageClassName, 'plain');
  });

  it('is off with --disable-admission-plugins DefaultStorageClass', async () => {
    const off = await startTestServer(undefined, {
      admission: (api) => defaultAdmission(api, { disabled: ['DefaultStorageClass'] }),
    });
    try {
      const c = await off.request('POST', '/apis/storage.k8s.io/v1/storageclasses', {
        metadata: { name: 'standard', annotations: isDefault },
        provisioner: 'example.com/p',
      });
      assert.equal(c.status, 201);
      const r = await off.request('POST', '/api/v1/namespaces/default/persistentvolumeclaims', {
        metadata: { name: 'c' },
        spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
      });
      assert.equal(r.status, 201);
      assert.equal(r.body.spec.storageClassName, undefined);
    } finally {
      await off.close();
    }
  });
});
