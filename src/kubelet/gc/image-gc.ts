// Image garbage collection, as upstream's pkg/kubelet/images/image_gc_manager.go:
//
//   - the kubelet keeps, per image, when it first saw it and when it last
//     saw a container use it;
//   - when the image file system's usage reaches --image-gc-high-threshold
//     percent, it frees images until usage is down to --image-gc-low-threshold,
//     least recently used first;
//   - it never removes an image a container uses (running or not), the
//     sandbox (pause) image, an image the runtime pins, nor one first seen
//     less than --image-minimum-gc-age ago.
//
// Runs every 5 minutes (upstream's ImageGCPeriod), and when the eviction
// manager reclaims imagefs (then every unused image goes, age or not).

import { statfs } from 'node:fs/promises';
import type { Image, Runtime } from '../runtime/runtime.ts';

export interface ImageGCPolicy {
  highThresholdPercent: number;
  lowThresholdPercent: number;
  minAgeMs: number;
}

export interface ImageFsUsage {
  capacityBytes: number;
  availableBytes: number;
}

export interface ImageGCOptions {
  runtime: Runtime;
  /** Images never removed, by name (the sandbox image). */
  pinned?: string[];
  /** The image file system's size and free space (default: statfs of imagefsPath). */
  imageFs?(): Promise<ImageFsUsage | undefined>;
  imagefsPath?: string;
  now(): number;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

export interface ImageGC {
  /** Notes which images exist and which are in use (upstream detectImages). */
  detect(): Promise<void>;
  /** The threshold policy: frees down to the low threshold when above the high one. Returns bytes freed. */
  garbageCollect(policy: ImageGCPolicy): Promise<number>;
  /** Every image not in use (and not pinned), whatever its age (disk pressure). */
  deleteUnusedImages(): Promise<number>;
}

interface Record_ {
  firstDetected: number;
  lastUsed: number;
  size: number;
}

export function createImageGC(opts: ImageGCOptions): ImageGC {
  const { runtime } = opts;
  const log = opts.log ?? (() => {});
  const records = new Map<string, Record_>();
  const pinned = new Set(opts.pinned ?? []);

  const imageFs = async (): Promise<ImageFsUsage | undefined> => {
    if (opts.imageFs) return opts.imageFs();
    if (!opts.imagefsPath) return undefined;
    const s = await statfs(opts.imagefsPath).catch(() => undefined);
    return s ? { capacityBytes: s.blocks * s.bsize, availableBytes: s.bavail * s.bsize } : undefined;
  };

  async function detect(): Promise<{ images: Image[]; inUse: Set<string> }> {
    const now = opts.now();
    const [images, containers] = await Promise.all([runtime.listImages(), runtime.listContainers()]);
    const inUse = new Set<string>();
    for (const c of containers) {
      if (c.imageRef) inUse.add(c.imageRef);
      if (c.image.image) inUse.add(c.image.image);
    }
    const present = new Set<string>();
    for (const i of images) {
      present.add(i.id);
      const r = records.get(i.id) ?? { firstDetected: now, lastUsed: 0, size: Number(i.size) };
      const used =
        inUse.has(i.id) || i.repoTags.some((t) => inUse.has(t)) || i.repoDigests.some((d) => inUse.has(d));
      if (used) r.lastUsed = now;
      records.set(i.id, r);
    }
    for (const id of records.keys()) if (!present.has(id)) records.delete(id);
    return { images, inUse };
  }

  /** Frees at least `bytes` (or everything it may), least recently used first. */
  async function freeSpace(bytes: number, minAgeMs: number): Promise<number> {
    const now = opts.now();
    const { images, inUse } = await detect();
    const evictable = images.filter((i) => {
      if ((i as Image & { pinned?: boolean }).pinned) return false;
      if (i.repoTags.some((t) => pinned.has(t))) return false;
      if (
        inUse.has(i.id) ||
        i.repoTags.some((t) => inUse.has(t)) ||
        i.repoDigests.some((d) => inUse.has(d))
      ) {
        return false;
      }
      const r = records.get(i.id);
      return r !== undefined && now - r.firstDetected >= minAgeMs;
    });
    evictable.sort((a, b) => {
      const ra = records.get(a.id)!;
      const rb = records.get(b.id)!;
      return ra.lastUsed - rb.lastUsed || ra.firstDetected - rb.firstDetected;
    });
    let freed = 0;
    for (const i of evictable) {
      if (freed >= bytes) break;
      try {
        await runtime.removeImage({ image: i.id });
        freed += Number(i.size);
        records.delete(i.id);
        log('removed unused image', { image: i.repoTags[0] ?? i.id, sizeBytes: Number(i.size) });
      } catch (err) {
        log('unused image not removed', { image: i.id, error: String(err) });
      }
    }
    return freed;
  }

  return {
    detect: async () => {
      await detect();
    },
    async garbageCollect(policy) {
      const fs = await imageFs();
      if (!fs || fs.capacityBytes <= 0) return 0;
      const usagePercent = (100 * (fs.capacityBytes - fs.availableBytes)) / fs.capacityBytes;
      if (usagePercent < policy.highThresholdPercent) {
        await detect();
        return 0;
      }
      const toFree =
        fs.capacityBytes - fs.availableBytes - (policy.lowThresholdPercent * fs.capacityBytes) / 100;
      log('image file system above the high threshold; freeing space', {
        usagePercent: Math.round(usagePercent),
        highThresholdPercent: policy.highThresholdPercent,
        bytesToFree: Math.round(toFree),
      });
      const freed = await freeSpace(toFree, policy.minAgeMs);
      if (freed < toFree) {
        log('image garbage collection freed less than asked', {
          bytesToFree: Math.round(toFree),
          bytesFreed: freed,
        });
      }
      return freed;
    },
    deleteUnusedImages: () => freeSpace(Number.POSITIVE_INFINITY, 0),
  };
}
