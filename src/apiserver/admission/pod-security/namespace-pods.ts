// When a namespace's enforce level is raised, upstream dry-runs the new
// level against the pods already there and warns about the ones it would
// have refused (the label change itself is always allowed). Pods with the
// same problems are folded into one line naming the lexically first of them.

import type { Pod } from '../../../api/types/core-v1.ts';
import {
  type Check,
  evaluatePod,
  forbiddenReasons,
  type LevelVersion,
  levelVersionString,
} from './policy.ts';

/** Upstream's defaultNamespaceMaxPodsToCheck. */
export const MAX_PODS_TO_CHECK = 3000;

interface Seen {
  firstPod: string;
  count: number;
}

export function existingPodWarnings(
  namespace: string,
  enforce: LevelVersion,
  pods: readonly Pod[],
  checks: readonly Check[],
  skip: (pod: Pod) => boolean,
  maxPods = MAX_PODS_TO_CHECK,
): string[] {
  const candidates = prioritized(pods.filter((p) => !skip(p)));
  const checked = candidates.slice(0, maxPods);
  const byWarning = new Map<string, Seen>();
  for (const pod of checked) {
    const violations = evaluatePod(enforce, { metadata: pod.metadata, spec: pod.spec ?? {} }, checks);
    if (violations.length === 0) continue;
    const warning = forbiddenReasons(violations);
    const name = pod.metadata.name ?? '';
    const seen = byWarning.get(warning);
    if (!seen) byWarning.set(warning, { firstPod: name, count: 1 });
    else {
      seen.count++;
      if (name < seen.firstPod) seen.firstPod = name;
    }
  }
  const out: string[] = [];
  if (checked.length < candidates.length)
    out.push(
      `new PodSecurity enforce level only checked against the first ${checked.length} of ${candidates.length} existing pods`,
    );
  if (byWarning.size > 0)
    out.push(
      `existing pods in namespace ${JSON.stringify(namespace)} violate the new PodSecurity enforce level ${JSON.stringify(levelVersionString(enforce))}`,
    );
  const lines = [...byWarning].map(([warning, seen]) => `${podsPrefix(seen)}: ${warning}`).sort();
  return [...out, ...lines];
}

/**
 * One pod per controller first, then the other replicas: when there are more
 * pods than are checked, each workload still gets looked at.
 */
function prioritized(pods: readonly Pod[]): Pod[] {
  const first: Pod[] = [];
  const replicas: Pod[] = [];
  const seenControllers = new Set<string>();
  for (const pod of pods) {
    const owner = pod.metadata.ownerReferences?.find((r) => r.controller === true);
    if (owner && seenControllers.has(owner.uid)) replicas.push(pod);
    else {
      if (owner) seenControllers.add(owner.uid);
      first.push(pod);
    }
  }
  return [...first, ...replicas];
}

const podsPrefix = ({ firstPod, count }: Seen) =>
  count === 1
    ? firstPod
    : count === 2
      ? `${firstPod} (and 1 other pod)`
      : `${firstPod} (and ${count - 1} other pods)`;
