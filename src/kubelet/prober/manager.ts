// The probe manager, as upstream's prober.Manager
// (pkg/kubelet/prober/prober_manager.go): one worker (worker.ts) per probe
// of each container of the pods the kubelet runs, and the answers the rest
// of the kubelet asks of their results:
//
//   ready / started   for the container statuses, and so the ContainersReady
//                     and Ready conditions (pod-status.ts). A container without
//                     a readiness probe is ready once running and started; one
//                     without a startup probe is started once running;
//   unhealthy         for the runtime manager: a running container whose
//                     liveness (or startup) probe failed is killed, with
//                     "Container x failed liveness probe, will be restarted",
//                     and started again unless restartPolicy is Never.
//
// A result that changes asks the pod's worker to sync, which writes the new
// readiness into the pod's status or restarts the container.
// https://github.com/kubernetes/kubernetes/blob/master/pkg/kubelet/prober/prober_manager.go

import type { Container as ContainerSpec, Pod } from '../../api/types/core-v1.ts';
import type { EventRecorder } from '../../client/events.ts';
import type { Clock } from '../../client/workqueue.ts';
import { containerHistory, type PodRuntimeStatus, shouldRestart } from '../kuberuntime-manager.ts';
import type { ContainerReadiness } from '../pod-status.ts';
import type { Runtime } from '../runtime/runtime.ts';
import { type ObservedContainer, type ProbeResult, type ProbeType, ProbeWorker } from './worker.ts';

export interface ProbeManagerOptions {
  runtime: Runtime;
  recorder: EventRecorder;
  /** Timers for the probe periods. */
  clock: Clock;
  /** Wall-clock ms (initialDelaySeconds counts from the container's start). */
  now(): number;
  /** What the runtime has for a pod (the kubelet's runtime manager). */
  getPodStatus(uid: string): Promise<PodRuntimeStatus>;
  /** The node's IP: the address of hostNetwork pods. */
  hostIP: string;
  /** A probe result the kubelet acts on changed: sync the pod. */
  onChange(uid: string): void;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

export interface ProbeManager extends ContainerReadiness {
  /** Starts the workers of the pod's probes that are not running yet (upstream AddPod). */
  addPod(pod: Pod): void;
  /** The pod is being stopped: liveness and startup probes end (upstream StopLivenessAndStartup). */
  stopLivenessAndStartup(uid: string): void;
  /** Ends every probe of the pod (upstream RemovePod). */
  removePod(uid: string): void;
  /** Why a running container must be restarted: its liveness or startup probe failed. */
  unhealthy(pod: Pod, container: ContainerSpec, containerId: string): 'liveness' | 'startup' | undefined;
  stop(): void;
}

const PROBES: Array<[ProbeType, 'livenessProbe' | 'readinessProbe' | 'startupProbe']> = [
  ['startup', 'startupProbe'],
  ['readiness', 'readinessProbe'],
  ['liveness', 'livenessProbe'],
];

export function createProbeManager(opts: ProbeManagerOptions): ProbeManager {
  const log = opts.log ?? (() => {});
  const workers = new Map<string, ProbeWorker>();
  const keyOf = (uid: string, container: string, type: ProbeType) => `${uid}/${container}/${type}`;
  const uidOf = (pod: Pod) => pod.metadata.uid ?? '';

  /** The worker's result, if it is about this container instance. */
  const resultFor = (pod: Pod, name: string, type: ProbeType, containerId?: string) => {
    const w = workers.get(keyOf(uidOf(pod), name, type));
    if (!w || (containerId !== undefined && w.containerId !== containerId)) return undefined;
    return w.result;
  };

  async function observe(pod: Pod, name: string): Promise<ObservedContainer | undefined> {
    const status = await opts.getPodStatus(uidOf(pod));
    const last = containerHistory(status, name)[0];
    if (!last) return undefined;
    const spec = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])].find(
      (c) => c.name === name,
    );
    const exited = last.state === 'CONTAINER_EXITED';
    return {
      id: last.id,
      running: last.state === 'CONTAINER_RUNNING',
      finished: exited && (!spec || !shouldRestart(pod, spec, last.exitCode)),
      startedAt: Number(last.startedAt / 1_000_000n),
      podIP: pod.spec?.hostNetwork ? opts.hostIP : (status.sandboxes[0]?.network?.ip ?? ''),
    };
  }

  const deps = {
    runtime: opts.runtime,
    recorder: opts.recorder,
    clock: opts.clock,
    now: opts.now,
    observe,
    startupResult(pod: Pod, name: string, containerId: string): ProbeResult | undefined {
      const spec =
        [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])].find((c) => c.name === name) ??
        {};
      if (!spec.startupProbe) return undefined;
      return resultFor(pod, name, 'startup', containerId) ?? 'Unknown';
    },
    onChange: (pod: Pod) => opts.onChange(uidOf(pod)),
    log,
  };

  function stopWhere(uid: string, which: (w: ProbeWorker) => boolean): void {
    for (const [key, w] of workers) {
      if (!key.startsWith(`${uid}/`) || !which(w)) continue;
      w.stop();
      workers.delete(key);
    }
  }

  return {
    addPod(pod) {
      const uid = uidOf(pod);
      // Probes are for app containers and sidecars (restartable init containers).
      const containers = [
        ...(pod.spec?.initContainers ?? []).filter((c) => c.restartPolicy === 'Always'),
        ...(pod.spec?.containers ?? []),
      ];
      for (const c of containers) {
        for (const [type, field] of PROBES) {
          const spec = c[field];
          if (!spec) continue;
          const key = keyOf(uid, c.name ?? '', type);
          const existing = workers.get(key);
          if (existing) {
            existing.pod = pod;
            continue;
          }
          // A pod being deleted starts no liveness or startup probes.
          if (pod.metadata.deletionTimestamp && type !== 'readiness') continue;
          const w = new ProbeWorker(deps, pod, c, type, spec);
          // A worker that ended stays (with its last result) until the pod goes, so
          // the next sync does not start it again.
          workers.set(key, w);
          w.start();
        }
      }
    },
    stopLivenessAndStartup(uid) {
      stopWhere(uid, (w) => w.type !== 'readiness');
    },
    removePod(uid) {
      stopWhere(uid, () => true);
    },
    ready(pod, container, containerId) {
      if (!container.readinessProbe) return true;
      return resultFor(pod, container.name ?? '', 'readiness', containerId) === 'Success';
    },
    started(pod, container, containerId) {
      if (!container.startupProbe) return true;
      return resultFor(pod, container.name ?? '', 'startup', containerId) === 'Success';
    },
    unhealthy(pod, container, containerId) {
      if (resultFor(pod, container.name ?? '', 'liveness', containerId) === 'Failure') return 'liveness';
      if (resultFor(pod, container.name ?? '', 'startup', containerId) === 'Failure') return 'startup';
      return undefined;
    },
    stop() {
      for (const w of workers.values()) w.stop();
      workers.clear();
    },
  };
}
