import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { measureVolume, volumeStatsCache } from './volume-stats.ts';

describe('volume stats', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp('/tmp/skiff-volume-stats-');
    await mkdir(join(dir, 'sub'));
    await writeFile(join(dir, 'sub', 'a'), Buffer.alloc(64 * 1024, 1));
    await writeFile(join(dir, 'b'), 'x');
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it("counts a volume's blocks and inodes, and its filesystem's capacity and free space", async () => {
    const s = await measureVolume('data', dir, new Date('2026-12-08T01:00:00.123Z'), {
      name: 'claim',
      namespace: 'default',
    });
    assert.equal(s.name, 'data');
    assert.deepEqual(s.pvcRef, { name: 'claim', namespace: 'default' });
    assert.equal(s.time, '2026-12-08T01:00:00Z');
    assert.equal(s.inodesUsed, 4, 'the root, sub, a and b');
    assert.ok((s.usedBytes ?? 0) >= 64 * 1024, String(s.usedBytes));
    assert.ok((s.capacityBytes ?? 0) > (s.availableBytes ?? 0) && (s.availableBytes ?? 0) > 0);
    assert.ok((s.inodes ?? 0) >= (s.inodesFree ?? 0));
  });

  it('keeps figures for the period, then measures again', async () => {
    let t = new Date('2026-12-08T01:00:00Z');
    const cache = volumeStatsCache(60_000, () => t);
    const first = await cache.get('uid/data', 'data', dir);
    await writeFile(join(dir, 'c'), 'y');
    assert.equal(await cache.get('uid/data', 'data', dir), first, 'within the period: the same figures');
    t = new Date(t.getTime() + 61_000);
    const second = await cache.get('uid/data', 'data', dir);
    assert.equal(second?.inodesUsed, (first?.inodesUsed ?? 0) + 1);
    cache.forget('uid/');
    assert.equal(await cache.get('uid/gone', 'gone', join(dir, 'missing')), undefined);
  });
});
