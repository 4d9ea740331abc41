// The Store contract: one suite, run against every backend (memory, sqlite,
// etcd) from its own test file. A behaviour difference between backends is a
// bug in one of them, never something the apiserver should paper over.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { isStorageError, type Store, type WatchEvent } from './store.ts';

export interface StoreHarness {
  /** Opens a fresh, empty store. */
  open(): Promise<Store>;
  /** Closes and reopens the same store (omit for backends without durability). */
  reopen?(store: Store): Promise<Store>;
  teardown?(): Promise<void>;
}

/** Collects watch events until `until` holds, or fails after timeoutMs. */
export function collect(
  store: Store,
  prefix: string,
  afterRevision: number | undefined,
  until: (events: WatchEvent[]) => boolean,
  timeoutMs = 10_000,
): Promise<WatchEvent[]> {
  return new Promise((resolve, reject) => {
    const events: WatchEvent[] = [];
    const timer = setTimeout(() => {
      w.cancel();
      reject(new Error(`watch timed out after ${events.length} events`));
    }, timeoutMs);
    const w = store.watch(prefix, {
      ...(afterRevision !== undefined ? { afterRevision } : {}),
      onEvents(batch) {
        events.push(...batch);
        if (until(events)) {
          clearTimeout(timer);
          w.cancel();
          resolve(events);
        }
      },
      onError(err) {
        clearTimeout(timer);
        reject(err);
      },
    });
  });
}

export async function expectStorageError(promise: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(isStorageError(err), `expected a StorageError, got ${String(err)}`);
    assert.equal(err.code, code);
    return true;
  });
}

export function storeContract(name: string, harness: StoreHarness): void {
  describe(`Store contract: ${name}`, () => {
    let store: Store;
    let n = 0;
    // Each test works under its own prefix, so tests share one store.
    const ns = () => `/t${++n}/`;

    before(async () => {
      store = await harness.open();
    });
    after(async () => {
      await store.close();
      await harness.teardown?.();
    });

    it('creates, gets, and refuses to create twice', async () => {
      const p = ns();
      const before = await store.currentRevision();
      const kv = await store.create(`${p}a`, 'one');
      assert.ok(kv.modRevision > before);
      assert.equal(kv.createRevision, kv.modRevision);
      assert.equal(await store.currentRevision(), kv.modRevision);
      assert.deepEqual(await store.get(`${p}a`), kv);
      assert.equal(await store.get(`${p}missing`), undefined);
      await expectStorageError(store.create(`${p}a`, 'two'), 'KeyExists');
      assert.equal((await store.get(`${p}a`))?.value, 'one');
    });

    it('updates by compare-and-swap on the mod revision', async () => {
      const p = ns();
      const v1 = await store.create(`${p}a`, 'one');
      const v2 = await store.update(`${p}a`, 'two', v1.modRevision);
      assert.ok(v2.modRevision > v1.modRevision);
      assert.equal(v2.createRevision, v1.createRevision);
      await assert.rejects(store.update(`${p}a`, 'stale', v1.modRevision), (err: unknown) => {
        assert.ok(isStorageError(err, 'Conflict'));
        assert.deepEqual(err.current, v2);
        return true;
      });
      assert.equal((await store.get(`${p}a`))?.value, 'two');
      await expectStorageError(store.update(`${p}missing`, 'x', 1), 'NotFound');
    });

    it('deletes by compare-and-swap and recreates with a new create revision', async () => {
      const p = ns();
      const v1 = await store.create(`${p}a`, 'one');
      const v2 = await store.update(`${p}a`, 'two', v1.modRevision);
      await expectStorageError(store.delete(`${p}a`, v1.modRevision), 'Conflict');
      const del = await store.delete(`${p}a`, v2.modRevision);
      assert.deepEqual(del.prevKv, v2);
      assert.ok(del.revision > v2.modRevision);
      assert.equal(await store.get(`${p}a`), undefined);
      await expectStorageError(store.delete(`${p}a`), 'NotFound');
      const v3 = await store.create(`${p}a`, 'three');
      assert.ok(v3.createRevision > del.revision);
      const v4 = await store.update(`${p}a`, 'four', v3.modRevision);
      assert.equal((await store.delete(`${p}a`)).prevKv.value, v4.value);
    });

    it('reads a key as of a past revision', async () => {
      const p = ns();
      const v1 = await store.create(`${p}a`, 'one');
      const v2 = await store.update(`${p}a`, 'two', v1.modRevision);
      const del = await store.delete(`${p}a`);
      assert.equal((await store.get(`${p}a`, { revision: v1.modRevision }))?.value, 'one');
      assert.equal((await store.get(`${p}a`, { revision: v2.modRevision }))?.value, 'two');
      assert.equal(await store.get(`${p}a`, { revision: del.revision }), undefined);
      assert.equal(await store.get(`${p}a`, { revision: v1.modRevision - 1 }), undefined);
      const cur = await store.currentRevision();
      await expectStorageError(store.get(`${p}a`, { revision: cur + 100 }), 'FutureRevision');
    });

    it('lists a prefix in key order, and counts it', async () => {
      const p = ns();
      for (const k of ['c', 'a', 'b/x', 'b']) await store.create(`${p}${k}`, k);
      await store.create(`${p.slice(0, -1)}z/not-mine`, 'x'); // shares the prefix minus its slash
      await store.delete(`${p}c`);
      const list = await store.list(p);
      assert.deepEqual(
        list.items.map((kv) => kv.key),
        [`${p}a`, `${p}b`, `${p}b/x`],
      );
      assert.deepEqual(
        list.items.map((kv) => kv.value),
        ['a', 'b', 'b/x'],
      );
      assert.equal(list.remaining, 0);
      assert.equal(list.continue, undefined);
      assert.equal(list.revision, await store.currentRevision());
      assert.equal(await store.count(p), 3);
      assert.equal((await store.list(`${p}nothing/`)).items.length, 0);
    });

    it('paginates one snapshot while writes continue', async () => {
      const p = ns();
      for (let i = 0; i < 25; i++) await store.create(`${p}k${String(i).padStart(3, '0')}`, `v${i}`);
      const first = await store.list(p, { limit: 10 });
      assert.equal(first.items.length, 10);
      assert.equal(first.remaining, 15);
      assert.ok(first.continue);
      // Writes between pages: change a later key, delete one, add one.
      const k15 = (await store.get(`${p}k015`))!;
      await store.update(`${p}k015`, 'changed', k15.modRevision);
      await store.delete(`${p}k020`);
      await store.create(`${p}k099`, 'late');
      const seen = [...first.items];
      let token: string | undefined = first.continue;
      while (token) {
        const page = await store.list(p, { limit: 10, continue: token });
        assert.equal(page.revision, first.revision);
        seen.push(...page.items);
        token = page.continue;
      }
      assert.equal(seen.length, 25);
      assert.equal(new Set(seen.map((kv) => kv.key)).size, 25);
      assert.equal(seen.find((kv) => kv.key === `${p}k015`)?.value, 'v15');
      assert.ok(seen.some((kv) => kv.key === `${p}k020`));
      assert.ok(!seen.some((kv) => kv.key === `${p}k099`));
      // A fresh list sees the writes.
      const now = await store.list(p);
      assert.equal(now.items.length, 25);
      assert.equal(now.items.find((kv) => kv.key === `${p}k015`)?.value, 'changed');
    });

    it('lists as of an explicit past revision', async () => {
      const p = ns();
      await store.create(`${p}a`, '1');
      const mid = await store.create(`${p}b`, '1');
      await store.create(`${p}c`, '1');
      await store.delete(`${p}a`);
      const past = await store.list(p, { revision: mid.modRevision });
      assert.deepEqual(
        past.items.map((kv) => kv.key),
        [`${p}a`, `${p}b`],
      );
      assert.equal(past.revision, mid.modRevision);
    });

    it('watches from a past revision: every event after it, in order, once', async () => {
      const p = ns();
      const start = await store.currentRevision();
      const a = await store.create(`${p}a`, '1');
      await store.update(`${p}a`, '2', a.modRevision);
      await store.create(`${p}b`, '1');
      await store.delete(`${p}a`);
      await store.create(`${p.slice(0, -1)}-other`, 'x');
      // Live writes racing with the catch-up.
      const watching = collect(store, p, start, (ev) => ev.length >= 24);
      for (let i = 0; i < 20; i++) await store.create(`${p}live${i}`, String(i));
      const events = await watching;
      assert.equal(events.length, 24);
      assert.deepEqual(
        events.slice(0, 4).map((e) => [e.type, e.kv.key, e.kv.value]),
        [
          ['create', `${p}a`, '1'],
          ['update', `${p}a`, '2'],
          ['create', `${p}b`, '1'],
          ['delete', `${p}a`, '2'],
        ],
      );
      assert.equal(events[1]!.prevKv?.value, '1');
      assert.equal(events[3]!.prevKv?.value, '2');
      assert.equal(events[0]!.prevKv, undefined);
      for (let i = 1; i < events.length; i++) assert.ok(events[i]!.revision > events[i - 1]!.revision);
      for (const e of events) assert.equal(e.revision, e.kv.modRevision);
      assert.deepEqual(
        events.slice(4).map((e) => e.kv.value),
        Array.from({ length: 20 }, (_, i) => String(i)),
      );
    });

    it('resumes a watch exactly where it stopped', async () => {
      const p = ns();
      const start = await store.currentRevision();
      for (let i = 0; i < 10; i++) await store.create(`${p}${i}`, String(i));
      const firstHalf = await collect(store, p, start, (ev) => ev.length >= 5);
      const last = firstHalf[4]!.revision;
      const rest = await collect(store, p, last, (ev) => ev.length >= 5);
      assert.deepEqual(
        [...firstHalf.slice(0, 5), ...rest].map((e) => e.kv.value),
        ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'],
      );
    });

    it('watches from now when no revision is given', async () => {
      const p = ns();
      await store.create(`${p}old`, 'x');
      const watching = collect(store, p, undefined, (ev) => ev.length >= 1);
      await new Promise((r) => setTimeout(r, 50));
      await store.create(`${p}new`, 'y');
      const events = await watching;
      assert.equal(events[0]?.kv.key, `${p}new`);
    });

    it('reports watch progress after every earlier event (when the backend supports it)', async (t) => {
      const p = ns();
      const events: WatchEvent[] = [];
      let resolveProgress: (rev: number) => void = () => {};
      const progress = new Promise<number>((r) => {
        resolveProgress = r;
      });
      let seenAtProgress = -1;
      const w = store.watch(p, {
        onEvents: (batch) => events.push(...batch),
        onError: (err) => assert.fail(err),
        onProgress: (rev) => {
          seenAtProgress = events.length;
          resolveProgress(rev);
        },
      });
      if (!w.requestProgress) {
        w.cancel();
        t.skip('backend has no progress notifications');
        return;
      }
      await new Promise((r) => setTimeout(r, 100));
      for (let i = 0; i < 3; i++) await store.create(`${p}${i}`, String(i));
      const last = await store.currentRevision();
      w.requestProgress();
      const rev = await progress;
      w.cancel();
      assert.ok(rev >= last);
      assert.equal(seenAtProgress, 3);
    });

    it('compacts: old revisions, watches and continue tokens get Compacted; latest values stay', async () => {
      const p = ns();
      const v = await store.create(`${p}a`, '1');
      let cur = v;
      for (let i = 2; i <= 5; i++) cur = await store.update(`${p}a`, String(i), cur.modRevision);
      await store.create(`${p}b`, 'b');
      const page = await store.list(p, { limit: 1 });
      assert.ok(page.continue);
      await store.create(`${p}c`, 'c');
      const gone = await store.create(`${p}gone`, 'x');
      await store.delete(`${p}gone`);
      const target = await store.currentRevision();
      await store.update(`${p}a`, '6', cur.modRevision);
      await store.compact(target);
      assert.ok((await store.compactedRevision()) >= target);
      await expectStorageError(store.get(`${p}a`, { revision: v.modRevision }), 'Compacted');
      await expectStorageError(store.list(p, { limit: 1, continue: page.continue! }), 'Compacted');
      await assert.rejects(
        collect(store, p, gone.modRevision - 1, () => true),
        (err: unknown) => {
          assert.ok(isStorageError(err, 'Compacted'));
          return true;
        },
      );
      const list = await store.list(p);
      assert.deepEqual(
        list.items.map((kv) => [kv.key, kv.value]),
        [
          [`${p}a`, '6'],
          [`${p}b`, 'b'],
          [`${p}c`, 'c'],
        ],
      );
      // Reads at the compaction revision itself still work, and a watch from it resumes.
      assert.equal((await store.get(`${p}a`, { revision: target }))?.value, '5');
      const after = await collect(store, p, target, (ev) => ev.length >= 1);
      assert.equal(after[0]?.kv.value, '6');
      assert.equal(after[0]?.prevKv?.value, '5');
    });

    if (harness.reopen) {
      it('keeps data and keeps revisions rising across a restart', async () => {
        const p = ns();
        const kv = await store.create(`${p}a`, 'persisted');
        await store.delete((await store.create(`${p}b`, 'x')).key);
        const rev = await store.currentRevision();
        store = await harness.reopen!(store);
        assert.equal(await store.currentRevision(), rev);
        assert.deepEqual(await store.get(`${p}a`), kv);
        assert.equal(await store.get(`${p}b`), undefined);
        const next = await store.create(`${p}c`, 'y');
        assert.ok(next.modRevision > rev);
      });
    }
  });
}
