import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createEtcdStore } from './etcd/etcd.ts';
import { startEtcd } from './etcd/etcd-harness.ts';
import { migrateStore } from './migrate.ts';
import { createSqliteStore } from './sqlite/sqlite.ts';

const dir = mkdtempSync(join(tmpdir(), 'skiff-migrate-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('migrating SQLite to etcd', () => {
  it('copies every live key with its value, in resourceVersion order; deleted keys and skipped prefixes stay behind', async () => {
    const sqlite = await createSqliteStore({ path: join(dir, 'state.db') });
    const b = await sqlite.create('/registry/configmaps/default/b', '{"uid":"u-b"}');
    const a = await sqlite.create('/registry/configmaps/default/a', '{"uid":"u-a"}');
    const a2 = await sqlite.update('/registry/configmaps/default/a', '{"uid":"u-a","v":2}', a.modRevision);
    const gone = await sqlite.create('/registry/configmaps/default/gone', '{}');
    await sqlite.delete('/registry/configmaps/default/gone', gone.modRevision);
    await sqlite.create('/masterleases/127.0.0.1:6443', '{}');
    await sqlite.create('/bootstrap/abc', 'sealed');
    const etcd = await startEtcd();
    const target = await createEtcdStore({ endpoints: etcd.endpoints, prefix: '/skiff' });
    try {
      assert.equal(await migrateStore(sqlite, target, { skipPrefixes: ['/masterleases/'] }), 3);
      const got = (await target.list('/')).items;
      assert.deepEqual(
        got.map((kv) => [kv.key, kv.value]),
        [
          ['/bootstrap/abc', 'sealed'],
          ['/registry/configmaps/default/a', '{"uid":"u-a","v":2}'],
          ['/registry/configmaps/default/b', '{"uid":"u-b"}'],
        ],
      );
      const rv = (k: string) => got.find((kv) => kv.key === k)!.modRevision;
      // b was written before a's last version in SQLite, and still is in etcd.
      assert.ok(b.modRevision < a2.modRevision);
      assert.ok(rv('/registry/configmaps/default/b') < rv('/registry/configmaps/default/a'));
    } finally {
      await target.close();
      await sqlite.close();
      await etcd.stop();
    }
  });
});
