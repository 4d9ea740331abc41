import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { storeContract } from '../store.case.ts';
import type { Store } from '../store.ts';
import { createSqliteStore } from './sqlite.ts';

const dir = mkdtempSync(join(tmpdir(), 'skiff-sqlite-'));
const path = join(dir, 'state.db');

storeContract('sqlite', {
  open: () => createSqliteStore({ path }),
  async reopen(store: Store) {
    await store.close();
    return createSqliteStore({ path });
  },
  async teardown() {
    rmSync(dir, { recursive: true, force: true });
  },
});

// The WAL is synced off the event loop: nothing of a batch may be seen
// before its writes are acknowledged, and a watch opened meanwhile gets
// the batch's events once, when it is durable.
describe('sqlite: a batch is seen only once it is synced', () => {
  const d = mkdtempSync(join(tmpdir(), 'skiff-sqlite-sync-'));
  after(() => rmSync(d, { recursive: true, force: true }));

  it('reads, revisions and watches wait for the sync', async () => {
    const store = await createSqliteStore({ path: join(d, 'state.db') });
    try {
      const before = await store.currentRevision();
      for (let round = 0; round < 20; round++) {
        let acked = false;
        const key = `/s/${round}`;
        const written = store.create(key, 'v').then((kv) => {
          acked = true;
          return kv;
        });
        // The batch has committed; its sync may still be in flight.
        await new Promise((r) => setImmediate(r));
        const seen: number[] = [];
        const w = store.watch('/s/', {
          onEvents: (events) => {
            for (const e of events) if (e.kv.key === key) seen.push(e.revision);
          },
          onError: (err) => assert.fail(String(err)),
        });
        const got = await store.get(key);
        assert.equal(acked, true, 'a read saw the write before it was acknowledged');
        assert.equal(got?.value, 'v');
        assert.equal(await store.currentRevision(), (await written).modRevision);
        await new Promise((r) => setImmediate(r));
        assert.deepEqual(seen, [(await written).modRevision]);
        w.cancel();
      }
      assert.equal(await store.currentRevision(), before + 20);
    } finally {
      await store.close();
    }
  });

  it('commits and syncs writes still queued at close', async () => {
    const path2 = join(d, 'close.db');
    const store = await createSqliteStore({ path: path2 });
    const writes = Array.from({ length: 50 }, (_, i) => store.create(`/c/${i}`, 'v'));
    await new Promise((r) => setImmediate(r));
    const more = Array.from({ length: 50 }, (_, i) => store.create(`/c/x${i}`, 'v'));
    await store.close();
    await Promise.all([...writes, ...more]);
    const reopened = await createSqliteStore({ path: path2 });
    assert.equal((await reopened.list('/c/')).items.length, 100);
    await reopened.close();
  });
});
