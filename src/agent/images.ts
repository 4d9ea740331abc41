// Offline images: like k3s's airgap images, every image tarball in
// `<data-dir>/agent/images/` is imported into containerd when the agent
// starts, and `skiff images import FILE` imports one more. The tarballs are
// OCI image layouts (or docker save archives); images/build.sh makes Skiff's
// own (pause, busybox, redis, nginx) from Debian binaries.
//
// Import goes through containerd's `ctr`, in the k8s.io namespace, which is
// the one containerd's CRI plugin serves, so the kubelet sees the images at
// once. ctr also unpacks them for the overlayfs snapshotter, so the first
// container does not pay for it.

import { execFile } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { Log } from '../util/log.ts';
import { socketPath } from './containerd.ts';

const run = promisify(execFile);

/** containerd's namespace for everything CRI manages. */
export const CRI_NAMESPACE = 'k8s.io';

/** `<data-dir>/agent/images`: the airgap image directory. */
export function imagesDir(dataDir: string): string {
  return join(dataDir, 'agent', 'images');
}

/** Where scripts/setup.sh has images/build.sh put Skiff's own images. */
export const BUILT_IMAGES_DIR = fileURLToPath(new URL('../../.tools/images', import.meta.url));

/** Imports one image tarball; answers the image names containerd now knows it by. */
export async function importImage(endpoint: string, file: string): Promise<string[]> {
  const { stdout } = await run(
    'ctr',
    ['--address', socketPath(endpoint), '--namespace', CRI_NAMESPACE, 'images', 'import', file],
    { maxBuffer: 16 * 1024 * 1024 },
  ).catch((err: Error & { stderr?: string }) => {
    throw new Error(`importing ${file}: ${(err.stderr || err.message).trim()}`);
  });
  // ctr prints "unpacking <name> (sha256:...)...done" per image.
  return [...stdout.matchAll(/unpacking (\S+) \(/g)].map((m) => m[1]!);
}

/** Imports every `*.tar` in `dir` (a missing dir imports nothing). Answers the images imported. */
export async function importImageDir(endpoint: string, dir: string, log?: Log): Promise<string[]> {
  const files = await readdir(dir).catch(() => [] as string[]);
  const names: string[] = [];
  for (const f of files.filter((f) => f.endsWith('.tar')).sort()) {
    const imported = await importImage(endpoint, join(dir, f));
    log?.('imported image', { file: join(dir, f), images: imported });
    names.push(...imported);
  }
  return names;
}
