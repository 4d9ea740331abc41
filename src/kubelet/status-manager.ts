// Writes the pods' statuses to the API server, as upstream's status manager
// (pkg/kubelet/status/status_manager.go):
//   - only the kubelet's part of the status changes: conditions others own
//     (DisruptionTarget, readiness gates) are kept, and a condition keeps its
//     lastTransitionTime while its status stays the same;
//   - startTime is set once, and a terminal phase (Succeeded, Failed) is
//     never replaced by another;
//   - once a pod marked for deletion has stopped, the kubelet finishes the
//     deletion with gracePeriodSeconds=0 and a UID precondition.

import { isApiError } from '../api/errors.ts';
import { jsonEqual, rfc3339 } from '../api/meta.ts';
import { qosClass } from '../api/resources/core.ts';
import type { Pod, PodCondition, PodStatus } from '../api/types/core-v1.ts';
import type { Clientset } from '../client/clientset.ts';
import { KUBELET_CONDITIONS } from './pod-status.ts';

export interface StatusManagerOptions {
  clients: Clientset;
  now(): Date;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

export interface StatusManager {
  /** Merges the kubelet's status into the pod's and writes it when it changed. Returns the pod's status. */
  setPodStatus(pod: Pod, status: PodStatus): Promise<PodStatus>;
  /** Deletes a stopped pod marked for deletion (grace period 0, UID precondition). */
  finishDeletion(pod: Pod): Promise<void>;
}

const terminal = (phase: string | undefined) => phase === 'Succeeded' || phase === 'Failed';

/** The pod's status with the kubelet's status merged in (upstream mergePodStatus). */
export function mergePodStatus(pod: Pod, generated: PodStatus, now: Date): PodStatus {
  const old = pod.status ?? {};
  const owned = new Set<string>(KUBELET_CONDITIONS);
  const conditions: PodCondition[] = [];
  const fresh = new Map((generated.conditions ?? []).map((c) => [c.type, c]));
  const stamp = (c: PodCondition, before: PodCondition | undefined): PodCondition => ({
    ...c,
    lastTransitionTime:
      before && before.status === c.status && before.lastTransitionTime
        ? before.lastTransitionTime
        : rfc3339(now),
  });
  for (const c of old.conditions ?? []) {
    const next = c.type ? fresh.get(c.type) : undefined;
    if (next) {
      conditions.push(stamp(next, c));
      fresh.delete(c.type);
    } else if (!owned.has(c.type ?? '')) conditions.push(c);
  }
  for (const c of fresh.values()) conditions.push(stamp(c, undefined));

  const merged: PodStatus = {
    ...old,
    ...generated,
    conditions,
    startTime: old.startTime ?? rfc3339(now),
    qosClass: old.qosClass ?? qosClass((pod.spec ?? {}) as Record<string, unknown>),
  };
  // Pod IPs outlive the sandbox: a stopped pod still reports the IPs it had.
  if (!generated.podIP && old.podIP) {
    merged.podIP = old.podIP;
    merged.podIPs = old.podIPs ?? [{ ip: old.podIP }];
  }
  // A terminal phase is final (upstream refuses the "illegal phase
  // transition"): an evicted pod whose container then exits 0 stays Failed.
  if (terminal(old.phase)) merged.phase = old.phase;
  return merged;
}

export function createStatusManager(opts: StatusManagerOptions): StatusManager {
  const { clients } = opts;
  return {
    async setPodStatus(pod, generated) {
      const merged = mergePodStatus(pod, generated, opts.now());
      if (jsonEqual(normalize(pod.status ?? {}), normalize(merged))) return pod.status ?? {};
      try {
        // A merge patch replaces lists whole, so the conditions written are
        // exactly the merged ones. The uid makes the API server refuse the
        // patch (422) if the pod was deleted and recreated under the same
        // name: this status belongs to the old one.
        const written = await clients.pods.patch(
          pod.metadata.namespace,
          pod.metadata.name ?? '',
          'merge',
          { metadata: { uid: pod.metadata.uid }, status: merged },
          { subresource: 'status' },
        );
        return written.status ?? merged;
      } catch (err) {
        if (isApiError(err, 'NotFound')) return merged;
        if (isApiError(err, 'Invalid') && err.message.includes('metadata.uid')) {
          opts.log?.('pod was deleted and then recreated, skipping status update', {
            pod: `${pod.metadata.namespace}/${pod.metadata.name}`,
            uid: pod.metadata.uid,
          });
          return merged;
        }
        throw err;
      }
    },
    async finishDeletion(pod) {
      try {
        await clients.pods.delete(pod.metadata.namespace, pod.metadata.name ?? '', {
          gracePeriodSeconds: 0,
          preconditions: { uid: pod.metadata.uid ?? '' },
        });
        opts.log?.('pod deleted', { pod: `${pod.metadata.namespace}/${pod.metadata.name}` });
      } catch (err) {
        if (isApiError(err, 'NotFound') || isApiError(err, 'Conflict')) return;
        throw err;
      }
    },
  };
}

// lastProbeTime: null is how the API server writes it back; compare without it.
function normalize(s: PodStatus): PodStatus {
  return {
    ...s,
    conditions: (s.conditions ?? []).map((c) => {
      const { lastProbeTime: _, ...rest } = c;
      return rest;
    }),
  };
}
