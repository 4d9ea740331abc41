// How many voluntary disruptions a PodDisruptionBudget allows right now,
// shared by the eviction subresource and scheduler preemption.
//
// Upstream, the disruption controller (pkg/controller/disruption, here
// src/controllers/disruption.ts) writes status.disruptionsAllowed and
// everyone else reads it. Until it has caught up with a PDB (its
// status.observedGeneration behind metadata.generation, or never written)
// the budget is computed here from the matching pods, as that controller
// would, with one deviation: the controller's expected pod count comes from
// the owning controllers' desired scale; here it is the number of matching
// pods that are not being deleted.

import { type LabelSelector, type Selector, selectorFromLabelSelector } from './labels.ts';
import { isPodReady } from './pod-util.ts';
import type { Pod } from './types/core-v1.ts';
import type { PodDisruptionBudget } from './types/policy-v1.ts';

export interface DisruptionBudget {
  expectedPods: number;
  desiredHealthy: number;
  currentHealthy: number;
  disruptionsAllowed: number;
  /** Pods the eviction handler approved for deletion and which may still be around (status.disruptedPods). */
  disruptedPods: Record<string, string>;
}

/**
 * The PDB's pod selector, as policy/v1 reads it: nil selects nothing, {}
 * every pod of its namespace (v1beta1's "{} selects nothing" is gone); an
 * invalid selector selects nothing. undefined for the last.
 */
export function pdbSelector(pdb: PodDisruptionBudget): Selector | undefined {
  try {
    return selectorFromLabelSelector(pdb.spec?.selector as LabelSelector | null | undefined);
  } catch {
    return undefined;
  }
}

/**
 * Whether a PDB selects a pod: same namespace, and its selector matches
 * (policy/v1, as the disruption controller and, since upstream #119732, the
 * eviction subresource read it). Scheduler preemption still skips empty
 * selectors upstream; see filterPodsWithPDBViolation.
 */
export function pdbMatches(pdb: PodDisruptionBudget, pod: Pod): boolean {
  if (pdb.metadata.namespace !== pod.metadata.namespace) return false;
  return pdbSelector(pdb)?.matches(pod.metadata.labels ?? {}) ?? false;
}

export { isPodReady };

/** intstr.GetScaledValueFromIntOrPercent, rounding up as the disruption controller does. */
export function scaled(v: number | string, total: number): number {
  if (typeof v === 'number') return v;
  const m = /^(\d+)%$/.exec(v);
  if (!m) return Number.parseInt(v, 10) || 0;
  return Math.ceil((Number(m[1]) * total) / 100);
}

/** The PDB's budget: its status when the disruption controller keeps it current, else computed from `pods`. */
export function disruptionBudget(pdb: PodDisruptionBudget, pods: Pod[]): DisruptionBudget {
  const status = pdb.status ?? {};
  if (
    status.observedGeneration !== undefined &&
    status.observedGeneration >= (pdb.metadata.generation ?? 0)
  ) {
    return {
      expectedPods: status.expectedPods ?? 0,
      desiredHealthy: status.desiredHealthy ?? 0,
      currentHealthy: status.currentHealthy ?? 0,
      disruptionsAllowed: status.disruptionsAllowed ?? 0,
      disruptedPods: status.disruptedPods ?? {},
    };
  }
  const matching = pods.filter((p) => !p.metadata.deletionTimestamp && pdbMatches(pdb, p));
  const expectedPods = matching.length;
  const currentHealthy = matching.filter(isPodReady).length;
  let desiredHealthy = 0;
  const spec = pdb.spec ?? {};
  if (spec.maxUnavailable !== undefined) {
    desiredHealthy = Math.max(0, expectedPods - scaled(spec.maxUnavailable, expectedPods));
  } else if (spec.minAvailable !== undefined) {
    desiredHealthy = scaled(spec.minAvailable, expectedPods);
  }
  return {
    expectedPods,
    desiredHealthy,
    currentHealthy,
    disruptionsAllowed: Math.max(0, currentHealthy - desiredHealthy),
    disruptedPods: {},
  };
}
