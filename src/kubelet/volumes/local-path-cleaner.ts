// The node side of the local-path provisioner's Delete: rancher's provisioner
// runs a helper pod on the volume's node to remove its directory; Skiff's
// agent does it itself. Every so often it looks at the storage root's
// pvc-<uid>_<namespace>_<claim> directories and removes each one whose
// PersistentVolume pvc-<uid> the API server says does not exist (a 404 and
// nothing else: any other answer, or no answer, keeps the data).
//
// The provisioner deletes a volume only once it is Released (its claim is
// gone, and pvc-protection let the claim go only when no pod used it), so
// no container still has the directory mounted.

import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { isApiError } from '../../api/errors.ts';

export interface LocalPathCleanerOptions {
  /** The storage root (--default-local-storage-path). */
  root: string;
  /** GETs persistentvolumes/<name>; throws the API's error. */
  getPersistentVolume(name: string): Promise<unknown>;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

const VOLUME_DIR = /^(pvc-[0-9a-f-]{36})_[^_/]+_[^/]+$/;

/** One pass: removes the directories of volumes that are gone; returns what it removed. */
export async function cleanLocalPathVolumes(opts: LocalPathCleanerOptions): Promise<string[]> {
  const entries = await readdir(opts.root, { withFileTypes: true }).catch(() => []);
  const removed: string[] = [];
  for (const e of entries) {
    const m = e.isDirectory() ? VOLUME_DIR.exec(e.name) : null;
    if (!m) continue;
    try {
      await opts.getPersistentVolume(m[1] ?? '');
      continue;
    } catch (err) {
      if (!isApiError(err, 'NotFound')) continue;
    }
    const dir = join(opts.root, e.name);
    opts.log?.('removing the directory of a deleted local-path volume', { volume: m[1], dir });
    await rm(dir, { recursive: true, force: true });
    removed.push(dir);
  }
  return removed;
}
