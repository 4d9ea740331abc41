// The few mount operations volumes need: a tmpfs for memory-backed
// emptyDirs (and the secret and projected volumes upstream keeps in memory),
// and unmounting when the pod goes. They shell out to mount(8)/umount(8), as
// upstream's mount-utils does.

import { execFile } from 'node:child_process';
import { readFile, realpath, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The mount points of this process's mount namespace (field 5 of /proc/self/mountinfo, octal escapes undone). */
export async function mountPoints(): Promise<string[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) =>
      (line.split(' ')[4] ?? '').replace(/\\([0-7]{3})/g, (_, o: string) =>
        String.fromCharCode(parseInt(o, 8)),
      ),
    );
}

/**
 * Whether a file system is mounted at path: its device differs from its
 * parent's, as upstream's IsLikelyNotMountPoint decides. Two stats, where
 * reading the mount table was a parse of every mount on the node for each
 * volume of each pod sync (at 110 pods, the kubelet's largest idle cost).
 * Only tmpfs is mounted here, which always has a device of its own.
 */
export async function isMountPoint(path: string): Promise<boolean> {
  const real = await realpath(path).catch(() => path);
  const [self, parent] = await Promise.all([
    stat(real).catch(() => undefined),
    stat(dirname(real)).catch(() => undefined),
  ]);
  if (!self || !parent) return false;
  return self.dev !== parent.dev || self.ino === parent.ino;
}

/** Mounts a tmpfs at dir (an existing directory), of at most sizeBytes when given. */
export async function mountTmpfs(dir: string, sizeBytes?: number): Promise<void> {
  const options = sizeBytes ? ['-o', `size=${sizeBytes}`] : [];
  await run('mount', ['-t', 'tmpfs', ...options, 'tmpfs', dir]);
}

export async function unmount(dir: string): Promise<void> {
  await run('umount', [dir]);
}

/** Unmounts everything mounted at or below dir, deepest first. */
export async function unmountUnder(dir: string): Promise<void> {
  const root = await realpath(dir).catch(() => dir);
  const under = (await mountPoints()).filter((m) => m === root || m.startsWith(`${root}/`));
  for (const m of under.sort((a, b) => b.length - a.length)) await unmount(m);
}
