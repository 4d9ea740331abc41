// The cgroupfs cgroup manager, as upstream's pkg/kubelet/cm/cgroup_manager_linux.go
// with the cgroupfs driver: a cgroup is named by its path from the root of
// the hierarchy (`/kubepods/burstable/pod<uid>`), which is also the
// cgroupParent handed to containerd (runc then puts each container at
// `<parent>/<container id>`).
//
// Two layouts, detected from /sys/fs/cgroup:
//   v2  the unified hierarchy: one directory per cgroup; controllers are
//       enabled for children through the parent's cgroup.subtree_control;
//       cpu.weight, cpu.max, memory.max, pids.max.
//   v1  a hierarchy per controller (/sys/fs/cgroup/cpu, /memory, ...), as on
//       this machine (hybrid: v1 controllers with an empty unified mount,
//       which upstream treats as v1); cpu.shares, cpu.cfs_quota_us,
//       memory.limit_in_bytes, pids.max.
//
// Only what upstream's pod and QoS cgroups use is written. Destroying a
// cgroup is rmdir, which the kernel refuses while a process is in it, so a
// kubelet can never take a cgroup from under a running container.

import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export type CgroupMode = 'v1' | 'v2';

/** Upstream ResourceConfig: what a pod or QoS cgroup is limited to; unset means unlimited / default. */
export interface ResourceConfig {
  /** cgroup v1 cpu.shares (2 to 262144); converted to cpu.weight on v2. */
  cpuShares?: number;
  /** CFS quota in µs per period; -1 is unlimited. */
  cpuQuota?: number;
  cpuPeriod?: number;
  /** Bytes; undefined leaves it unlimited. */
  memoryLimit?: number;
  pidsLimit?: number;
}

/** The v1 controllers a pod cgroup is made in (upstream's libcontainer subsystems that exist here). */
const V1_SUBSYSTEMS = [
  'cpu',
  'cpuacct',
  'cpuset',
  'memory',
  'pids',
  'blkio',
  'devices',
  'freezer',
  'hugetlb',
];
/** The v2 controllers enabled down the kubepods tree. */
const V2_CONTROLLERS = ['cpuset', 'cpu', 'io', 'memory', 'hugetlb', 'pids'];

/** Which layout the machine has: v2 when /sys/fs/cgroup is the unified hierarchy itself. */
export function detectCgroupMode(root = '/sys/fs/cgroup'): CgroupMode {
  return existsSync(join(root, 'cgroup.controllers')) ? 'v2' : 'v1';
}

/** Upstream's CpuSharesToCpuWeight (runc's ConvertCPUSharesToCgroupV2Value). */
export function cpuSharesToWeight(shares: number): number {
  if (shares === 0) return 0;
  return Math.floor(1 + ((shares - 2) * 9999) / 262142);
}

export interface CgroupManager {
  readonly mode: CgroupMode;
  /** Makes the cgroup (and its parents) if missing, then applies `resources`. */
  create(name: string, resources: ResourceConfig): Promise<void>;
  /** Applies `resources` to an existing cgroup. */
  update(name: string, resources: ResourceConfig): Promise<void>;
  exists(name: string): boolean;
  /** Removes the cgroup and the empty cgroups under it; refused (throws) while a process is in it. */
  destroy(name: string): Promise<void>;
  /** The names of the cgroups directly under `name`. */
  children(name: string): Promise<string[]>;
  /** The pids of the processes in the cgroup and under it. */
  pids(name: string): Promise<number[]>;
  /** The memory the cgroup uses, less its inactive file cache (upstream's working set), in bytes. */
  memoryWorkingSet(name: string): Promise<number | undefined>;
  /** Reads one control file of a controller ('memory', 'memory.limit_in_bytes'), for tests and stats. */
  read(controller: string, name: string, file: string): Promise<string>;
}

export interface CgroupManagerOptions {
  /** Where the hierarchies are mounted (default /sys/fs/cgroup). */
  root?: string;
  mode?: CgroupMode;
  /** How a cgroup directory is removed (default rmdir; tests on plain directories remove files too). */
  removeDir?(path: string): Promise<void>;
}

const errno = (err: unknown) => (err as NodeJS.ErrnoException)?.code;

export function createCgroupManager(opts: CgroupManagerOptions = {}): CgroupManager {
  const root = opts.root ?? '/sys/fs/cgroup';
  const mode = opts.mode ?? detectCgroupMode(root);
  const segments = (name: string) => name.split('/').filter(Boolean);
  const dir = (controller: string, name: string) =>
    mode === 'v2' ? join(root, ...segments(name)) : join(root, controller, ...segments(name));
  // Only the v1 hierarchies mounted here (a kernel may lack hugetlb, say).
  const subsystems = mode === 'v1' ? V1_SUBSYSTEMS.filter((s) => existsSync(join(root, s))) : [];

  const write = async (path: string, value: string | number) => {
    await writeFile(path, String(value));
  };

  // A new v1 cpuset cgroup starts with no CPUs and no memory nodes, and no
  // process can join it until they are set: copy them from the parent, as
  // runc does for the directories it makes.
  async function copyCpuset(path: string): Promise<void> {
    for (const f of ['cpuset.cpus', 'cpuset.mems']) {
      const mine = (await readFile(join(path, f), 'utf8').catch(() => '')).trim();
      if (mine) continue;
      const parent = (await readFile(join(path, '..', f), 'utf8').catch(() => '')).trim();
      if (parent) await write(join(path, f), parent);
    }
  }

  async function mkdirs(controller: string, name: string): Promise<void> {
    const parts = segments(name);
    for (let i = 1; i <= parts.length; i++) {
      const sub = `/${parts.slice(0, i).join('/')}`;
      const path = dir(controller, sub);
      if (mode === 'v2') await enableControllers(dir('', `/${parts.slice(0, i - 1).join('/')}`));
      try {
        await mkdir(path);
      } catch (err) {
        if (errno(err) !== 'EEXIST') throw err;
      }
      if (controller === 'cpuset') await copyCpuset(path);
    }
  }

  // v2: a child gets a controller's files only when its parent lists the
  // controller in cgroup.subtree_control.
  async function enableControllers(parent: string): Promise<void> {
    const available = (await readFile(join(parent, 'cgroup.controllers'), 'utf8').catch(() => ''))
      .trim()
      .split(/\s+/);
    const enabled = new Set(
      (await readFile(join(parent, 'cgroup.subtree_control'), 'utf8').catch(() => '')).trim().split(/\s+/),
    );
    const want = V2_CONTROLLERS.filter((c) => available.includes(c) && !enabled.has(c));
    if (want.length === 0) return;
    await write(join(parent, 'cgroup.subtree_control'), want.map((c) => `+${c}`).join(' ')).catch(
      async () => {
        // One at a time: a controller the parent cannot delegate must not keep the others off.
        for (const c of want) await write(join(parent, 'cgroup.subtree_control'), `+${c}`).catch(() => {});
      },
    );
  }

  async function update(name: string, r: ResourceConfig): Promise<void> {
    if (mode === 'v2') {
      const d = dir('', name);
      if (r.cpuShares !== undefined) await write(join(d, 'cpu.weight'), cpuSharesToWeight(r.cpuShares));
      if (r.cpuQuota !== undefined || r.cpuPeriod !== undefined) {
        const quota = r.cpuQuota === undefined || r.cpuQuota < 0 ? 'max' : String(r.cpuQuota);
        await write(join(d, 'cpu.max'), `${quota} ${r.cpuPeriod ?? 100_000}`);
      }
      await write(join(d, 'memory.max'), r.memoryLimit === undefined ? 'max' : r.memoryLimit);
      if (r.pidsLimit !== undefined) await write(join(d, 'pids.max'), r.pidsLimit < 0 ? 'max' : r.pidsLimit);
      return;
    }
    if (r.cpuShares !== undefined) await write(join(dir('cpu', name), 'cpu.shares'), r.cpuShares);
    if (r.cpuPeriod !== undefined) await write(join(dir('cpu', name), 'cpu.cfs_period_us'), r.cpuPeriod);
    if (r.cpuQuota !== undefined) await write(join(dir('cpu', name), 'cpu.cfs_quota_us'), r.cpuQuota);
    // -1 is unlimited on v1.
    await write(join(dir('memory', name), 'memory.limit_in_bytes'), r.memoryLimit ?? -1);
    if (r.pidsLimit !== undefined && subsystems.includes('pids')) {
      await write(join(dir('pids', name), 'pids.max'), r.pidsLimit < 0 ? 'max' : r.pidsLimit);
    }
  }

  async function destroyOne(path: string): Promise<void> {
    // Depth first: cgroups left by containers that are gone (runc removes its
    // own, but a crashed one may leave an empty directory behind).
    const entries = await readdir(path, { withFileTypes: true }).catch(() => []);
    for (const e of entries) if (e.isDirectory()) await destroyOne(join(path, e.name));
    try {
      await (opts.removeDir ?? rmdir)(path);
    } catch (err) {
      if (errno(err) !== 'ENOENT') throw err;
    }
  }

  async function pidsOf(path: string): Promise<number[]> {
    const own = (await readFile(join(path, 'cgroup.procs'), 'utf8').catch(() => ''))
      .split('\n')
      .filter(Boolean)
      .map(Number);
    const entries = await readdir(path, { withFileTypes: true }).catch(() => []);
    for (const e of entries) if (e.isDirectory()) own.push(...(await pidsOf(join(path, e.name))));
    return own;
  }

  return {
    mode,
    async create(name, resources) {
      if (mode === 'v2') await mkdirs('', name);
      else for (const s of subsystems) await mkdirs(s, name);
      await update(name, resources);
    },
    update,
    exists(name) {
      return existsSync(dir(mode === 'v2' ? '' : 'memory', name));
    },
    async destroy(name) {
      if (mode === 'v2') await destroyOne(dir('', name));
      else for (const s of subsystems) await destroyOne(dir(s, name));
    },
    async children(name) {
      const entries = await readdir(dir(mode === 'v2' ? '' : 'memory', name), { withFileTypes: true }).catch(
        () => [],
      );
      const base = name.endsWith('/') ? name : `${name}/`;
      return entries.filter((e) => e.isDirectory()).map((e) => `${base}${e.name}`);
    },
    pids: (name) => pidsOf(dir(mode === 'v2' ? '' : 'memory', name)),
    async memoryWorkingSet(name) {
      try {
        if (mode === 'v2') {
          const d = dir('', name);
          const usage = Number(readFileSync(join(d, 'memory.current'), 'utf8'));
          const inactive = Number(
            /^inactive_file (\d+)$/m.exec(readFileSync(join(d, 'memory.stat'), 'utf8'))?.[1] ?? 0,
          );
          return Math.max(0, usage - inactive);
        }
        const d = dir('memory', name);
        const usage = Number(readFileSync(join(d, 'memory.usage_in_bytes'), 'utf8'));
        const inactive = Number(
          /^total_inactive_file (\d+)$/m.exec(readFileSync(join(d, 'memory.stat'), 'utf8'))?.[1] ?? 0,
        );
        return Math.max(0, usage - inactive);
      } catch {
        return undefined;
      }
    },
    read: (controller, name, file) =>
      readFile(join(dir(controller, name), file), 'utf8').then((s) => s.trim()),
  };
}
