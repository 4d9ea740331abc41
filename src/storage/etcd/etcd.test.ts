import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { collect, expectStorageError, storeContract } from '../store.case.ts';
import { isStorageError, type Store } from '../store.ts';
import { createEtcdStore } from './etcd.ts';
import { type EtcdCluster, startEtcd } from './etcd-harness.ts';

let etcd: EtcdCluster;
before(async () => {
  etcd = await startEtcd();
});
after(async () => {
  await etcd?.stop();
});

// A prefix, so the suite also proves that namespacing is invisible to callers.
const open = () => createEtcdStore({ endpoints: etcd.endpoints, prefix: '/skiff-test/' });

storeContract('etcd', {
  open,
  async reopen(store: Store) {
    await store.close();
    return open();
  },
});

// What the shared contract cannot see: etcd's own edges.
describe('etcd backend specifics', () => {
  it('namespaces keys under the prefix, and works without one', async () => {
    const a = await createEtcdStore({ endpoints: etcd.endpoints, prefix: '/ns-a/' });
    const raw = await createEtcdStore({ endpoints: etcd.endpoints });
    try {
      const kv = await a.create('/x', 'in a');
      assert.equal(kv.key, '/x');
      assert.equal(await raw.get('/x'), undefined);
      assert.deepEqual(await raw.get('/ns-a//x'), { ...kv, key: '/ns-a//x' });
      await raw.create('/ns-a0', 'just past the prefix');
      assert.deepEqual(
        (await a.list('')).items.map((i) => i.key),
        ['/x'],
      );
      // With no prefix, the empty prefix means every key in etcd.
      assert.ok((await raw.list('')).items.some((i) => i.key === '/ns-a0'));
      assert.equal(await a.count(''), 1);
    } finally {
      await a.close();
      await raw.close();
    }
  });

  it('never lets update create a missing key, even with expectedModRevision 0', async () => {
    const s = await open();
    try {
      await expectStorageError(s.update('/specifics/missing', 'x', 0), 'NotFound');
      assert.equal(await s.get('/specifics/missing'), undefined);
    } finally {
      await s.close();
    }
  });

  it('pages with limit, remaining and continue at the edges', async () => {
    const s = await open();
    try {
      for (const k of ['a', 'b', 'c', 'd']) await s.create(`/pages/${k}`, k);
      await s.create('/pages0', 'outside');
      const p1 = await s.list('/pages/', { limit: 2 });
      assert.deepEqual([p1.items.length, p1.remaining], [2, 2]);
      const p2 = await s.list('/pages/', { limit: 2, continue: p1.continue! });
      assert.deepEqual(
        p2.items.map((i) => i.key),
        ['/pages/c', '/pages/d'],
      );
      assert.deepEqual([p2.remaining, p2.continue], [0, undefined]);
      assert.equal(p2.revision, p1.revision);
    } finally {
      await s.close();
    }
  });

  it('lists more than one gRPC message can carry (6 MB of values) as one snapshot', async () => {
    const store = await open();
    const value = 'x'.repeat(2048);
    const keys = Array.from({ length: 3000 }, (_, i) => `/big/${String(i).padStart(5, '0')}`);
    for (let i = 0; i < keys.length; i += 100) {
      await Promise.all(keys.slice(i, i + 100).map((k) => store.create(k, value)));
    }
    const before = await store.currentRevision();
    const list = await store.list('/big/');
    assert.equal(list.items.length, 3000);
    assert.equal(list.revision, before);
    assert.equal(list.remaining, 0);
    const page = await store.list('/big/', { limit: 1200 });
    assert.equal(page.items.length, 1200);
    assert.equal(page.remaining, 1800);
    assert.equal(page.items.at(-1)?.key, keys[1199]);
    await store.close();
  });

  it('rejects a watch from a future revision', async () => {
    const s = await open();
    try {
      const cur = await s.currentRevision();
      await assert.rejects(
        collect(s, '/future/', cur + 1000, () => true),
        (err: unknown) => isStorageError(err, 'FutureRevision'),
      );
    } finally {
      await s.close();
    }
  });

  it('finds the compacted revision from a fresh client, and reports Compacted to a watch once', async () => {
    const s = await open();
    const fresh = await open();
    try {
      const first = await s.create('/compact/a', '1');
      let cur = first;
      for (let i = 0; i < 5; i++) cur = await s.update('/compact/a', String(i), cur.modRevision);
      const target = cur.modRevision - 1;
      await s.compact(target);
      // A client that did not compact has to find the revision in etcd.
      assert.equal(await fresh.compactedRevision(), target);
      await assert.rejects(fresh.get('/compact/a', { revision: first.modRevision }), (err: unknown) => {
        assert.ok(isStorageError(err, 'Compacted'));
        assert.equal(err.revision, target);
        return true;
      });
      // Compacting at or below an earlier compaction is a no-op, as elsewhere.
      await fresh.compact(target - 1);
      await expectStorageError(fresh.compact(cur.modRevision + 1000), 'FutureRevision');

      const errors: unknown[] = [];
      let events = 0;
      s.watch('/compact/', {
        afterRevision: first.modRevision - 1,
        onEvents: () => events++,
        onError: (err) => errors.push(err),
      });
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(errors.length, 1);
      assert.ok(isStorageError(errors[0], 'Compacted'));
      assert.equal(events, 0);
    } finally {
      await s.close();
      await fresh.close();
    }
  });

  // Last, since it restarts the etcd every test here shares.
  it('resumes a watch across an etcd crash without losing or repeating events', async () => {
    const s = await open();
    try {
      const start = await s.currentRevision();
      const watching = collect(s, '/restart/', start, (ev) => ev.length >= 10, 20_000);
      for (let i = 0; i < 5; i++) await s.create(`/restart/${i}`, String(i));
      await etcd.restart(0);
      // The store itself rides out the restart too: these writes wait for etcd.
      for (let i = 5; i < 10; i++) await s.create(`/restart/${i}`, String(i));
      const events = await watching;
      assert.deepEqual(
        events.map((e) => e.kv.value),
        ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'],
      );
    } finally {
      await s.close();
    }
  });
});
