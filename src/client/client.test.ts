// The client and informers against a real API server over HTTP on loopback.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ApiError, isApiError } from '../api/errors.ts';
import type { KubeObject } from '../api/meta.ts';
import { startTestServer, type TestServer } from '../apiserver/testing.ts';
import { ResourceClient } from './client.ts';
import { createHttpTransport } from './http-transport.ts';
import { createInformer, indexByControllerUID } from './informer.ts';
import type { Transport } from './transport.ts';

let s: TestServer;
let transport: ReturnType<typeof createHttpTransport>;
let configmaps: ResourceClient;

before(async () => {
  s = await startTestServer();
  transport = createHttpTransport({ server: s.url });
  configmaps = new ResourceClient(transport, {
    group: '',
    version: 'v1',
    plural: 'configmaps',
    namespaced: true,
  });
});
after(async () => {
  transport.close();
  await s.close();
});

const until = async (what: string, check: () => boolean) => {
  const deadline = Date.now() + 5000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe('ResourceClient', () => {
  it('runs every verb and surfaces Status errors as ApiErrors', async () => {
    const created = await configmaps.create('default', { metadata: { name: 'k1' }, data: { a: '1' } });
    assert.ok(created.metadata.uid);
    const got = await configmaps.get('default', 'k1');
    assert.equal((got.data as Record<string, string>).a, '1');
    const updated = await configmaps.update({ ...got, data: { a: '2' } });
    assert.equal((updated.data as Record<string, string>).a, '2');
    await assert.rejects(configmaps.update({ ...got, data: { a: '3' } }), (err: unknown) =>
      isApiError(err, 'Conflict'),
    );
    const patched = await configmaps.patch('default', 'k1', 'merge', { data: { b: 'x' } });
    assert.deepEqual(patched.data, { a: '2', b: 'x' });
    const list = await configmaps.list('default', { fieldSelector: 'metadata.name=k1' });
    assert.equal(list.items.length, 1);
    await configmaps.delete('default', 'k1');
    await assert.rejects(
      configmaps.get('default', 'k1'),
      (err: unknown) => err instanceof ApiError && err.code === 404,
    );
  });
});

describe('informer', () => {
  it('lists, then follows adds, updates and deletes, and indexes by owner', async () => {
    await configmaps.create('default', { metadata: { name: 'pre' } });
    const informer = createInformer(configmaps, {
      namespace: 'default',
      indexers: { owner: indexByControllerUID },
    });
    const seen: string[] = [];
    informer.on({
      add: (o) => seen.push(`add ${o.metadata.name}`),
      update: (_a, b) => seen.push(`update ${b.metadata.name}`),
      delete: (o) => seen.push(`delete ${o.metadata.name}`),
    });
    await informer.start();
    assert.ok(informer.hasSynced());
    assert.ok(informer.indexer.get('default/pre'));
    await configmaps.create('default', {
      metadata: {
        name: 'owned',
        ownerReferences: [{ apiVersion: 'v1', kind: 'X', name: 'x', uid: 'owner-1', controller: true }],
      },
    });
    await configmaps.patch('default', 'pre', 'merge', { data: { n: '1' } });
    await configmaps.delete('default', 'pre');
    await until('three watch events', () => seen.length >= 4);
    assert.deepEqual(seen, ['add pre', 'add owned', 'update pre', 'delete pre']);
    assert.deepEqual(
      informer.indexer.byIndex('owner', 'owner-1').map((o) => o.metadata.name),
      ['owned'],
    );
    informer.stop();
  });

  it('relists when its watch answers 410 Expired, and delivers what changed meanwhile', async () => {
    // A transport that fails the first watch with 410, like a server whose
    // watch window moved past the informer's resourceVersion.
    let failNext = true;
    const flaky: Transport = {
      request: (r) => transport.request(r),
      watch(r, onEvent, onClose) {
        if (failNext) {
          failNext = false;
          setTimeout(() => onClose(new ApiError(410, 'Expired', 'too old resource version')), 50);
          return { stop() {} };
        }
        return transport.watch(r, onEvent, onClose);
      },
    };
    const client = new ResourceClient<KubeObject>(flaky, {
      group: '',
      version: 'v1',
      plural: 'configmaps',
      namespaced: true,
    });
    const informer = createInformer(client, { namespace: 'default', labelSelector: 'relist=yes' });
    await informer.start();
    assert.equal(informer.lists, 1);
    await configmaps.create('default', { metadata: { name: 'while-expired', labels: { relist: 'yes' } } });
    await until(
      'the relist',
      () => informer.lists === 2 && informer.indexer.get('default/while-expired') !== undefined,
    );
    informer.stop();
  });
});
