// fsGroup ownership on a real directory tree (needs root, to chown to any group).

import assert from 'node:assert/strict';
import { chmod, chown, lstat, mkdir, mkdtemp, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { podSupplementalGroups, rootMatches, setVolumeOwnership } from './ownership.ts';

const GROUP = 4321;

describe('fsGroup ownership', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp('/tmp/skiff-ownership-');
  });
  after(() => rm(dir, { recursive: true, force: true }));

  /** A volume: a root, a subdirectory, two files (one executable) and a symlink. */
  async function volume(name: string): Promise<string> {
    const root = join(dir, name);
    await mkdir(join(root, 'sub'), { recursive: true });
    await chmod(root, 0o755);
    await chmod(join(root, 'sub'), 0o700);
    await writeFile(join(root, 'sub', 'data'), 'x', { mode: 0o600 });
    await writeFile(join(root, 'run.sh'), 'x', { mode: 0o700 });
    await symlink('sub/data', join(root, 'link'));
    return root;
  }

  it('gives every entry the group, group rw (and x, setgid on directories), keeping owners and other bits', async () => {
    const root = await volume('rw');
    const owner = (await stat(root)).uid;
    assert.equal(await setVolumeOwnership(root, GROUP), 5);
    const mode = async (p: string) => (await lstat(join(root, p))).mode & 0o7777;
    assert.equal(await mode(''), 0o2775);
    assert.equal(await mode('sub'), 0o2770);
    assert.equal(await mode('sub/data'), 0o660);
    assert.equal(await mode('run.sh'), 0o760);
    for (const p of ['', 'sub', 'sub/data', 'run.sh', 'link']) {
      const st = await lstat(join(root, p));
      assert.equal(st.gid, GROUP, p);
      assert.equal(st.uid, owner, p);
    }
    // The symlink's own mode is not touched, nor is what it points to followed twice.
    assert.ok((await lstat(join(root, 'link'))).isSymbolicLink());
  });

  it('read-only volumes get group read only', async () => {
    const root = await volume('ro');
    await setVolumeOwnership(root, GROUP, { readOnly: true });
    assert.equal((await stat(join(root, 'sub', 'data'))).mode & 0o777, 0o640);
    assert.equal((await stat(join(root, 'sub'))).mode & 0o7777, 0o2750);
  });

  it('OnRootMismatch walks only when the root is not already as fsGroup wants it', async () => {
    const root = await volume('policy');
    assert.equal(await rootMatches(root, GROUP, false), false);
    assert.equal(await setVolumeOwnership(root, GROUP, { policy: 'OnRootMismatch' }), 5);
    assert.equal(await rootMatches(root, GROUP, false), true);
    // A file of another group added since (setgid would give a new file the
    // root's group) is left alone by OnRootMismatch, and changed by Always.
    await writeFile(join(root, 'later'), 'x', { mode: 0o600 });
    await chown(join(root, 'later'), 0, 0);
    assert.equal(await setVolumeOwnership(root, GROUP, { policy: 'OnRootMismatch' }), 0);
    assert.notEqual((await stat(join(root, 'later'))).gid, GROUP);
    assert.equal(await setVolumeOwnership(root, GROUP, { policy: 'Always' }), 6);
    assert.equal((await stat(join(root, 'later'))).gid, GROUP);
    // Another group: the root mismatches, so the walk happens again.
    assert.equal(await setVolumeOwnership(root, GROUP + 1, { policy: 'OnRootMismatch' }), 6);
  });

  it("a container's supplementary groups are the pod's, then fsGroup, each once", () => {
    assert.deepEqual(podSupplementalGroups({}), []);
    assert.deepEqual(podSupplementalGroups({ fsGroup: 2000 }), [2000]);
    assert.deepEqual(
      podSupplementalGroups({ supplementalGroups: [5, 2000, 7], fsGroup: 2000 }),
      [5, 2000, 7],
    );
    assert.deepEqual(podSupplementalGroups({ supplementalGroups: [5], fsGroup: 9 }), [5, 9]);
  });
});
