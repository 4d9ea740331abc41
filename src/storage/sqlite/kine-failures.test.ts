// kine's published SQLite failures, each turned into a test this backend must
// pass: compaction that stalls behind writers (or blocks them with "database
// is locked"), a WAL that grows without bound, and lists that slow down as a
// key accumulates revisions.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createSqliteStore } from './sqlite.ts';

const dir = mkdtempSync(join(tmpdir(), 'skiff-kine-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const fileSize = (path: string): number => {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
};

/** Creates `keys` keys under prefix (if missing), then runs `n` updates over them, `concurrency` at a time. */
async function churn(
  store: Awaited<ReturnType<typeof createSqliteStore>>,
  prefix: string,
  keys: number,
  n: number,
  value: string,
  concurrency = 32,
): Promise<void> {
  const revs: number[] = [];
  for (let k = 0; k < keys; k++) {
    const key = `${prefix}${k}`;
    revs[k] = ((await store.get(key)) ?? (await store.create(key, value))).modRevision;
  }
  let started = 0;
  // Worker w owns the keys k with k % concurrency == w, so its CAS updates never conflict.
  const worker = async (w: number) => {
    for (let k = w; started < n; k = k + concurrency < keys ? k + concurrency : w) {
      started++;
      revs[k] = (await store.update(`${prefix}${k}`, value, revs[k]!)).modRevision;
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, keys) }, (_, w) => worker(w)));
}

describe('sqlite store: kine failure modes', () => {
  it('compaction makes progress while writers run, and never blocks them', async () => {
    const store = await createSqliteStore({ path: join(dir, 'compact.db'), compactBatch: 200 });
    // 100 keys × 60 versions of history.
    await churn(store, '/registry/configmaps/default/cm', 100, 6000, 'x'.repeat(200));
    const target = await store.currentRevision();
    const rowsBefore = store.logRows();
    assert.ok(rowsBefore >= 6000);

    // Writers keep going for the whole compaction; count what they get done
    // while it runs and whether any of them failed.
    let compacting = true;
    let writesDuringCompaction = 0;
    const errors: unknown[] = [];
    const writers = Array.from({ length: 8 }, async (_, w) => {
      let i = 0;
      while (compacting) {
        try {
          await store.create(`/registry/pods/default/w${w}-${i++}`, 'p');
          if (compacting) writesDuringCompaction++;
        } catch (err) {
          errors.push(err);
        }
      }
    });
    await store.compact(target);
    compacting = false;
    await Promise.all(writers);

    assert.deepEqual(errors, []);
    assert.ok(writesDuringCompaction > 0, 'writers made no progress while compaction ran');
    assert.equal(await store.compactedRevision(), target);
    // Only the latest version of each config map remains from before target.
    const rowsAfter = store.logRows();
    const created = (await store.list('/registry/pods/')).items.length;
    assert.equal(rowsAfter, 100 + created);
    const cms = await store.list('/registry/configmaps/');
    assert.equal(cms.items.length, 100);
    await store.close();
  });

  it('compaction interrupted by a restart resumes on open', async () => {
    const path = join(dir, 'resume.db');
    let store = await createSqliteStore({ path, compactBatch: 50 });
    await churn(store, '/k/', 10, 2000, 'v');
    const target = await store.currentRevision();
    // Close right after compaction starts: only its first batches are done.
    const compacting = store.compact(target);
    await store.close();
    await compacting.catch(() => {});
    store = await createSqliteStore({ path, compactBatch: 50 });
    assert.equal(await store.compactedRevision(), target);
    await store.compactionIdle();
    assert.equal(store.logRows(), 10);
    await store.close();
  });

  it('keeps the WAL and the database bounded under sustained writes with compaction', async () => {
    const path = join(dir, 'wal.db');
    const walLimit = 2 * 1024 * 1024;
    const store = await createSqliteStore({ path, walSizeLimitBytes: walLimit, synchronous: 'NORMAL' });
    const value = 'v'.repeat(2048);
    let maxWal = 0;
    const sizes: number[] = [];
    // Five rounds of 4,000 updates (8 MB of values each); compact after each,
    // keeping the last 1,000 revisions, like the server's compactor.
    for (let round = 0; round < 5; round++) {
      await churn(store, '/registry/leases/kube-node-lease/node', 200, 4000, value);
      const rev = await store.currentRevision();
      await store.compact(rev - 1000);
      await store.compactionIdle();
      maxWal = Math.max(maxWal, fileSize(`${path}-wal`));
      sizes.push(fileSize(path));
    }
    // WAL: at most the truncation limit plus one auto-checkpoint interval
    // (1,000 pages of 4 KiB) plus one transaction.
    assert.ok(maxWal <= walLimit + 4096 * 1000 + 1024 * 1024, `WAL grew to ${maxWal} bytes`);
    // History: 200 live keys plus at most the 1,000 retained revisions.
    assert.ok(store.logRows() <= 200 + 1000, `log has ${store.logRows()} rows`);
    // Database: freed pages are reused, so the file stops growing after the
    // first round instead of growing with total writes (20,000 × 2 KiB = 40 MB).
    assert.ok(sizes.at(-1)! <= sizes[1]! * 1.25, `database grew: ${sizes.join(', ')}`);
    const written = 5 * 4000 * value.length;
    assert.ok(sizes.at(-1)! < written / 1.5, `database is ${sizes.at(-1)} bytes after ${written} written`);
    await store.close();
  });

  it('lists do not get slower as a key accumulates revisions: no query scans the log', async () => {
    const store = await createSqliteStore({ path: join(dir, 'plans.db') });
    let kv = await store.create('/registry/leases/hot', '0');
    for (let i = 1; i <= 3000; i++)
      kv = await store.update('/registry/leases/hot', String(i), kv.modRevision);
    for (let i = 0; i < 50; i++) await store.create(`/registry/leases/cold${i}`, 'c');
    const snapshot = await store.currentRevision();
    for (let i = 3001; i <= 3100; i++)
      kv = await store.update('/registry/leases/hot', String(i), kv.modRevision);

    // Correctness at the current and at a past revision.
    const live = await store.list('/registry/leases/');
    assert.equal(live.items.length, 51);
    assert.equal(live.items.find((x) => x.key === '/registry/leases/hot')?.value, '3100');
    const past = await store.list('/registry/leases/', { revision: snapshot });
    assert.equal(past.items.find((x) => x.key === '/registry/leases/hot')?.value, '3000');
    const page = await store.list('/registry/leases/', { revision: snapshot, limit: 10 });
    assert.equal(page.remaining, 41);

    // The plans: list, past-revision list, watch catch-up and compaction
    // reach log rows by primary key or by the (key, revision) index only;
    // a plan step that SCANs a log alias would make cost grow with history.
    const plan = store.explainList();
    const scans = plan.filter((step) => /^SCAN (l|log|x|n|p)\b/.test(step));
    assert.deepEqual(scans, [], plan.join('\n'));
    assert.ok(plan.some((step) => step.startsWith('SEARCH c USING PRIMARY KEY')));
    await store.close();
  });
});
