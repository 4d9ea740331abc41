// One worker per pod, as upstream's podWorkers (pkg/kubelet/pod_workers.go):
// every change to a pod (an API update, a container event from the PLEG, a
// backoff expiring) asks its worker to sync, and a worker never runs two
// syncs of its pod at once; a request that comes in meanwhile is folded into
// one more sync afterwards. Pods move one way through three states:
//
//   syncing      SyncPod: make the containers match the spec;
//   terminating  SyncTerminatingPod: stop every container within the grace
//                period (the pod was deleted, or it finished for good);
//   terminated   SyncTerminatedPod: report the final status, finish the
//                deletion, and once the pod is gone from the API remove its
//                containers; then the worker goes.
//
// A pod the kubelet first sees already Succeeded or Failed starts as
// terminated, so a restarted kubelet never runs a finished pod again.

import type { Pod } from '../api/types/core-v1.ts';
import type { Clock } from '../client/workqueue.ts';

export type PodWorkState = 'syncing' | 'terminating' | 'terminated';

export interface PodSyncer {
  /** Returns whether the pod has finished for good, and when to sync again if something waits. */
  syncPod(pod: Pod): Promise<{ terminal: boolean; requeueAfterMs?: number }>;
  syncTerminatingPod(pod: Pod, gracePeriodSeconds: number): Promise<void>;
  /** Returns true when nothing is left to do for the pod. */
  syncTerminatedPod(pod: Pod, removedFromAPI: boolean): Promise<boolean>;
}

export interface PodWorkersOptions {
  syncer: PodSyncer;
  clock: Clock;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

interface Worker {
  pod: Pod;
  state: PodWorkState;
  removed: boolean;
  working: boolean;
  pending: boolean;
  /** Sync requests made during a sync that may turn out to have nothing new (see `sync`). */
  maybeStale?: (() => boolean)[];
  failures: number;
  timer?: unknown;
  timerAt?: number;
}

export interface PodWorkers {
  /** A pod was added or changed in the API. */
  updatePod(pod: Pod): void;
  /** A pod was removed from the API (its last known state). */
  removePod(pod: Pod): void;
  /**
   * Something about the pod's containers changed: sync it. With `stale`, the
   * request is dropped if stale() says so when the sync would start (for a
   * request made during a sync, once that sync is done): the PLEG's news may
   * be what the sync in progress saw and reported already.
   */
  sync(uid: string, stale?: () => boolean): void;
  state(uid: string): PodWorkState | undefined;
  uids(): string[];
  stop(): void;
}

export function createPodWorkers(opts: PodWorkersOptions): PodWorkers {
  const { syncer, clock } = opts;
  const log = opts.log ?? (() => {});
  const workers = new Map<string, Worker>();
  let stopped = false;

  const uidOf = (pod: Pod) => pod.metadata.uid ?? '';

  // Upstream calculateEffectiveGracePeriod: the deletion's grace period if
  // there is one, else the pod's; a pod removed from the API without one
  // (force deleted) gets a second.
  const gracePeriod = (w: Worker): number => {
    const meta = w.pod.metadata;
    if (meta.deletionGracePeriodSeconds !== undefined) return meta.deletionGracePeriodSeconds;
    if (w.removed) return 1;
    return w.pod.spec?.terminationGracePeriodSeconds ?? 30;
  };

  function schedule(uid: string, w: Worker, ms: number): void {
    if (stopped) return;
    const at = clock.now() + ms;
    if (w.timer !== undefined && w.timerAt !== undefined && w.timerAt <= at) return;
    if (w.timer !== undefined) clock.clearTimeout(w.timer);
    w.timerAt = at;
    w.timer = clock.setTimeout(() => {
      w.timer = undefined;
      w.timerAt = undefined;
      kick(uid);
    }, ms);
  }

  async function step(uid: string, w: Worker): Promise<void> {
    if (w.state === 'syncing') {
      if (w.removed || w.pod.metadata.deletionTimestamp) {
        w.state = 'terminating';
      } else {
        const r = await syncer.syncPod(w.pod);
        if (r.terminal) w.state = 'terminating';
        else {
          if (r.requeueAfterMs !== undefined && Number.isFinite(r.requeueAfterMs)) {
            schedule(uid, w, Math.max(0, r.requeueAfterMs));
          }
          return;
        }
      }
    }
    if (w.state === 'terminating') {
      await syncer.syncTerminatingPod(w.pod, gracePeriod(w));
      w.state = 'terminated';
    }
    if (await syncer.syncTerminatedPod(w.pod, w.removed)) {
      if (w.timer !== undefined) clock.clearTimeout(w.timer);
      workers.delete(uid);
    }
  }

  async function run(uid: string, w: Worker): Promise<void> {
    w.working = true;
    try {
      do {
        w.pending = false;
        w.maybeStale = undefined;
        try {
          await step(uid, w);
          w.failures = 0;
        } catch (err) {
          w.failures++;
          const delay = Math.min(1000 * 2 ** (w.failures - 1), 30_000);
          log('pod sync failed', {
            pod: `${w.pod.metadata.namespace}/${w.pod.metadata.name}`,
            state: w.state,
            error: String((err as Error)?.message ?? err),
            retryInMs: delay,
          });
          schedule(uid, w, delay);
        }
      } while (syncAgain(w) && !stopped && workers.get(uid) === w);
    } finally {
      w.working = false;
    }
  }

  /** Whether a request came in during the sync just done that still needs one. */
  function syncAgain(w: Worker): boolean {
    if (w.pending) return true;
    const checks = w.maybeStale;
    w.maybeStale = undefined;
    return !!checks?.some((stale) => !stale());
  }

  function kick(uid: string, stale?: () => boolean): void {
    const w = workers.get(uid);
    if (!w || stopped) return;
    if (w.working) {
      if (stale) w.maybeStale = [...(w.maybeStale ?? []), stale];
      else w.pending = true;
      return;
    }
    if (stale?.()) return;
    void run(uid, w);
  }

  return {
    updatePod(pod) {
      const uid = uidOf(pod);
      let w = workers.get(uid);
      if (!w) {
        const phase = pod.status?.phase;
        w = {
          pod,
          state: phase === 'Succeeded' || phase === 'Failed' ? 'terminated' : 'syncing',
          removed: false,
          working: false,
          pending: false,
          failures: 0,
        };
        workers.set(uid, w);
      }
      w.pod = pod;
      kick(uid);
    },
    removePod(pod) {
      const w = workers.get(uidOf(pod));
      if (!w) return;
      w.removed = true;
      kick(uidOf(pod));
    },
    sync: (uid, stale) => kick(uid, stale),
    state: (uid) => workers.get(uid)?.state,
    uids: () => [...workers.keys()],
    stop() {
      stopped = true;
      for (const w of workers.values()) if (w.timer !== undefined) clock.clearTimeout(w.timer);
    },
  };
}
