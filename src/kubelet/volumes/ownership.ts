// fsGroup: a volume's files made the pod's group, so a container running as
// any user in that group can use them (upstream pkg/volume/volume_linux.go
// SetVolumeOwnership). Every file and directory gets the group fsGroup
// (its owner kept), the group's read and write bits (read only, for a
// read-only volume) and, for directories, the group's search bit and setgid,
// so what is made in them later inherits the group. Symlinks get the group
// but no mode. Nothing under a symlink is followed.
//
// fsGroupChangePolicy: Always (the default) walks the whole volume each time
// it is set up; OnRootMismatch skips the walk when the volume's root already
// has the group, the bits and setgid, so a large volume is not walked again
// at every pod start.
//
// Which volumes: those whose plugin supports ownership upstream, that is
// emptyDir, configMap, secret, downwardAPI, projected, and local
// PersistentVolumes; never hostPath (a node path is the node's), which is
// what the local-path provisioner makes, as rancher's does by default.

import { chmod, lchown, lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';

const RW_MASK = 0o660;
const RO_MASK = 0o440;
const EXEC_MASK = 0o110;
const SETGID = 0o2000;

export type FSGroupChangePolicy = 'Always' | 'OnRootMismatch';

export interface OwnershipOptions {
  readOnly?: boolean;
  /** pod.spec.securityContext.fsGroupChangePolicy; Always when unset. */
  policy?: string | undefined;
}

/** The mode bits fsGroup asks of an entry (upstream changeFilePermission's mask). */
const maskFor = (isDir: boolean, readOnly: boolean) =>
  (readOnly ? RO_MASK : RW_MASK) | (isDir ? EXEC_MASK | SETGID : 0);

/** upstream requiresPermissionChange: whether the root already is as fsGroup wants it. */
export async function rootMatches(dir: string, fsGroup: number, readOnly: boolean): Promise<boolean> {
  const st = await lstat(dir);
  if (!st.isDirectory() || st.gid !== fsGroup) return false;
  const mask = maskFor(true, readOnly);
  return (st.mode & mask) === mask;
}

/**
 * Gives `dir` and everything under it the group `fsGroup` and the bits it
 * needs. Returns how many entries were changed (0 when OnRootMismatch found
 * the root as wanted).
 */
export async function setVolumeOwnership(
  dir: string,
  fsGroup: number,
  { readOnly = false, policy }: OwnershipOptions = {},
): Promise<number> {
  if (policy === 'OnRootMismatch' && (await rootMatches(dir, fsGroup, readOnly))) return 0;
  let changed = 0;
  const visit = async (path: string): Promise<void> => {
    const st = await lstat(path);
    // -1: the owner stays (os.Lchown(name, -1, gid)).
    await lchown(path, -1, fsGroup);
    changed++;
    if (st.isSymbolicLink()) return;
    await chmod(path, (st.mode & 0o7777) | maskFor(st.isDirectory(), readOnly));
    if (!st.isDirectory()) return;
    for (const name of await readdir(path)) await visit(join(path, name));
  };
  await visit(dir);
  return changed;
}

/**
 * A container's supplementary groups, as upstream's kubelet gives them
 * (determineEffectiveSecurityContext, and the sandbox's
 * generatePodSandboxLinuxConfig): the pod's supplementalGroups, then
 * fsGroup, each once.
 */
export function podSupplementalGroups(
  sc: { supplementalGroups?: number[]; fsGroup?: number } = {},
): number[] {
  const groups = [...(sc.supplementalGroups ?? [])];
  if (sc.fsGroup !== undefined && sc.fsGroup !== null) groups.push(sc.fsGroup);
  return [...new Set(groups)];
}
