// The kubelet's resource usage, as upstream's two read paths serve it on the
// kubelet's HTTPS port (kubelet/server/server.ts):
//
//   /stats/summary      the Summary API (k8s.io/kubelet pkg/apis/stats/v1alpha1):
//                       node and pods, with per-container CPU, memory and
//                       filesystem, and the pod's network;
//   /metrics/resource   the same numbers as Prometheus series in upstream's
//                       names (pkg/kubelet/metrics/collectors/resource_metrics.go),
//                       each sample carrying its own timestamp: what
//                       metrics-server scrapes.
//
// Pods and containers come from the runtime over CRI (ListContainerStats,
// ListPodSandboxStats), as upstream's CRI stats provider does with the
// PodAndContainerStatsFromCRI gate; the node's own usage comes from a
// NodeStatsSource (/proc for a real node, the sum of its pods for a hollow
// one). containerd 1.6 fails ListPodSandboxStats for sandboxes without a
// cgroup parent (and older runtimes answer Unimplemented): a pod's CPU and
// memory are then the sum of its containers', as cadvisor's pod cgroup
// would give (less the pause process), and it has no network.
//
// CPU rates (usageNanoCores) are the runtime's when it gives one, otherwise
// the change of the cumulative counter since this provider's last sample of
// the same container, as upstream's CRI provider caches them.

import { readFileSync, statfsSync } from 'node:fs';
import {
  KUBERNETES_CONTAINER_NAME_LABEL,
  KUBERNETES_POD_NAME_LABEL,
  KUBERNETES_POD_NAMESPACE_LABEL,
  KUBERNETES_POD_UID_LABEL,
} from '../kubelet/labels.ts';
import type {
  CpuUsage,
  ContainerStats as CriContainerStats,
  MemoryUsage,
  NetworkInterfaceUsage,
  PodSandboxStats,
  Runtime,
} from '../kubelet/runtime/runtime.ts';
import type { VolumeStats } from '../kubelet/volumes/volume-stats.ts';

// ---- the Summary API's types (stats/v1alpha1), in its JSON names

export interface CPUStats {
  time: string;
  usageNanoCores?: number;
  usageCoreNanoSeconds?: number;
}

export interface MemoryStats {
  time: string;
  availableBytes?: number;
  usageBytes?: number;
  workingSetBytes?: number;
  rssBytes?: number;
  pageFaults?: number;
  majorPageFaults?: number;
}

export interface InterfaceStats {
  name: string;
  rxBytes?: number;
  rxErrors?: number;
  txBytes?: number;
  txErrors?: number;
}

export interface NetworkStats extends Partial<InterfaceStats> {
  time: string;
  interfaces?: InterfaceStats[];
}

export interface FsStats {
  time: string;
  availableBytes?: number;
  capacityBytes?: number;
  usedBytes?: number;
  inodesFree?: number;
  inodes?: number;
  inodesUsed?: number;
}

export interface ContainerSummary {
  name: string;
  startTime: string;
  cpu?: CPUStats;
  memory?: MemoryStats;
  rootfs?: FsStats;
}

export interface PodSummary {
  podRef: { name: string; namespace: string; uid: string };
  startTime: string;
  containers: ContainerSummary[];
  cpu?: CPUStats;
  memory?: MemoryStats;
  network?: NetworkStats;
  'ephemeral-storage'?: FsStats;
  /** The pod's volumes (kubelet/volumes/volume-stats.ts). */
  volume?: VolumeStats[];
  process_stats?: { process_count?: number };
}

export interface NodeSummary {
  nodeName: string;
  startTime: string;
  cpu?: CPUStats;
  memory?: MemoryStats;
  network?: NetworkStats;
  fs?: FsStats;
  rlimit?: { time: string; maxpid?: number; curproc?: number };
}

export interface Summary {
  node: NodeSummary;
  pods: PodSummary[];
}

// ---- the node's own usage

/** One sample of the node's usage, in CRI's units (nanoseconds, bytes). */
export interface NodeUsage {
  /** Nanoseconds since the epoch. */
  timestamp: number;
  /** When the node (its machine) started, ms since the epoch. */
  startTimeMs: number;
  cpu: { usageCoreNanoSeconds: number };
  memory: { workingSetBytes: number; availableBytes?: number; usageBytes?: number; rssBytes?: number };
  fs?: {
    capacityBytes: number;
    availableBytes: number;
    usedBytes: number;
    inodes: number;
    inodesFree: number;
  };
  network?: NetworkInterfaceUsage[];
}

/** Where the node's usage comes from; given the pods' usage, which a hollow node adds up. */
export type NodeStatsSource = (pods: { cpuCoreNanoSeconds: number; workingSetBytes: number }) => NodeUsage;

/**
 * The machine's usage from /proc, as cadvisor's root cgroup gives it to
 * upstream's kubelet: CPU is the non-idle time of /proc/stat, the working
 * set is what MemAvailable leaves, the filesystem is the one holding
 * `fsPath` (the kubelet's data dir), the network every non-loopback device.
 */
export function procNodeStats(fsPath: string, now: () => number = Date.now): NodeStatsSource {
  // USER_HZ is 100 on every Linux architecture Skiff runs on.
  const NS_PER_TICK = 1e7;
  let bootMs: number | undefined;
  return () => {
    const stat = readFileSync('/proc/stat', 'utf8');
    const cpu = (stat.split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal: busy = all but idle and iowait.
    const busyTicks = cpu.slice(0, 8).reduce((n, v, i) => (i === 3 || i === 4 ? n : n + (v || 0)), 0);
    bootMs ??= Number(/^btime (\d+)/m.exec(stat)?.[1] ?? 0) * 1000;
    const mem = Object.fromEntries(
      readFileSync('/proc/meminfo', 'utf8')
        .split('\n')
        .map((l) => /^(\w+):\s+(\d+)/.exec(l))
        .filter((m) => m !== null)
        .map((m) => [m[1], Number(m[2]) * 1024]),
    ) as Record<string, number>;
    const total = mem.MemTotal ?? 0;
    const available = mem.MemAvailable ?? mem.MemFree ?? 0;
    const usage: NodeUsage = {
      timestamp: now() * 1e6,
      startTimeMs: bootMs,
      cpu: { usageCoreNanoSeconds: busyTicks * NS_PER_TICK },
      memory: {
        workingSetBytes: total - available,
        availableBytes: available,
        usageBytes: total - (mem.MemFree ?? 0),
        rssBytes: mem.AnonPages ?? 0,
      },
      network: procNetDev(),
    };
    try {
      const fs = statfsSync(fsPath);
      usage.fs = {
        capacityBytes: fs.blocks * fs.bsize,
        availableBytes: fs.bavail * fs.bsize,
        usedBytes: (fs.blocks - fs.bfree) * fs.bsize,
        inodes: fs.files,
        inodesFree: fs.ffree,
      };
    } catch {
      // The data dir is not there yet: no filesystem stats, as upstream without an imagefs.
    }
    return usage;
  };
}

function procNetDev(): NetworkInterfaceUsage[] {
  const out: NetworkInterfaceUsage[] = [];
  for (const line of readFileSync('/proc/net/dev', 'utf8').split('\n').slice(2)) {
    const m = /^\s*([^:]+):\s*(.*)$/.exec(line);
    if (!m || m[1] === 'lo') continue;
    const f = (m[2] ?? '').trim().split(/\s+/).map(Number);
    out.push({ name: m[1]!, rxBytes: f[0], rxErrors: f[2], txBytes: f[8], txErrors: f[10] });
  }
  return out;
}

/**
 * A hollow node's usage: its pods' plus a steady 100 millicores and 200 MiB
 * for the node's own daemons, on a made-up 4-core, 16 GiB machine.
 */
export function hollowNodeStats(now: () => number = Date.now): NodeStatsSource {
  const startTimeMs = now();
  const MEMORY = 16 * 1024 ** 3;
  return (pods) => {
    const t = now();
    const system = ((t - startTimeMs) * 1e6) / 10; // 100 millicores since start
    const workingSet = pods.workingSetBytes + 200 * 1024 ** 2;
    return {
      timestamp: t * 1e6,
      startTimeMs,
      cpu: { usageCoreNanoSeconds: Math.round(pods.cpuCoreNanoSeconds + system) },
      memory: { workingSetBytes: workingSet, availableBytes: MEMORY - workingSet, usageBytes: workingSet },
    };
  };
}

// ---- the provider

export interface StatsProviderOptions {
  runtime: Pick<Runtime, 'listPodSandbox' | 'listContainers' | 'listContainerStats' | 'listPodSandboxStats'>;
  nodeName: string;
  node: NodeStatsSource;
  /** The stats of a pod's volumes, by the pod's uid. */
  volumeStats?: (uid: string) => Promise<VolumeStats[]>;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

export interface StatsProvider {
  /** GET /stats/summary. */
  summary(): Promise<Summary>;
  /** GET /metrics/resource, in Prometheus' text format. */
  resourceMetrics(): Promise<string>;
}

/**
 * The exact sample time (ms) of each stats object: the Summary's `time` is
 * a metav1.Time (whole seconds), but /metrics/resource stamps samples to
 * the millisecond, and a rate over a few seconds needs that precision.
 */
const sampledAt = new WeakMap<object, number>();
const rfc3339 = (ns: number) => new Date(Math.floor(ns / 1e6)).toISOString().replace(/\.\d{3}Z$/, 'Z');
function stamped<T extends { time: string }>(obj: T, ns: number): T {
  sampledAt.set(obj, Math.floor(ns / 1e6));
  return obj;
}
const nsToRfc3339 = (ns: bigint) => rfc3339(Number(ns));

export function createStatsProvider(opts: StatsProviderOptions): StatsProvider {
  const { runtime } = opts;
  /** Whether the runtime answers ListPodSandboxStats (containerd 1.6 does not). */
  let sandboxStatsSupported = true;
  /** The last cumulative CPU sample of each container, pod and the node, for rates. */
  let previous = new Map<string, { t: number; v: number }>();
  let current = new Map<string, { t: number; v: number }>();

  /** usageNanoCores from the runtime's value, or from the change since our last sample of `key`. */
  function cpuStats(key: string, cpu: CpuUsage | undefined): CPUStats | undefined {
    if (!cpu || cpu.usageCoreNanoSeconds === undefined) return undefined;
    const out: CPUStats = stamped(
      { time: rfc3339(cpu.timestamp), usageCoreNanoSeconds: cpu.usageCoreNanoSeconds },
      cpu.timestamp,
    );
    current.set(key, { t: cpu.timestamp, v: cpu.usageCoreNanoSeconds });
    const last = previous.get(key);
    if (cpu.usageNanoCores !== undefined && cpu.usageNanoCores > 0) out.usageNanoCores = cpu.usageNanoCores;
    else if (last && cpu.timestamp > last.t && cpu.usageCoreNanoSeconds >= last.v)
      out.usageNanoCores = Math.round(((cpu.usageCoreNanoSeconds - last.v) / (cpu.timestamp - last.t)) * 1e9);
    return out;
  }

  const memoryStats = (m: MemoryUsage | undefined): MemoryStats | undefined => {
    if (!m) return undefined;
    const { timestamp, ...values } = m;
    return stamped({ time: rfc3339(timestamp), ...values }, timestamp);
  };

  async function collect(): Promise<Summary> {
    const [sandboxes, containers, containerStats, sandboxStats] = await Promise.all([
      runtime.listPodSandbox({ state: 'SANDBOX_READY' }),
      runtime.listContainers({ state: 'CONTAINER_RUNNING' }),
      runtime.listContainerStats(),
      sandboxStatsSupported
        ? runtime.listPodSandboxStats().catch((err: unknown) => {
            // containerd 1.6 has the call but fails it for every sandbox
            // without a cgroup parent ("cgroupPath is empty"), older ones
            // answer Unimplemented: either way, add up the containers.
            sandboxStatsSupported = false;
            opts.log?.("the runtime gives no pod sandbox stats; pods are their containers' sum", {
              error: String((err as Error)?.message ?? err),
            });
            return [] as PodSandboxStats[];
          })
        : Promise.resolve([] as PodSandboxStats[]),
    ]);
    previous = current;
    current = new Map();

    // A pod's newest ready sandbox, by pod uid.
    const sandboxOf = new Map<string, (typeof sandboxes)[number]>();
    for (const s of sandboxes) {
      const uid = s.labels[KUBERNETES_POD_UID_LABEL] ?? s.metadata.uid;
      const had = sandboxOf.get(uid);
      if (!had || had.createdAt < s.createdAt) sandboxOf.set(uid, s);
    }
    const createdAt = new Map(containers.map((c) => [c.id, c.createdAt]));
    const byPod = new Map<string, CriContainerStats[]>();
    for (const c of containerStats) {
      const uid = c.attributes.labels[KUBERNETES_POD_UID_LABEL];
      if (!uid || !createdAt.has(c.attributes.id)) continue;
      const list = byPod.get(uid) ?? [];
      list.push(c);
      byPod.set(uid, list);
    }
    const statsOfSandbox = new Map(sandboxStats.map((s) => [s.attributes.id, s]));

    const pods: PodSummary[] = [];
    let podCpu = 0;
    let podWorkingSet = 0;
    for (const [uid, sandbox] of sandboxOf) {
      const podContainers = (byPod.get(uid) ?? []).sort((a, b) =>
        a.attributes.metadata.name.localeCompare(b.attributes.metadata.name),
      );
      const summaries: ContainerSummary[] = podContainers.map((c) => {
        const s: ContainerSummary = {
          name: c.attributes.labels[KUBERNETES_CONTAINER_NAME_LABEL] ?? c.attributes.metadata.name,
          startTime: nsToRfc3339(createdAt.get(c.attributes.id) ?? 0n),
        };
        const cpu = cpuStats(`c/${c.attributes.id}`, c.cpu);
        if (cpu) s.cpu = cpu;
        const memory = memoryStats(c.memory);
        if (memory) s.memory = memory;
        if (c.writableLayer) {
          // containerd leaves the writable layer's timestamp at 0 until its snapshotter is asked.
          s.rootfs = { time: rfc3339(c.writableLayer.timestamp || c.cpu?.timestamp || 0) };
          if (c.writableLayer.usedBytes !== undefined) s.rootfs.usedBytes = c.writableLayer.usedBytes;
          if (c.writableLayer.inodesUsed !== undefined) s.rootfs.inodesUsed = c.writableLayer.inodesUsed;
        }
        return s;
      });
      const pod: PodSummary = {
        podRef: {
          name: sandbox.labels[KUBERNETES_POD_NAME_LABEL] ?? sandbox.metadata.name,
          namespace: sandbox.labels[KUBERNETES_POD_NAMESPACE_LABEL] ?? sandbox.metadata.namespace,
          uid,
        },
        startTime: nsToRfc3339(sandbox.createdAt),
        containers: summaries,
      };
      const linux = statsOfSandbox.get(sandbox.id)?.linux;
      // The pod's CPU and memory: the sandbox's when the runtime gives them, else its containers' sum.
      const t = Math.max(0, ...podContainers.map((c) => c.cpu?.timestamp ?? 0));
      const sumOf = (f: (c: CriContainerStats) => number | undefined) =>
        podContainers.reduce((n, c) => n + (f(c) ?? 0), 0);
      const cpu = cpuStats(
        `p/${uid}`,
        linux?.cpu?.usageCoreNanoSeconds !== undefined
          ? linux.cpu
          : podContainers.length > 0
            ? { timestamp: t, usageCoreNanoSeconds: sumOf((c) => c.cpu?.usageCoreNanoSeconds) }
            : undefined,
      );
      if (cpu) pod.cpu = cpu;
      const memory =
        linux?.memory?.workingSetBytes !== undefined
          ? memoryStats(linux.memory)
          : podContainers.length > 0
            ? stamped(
                {
                  time: rfc3339(t),
                  workingSetBytes: sumOf((c) => c.memory?.workingSetBytes),
                  usageBytes: sumOf((c) => c.memory?.usageBytes),
                  rssBytes: sumOf((c) => c.memory?.rssBytes),
                },
                t,
              )
            : undefined;
      if (memory) pod.memory = memory;
      if (linux?.network) {
        const n = linux.network;
        pod.network = {
          time: rfc3339(n.timestamp),
          ...(n.defaultInterface ? n.defaultInterface : {}),
          interfaces: n.interfaces,
        };
      }
      const rootfs = sumOf((c) => c.writableLayer?.usedBytes);
      if (podContainers.length > 0) pod['ephemeral-storage'] = { time: rfc3339(t), usedBytes: rootfs };
      if (linux?.process?.processCount !== undefined)
        pod.process_stats = { process_count: linux.process.processCount };
      const volume = (await opts.volumeStats?.(uid).catch(() => [])) ?? [];
      if (volume.length > 0) pod.volume = volume;
      podCpu += pod.cpu?.usageCoreNanoSeconds ?? 0;
      podWorkingSet += pod.memory?.workingSetBytes ?? 0;
      pods.push(pod);
    }

    const n = opts.node({ cpuCoreNanoSeconds: podCpu, workingSetBytes: podWorkingSet });
    const time = rfc3339(n.timestamp);
    const node: NodeSummary = { nodeName: opts.nodeName, startTime: rfc3339(n.startTimeMs * 1e6) };
    const nodeCpu = cpuStats('node', { timestamp: n.timestamp, ...n.cpu });
    if (nodeCpu) node.cpu = nodeCpu;
    node.memory = stamped({ time, ...n.memory }, n.timestamp);
    if (n.network) {
      const [first] = n.network;
      node.network = { time, ...(first ?? {}), interfaces: n.network };
    }
    if (n.fs) node.fs = { time, ...n.fs, inodesUsed: n.fs.inodes - n.fs.inodesFree };
    return { node, pods };
  }

  return {
    summary: collect,
    async resourceMetrics() {
      return resourceExposition(await collect());
    },
  };
}

// ---- /metrics/resource

/** Label values escaped as the text format wants them. */
const esc = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
const ms = (stats: { time: string }) => sampledAt.get(stats) ?? Date.parse(stats.time);

/**
 * The Summary as upstream's resource metrics collector writes it: the
 * STABLE series metrics-server reads, each sample stamped with the time it
 * was taken (so a scraper computes rates between the runtime's samples, not
 * between its own scrapes).
 */
export function resourceExposition(s: Summary): string {
  const out: string[] = [];
  const family = (name: string, type: string, help: string, lines: string[]) => {
    out.push(`# HELP ${name} [STABLE] ${help}`, `# TYPE ${name} ${type}`, ...lines);
  };
  const cpu: string[] = [];
  const mem: string[] = [];
  const start: string[] = [];
  const podCpu: string[] = [];
  const podMem: string[] = [];
  for (const p of s.pods) {
    const podLabels = `namespace="${esc(p.podRef.namespace)}",pod="${esc(p.podRef.name)}"`;
    for (const c of p.containers) {
      const l = `{container="${esc(c.name)}",${podLabels}}`;
      if (c.cpu?.usageCoreNanoSeconds !== undefined)
        cpu.push(`container_cpu_usage_seconds_total${l} ${c.cpu.usageCoreNanoSeconds / 1e9} ${ms(c.cpu)}`);
      if (c.memory?.workingSetBytes !== undefined)
        mem.push(`container_memory_working_set_bytes${l} ${c.memory.workingSetBytes} ${ms(c.memory)}`);
      start.push(`container_start_time_seconds${l} ${Date.parse(c.startTime) / 1000}`);
    }
    if (p.cpu?.usageCoreNanoSeconds !== undefined)
      podCpu.push(
        `pod_cpu_usage_seconds_total{${podLabels}} ${p.cpu.usageCoreNanoSeconds / 1e9} ${ms(p.cpu)}`,
      );
    if (p.memory?.workingSetBytes !== undefined)
      podMem.push(`pod_memory_working_set_bytes{${podLabels}} ${p.memory.workingSetBytes} ${ms(p.memory)}`);
  }
  family(
    'container_cpu_usage_seconds_total',
    'counter',
    'Cumulative cpu time consumed by the container in core-seconds',
    cpu,
  );
  family('container_memory_working_set_bytes', 'gauge', 'Current working set of the container in bytes', mem);
  family(
    'container_start_time_seconds',
    'gauge',
    'Start time of the container since unix epoch in seconds',
    start,
  );
  const n = s.node;
  family(
    'node_cpu_usage_seconds_total',
    'counter',
    'Cumulative cpu time consumed by the node in core-seconds',
    n.cpu?.usageCoreNanoSeconds !== undefined
      ? [`node_cpu_usage_seconds_total ${n.cpu.usageCoreNanoSeconds / 1e9} ${ms(n.cpu)}`]
      : [],
  );
  family(
    'node_memory_working_set_bytes',
    'gauge',
    'Current working set of the node in bytes',
    n.memory?.workingSetBytes !== undefined
      ? [`node_memory_working_set_bytes ${n.memory.workingSetBytes} ${ms(n.memory)}`]
      : [],
  );
  family(
    'pod_cpu_usage_seconds_total',
    'counter',
    'Cumulative cpu time consumed by the pod in core-seconds',
    podCpu,
  );
  family('pod_memory_working_set_bytes', 'gauge', 'Current working set of the pod in bytes', podMem);
  family(
    'resource_scrape_error',
    'gauge',
    '1 if there was an error while getting container metrics, 0 otherwise',
    ['resource_scrape_error 0'],
  );
  return `${out.join('\n')}\n`;
}
