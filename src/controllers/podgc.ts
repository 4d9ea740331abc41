// The pod garbage collector (upstream pkg/controller/podgc/gc_controller.go).
// Every gcCheckPeriod it force-deletes (grace period 0) pods nobody else will
// ever clean up:
//
// - terminated pods (Succeeded or Failed) beyond --terminated-pod-gc-threshold,
//   evicted ones first, then the oldest;
// - terminating pods on a node that is not Ready and carries the
//   node.kubernetes.io/out-of-service taint (the node is known to be down);
// - orphaned pods, bound to a node that no longer exists. A node missing from
//   the cache is quarantined first (upstream: 40 s) and then confirmed gone by
//   a live GET, so a node whose watch event is merely late keeps its pods;
// - terminating pods that were never scheduled (no kubelet will finish them).
//
// A pod not yet terminal is first patched to phase Failed (orphans also get a
// DisruptionTarget condition), since without a kubelet it would otherwise stay
// Running forever in the API.

import { isApiError } from '../api/errors.ts';
import { rfc3339 } from '../api/meta.ts';
import type { Node, Pod, PodCondition } from '../api/types/core-v1.ts';
import type { ControllerFactory } from './context.ts';
import { queueController } from './controller.ts';

export interface PodGCOptions {
  /** How often the collector runs (upstream's gcCheckPeriod: 20 s). */
  gcCheckPeriodMs?: number;
  /** How long a missing node is waited for before its pods are deleted (upstream: 40 s). */
  quarantineMs?: number;
}

const TAINT_NODE_OUT_OF_SERVICE = 'node.kubernetes.io/out-of-service';
/** The single work item: a whole collection pass. One key means passes never overlap. */
const GC_PASS = 'gc';

/**
 * `conditions` with `condition` set (upstream's UpdatePodCondition): the
 * transition time moves only when the status changes. A new array; the input
 * is left alone (it may be a cached object's).
 */
export function podConditionsWith(
  conditions: readonly PodCondition[] | undefined,
  condition: PodCondition,
  now: Date,
): PodCondition[] {
  const list = [...(conditions ?? [])];
  const i = list.findIndex((c) => c.type === condition.type);
  const old = i >= 0 ? list[i] : undefined;
  const lastTransitionTime =
    old && old.status === condition.status && old.lastTransitionTime ? old.lastTransitionTime : rfc3339(now);
  const next = { ...condition, lastTransitionTime };
  if (old) list[i] = next;
  else list.push(next);
  return list;
}

const isPodTerminated = (pod: Pod) =>
  pod.status?.phase !== 'Pending' && pod.status?.phase !== 'Running' && pod.status?.phase !== 'Unknown';

// Upstream's eviction.PodIsEvicted: the kubelet's own evictions go first.
const isEvicted = (pod: Pod) => pod.status?.phase === 'Failed' && pod.status?.reason === 'Evicted';

/** Evicted pods first, then oldest first, then by name (upstream's byEvictionAndCreationTimestamp). */
function byEvictionAndCreationTimestamp(a: Pod, b: Pod): number {
  if (isEvicted(a) !== isEvicted(b)) return isEvicted(a) ? -1 : 1;
  const ta = Date.parse(a.metadata.creationTimestamp ?? '') || 0;
  const tb = Date.parse(b.metadata.creationTimestamp ?? '') || 0;
  if (ta !== tb) return ta - tb;
  return (a.metadata.name ?? '') < (b.metadata.name ?? '') ? -1 : 1;
}

const isNodeReady = (node: Node) =>
  node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;

export function newPodGCController(opts: PodGCOptions = {}): ControllerFactory {
  const gcCheckPeriodMs = opts.gcCheckPeriodMs ?? 20_000;
  const quarantineMs = opts.quarantineMs ?? 40_000;

  return (ctx) => {
    const pods = ctx.informers.informer('pods');
    const nodes = ctx.informers.informer('nodes');
    const log = ctx.log.with({ controller: 'podgc' });
    // Missing node name → when (ctx.clock) its quarantine ends. Upstream keeps
    // these in a delaying queue; a map read once per pass does the same.
    const quarantine = new Map<string, number>();
    let timer: unknown;

    const markFailedAndDeletePod = async (pod: Pod, condition?: PodCondition) => {
      const namespace = pod.metadata.namespace;
      const name = pod.metadata.name ?? '';
      try {
        if (pod.status?.phase !== 'Succeeded' && pod.status?.phase !== 'Failed') {
          const conditions = condition
            ? podConditionsWith(pod.status?.conditions, condition, ctx.now())
            : pod.status?.conditions;
          await ctx.clients.pods.patch(
            namespace,
            name,
            'merge',
            { status: { phase: 'Failed', ...(conditions ? { conditions } : {}) } },
            { subresource: 'status' },
          );
        }
        await ctx.clients.pods.delete(namespace, name, { gracePeriodSeconds: 0 });
        log('force deleted pod', { pod: `${namespace}/${name}`, node: pod.spec?.nodeName });
      } catch (err) {
        // Gone already: what we wanted.
        if (!isApiError(err, 'NotFound')) throw err;
      }
    };

    const gcTerminated = async (all: Pod[]) => {
      const threshold = ctx.options.terminatedPodGCThreshold;
      if (threshold <= 0) return;
      const terminated = all.filter(isPodTerminated);
      const deleteCount = terminated.length - threshold;
      if (deleteCount <= 0) return;
      log('garbage collecting terminated pods', { count: deleteCount, threshold });
      terminated.sort(byEvictionAndCreationTimestamp);
      await Promise.all(terminated.slice(0, deleteCount).map((p) => markFailedAndDeletePod(p)));
    };

    const gcTerminating = async (all: Pod[]) => {
      const doomed = all.filter((pod) => {
        if (!pod.metadata.deletionTimestamp || !pod.spec?.nodeName) return false;
        const node = nodes.indexer.get(pod.spec.nodeName);
        return (
          !!node &&
          !isNodeReady(node) &&
          !!node.spec?.taints?.some((t) => t.key === TAINT_NODE_OUT_OF_SERVICE)
        );
      });
      doomed.sort(byEvictionAndCreationTimestamp);
      await Promise.all(doomed.map((p) => markFailedAndDeletePod(p)));
    };

    const gcOrphaned = async (all: Pod[]) => {
      const now = ctx.clock.now();
      const missing = new Set<string>();
      for (const pod of all) {
        const nodeName = pod.spec?.nodeName;
        if (!nodeName || nodes.indexer.get(nodeName)) continue;
        missing.add(nodeName);
        if (!quarantine.has(nodeName)) quarantine.set(nodeName, now + quarantineMs);
      }
      const deleted = new Set<string>();
      for (const [nodeName, until] of quarantine) {
        if (!missing.has(nodeName)) {
          quarantine.delete(nodeName);
          continue;
        }
        if (until > now) continue;
        quarantine.delete(nodeName);
        // The cache could be behind: only the API server's NotFound counts.
        try {
          await ctx.clients.nodes.get(undefined, nodeName);
        } catch (err) {
          if (isApiError(err, 'NotFound')) deleted.add(nodeName);
          else log.warn('cannot check node, will look again', { node: nodeName, error: String(err) });
        }
      }
      const orphans = all.filter((p) => deleted.has(p.spec?.nodeName ?? ''));
      await Promise.all(
        orphans.map((p) =>
          markFailedAndDeletePod(p, {
            type: 'DisruptionTarget',
            status: 'True',
            reason: 'DeletionByPodGC',
            message: 'PodGC: node no longer exists',
          }),
        ),
      );
    };

    const gcUnscheduledTerminating = async (all: Pod[]) => {
      const doomed = all.filter((p) => p.metadata.deletionTimestamp && !p.spec?.nodeName);
      await Promise.all(doomed.map((p) => markFailedAndDeletePod(p)));
    };

    const c = queueController(ctx, {
      name: 'podgc',
      workers: 1,
      async sync() {
        await gcTerminated(pods.indexer.list());
        await gcTerminating(pods.indexer.list());
        await gcOrphaned(pods.indexer.list());
        await gcUnscheduledTerminating(pods.indexer.list());
      },
      onRun() {
        const tick = () => {
          c.queue.add(GC_PASS);
          timer = ctx.clock.setTimeout(tick, gcCheckPeriodMs);
        };
        tick();
      },
      onStop() {
        if (timer !== undefined) ctx.clock.clearTimeout(timer);
      },
    });
    return c;
  };
}

export const podGCController: ControllerFactory = newPodGCController();
