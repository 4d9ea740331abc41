// Taints, tolerations and node affinity, as upstream's
// k8s.io/component-helpers/scheduling/corev1 and core/v1 helpers define them.
// The scheduler, the DaemonSet controller and taint eviction all decide with
// these, so they agree on which pod may run where.

import { newRequirement, type Operator, requirementMatches, selectorFromSet } from './labels.ts';
import type {
  Node,
  NodeSelectorRequirement,
  NodeSelectorTerm,
  PodSpec,
  Taint,
  Toleration,
} from './types/core-v1.ts';

// Well-known node taints (k8s.io/api/core/v1 well_known_taints.go).
export const TAINT_NODE_NOT_READY = 'node.kubernetes.io/not-ready';
export const TAINT_NODE_UNREACHABLE = 'node.kubernetes.io/unreachable';
export const TAINT_NODE_DISK_PRESSURE = 'node.kubernetes.io/disk-pressure';
export const TAINT_NODE_MEMORY_PRESSURE = 'node.kubernetes.io/memory-pressure';
export const TAINT_NODE_PID_PRESSURE = 'node.kubernetes.io/pid-pressure';
export const TAINT_NODE_UNSCHEDULABLE = 'node.kubernetes.io/unschedulable';
export const TAINT_NODE_NETWORK_UNAVAILABLE = 'node.kubernetes.io/network-unavailable';

/** Toleration.ToleratesTaint: effect, key and value (or Exists) must all match; an empty key with Exists matches all. */
export function toleratesTaint(toleration: Toleration, taint: Taint): boolean {
  if (toleration.effect && toleration.effect !== taint.effect) return false;
  if (toleration.key && toleration.key !== taint.key) return false;
  switch (toleration.operator ?? '') {
    case '':
    case 'Equal':
      return (toleration.value ?? '') === (taint.value ?? '');
    case 'Exists':
      return true;
    default:
      return false;
  }
}

/** TolerationsTolerateTaint */
export const tolerationsTolerateTaint = (
  tolerations: readonly Toleration[] | undefined,
  taint: Taint,
): boolean => (tolerations ?? []).some((t) => toleratesTaint(t, taint));

/** FindMatchingUntoleratedTaint: the first taint (among those `filter` keeps) no toleration tolerates. */
export function findUntoleratedTaint(
  taints: readonly Taint[] | undefined,
  tolerations: readonly Toleration[] | undefined,
  filter: (t: Taint) => boolean = () => true,
): Taint | undefined {
  return (taints ?? []).find((taint) => filter(taint) && !tolerationsTolerateTaint(tolerations, taint));
}

const OPERATORS: Record<string, Operator> = {
  In: 'in',
  NotIn: 'notin',
  Exists: 'exists',
  DoesNotExist: '!',
  Gt: 'gt',
  Lt: 'lt',
};

function requirementMatchesLabels(r: NodeSelectorRequirement, labels: Record<string, string>): boolean {
  const op = OPERATORS[r.operator ?? ''];
  if (!op) return false;
  try {
    return requirementMatches(newRequirement(r.key ?? '', op, r.values ?? []), labels);
  } catch {
    // An invalid requirement matches nothing (nodeaffinity's lazy errors).
    return false;
  }
}

/** Only metadata.name is a field a node selector may use, with In or NotIn. */
function fieldMatchesNode(r: NodeSelectorRequirement, node: Node): boolean {
  if (r.key !== 'metadata.name') return false;
  const name = node.metadata.name ?? '';
  if (r.operator === 'In') return (r.values ?? []).includes(name);
  if (r.operator === 'NotIn') return !(r.values ?? []).includes(name);
  return false;
}

/** A term matches when all its requirements do; an empty term matches nothing. */
export function nodeSelectorTermMatches(term: NodeSelectorTerm, node: Node): boolean {
  const exprs = term.matchExpressions ?? [];
  const fields = term.matchFields ?? [];
  if (exprs.length === 0 && fields.length === 0) return false;
  const labels = node.metadata.labels ?? {};
  return (
    exprs.every((r) => requirementMatchesLabels(r, labels)) && fields.every((r) => fieldMatchesNode(r, node))
  );
}

/** Terms are ORed. */
export const nodeSelectorTermsMatch = (terms: readonly NodeSelectorTerm[], node: Node): boolean =>
  terms.some((t) => nodeSelectorTermMatches(t, node));

/**
 * nodeaffinity.GetRequiredNodeAffinity(pod).Match(node): the pod's
 * nodeSelector, and any one term of its required node affinity.
 */
export function requiredNodeAffinityMatches(spec: PodSpec | undefined, node: Node): boolean {
  if (spec?.nodeSelector && !selectorFromSet(spec.nodeSelector).matches(node.metadata.labels ?? {}))
    return false;
  const required = spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution;
  if (!required) return true;
  return nodeSelectorTermsMatch(required.nodeSelectorTerms ?? [], node);
}
