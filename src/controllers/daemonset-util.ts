// The DaemonSet controller's pure logic, with no API calls: which nodes a
// daemon pod belongs on (nodeSelector, required node affinity, taints against
// tolerations), the tolerations every daemon pod gets, how a daemon pod is
// pinned to its node, and the rolling update's budget. Upstream keeps these in
// pkg/controller/daemon/util/daemonset_util.go and daemon_controller.go
// (NodeShouldRunDaemonPod); kept apart here so they are tested without a cluster.

import { isPodAvailable, isPodReady } from '../api/pod-util.ts';
import {
  findUntoleratedTaint,
  requiredNodeAffinityMatches,
  TAINT_NODE_DISK_PRESSURE,
  TAINT_NODE_MEMORY_PRESSURE,
  TAINT_NODE_NETWORK_UNAVAILABLE,
  TAINT_NODE_NOT_READY,
  TAINT_NODE_PID_PRESSURE,
  TAINT_NODE_UNREACHABLE,
  TAINT_NODE_UNSCHEDULABLE,
} from '../api/scheduling.ts';
import type { DaemonSet } from '../api/types/apps-v1.ts';
import type { Affinity, Node, Pod, PodSpec, PodTemplateSpec, Toleration } from '../api/types/core-v1.ts';
import { CONTROLLER_REVISION_HASH_LABEL_KEY } from './history.ts';

/** Label on daemon pods: the DaemonSet's template generation they were made from (deprecated upstream, still set). */
export const POD_TEMPLATE_GENERATION_LABEL = 'pod-template-generation';
/** Annotation the API server keeps on DaemonSets upstream; Skiff falls back to metadata.generation. */
export const TEMPLATE_GENERATION_ANNOTATION = 'deprecated.daemonset.template.generation';

export {
  findUntoleratedTaint,
  nodeSelectorTermMatches,
  requiredNodeAffinityMatches,
  TAINT_NODE_DISK_PRESSURE,
  TAINT_NODE_MEMORY_PRESSURE,
  TAINT_NODE_NETWORK_UNAVAILABLE,
  TAINT_NODE_NOT_READY,
  TAINT_NODE_PID_PRESSURE,
  TAINT_NODE_UNREACHABLE,
  TAINT_NODE_UNSCHEDULABLE,
  toleratesTaint,
} from '../api/scheduling.ts';

const exists = (key: string, effect: 'NoSchedule' | 'NoExecute'): Toleration => ({
  key,
  operator: 'Exists',
  effect,
});

/**
 * The tolerations the controller adds to every daemon pod
 * (AddOrUpdateDaemonPodTolerations): a daemon is node infrastructure, so it
 * stays through not-ready and unreachable spells (NoExecute, with no
 * tolerationSeconds, so it is never evicted for them) and lands on nodes
 * under resource pressure or cordoned. Only host-network daemons can run
 * before the node's network is up.
 */
export function daemonPodTolerations(spec: PodSpec | undefined): Toleration[] {
  const add = [
    exists(TAINT_NODE_NOT_READY, 'NoExecute'),
    exists(TAINT_NODE_UNREACHABLE, 'NoExecute'),
    exists(TAINT_NODE_DISK_PRESSURE, 'NoSchedule'),
    exists(TAINT_NODE_MEMORY_PRESSURE, 'NoSchedule'),
    exists(TAINT_NODE_PID_PRESSURE, 'NoSchedule'),
    exists(TAINT_NODE_UNSCHEDULABLE, 'NoSchedule'),
    ...(spec?.hostNetwork ? [exists(TAINT_NODE_NETWORK_UNAVAILABLE, 'NoSchedule')] : []),
  ];
  const result = [...(spec?.tolerations ?? [])];
  for (const t of add) {
    // Tolerations are unique by <key, effect, operator, value> (MatchToleration):
    // one the user wrote for the same taint is replaced, e.g. so a
    // tolerationSeconds cannot make the daemon evictable.
    const same = (o: Toleration) =>
      (o.key ?? '') === t.key &&
      (o.effect ?? '') === t.effect &&
      (o.operator ?? '') === t.operator &&
      (o.value ?? '') === '';
    const i = result.findIndex(same);
    if (i >= 0) result[i] = t;
    else result.push(t);
  }
  return result;
}

// ---- which nodes run the daemon ---------------------------------------------

export interface NodeFit {
  /** A daemon pod should be created here if there is none. */
  shouldRun: boolean;
  /** A daemon pod already here may stay (it tolerates every NoExecute taint). */
  shouldContinueRunning: boolean;
}

/**
 * NodeShouldRunDaemonPod. A node is eligible when the template's nodeName
 * (if any) names it, its labels satisfy the nodeSelector and required node
 * affinity, and every NoSchedule/NoExecute taint is tolerated (counting the
 * daemon tolerations above). A NoSchedule taint stops new pods only; an
 * untolerated NoExecute taint also removes the pods already there.
 */
export function nodeShouldRunDaemonPod(node: Node, ds: DaemonSet): NodeFit {
  const spec = ds.spec?.template?.spec;
  if (spec?.nodeName && spec.nodeName !== node.metadata.name)
    return { shouldRun: false, shouldContinueRunning: false };
  if (!requiredNodeAffinityMatches(spec, node)) return { shouldRun: false, shouldContinueRunning: false };
  const tolerations = daemonPodTolerations(spec);
  const taints = node.spec?.taints;
  const blocking = findUntoleratedTaint(
    taints,
    tolerations,
    (t) => t.effect === 'NoSchedule' || t.effect === 'NoExecute',
  );
  if (!blocking) return { shouldRun: true, shouldContinueRunning: true };
  const evicting = findUntoleratedTaint(taints, tolerations, (t) => t.effect === 'NoExecute');
  return { shouldRun: false, shouldContinueRunning: !evicting };
}

/**
 * GetTargetNodeName: the node a daemon pod runs on, or will once bound. A
 * bound pod says so in spec.nodeName; an unbound one names its node in the
 * `metadata.name In [node]` field term the controller gave it.
 */
export function targetNodeName(pod: Pod): string | undefined {
  if (pod.spec?.nodeName) return pod.spec.nodeName;
  const terms =
    pod.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms;
  for (const term of terms ?? []) {
    for (const f of term.matchFields ?? []) {
      if (f.key === 'metadata.name' && f.operator === 'In') {
        return f.values?.length === 1 ? f.values[0] : undefined;
      }
    }
  }
  return undefined;
}

/**
 * ReplaceDaemonSetPodNodeNameNodeAffinity: the required node affinity
 * becomes the one term `metadata.name In [nodeName]`, so the scheduler can
 * only bind the pod to its node. Replacing the user's terms is safe: the
 * controller already checked the node satisfies them.
 */
export function pinToNode(affinity: Affinity | undefined, nodeName: string): Affinity {
  const required = {
    nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: [nodeName] }] }],
  };
  return {
    ...(affinity ?? {}),
    nodeAffinity: {
      ...(affinity?.nodeAffinity ?? {}),
      requiredDuringSchedulingIgnoredDuringExecution: required,
    },
  };
}

// ---- pods and revisions -----------------------------------------------------

/** The template generation: upstream's annotation when present, else metadata.generation. */
export function templateGeneration(ds: DaemonSet): number | undefined {
  const a = ds.metadata.annotations?.[TEMPLATE_GENERATION_ANNOTATION];
  if (a !== undefined && /^[0-9]+$/.test(a)) return Number(a);
  return ds.metadata.generation;
}

/**
 * CreatePodTemplate: the DaemonSet's template with the daemon tolerations
 * and the labels naming its revision (controller-revision-hash) and template
 * generation (pod-template-generation).
 */
export function daemonPodTemplate(ds: DaemonSet, hash: string): PodTemplateSpec {
  const template = structuredClone(ds.spec?.template ?? { metadata: {} });
  template.metadata ??= {};
  const spec: PodSpec = template.spec ?? {};
  template.spec = { ...spec, tolerations: daemonPodTolerations(spec) };
  const labels = { ...(template.metadata.labels ?? {}) };
  const generation = templateGeneration(ds);
  if (generation !== undefined) labels[POD_TEMPLATE_GENERATION_LABEL] = String(generation);
  if (hash) labels[CONTROLLER_REVISION_HASH_LABEL_KEY] = hash;
  template.metadata.labels = labels;
  return template;
}

/** IsPodUpdated: the pod was made from the current revision (or, for old pods, template generation). */
export function isPodUpdated(pod: Pod, hash: string, generation: number | undefined): boolean {
  const labels = pod.metadata.labels ?? {};
  const templateMatches =
    generation !== undefined && labels[POD_TEMPLATE_GENERATION_LABEL] === String(generation);
  const hashMatches = hash.length > 0 && labels[CONTROLLER_REVISION_HASH_LABEL_KEY] === hash;
  return hashMatches || templateMatches;
}

export { isPodAvailable, isPodReady };

/** podByCreationTimestampAndPhase: bound pods first, then oldest, then by name. */
export function compareDaemonPods(a: Pod, b: Pod): number {
  const ab = !!a.spec?.nodeName;
  const bb = !!b.spec?.nodeName;
  if (ab !== bb) return ab ? -1 : 1;
  const ta = a.metadata.creationTimestamp ?? '';
  const tb = b.metadata.creationTimestamp ?? '';
  if (ta !== tb) return ta < tb ? -1 : 1;
  const na = a.metadata.name ?? '';
  const nb = b.metadata.name ?? '';
  return na < nb ? -1 : na > nb ? 1 : 0;
}

// ---- the rolling update's budget --------------------------------------------

/**
 * intstr.GetScaledValueFromIntOrPercent: an absolute number, or a percentage
 * of `total` (rounded up or down). Throws on a malformed value.
 */
export function scaledValueFromIntOrPercent(
  value: number | string | undefined,
  total: number,
  roundUp: boolean,
): number {
  if (value === undefined) return 0;
  if (typeof value === 'number') return value;
  const m = /^(\d+)%$/.exec(value);
  if (!m) {
    if (/^\d+$/.test(value)) return Number(value);
    throw new Error(`invalid value for IntOrString: invalid value: ${JSON.stringify(value)}`);
  }
  const scaled = (Number(m[1]) * total) / 100;
  return roundUp ? Math.ceil(scaled) : Math.floor(scaled);
}

const rollingUpdate = (ds: DaemonSet) =>
  ds.spec?.updateStrategy?.type === 'RollingUpdate'
    ? (ds.spec.updateStrategy.rollingUpdate ?? {})
    : undefined;

/** UnavailableCount: how many of `desired` nodes may be without an available daemon during an update. */
export function unavailableCount(ds: DaemonSet, desired: number): number {
  const ru = rollingUpdate(ds);
  return ru ? scaledValueFromIntOrPercent(ru.maxUnavailable, desired, true) : 0;
}

/** SurgeCount: how many nodes may run an extra (new) daemon pod at once during an update. */
export function surgeCount(ds: DaemonSet, desired: number): number {
  const ru = rollingUpdate(ds);
  return ru ? scaledValueFromIntOrPercent(ru.maxSurge, desired, true) : 0;
}

/** AllowsSurge: maxSurge is non-zero (a percentage counts as one node at least). */
export function allowsSurge(ds: DaemonSet): boolean {
  try {
    return surgeCount(ds, 1) !== 0;
  } catch {
    return false;
  }
}
