// The kubelet's metrics, with upstream's names (pkg/kubelet/metrics):
// kubelet_running_pods and kubelet_running_containers, counted in the
// runtime at each scrape (as upstream's collectors ask the pod cache), and
// kubelet_pod_start_duration_seconds, from the kubelet first seeing a pod
// to its first status write after its containers started (upstream: to the
// pod worker seeing it running). Served on the kubelet's HTTPS port
// (kubelet/server/server.ts), which the API server reaches as
// nodes/<name>/proxy/metrics.

import { Gauge, Histogram } from 'prom-client';
import type { Runtime } from '../kubelet/runtime/runtime.ts';
import type { StartupPhase, TracePhase } from '../kubelet/startup-trace.ts';
import type { VolumeStats } from '../kubelet/volumes/volume-stats.ts';
import type { Registry } from './prometheus.ts';

/** Upstream's buckets for kubelet_pod_start_duration_seconds: 0.5 s to an hour. */
const POD_START_BUCKETS = [
  0.5, 1, 2, 3, 4, 5, 6, 8, 10, 20, 30, 45, 60, 120, 180, 240, 300, 360, 480, 600, 900, 1200, 1800, 2700,
  3600,
];

/** Pods waiting to start that are remembered at most (far more than a node runs). */
const MAX_STARTING = 5000;

/**
 * Registers the kubelet's series on registry; returns what the kubelet
 * calls at each phase of a pod's startup (KubeletOptions.onStartupPhase).
 */
export function kubeletMetrics(
  registry: Registry,
  runtime: Pick<Runtime, 'listPodSandbox' | 'listContainers'>,
  now: () => number = () => performance.now(),
): TracePhase {
  const registers = [registry];
  new Gauge({
    name: 'kubelet_running_pods',
    help: 'Number of pods that have a running pod sandbox',
    registers,
    async collect() {
      this.set((await runtime.listPodSandbox({ state: 'SANDBOX_READY' })).length);
    },
  });
  new Gauge({
    name: 'kubelet_running_containers',
    help: 'Number of containers currently running',
    labelNames: ['container_state'],
    registers,
    async collect() {
      const counts = new Map<string, number>();
      for (const c of await runtime.listContainers()) {
        const state = containerState(c.state);
        counts.set(state, (counts.get(state) ?? 0) + 1);
      }
      this.reset();
      for (const [container_state, n] of counts) this.set({ container_state }, n);
    },
  });
  const podStart = new Histogram({
    name: 'kubelet_pod_start_duration_seconds',
    help: 'Duration in seconds from kubelet seeing a pod for the first time to the pod starting to run',
    buckets: POD_START_BUCKETS,
    registers,
  });
  // Pod uid → when the kubelet first saw it, and whether a container has started since.
  const starting = new Map<string, { seenAt: number; started: boolean }>();
  return (uid: string, phase: StartupPhase) => {
    if (phase === 'seen') {
      if (!starting.has(uid)) starting.set(uid, { seenAt: now(), started: false });
      // A pod deleted before it started is never seen starting: forget the oldest.
      if (starting.size > MAX_STARTING) starting.delete(starting.keys().next().value!);
      return;
    }
    const s = starting.get(uid);
    if (!s) return;
    if (phase === 'containerStarted') s.started = true;
    else if (phase === 'statusWritten' && s.started) {
      podStart.observe((now() - s.seenAt) / 1000);
      starting.delete(uid);
    }
  };
}

/** CRI's state, as upstream's label values: created, running, exited, unknown. */
const containerState = (state: string): string => state.replace(/^CONTAINER_/, '').toLowerCase() || 'unknown';

/** A pod's volumes as the kubelet measured them (kubelet/volumes/volume-stats.ts). */
export interface PodVolumeStats {
  namespace: string;
  stats: VolumeStats[];
}

/**
 * Upstream's kubelet_volume_stats_* (pkg/kubelet/metrics/collectors
 * volume_stats.go): one series per claim a pod on the node mounts, labelled
 * namespace and persistentvolumeclaim, from the volume manager's figures
 * (measured at most once a minute). Volumes that are not claims have none.
 */
export function volumeStatsMetrics(registry: Registry, list: () => Promise<PodVolumeStats[]>): void {
  const fields = [
    ['kubelet_volume_stats_capacity_bytes', 'Capacity in bytes of the volume', 'capacityBytes'],
    ['kubelet_volume_stats_available_bytes', 'Number of available bytes in the volume', 'availableBytes'],
    ['kubelet_volume_stats_used_bytes', 'Number of used bytes in the volume', 'usedBytes'],
    ['kubelet_volume_stats_inodes', 'Maximum number of inodes in the volume', 'inodes'],
    ['kubelet_volume_stats_inodes_free', 'Number of free inodes in the volume', 'inodesFree'],
    ['kubelet_volume_stats_inodes_used', 'Number of used inodes in the volume', 'inodesUsed'],
  ] as const;
  // One listing per scrape, shared by the six gauges (each collect() runs in the same scrape).
  let pending: Promise<PodVolumeStats[]> | undefined;
  const once = () => {
    pending ??= list().finally(() => setTimeout(() => (pending = undefined), 0));
    return pending;
  };
  for (const [name, help, field] of fields)
    new Gauge({
      name,
      help,
      labelNames: ['namespace', 'persistentvolumeclaim'],
      registers: [registry],
      async collect() {
        this.reset();
        const seen = new Set<string>();
        for (const pod of await once())
          for (const v of pod.stats) {
            const value = v[field];
            if (!v.pvcRef || value === undefined) continue;
            // A claim two pods of the node mount is one series, as upstream.
            const key = `${v.pvcRef.namespace}/${v.pvcRef.name}`;
            if (seen.has(key)) continue;
            seen.add(key);
            this.set({ namespace: v.pvcRef.namespace, persistentvolumeclaim: v.pvcRef.name }, value);
          }
      },
    });
}
