import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { KubeObject } from '../api/meta.ts';
import { createMemoryStore } from '../storage/memory/memory.ts';
import { type CacheEvent, TooOldResourceVersionError, WatchCache, watchEventLine } from './watch-cache.ts';

const decode = (value: string, rev: number): KubeObject => {
  const obj = JSON.parse(value) as KubeObject;
  obj.metadata.resourceVersion = String(rev);
  return obj;
};
const put = (name: string) => JSON.stringify({ metadata: { name } });

describe('watch cache', () => {
  it('serves a consistent list right after writes, including when other prefixes moved the revision', async () => {
    const store = createMemoryStore();
    const cache = new WatchCache(store, '/registry/pods/', { decode });
    await cache.start();
    await store.create('/registry/pods/a', put('a'));
    await store.create('/registry/other/x', put('x'));
    await cache.sync();
    assert.equal(cache.revision, await store.currentRevision());
    assert.deepEqual(
      cache.list().map((o) => o.metadata.name),
      ['a'],
    );
    cache.stop();
  });

  it('replays events after a revision, and refuses revisions that left the ring with "too old"', async () => {
    const store = createMemoryStore();
    const cache = new WatchCache(store, '/p/', { decode, capacity: 5 });
    await cache.start();
    const first = await store.create('/p/0', put('0'));
    for (let i = 1; i < 20; i++) await store.create(`/p/${i}`, put(String(i)));
    await cache.sync();
    assert.throws(
      () => cache.watch(first.modRevision, { send() {}, close() {} }),
      (err: unknown) =>
        err instanceof TooOldResourceVersionError && /too old resource version/.test(err.message),
    );
    const got: CacheEvent[] = [];
    const w = cache.watch(cache.revision - 3, { send: (e) => got.push(...e), close() {} });
    assert.deepEqual(
      w.backlog.map((e) => e.object.metadata.name),
      ['17', '18', '19'],
    );
    await store.create('/p/live', put('live'));
    await cache.sync();
    assert.deepEqual(
      got.map((e) => [e.type, e.object.metadata.name]),
      [['ADDED', 'live']],
    );
    w.stop();
    cache.stop();
  });

  it('ends its watchers when it stops', async () => {
    const store = createMemoryStore();
    const cache = new WatchCache(store, '/p/', { decode });
    await cache.start();
    let closed = '';
    cache.watch(cache.revision, {
      send() {},
      close: (r) => {
        closed = r;
      },
    });
    await store.create('/p/a', put('a'));
    await cache.sync();
    assert.equal(cache.list().length, 1);
    assert.equal(closed, '');
    cache.stop();
    assert.match(closed, /stopped/);
  });
});

describe('watchEventLine', () => {
  it('is the event as one JSON line, per type, encoded once for every watcher of the object', () => {
    const object = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'a', resourceVersion: '7' } };
    const added = watchEventLine('ADDED', object);
    assert.equal(added, `${JSON.stringify({ type: 'ADDED', object })}\n`);
    assert.equal(watchEventLine('ADDED', object), added);
    // A selector transition sends the same object as DELETED to another watcher.
    assert.deepEqual(JSON.parse(watchEventLine('DELETED', object)), { type: 'DELETED', object });
    // Another object with the same content is encoded on its own.
    const copy = structuredClone(object);
    copy.metadata.resourceVersion = '8';
    assert.equal(JSON.parse(watchEventLine('ADDED', copy)).object.metadata.resourceVersion, '8');
  });
});
