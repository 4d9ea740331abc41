// Volume stats for /stats/summary (upstream's pod.volume[], from
// pkg/volume's MetricsDu and MetricsStatFS): what a volume uses (the blocks
// and inodes of its files, walked as `du` does, not crossing into other
// filesystems) and what the filesystem under it has (statfs). A claim's
// volume names its claim (pvcRef), which is what kubelet_volume_stats_* and
// `kubectl df`-style tools key on.
//
// Upstream reports nothing for hostPath volumes; Skiff does for a claim
// whose volume is a hostPath one (what local-path makes), since that
// directory is the claim's own. Inline hostPath volumes are left out.
//
// Walking is not free, so each volume's figures are kept for a period
// (upstream's --volume-stats-agg-period, 1 minute) and computed again only
// when asked after that.

import { lstat, readdir, statfs } from 'node:fs/promises';
import { join } from 'node:path';

export interface VolumeStats {
  name: string;
  pvcRef?: { name: string; namespace: string };
  time: string;
  availableBytes?: number;
  capacityBytes?: number;
  usedBytes?: number;
  inodesFree?: number;
  inodes?: number;
  inodesUsed?: number;
}

/** What a volume uses: bytes in blocks and inodes, not crossing into other filesystems. */
export async function usage(path: string): Promise<{ usedBytes: number; inodesUsed: number }> {
  let usedBytes = 0;
  let inodesUsed = 0;
  let dev: number | undefined;
  const walk = async (p: string): Promise<void> => {
    const st = await lstat(p).catch(() => undefined);
    if (!st) return;
    dev ??= st.dev;
    if (st.dev !== dev) return;
    usedBytes += st.blocks * 512;
    inodesUsed++;
    if (st.isDirectory())
      for (const e of await readdir(p).catch(() => [] as string[])) await walk(join(p, e));
  };
  await walk(path);
  return { usedBytes, inodesUsed };
}

/** One volume's stats now. */
export async function measureVolume(
  name: string,
  path: string,
  now: Date,
  pvcRef?: VolumeStats['pvcRef'],
): Promise<VolumeStats> {
  const [used, fs] = await Promise.all([usage(path), statfs(path)]);
  return {
    name,
    ...(pvcRef ? { pvcRef } : {}),
    time: now.toISOString().replace(/\.\d+Z$/, 'Z'),
    availableBytes: fs.bavail * fs.bsize,
    capacityBytes: fs.blocks * fs.bsize,
    usedBytes: used.usedBytes,
    inodesFree: fs.ffree,
    inodes: fs.files,
    inodesUsed: used.inodesUsed,
  };
}

/** Keeps each volume's stats for `periodMs`; `forget` drops a pod's. */
export function volumeStatsCache(periodMs = 60_000, now: () => Date = () => new Date()) {
  const cache = new Map<string, { at: number; stats: VolumeStats }>();
  return {
    async get(
      key: string,
      name: string,
      path: string,
      pvcRef?: VolumeStats['pvcRef'],
    ): Promise<VolumeStats | undefined> {
      const hit = cache.get(key);
      const t = now();
      if (hit && t.getTime() - hit.at < periodMs) return hit.stats;
      const stats = await measureVolume(name, path, t, pvcRef).catch(() => undefined);
      if (stats) cache.set(key, { at: t.getTime(), stats });
      return stats;
    },
    forget(prefix: string) {
      for (const k of cache.keys()) if (k.startsWith(prefix)) cache.delete(k);
    },
  };
}
