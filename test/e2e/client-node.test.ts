// The official JavaScript client (@kubernetes/client-node) against a real
// `skiff server`: CRUD, watch, and an informer that survives a compaction by
// relisting.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import { createSqliteStore } from '../../src/storage/sqlite/sqlite.ts';
import { type Skiff, startSkiff } from './harness.ts';

let skiff: Skiff;
let kc: k8s.KubeConfig;
let core: k8s.CoreV1Api;

before(async () => {
  skiff = await startSkiff();
  kc = new k8s.KubeConfig();
  kc.loadFromFile(skiff.kubeconfig);
  core = kc.makeApiClient(k8s.CoreV1Api);
});
after(async () => {
  await skiff?.stop();
});

const until = async (what: string, check: () => boolean, timeoutMs = 15_000) => {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
};

describe('@kubernetes/client-node', () => {
  it('creates, reads, lists, replaces, patches and deletes', async () => {
    const created = await core.createNamespacedConfigMap({
      namespace: 'default',
      body: { metadata: { name: 'cn-1', labels: { suite: 'client-node' } }, data: { a: '1' } },
    });
    assert.ok(created.metadata?.uid);
    const read = await core.readNamespacedConfigMap({ name: 'cn-1', namespace: 'default' });
    assert.equal(read.data?.a, '1');
    const list = await core.listNamespacedConfigMap({
      namespace: 'default',
      labelSelector: 'suite=client-node',
    });
    assert.deepEqual(
      list.items.map((c) => c.metadata?.name),
      ['cn-1'],
    );
    read.data = { a: '2' };
    const replaced = await core.replaceNamespacedConfigMap({
      name: 'cn-1',
      namespace: 'default',
      body: read,
    });
    assert.equal(replaced.data?.a, '2');
    await assert.rejects(
      core.replaceNamespacedConfigMap({ name: 'cn-1', namespace: 'default', body: read }),
      (err: { code?: number }) => err.code === 409,
    );
    const patched = await core.patchNamespacedConfigMap(
      { name: 'cn-1', namespace: 'default', body: { data: { b: '3' } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    assert.deepEqual(patched.data, { a: '2', b: '3' });
    await core.deleteNamespacedConfigMap({ name: 'cn-1', namespace: 'default' });
    await assert.rejects(
      core.readNamespacedConfigMap({ name: 'cn-1', namespace: 'default' }),
      (err: { code?: number }) => err.code === 404,
    );
  });

  it('watches ADDED, MODIFIED and DELETED', async () => {
    const events: string[] = [];
    const watch = new k8s.Watch(kc);
    const req = await watch.watch(
      '/api/v1/namespaces/default/configmaps',
      { labelSelector: 'suite=watch' },
      (type, obj: k8s.V1ConfigMap) => events.push(`${type} ${obj.metadata?.name}`),
      () => {},
    );
    await new Promise((r) => setTimeout(r, 200));
    await core.createNamespacedConfigMap({
      namespace: 'default',
      body: { metadata: { name: 'w-1', labels: { suite: 'watch' } } },
    });
    await core.patchNamespacedConfigMap(
      { name: 'w-1', namespace: 'default', body: { data: { x: 'y' } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    await core.deleteNamespacedConfigMap({ name: 'w-1', namespace: 'default' });
    await until('three watch events', () => events.length >= 3);
    req.abort();
    assert.deepEqual(events, ['ADDED w-1', 'MODIFIED w-1', 'DELETED w-1']);
  });

  it('an informer relists after its resourceVersion is compacted away', async () => {
    const path = '/api/v1/namespaces/default/configmaps';
    const informer = k8s.makeInformer(
      kc,
      path,
      () => core.listNamespacedConfigMap({ namespace: 'default', labelSelector: 'suite=informer' }),
      'suite=informer',
    );
    let errors = 0;
    let stopped = false;
    informer.on('error', () => {
      errors++;
      // client-node stops on connection errors; the documented answer is to start again.
      setTimeout(() => {
        if (!stopped) void informer.start().catch(() => {});
      }, 300);
    });
    await core.createNamespacedConfigMap({
      namespace: 'default',
      body: { metadata: { name: 'inf-0', labels: { suite: 'informer' } } },
    });
    await informer.start();
    await until('the informer to list inf-0', () => informer.list('default').length === 1);

    // Stop the server and, while it is down, write 30 objects straight into
    // its store and compact: the informer's resourceVersion is now history.
    await skiff.restart(async () => {
      const store = await createSqliteStore({ path: join(skiff.dataDir, 'server', 'db', 'state.db') });
      for (let i = 1; i <= 30; i++) {
        const key = `/registry/configmaps/default/inf-${i}`;
        await store.create(
          key,
          JSON.stringify({
            metadata: {
              name: `inf-${i}`,
              namespace: 'default',
              labels: { suite: 'informer' },
              uid: `uid-${i}`,
              creationTimestamp: '2026-01-01T00:00:00Z',
            },
          }),
        );
      }
      await store.compact(await store.currentRevision());
      await store.close();
    });

    await until(
      'the informer to relist all 31 objects',
      () => informer.list('default').length === 31,
      30_000,
    );
    assert.ok(errors >= 1, 'the informer should have seen its connection drop');
    stopped = true;
    await informer.stop();
  });
});
