// The node side of local-path Delete: only a volume the API server says is
// gone (a 404) loses its directory; any other answer keeps the data.

import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ApiError, forbidden, notFound } from '../../api/errors.ts';
import { cleanLocalPathVolumes } from './local-path-cleaner.ts';

const uid = (n: number) => `0000000${n}-aaaa-bbbb-cccc-dddddddddddd`;

describe('local-path cleaner', () => {
  let root: string;
  before(async () => {
    root = await mkdtemp('/tmp/skiff-local-path-');
  });
  after(() => rm(root, { recursive: true, force: true }));

  it('removes the directory of a volume that is gone (404), and nothing else', async () => {
    const dirs = {
      gone: `pvc-${uid(1)}_default_gone`,
      live: `pvc-${uid(2)}_default_live`,
      denied: `pvc-${uid(3)}_default_denied`,
      unreachable: `pvc-${uid(4)}_default_unreachable`,
      serverError: `pvc-${uid(5)}_default_broken`,
      notOurs: 'my-own-data',
    };
    for (const d of Object.values(dirs)) {
      await mkdir(join(root, d));
      await writeFile(join(root, d, 'f'), 'data');
    }
    // A file named like a volume directory is not one.
    await writeFile(join(root, `pvc-${uid(6)}_default_file`), 'x');

    const asked: string[] = [];
    const removed = await cleanLocalPathVolumes({
      root,
      async getPersistentVolume(name) {
        asked.push(name);
        if (name === `pvc-${uid(1)}`) throw notFound({ group: '', resource: 'persistentvolumes' }, name);
        if (name === `pvc-${uid(3)}`) throw forbidden('no');
        if (name === `pvc-${uid(4)}`) throw new Error('connect ECONNREFUSED');
        if (name === `pvc-${uid(5)}`) throw new ApiError(500, 'InternalError', 'etcd is down');
        return { metadata: { name } };
      },
    });
    assert.deepEqual(removed, [join(root, dirs.gone)]);
    assert.deepEqual(asked.sort(), [1, 2, 3, 4, 5].map((n) => `pvc-${uid(n)}`).sort());
    assert.deepEqual(
      (await readdir(root)).sort(),
      [
        dirs.live,
        dirs.denied,
        dirs.unreachable,
        dirs.serverError,
        dirs.notOurs,
        `pvc-${uid(6)}_default_file`,
      ].sort(),
    );
  });

  it('does nothing when the storage root does not exist', async () => {
    const removed = await cleanLocalPathVolumes({
      root: join(root, 'absent'),
      getPersistentVolume: () => Promise.reject(new Error('not asked')),
    });
    assert.deepEqual(removed, []);
  });
});
