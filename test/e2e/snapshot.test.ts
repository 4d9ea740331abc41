// Snapshots and restore (src/server/snapshots.ts), with a real `skiff
// server` on SQLite and the real kubectl: `skiff etcd-snapshot save` while
// the server serves, objects deleted, the server stopped and restored with
// `skiff server --cluster-reset --cluster-reset-restore-path`, and the
// objects back with their uids and resourceVersions.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ok, type Skiff, skiffCli, startSkiff } from './harness.ts';

let skiff: Skiff;
before(async () => {
  skiff = await startSkiff();
});
after(async () => {
  await skiff?.stop();
});

describe('snapshots on SQLite', () => {
  it('save, ls, delete objects, restore with --cluster-reset: the objects are back with their uids', async () => {
    await ok(skiff, ['create', 'namespace', 'snap-e2e']);
    for (const name of ['one', 'two', 'three'])
      await ok(skiff, ['-n', 'snap-e2e', 'create', 'configmap', name, `--from-literal=name=${name}`]);
    const before = JSON.parse(await ok(skiff, ['-n', 'snap-e2e', 'get', 'configmaps', '-o', 'json']))
      .items as any[];
    const wanted = new Map(
      before
        .filter((c) => c.metadata.name !== 'kube-root-ca.crt')
        .map((c) => [c.metadata.name, { uid: c.metadata.uid, rv: c.metadata.resourceVersion }]),
    );
    assert.equal(wanted.size, 3);

    const saved = await skiffCli([
      'etcd-snapshot',
      'save',
      '--data-dir',
      skiff.dataDir,
      '--name',
      'before-delete',
    ]);
    assert.equal(saved.code, 0, saved.stderr);
    const listed = await skiffCli(['etcd-snapshot', 'ls', '--data-dir', skiff.dataDir, '-o', 'json']);
    assert.equal(listed.code, 0, listed.stderr);
    const snapshots = JSON.parse(listed.stdout) as { name: string; location: string; size: number }[];
    assert.equal(snapshots.length, 1);
    assert.match(snapshots[0]!.name, /^before-delete-.+-\d+\.sqlite$/);
    const file = snapshots[0]!.location.replace('file://', '');
    assert.ok(file.startsWith(join(skiff.dataDir, 'server', 'db', 'snapshots')));

    await ok(skiff, ['-n', 'snap-e2e', 'delete', 'configmap', 'one', 'two', 'three']);
    await ok(skiff, ['-n', 'snap-e2e', 'create', 'configmap', 'later']);

    let reset: Awaited<ReturnType<typeof skiffCli>> | undefined;
    // A running server's database is not replaced under it: the restore runs with it stopped.
    await skiff.restart(async () => {
      reset = await skiffCli([
        'server',
        '--data-dir',
        skiff.dataDir,
        '--cluster-reset',
        '--cluster-reset-restore-path',
        file,
      ]);
    });
    assert.equal(reset?.code, 0, reset?.stderr);
    assert.match(reset!.stderr, /Start the server again without --cluster-reset/);

    const after = JSON.parse(await ok(skiff, ['-n', 'snap-e2e', 'get', 'configmaps', '-o', 'json']))
      .items as any[];
    const names = after.map((c) => c.metadata.name).filter((n) => n !== 'kube-root-ca.crt');
    assert.deepEqual(names.sort(), ['one', 'three', 'two']);
    for (const c of after) {
      const w = wanted.get(c.metadata.name);
      if (!w) continue;
      assert.equal(c.metadata.uid, w.uid, `${c.metadata.name} keeps its uid`);
      assert.equal(c.metadata.resourceVersion, w.rv, `${c.metadata.name} keeps its resourceVersion`);
    }

    // A restore from a file that is no snapshot is refused with the reason.
    const bad = await skiffCli([
      'server',
      '--data-dir',
      skiff.dataDir,
      '--cluster-reset',
      '--cluster-reset-restore-path',
      join(skiff.dataDir, 'kubeconfig.yaml'),
    ]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /not a SQLite snapshot/);

    const removed = await skiffCli([
      'etcd-snapshot',
      'delete',
      '--data-dir',
      skiff.dataDir,
      snapshots[0]!.name,
    ]);
    assert.equal(removed.code, 0, removed.stderr);
    const empty = await skiffCli(['etcd-snapshot', 'ls', '--data-dir', skiff.dataDir, '-o', 'json']);
    assert.deepEqual(JSON.parse(empty.stdout), []);
  });
});
