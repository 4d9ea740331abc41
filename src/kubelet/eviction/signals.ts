// What the eviction manager watches, as upstream's makeSignalObservations
// (pkg/kubelet/eviction/helpers.go) reads from the summary API:
//
//   memory.available             capacity - the root cgroup's working set
//   allocatableMemory.available  kubepods' cap - kubepods' working set
//                                (with --enforce-node-allocatable=pods)
//   nodefs.available, nodefs.inodesFree     the kubelet root dir's file system
//   imagefs.available, imagefs.inodesFree   containerd's root's
//   pid.available                pid_max - the processes there are
//
// The working set is usage less inactive file pages, which the kernel can
// drop at once: what a kernel OOM would look at.

import { readdir, readFile, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import type { CgroupManager } from '../cm/cgroup-manager.ts';

/** One signal's reading: how much is left, of how much. */
export interface Observation {
  available: number;
  capacity: number;
}

export type Observations = Map<string, Observation>;

export interface SignalSources {
  /** Reads every signal there is now. */
  observe(): Promise<Observations>;
}

export interface NodeSignalOptions {
  cgroups?: CgroupManager;
  /** kubepods' name, and what it is capped at (allocatableMemory.available). */
  kubepods?: { name: string; memoryBytes: number };
  memoryCapacityBytes: number;
  /** The kubelet's root directory (nodefs) and containerd's (imagefs). */
  nodefsPath: string;
  imagefsPath?: string;
}

async function fsSignals(path: string): Promise<{ bytes: Observation; inodes: Observation } | undefined> {
  try {
    const s = await statfs(path);
    return {
      bytes: { available: s.bavail * s.bsize, capacity: s.blocks * s.bsize },
      inodes: { available: s.ffree, capacity: s.files },
    };
  } catch {
    return undefined;
  }
}

/** The machine's memory working set: the v1 root cgroup's, or on v2 /proc/meminfo's equivalent. */
async function machineWorkingSet(cgroups: CgroupManager | undefined, capacity: number): Promise<number> {
  if (cgroups?.mode === 'v1') {
    const ws = await cgroups.memoryWorkingSet('/');
    if (ws !== undefined) return ws;
  }
  const meminfo = await readFile('/proc/meminfo', 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(meminfo)?.[1] ?? 0) * 1024;
  return Math.max(0, capacity - kb('MemFree') - kb('Inactive\\(file\\)'));
}

async function processCount(): Promise<number> {
  const entries = await readdir('/proc').catch(() => [] as string[]);
  return entries.filter((e) => /^\d+$/.test(e)).length;
}

export function nodeSignals(opts: NodeSignalOptions): SignalSources {
  return {
    async observe() {
      const out: Observations = new Map();
      const capacity = opts.memoryCapacityBytes;
      out.set('memory.available', {
        available: Math.max(0, capacity - (await machineWorkingSet(opts.cgroups, capacity))),
        capacity,
      });
      if (opts.cgroups && opts.kubepods) {
        const ws = await opts.cgroups.memoryWorkingSet(opts.kubepods.name);
        if (ws !== undefined) {
          out.set('allocatableMemory.available', {
            available: Math.max(0, opts.kubepods.memoryBytes - ws),
            capacity: opts.kubepods.memoryBytes,
          });
        }
      }
      const nodefs = await fsSignals(opts.nodefsPath);
      if (nodefs) {
        out.set('nodefs.available', nodefs.bytes);
        out.set('nodefs.inodesFree', nodefs.inodes);
      }
      const imagefs = opts.imagefsPath ? await fsSignals(opts.imagefsPath) : nodefs;
      if (imagefs) {
        out.set('imagefs.available', imagefs.bytes);
        out.set('imagefs.inodesFree', imagefs.inodes);
      }
      const pidMax = Number(await readFile('/proc/sys/kernel/pid_max', 'utf8').catch(() => '0'));
      if (pidMax > 0)
        out.set('pid.available', { available: pidMax - (await processCount()), capacity: pidMax });
      return out;
    },
  };
}

/** Bytes a directory tree takes on disk (du), not following links nor crossing into other mounts' files. */
export async function diskUsage(path: string): Promise<number> {
  const { lstat } = await import('node:fs/promises');
  let total = 0;
  let dev: number | undefined;
  const walk = async (p: string): Promise<void> => {
    const st = await lstat(p).catch(() => undefined);
    if (!st) return;
    if (dev === undefined) dev = st.dev;
    else if (st.dev !== dev) return;
    total += st.blocks * 512;
    if (st.isDirectory()) {
      for (const e of await readdir(p).catch(() => [] as string[])) await walk(join(p, e));
    }
  };
  await walk(path);
  return total;
}
