// The eviction manager, as upstream's pkg/kubelet/eviction/eviction_manager.go.
// Every housekeeping interval it:
//
//   1. reads the signals (signals.ts) and finds the thresholds met: a hard
//      threshold at once, a soft one once it has held for its grace period;
//   2. sets the node conditions: MemoryPressure, DiskPressure, PIDPressure
//      stay True until no threshold of theirs has been met for
//      --eviction-pressure-transition-period (so they do not flap); the node
//      lifecycle controller turns them into the memory-pressure and
//      disk-pressure taints, and the scheduler keeps pods away;
//   3. for disk, first reclaims what the node itself holds (dead containers,
//      unused images) and looks again;
//   4. otherwise evicts one pod: ranked as upstream ranks them, first those
//      using more than they request, then by priority, then by how far over
//      their request they are; killed with a 1 s grace period for a hard
//      threshold (--eviction-max-pod-grace-period for a soft one), its status
//      Failed with the Evicted reason and upstream's message.
//
// Critical pods (priority at least system-cluster-critical's) and static
// pods are never evicted, as upstream.

import { parseQuantity, value as quantityValue } from '../../api/quantity.ts';
import type { Pod } from '../../api/types/core-v1.ts';
import { podQOS, podResource } from '../cm/container-manager.ts';
import { thresholdAmount } from '../cm/node-allocatable.ts';
import type { EvictionThreshold, KubeletConfig } from '../config.ts';
import type { Observations, SignalSources } from './signals.ts';

/** What a signal runs short of, as upstream's signalToResource and signalToNodeCondition. */
const SIGNAL_RESOURCE: Record<
  string,
  { resource: string; condition: 'MemoryPressure' | 'DiskPressure' | 'PIDPressure' }
> = {
  'memory.available': { resource: 'memory', condition: 'MemoryPressure' },
  'allocatableMemory.available': { resource: 'memory', condition: 'MemoryPressure' },
  'nodefs.available': { resource: 'ephemeral-storage', condition: 'DiskPressure' },
  'nodefs.inodesFree': { resource: 'inodes', condition: 'DiskPressure' },
  'imagefs.available': { resource: 'ephemeral-storage', condition: 'DiskPressure' },
  'imagefs.inodesFree': { resource: 'inodes', condition: 'DiskPressure' },
  'pid.available': { resource: 'pids', condition: 'PIDPressure' },
};

/** Upstream's SystemCriticalPriority (system-cluster-critical is this, node-critical above it). */
const SYSTEM_CRITICAL_PRIORITY = 2_000_000_000;

export interface PodUsage {
  /** Working set bytes (memory), bytes on disk (ephemeral-storage), processes (pids). */
  memory?: number;
  disk?: number;
  pids?: number;
}

export interface EvictionManagerOptions {
  config: Pick<
    KubeletConfig,
    | 'evictionHard'
    | 'evictionSoft'
    | 'evictionSoftGracePeriod'
    | 'evictionPressureTransitionPeriodSeconds'
    | 'evictionMaxPodGracePeriodSeconds'
    | 'enforceNodeAllocatable'
  >;
  signals: SignalSources;
  /** The pods running on the node (not terminal). */
  activePods(): Pod[];
  /** What a pod uses now (its cgroup, its volumes and logs). */
  podUsage(pod: Pod, resource: 'memory' | 'ephemeral-storage' | 'pids'): Promise<PodUsage>;
  /** Frees what the node holds for a disk signal (dead containers, unused images); resolves when done. */
  reclaimNodeDisk?(signal: string): Promise<void>;
  /** Kills the pod and marks it Failed with reason Evicted and this message (the kubelet's pod workers). */
  evictPod(
    pod: Pod,
    gracePeriodSeconds: number,
    message: string,
    annotations: Record<string, string>,
  ): Promise<void>;
  /** Milliseconds since the epoch. */
  now(): number;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

export interface EvictionManager {
  /** One round: observe, set conditions, reclaim or evict. Returns the pods evicted. */
  synchronize(): Promise<Pod[]>;
  /** The node conditions the kubelet reports (node-status.ts). */
  pressure(): { memory: boolean; disk: boolean; pid: boolean };
}

interface Threshold extends EvictionThreshold {
  hard: boolean;
  gracePeriodSeconds: number;
}

const fmtBytes = (n: number): string => {
  // Quantities as upstream prints them (resource.Quantity's String of a BinarySI amount).
  const units = ['', 'Ki', 'Mi', 'Gi', 'Ti'];
  let v = n;
  let i = 0;
  while (i < units.length - 1 && v >= 1024 && v % 1024 === 0) {
    v /= 1024;
    i++;
  }
  if (i === 0 && n >= 1024) return `${Math.round(n / 1024)}Ki`;
  return `${v}${units[i]}`;
};

export function createEvictionManager(opts: EvictionManagerOptions): EvictionManager {
  const { config } = opts;
  const log = opts.log ?? (() => {});
  const thresholds: Threshold[] = [
    ...config.evictionHard.map((t) => ({ ...t, hard: true, gracePeriodSeconds: 0 })),
    ...config.evictionSoft.map((t) => ({
      ...t,
      hard: false,
      gracePeriodSeconds: config.evictionSoftGracePeriod[t.signal] ?? 0,
    })),
  ];
  // Upstream: with pods' allocatable enforced, the memory.available hard
  // threshold also applies to allocatableMemory.available (kubepods).
  if (config.enforceNodeAllocatable.includes('pods')) {
    for (const t of [...thresholds]) {
      if (t.signal === 'memory.available' && t.hard)
        thresholds.push({ ...t, signal: 'allocatableMemory.available' });
    }
  }
  const firstObserved = new Map<Threshold, number>();
  /** When each condition last had a threshold met. */
  const lastMet = new Map<string, number>();
  let conditions = new Set<string>();

  function met(obs: Observations): Threshold[] {
    return thresholds.filter((t) => {
      const o = obs.get(t.signal);
      if (!o) return false;
      return o.available < thresholdAmount(t, o.capacity);
    });
  }

  /** Upstream's message: "The node was low on resource: memory. Threshold quantity: 100Mi, available: 88Mi. " */
  function message(t: Threshold, obs: Observations, pod: Pod, usage: PodUsage, resource: string): string {
    const o = obs.get(t.signal);
    const amount = (n: number) =>
      resource === 'memory' || resource === 'ephemeral-storage' ? fmtBytes(n) : String(n);
    let m = `The node was low on resource: ${resource}. `;
    if (o) {
      const q = t.quantity ?? amount(thresholdAmount(t, o.capacity));
      m += `Threshold quantity: ${q}, available: ${amount(o.available)}. `;
    }
    if (resource === 'memory' || resource === 'ephemeral-storage') {
      const used = (resource === 'memory' ? usage.memory : usage.disk) ?? 0;
      const request = resource === 'memory' ? podResource(pod, 'memory', 'requests') : ephemeralRequest(pod);
      // Upstream names each container over its request; a pod's total is what the kubelet has here.
      const names = (pod.spec?.containers ?? []).map((c) => c.name).join(', ');
      m += `Container ${names} was using ${amount(used)}, request is ${amount(request)}, has larger consumption of ${resource}. `;
    }
    return m;
  }

  const ephemeralRequest = (pod: Pod): number => {
    let sum = 0;
    for (const c of pod.spec?.containers ?? []) {
      const q = c.resources?.requests?.['ephemeral-storage'];
      if (q) sum += Number(quantityValue(parseQuantity(q)));
    }
    return sum;
  };

  const isCritical = (pod: Pod) =>
    (pod.spec?.priority ?? 0) >= SYSTEM_CRITICAL_PRIORITY ||
    pod.metadata.annotations?.['kubernetes.io/config.source'] === 'file';

  /** Upstream rankMemoryPressure / rankDiskPressure: over request first, then priority, then usage over request. */
  async function rank(
    pods: Pod[],
    resource: 'memory' | 'ephemeral-storage' | 'pids',
  ): Promise<{ pod: Pod; usage: PodUsage }[]> {
    const withUsage = await Promise.all(
      pods.map(async (pod) => ({ pod, usage: await opts.podUsage(pod, resource) })),
    );
    const request = (p: Pod) =>
      resource === 'memory'
        ? podResource(p, 'memory', 'requests')
        : resource === 'ephemeral-storage'
          ? ephemeralRequest(p)
          : 0;
    const used = (u: PodUsage) =>
      (resource === 'memory' ? u.memory : resource === 'ephemeral-storage' ? u.disk : u.pids) ?? 0;
    return withUsage.sort((a, b) => {
      if (resource !== 'pids') {
        const ea = used(a.usage) > request(a.pod) ? 1 : 0;
        const eb = used(b.usage) > request(b.pod) ? 1 : 0;
        if (ea !== eb) return eb - ea;
      }
      const pa = a.pod.spec?.priority ?? 0;
      const pb = b.pod.spec?.priority ?? 0;
      if (pa !== pb) return pa - pb;
      return used(b.usage) - request(b.pod) - (used(a.usage) - request(a.pod));
    });
  }

  return {
    pressure: () => ({
      memory: conditions.has('MemoryPressure'),
      disk: conditions.has('DiskPressure'),
      pid: conditions.has('PIDPressure'),
    }),
    async synchronize() {
      const now = opts.now();
      const obs = await opts.signals.observe();
      const metNow = met(obs);
      // Grace periods: a soft threshold counts once it has held that long.
      for (const t of [...firstObserved.keys()]) if (!metNow.includes(t)) firstObserved.delete(t);
      for (const t of metNow) if (!firstObserved.has(t)) firstObserved.set(t, now);
      const effective = metNow.filter(
        (t) => now - (firstObserved.get(t) ?? now) >= t.gracePeriodSeconds * 1000,
      );
      for (const t of metNow) {
        const c = SIGNAL_RESOURCE[t.signal]?.condition;
        if (c) lastMet.set(c, now);
      }
      const before = conditions;
      conditions = new Set(
        [...lastMet]
          .filter(([, at]) => now - at <= config.evictionPressureTransitionPeriodSeconds * 1000)
          .map(([c]) => c),
      );
      for (const c of conditions) if (!before.has(c)) log('node condition', { condition: c, status: 'True' });
      for (const c of before)
        if (!conditions.has(c)) log('node condition', { condition: c, status: 'False' });
      if (effective.length === 0) return [];

      // Upstream reclaims against the threshold whose resource is most starved; hard ones first here.
      const t = effective.sort((a, b) => Number(b.hard) - Number(a.hard))[0]!;
      const what = SIGNAL_RESOURCE[t.signal];
      if (!what) return [];
      log('eviction threshold met', {
        signal: t.signal,
        available: obs.get(t.signal)?.available,
        threshold: t.quantity ?? `${(t.percentage ?? 0) * 100}%`,
        hard: t.hard,
      });
      if (what.condition === 'DiskPressure' && opts.reclaimNodeDisk) {
        await opts.reclaimNodeDisk(t.signal);
        const again = (await opts.signals.observe()).get(t.signal);
        if (again && again.available >= thresholdAmount(t, again.capacity)) {
          log('node-level resources reclaimed; no eviction needed', { signal: t.signal });
          return [];
        }
      }
      const resource =
        what.resource === 'memory' ? 'memory' : what.resource === 'pids' ? 'pids' : 'ephemeral-storage';
      const candidates = opts.activePods().filter((p) => !isCritical(p));
      const ranked = await rank(candidates, resource);
      const victim = ranked[0];
      if (!victim) {
        log('eviction threshold met, but no pod to evict', { signal: t.signal });
        return [];
      }
      const grace = t.hard
        ? 1
        : Math.min(
            victim.pod.spec?.terminationGracePeriodSeconds ?? 30,
            config.evictionMaxPodGracePeriodSeconds || Number.POSITIVE_INFINITY,
          );
      const msg = message(t, obs, victim.pod, victim.usage, what.resource);
      log('evicting pod', {
        pod: `${victim.pod.metadata.namespace}/${victim.pod.metadata.name}`,
        signal: t.signal,
        qosClass: podQOS(victim.pod),
        usage: victim.usage,
        gracePeriodSeconds: grace,
      });
      await opts.evictPod(victim.pod, grace, msg, {
        'kubernetes.io/eviction-signal': t.signal,
      });
      return [victim.pod];
    },
  };
}
