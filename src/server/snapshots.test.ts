import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { startEtcd } from '../storage/etcd/etcd-harness.ts';
import { createSqliteStore } from '../storage/sqlite/sqlite.ts';
import { createLog } from '../util/log.ts';
import { until } from '../util/until.ts';
import {
  datastoreOf,
  deleteSnapshot,
  listSnapshots,
  pruneSnapshots,
  restoreSqliteSnapshot,
  saveSnapshot,
  scheduleSnapshots,
} from './snapshots.ts';

const scratch = mkdtempSync(join(tmpdir(), 'skiff-snapshots-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

describe('snapshots (as k3s etcd-snapshot)', () => {
  it('SQLite: an online copy while the store writes; restored, it has exactly what it had, revisions included', async () => {
    const dbPath = join(scratch, 'a', 'state.db');
    const store = await createSqliteStore({ path: dbPath });
    const kept = await store.create('/registry/configmaps/default/kept', '{"uid":"u-1"}');
    // Writes go on while the snapshot runs: the copy is one consistent point.
    let writing = true;
    const writer = (async () => {
      for (let i = 0; writing; i++) await store.create(`/registry/configmaps/default/during-${i}`, '{}');
    })();
    const dir = join(scratch, 'a', 'snapshots');
    const snap = await saveSnapshot({
      datastore: datastoreOf(`sqlite://${dbPath}`, scratch),
      dir,
      nodeName: 'n1',
    });
    writing = false;
    await writer;
    assert.match(snap.name, /^on-demand-n1-\d+\.sqlite$/);
    assert.ok(snap.size > 0);
    await store.create('/registry/configmaps/default/after', '{}');
    await store.delete('/registry/configmaps/default/kept');
    await store.close();

    const restored = restoreSqliteSnapshot(snap.location.replace('file://', ''), dbPath);
    assert.ok(restored.kept && existsSync(restored.kept), 'the old database is kept beside');
    const back = await createSqliteStore({ path: dbPath });
    const got = await back.get('/registry/configmaps/default/kept');
    assert.equal(got?.value, '{"uid":"u-1"}');
    assert.equal(got?.modRevision, kept.modRevision, 'the same resourceVersion');
    assert.equal(await back.get('/registry/configmaps/default/after'), undefined);
    // The during-* keys in the copy are a prefix of what was written: no gaps.
    const during = (await back.list('/registry/configmaps/default/during-')).items.map((kv) =>
      Number(kv.key.split('-').at(-1)),
    );
    during.sort((x, y) => x - y);
    assert.deepEqual(
      during,
      during.map((_, i) => i),
    );
    await back.close();
  });

  it('refuses to restore a file that is not a SQLite snapshot', () => {
    const bogus = join(scratch, 'bogus');
    writeFileSync(bogus, 'not a database at all');
    assert.throws(
      () => restoreSqliteSnapshot(bogus, join(scratch, 'x', 'state.db')),
      /not a SQLite snapshot/,
    );
    assert.throws(
      () => restoreSqliteSnapshot(join(scratch, 'missing'), join(scratch, 'x', 'state.db')),
      /no such file/,
    );
  });

  it('ls lists oldest first; prune keeps the newest N of a name; delete removes one and refuses paths', async () => {
    const dbPath = join(scratch, 'b', 'state.db');
    const store = await createSqliteStore({ path: dbPath });
    await store.close();
    const dir = join(scratch, 'b', 'snapshots');
    const datastore = datastoreOf(`sqlite://${dbPath}`, scratch);
    for (let i = 0; i < 4; i++)
      await saveSnapshot({
        datastore,
        dir,
        nodeName: 'n',
        name: 'etcd-snapshot',
        now: () => new Date(1_800_000_000_000 + i * 1000),
      });
    await saveSnapshot({ datastore, dir, nodeName: 'n', now: () => new Date(1_800_000_000_000) });
    assert.equal(listSnapshots(dir).length, 5);
    assert.deepEqual(pruneSnapshots(dir, 'etcd-snapshot', 2), [
      'etcd-snapshot-n-1800000000.sqlite',
      'etcd-snapshot-n-1800000001.sqlite',
    ]);
    assert.deepEqual(
      listSnapshots(dir).map((s) => s.name),
      [
        'on-demand-n-1800000000.sqlite',
        'etcd-snapshot-n-1800000002.sqlite',
        'etcd-snapshot-n-1800000003.sqlite',
      ],
    );
    deleteSnapshot(dir, 'on-demand-n-1800000000.sqlite');
    assert.equal(listSnapshots(dir).length, 2);
    assert.throws(() => deleteSnapshot(dir, '../b/state.db'), /invalid snapshot name/);
    assert.throws(() => deleteSnapshot(dir, 'nope-n-1800000000.sqlite'), /not found/);
  });

  it('scheduled snapshots follow the cron spec and keep --etcd-snapshot-retention of them', async () => {
    const dbPath = join(scratch, 'd', 'state.db');
    const store = await createSqliteStore({ path: dbPath });
    const dir = join(scratch, 'd', 'snapshots');
    const lines: string[] = [];
    const log = createLog({ component: 'test' }, (l) => lines.push(l));
    const schedule = scheduleSnapshots({
      cron: '@every 1s',
      retention: 2,
      datastore: datastoreOf(`sqlite://${dbPath}`, scratch),
      dir,
      nodeName: 'n',
      log,
    });
    try {
      await until(
        'three scheduled snapshots',
        () => lines.filter((l) => l.includes('saved a scheduled snapshot')).length >= 3,
        { ms: 15_000 },
      );
      const names = listSnapshots(dir).map((s) => s.name);
      assert.equal(names.length, 2, names.join(' '));
      for (const n of names) assert.match(n, /^etcd-snapshot-n-\d+\.sqlite$/);
    } finally {
      schedule.stop();
      await store.close();
    }
  });

  it('etcd: the Maintenance snapshot, a file etcdctl reads back with its keys', async () => {
    const etcd = await startEtcd();
    try {
      const { Etcd3 } = await import('etcd3');
      const client = new Etcd3({ hosts: etcd.endpoints });
      await client.put('/skiff/registry/configmaps/default/a').value('{"uid":"u-a"}');
      client.close();
      const dir = join(scratch, 'c');
      const snap = await saveSnapshot({
        datastore: datastoreOf(`etcd://${etcd.endpoints[0]!.replace('http://', '')}`, scratch),
        dir,
        nodeName: 'n',
      });
      assert.match(snap.name, /^on-demand-n-\d+$/);
      const file = snap.location.replace('file://', '');
      const status = JSON.parse(
        execFileSync('etcdctl', ['snapshot', 'status', file, '-w', 'json'], {
          env: { ...process.env, ETCDCTL_API: '3' },
        }).toString(),
      );
      assert.ok(status.totalKey >= 1, JSON.stringify(status));
    } finally {
      await etcd.stop();
    }
  });
});
