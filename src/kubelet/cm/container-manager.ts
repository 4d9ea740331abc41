// Pod cgroups by QoS class, as upstream's container manager
// (pkg/kubelet/cm: node_container_manager_linux.go, qos_container_manager_linux.go,
// pod_container_manager_linux.go, helpers_linux.go):
//
//   <cgroup-root>/kubepods                 node allocatable: capped at capacity
//                                          less kube- and system-reserved when
//                                          --enforce-node-allocatable=pods
//   <cgroup-root>/kubepods/pod<uid>        Guaranteed pods
//   <cgroup-root>/kubepods/burstable       cpu shares: the sum of its pods' requests
//   <cgroup-root>/kubepods/burstable/pod<uid>
//   <cgroup-root>/kubepods/besteffort      cpu shares: 2, the least there is
//   <cgroup-root>/kubepods/besteffort/pod<uid>
//
// Each pod cgroup gets the pod's sum of requests (cpu shares) and limits (CFS
// quota, memory) plus its overhead, so a pod cannot exceed its limits by
// running many containers, and under contention CPU is shared by request.
// The pod cgroup is the cgroupParent of its sandbox, and so of every
// container in it (containerd's cgroupfs layout).

import { milliValue, parseQuantity, value as quantityValue } from '../../api/quantity.ts';
import { qosClass } from '../../api/resources/core.ts';
import type { Container, Pod } from '../../api/types/core-v1.ts';
import type { CgroupManager, ResourceConfig } from './cgroup-manager.ts';

/** Upstream MinShares, MaxShares, SharesPerCPU, MinQuotaPeriod. */
const MIN_SHARES = 2;
const MAX_SHARES = 262_144;
const SHARES_PER_CPU = 1024;
const MIN_QUOTA = 1000;
const CPU_PERIOD = 100_000;

export function milliCPUToShares(milliCPU: number): number {
  if (milliCPU === 0) return MIN_SHARES;
  return Math.min(MAX_SHARES, Math.max(MIN_SHARES, Math.floor((milliCPU * SHARES_PER_CPU) / 1000)));
}

export function milliCPUToQuota(milliCPU: number, period = CPU_PERIOD): number {
  if (milliCPU === 0) return 0;
  return Math.max(MIN_QUOTA, Math.floor((milliCPU * period) / 1000));
}

const milli = (q: string | undefined) => (q ? Number(milliValue(parseQuantity(q))) : 0);
const bytes = (q: string | undefined) => (q ? Number(quantityValue(parseQuantity(q))) : 0);

type Resource = 'cpu' | 'memory';
const amount = (r: Resource, q: string | undefined) => (r === 'cpu' ? milli(q) : bytes(q));

/**
 * The pod's effective request or limit of one resource, as upstream's
 * resource.PodRequests/PodLimits: the sum over its containers, at least the
 * largest init container's (they run one at a time), plus the overhead.
 * Restartable init containers (sidecars) run alongside and count in the sum.
 */
export function podResource(pod: Pod, r: Resource, kind: 'requests' | 'limits'): number {
  const of = (c: Container) =>
    amount(
      r,
      kind === 'requests'
        ? (c.resources?.requests?.[r] ?? c.resources?.limits?.[r])
        : c.resources?.limits?.[r],
    );
  const spec = pod.spec ?? {};
  let sum = 0;
  for (const c of spec.containers ?? []) sum += of(c);
  let sidecars = 0;
  let initMax = 0;
  for (const c of spec.initContainers ?? []) {
    if (c.restartPolicy === 'Always') {
      sidecars += of(c);
      initMax = Math.max(initMax, sidecars);
    } else initMax = Math.max(initMax, sidecars + of(c));
  }
  return Math.max(sum + sidecars, initMax) + amount(r, spec.overhead?.[r]);
}

export type QOSClass = 'Guaranteed' | 'Burstable' | 'BestEffort';

export const podQOS = (pod: Pod): QOSClass =>
  (pod.status?.qosClass as QOSClass | undefined) ??
  (qosClass((pod.spec ?? {}) as Record<string, unknown>) as QOSClass);

/** Upstream ResourceConfigForPod: the pod cgroup's limits by QoS class. */
export function resourceConfigForPod(pod: Pod): ResourceConfig {
  const qos = podQOS(pod);
  if (qos === 'BestEffort') return { cpuShares: MIN_SHARES };
  const cpuShares = milliCPUToShares(podResource(pod, 'cpu', 'requests'));
  const cpuQuota = milliCPUToQuota(podResource(pod, 'cpu', 'limits'));
  const memoryLimit = podResource(pod, 'memory', 'limits');
  if (qos === 'Guaranteed') return { cpuShares, cpuQuota, cpuPeriod: CPU_PERIOD, memoryLimit };
  // Burstable: a limit on the pod only when every container declares one.
  const all = [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])];
  const declared = (r: Resource) => all.every((c) => amount(r, c.resources?.limits?.[r]) > 0);
  return {
    cpuShares,
    ...(declared('cpu') ? { cpuQuota, cpuPeriod: CPU_PERIOD } : {}),
    ...(declared('memory') ? { memoryLimit } : {}),
  };
}

export interface NodeResources {
  /** Millicores and bytes. */
  cpuMilli: number;
  memoryBytes: number;
}

export interface ContainerManagerOptions {
  cgroups: CgroupManager;
  /** --cgroup-root (default /). */
  cgroupRoot?: string;
  /** The machine's capacity. */
  capacity: NodeResources;
  /** Capacity less kube- and system-reserved: what kubepods is capped at when enforced. */
  allocatable: NodeResources;
  /** --enforce-node-allocatable includes pods. */
  enforcePods: boolean;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

export interface ContainerManager {
  /** The kubepods cgroup's name. */
  readonly kubepods: string;
  /** Makes kubepods and the QoS cgroups, with node allocatable enforced. */
  start(): Promise<void>;
  /** The pod's cgroup name, which is its sandbox's cgroupParent. */
  podCgroupName(pod: Pod): string;
  /** Makes (or updates) the pod's cgroup, and the QoS cgroups' shares with the pods there are. */
  ensurePod(pod: Pod, activePods: readonly Pod[]): Promise<string>;
  /** Removes a pod's cgroup (its containers gone); false when a process is still in it. */
  destroyPod(uid: string): Promise<boolean>;
  /** The uids of the pods that have a cgroup. */
  podCgroups(): Promise<Map<string, string>>;
  /** Sets the burstable QoS cgroup's shares from the active pods (upstream qosContainerManager.UpdateCgroups). */
  updateQOS(activePods: readonly Pod[]): Promise<void>;
}

export function createContainerManager(opts: ContainerManagerOptions): ContainerManager {
  const { cgroups } = opts;
  const root = (opts.cgroupRoot ?? '/').replace(/\/+$/, '');
  const kubepods = `${root}/kubepods`;
  const qosCgroup = {
    Guaranteed: kubepods,
    Burstable: `${kubepods}/burstable`,
    BestEffort: `${kubepods}/besteffort`,
  };
  const log = opts.log ?? (() => {});
  let lastBurstableShares: number | undefined;

  const podCgroupName = (pod: Pod) => `${qosCgroup[podQOS(pod)]}/pod${pod.metadata.uid ?? ''}`;

  async function updateQOS(active: readonly Pod[]): Promise<void> {
    let milliCPU = 0;
    for (const p of active) if (podQOS(p) === 'Burstable') milliCPU += podResource(p, 'cpu', 'requests');
    const shares = milliCPUToShares(milliCPU);
    if (shares === lastBurstableShares) return;
    await cgroups.update(qosCgroup.Burstable, { cpuShares: shares });
    lastBurstableShares = shares;
  }

  async function podCgroups(): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    for (const parent of Object.values(qosCgroup)) {
      for (const child of await cgroups.children(parent)) {
        const m = /\/pod([0-9a-f-]+)$/.exec(child);
        if (m?.[1]) out.set(m[1], child);
      }
    }
    return out;
  }

  return {
    kubepods,
    async start() {
      // Upstream createNodeAllocatableCgroups then enforceNodeAllocatableCgroups:
      // kubepods is made for the capacity, then capped at allocatable.
      const node = opts.enforcePods ? opts.allocatable : opts.capacity;
      const config: ResourceConfig = { cpuShares: milliCPUToShares(node.cpuMilli) };
      if (opts.enforcePods) config.memoryLimit = node.memoryBytes;
      await cgroups.create(kubepods, config);
      await cgroups.create(qosCgroup.Burstable, { cpuShares: MIN_SHARES });
      await cgroups.create(qosCgroup.BestEffort, { cpuShares: MIN_SHARES });
      lastBurstableShares = MIN_SHARES;
      log('pod cgroups ready', {
        cgroupVersion: cgroups.mode,
        kubepods,
        ...(opts.enforcePods ? { memoryLimitBytes: node.memoryBytes } : {}),
        cpuShares: config.cpuShares,
      });
    },
    podCgroupName,
    async ensurePod(pod, active) {
      const name = podCgroupName(pod);
      // Burstable shares first: a pod that just arrived counts before its containers run.
      await updateQOS(active.some((p) => p.metadata.uid === pod.metadata.uid) ? active : [...active, pod]);
      await cgroups.create(name, resourceConfigForPod(pod));
      return name;
    },
    async destroyPod(uid) {
      const name = (await podCgroups()).get(uid);
      if (!name) return true;
      try {
        await cgroups.destroy(name);
        return true;
      } catch (err) {
        log('pod cgroup not removed yet', { uid, cgroup: name, error: String(err) });
        return false;
      }
    },
    podCgroups,
    updateQOS,
  };
}
