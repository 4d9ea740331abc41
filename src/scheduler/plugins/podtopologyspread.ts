// PodTopologySpread (pkg/scheduler/framework/plugins/podtopologyspread):
// spread matching pods evenly over topology domains (zones, hosts, ...).
//
// DoNotSchedule constraints filter: placing the pod in a domain must not make
// it exceed the least-loaded domain by more than maxSkew (and while fewer than
// minDomains domains exist, the least-loaded count is taken as 0).
// ScheduleAnyway constraints score: fewer matching pods in the node's domains
// is better, weighted by log(number of domains + 2) as upstream.
//
// Left out: the system default constraints upstream applies to pods without
// any (derived from the Services and controllers selecting the pod).

import { type LabelSelector, type Selector, selectorFromLabelSelector } from '../../api/labels.ts';
import { findUntoleratedTaint } from '../../api/scheduling.ts';
import type { Pod, TopologySpreadConstraint } from '../../api/types/core-v1.ts';
import {
  type ClusterEventWithHint,
  CycleState,
  type EnqueueExtensions,
  type FilterPlugin,
  MAX_NODE_SCORE,
  type NodeScore,
  type PreFilterPlugin,
  type PreScorePlugin,
  type ScorePlugin,
  SKIP,
  type Snapshot,
  SUCCESS,
  unresolvable,
  unschedulable,
} from '../framework.ts';
import type { NodeInfo } from '../nodeinfo.ts';
import { nodeAffinity } from './basic.ts';
import { pairKey } from './topology.ts';

export const ERR_CONSTRAINTS_NOT_MATCH = "node(s) didn't match pod topology spread constraints";
export const ERR_MISSING_LABEL =
  "node(s) didn't match pod topology spread constraints (missing required label)";

const PRE_FILTER = 'PreFilterPodTopologySpread';
const PRE_SCORE = 'PreScorePodTopologySpread';

interface Constraint {
  maxSkew: number;
  topologyKey: string;
  selector: Selector;
  minDomains: number;
  honorNodeAffinity: boolean;
  honorTaints: boolean;
}

function constraintsOf(pod: Pod, when: 'DoNotSchedule' | 'ScheduleAnyway'): Constraint[] {
  return (pod.spec?.topologySpreadConstraints ?? [])
    .filter((c: TopologySpreadConstraint) => (c.whenUnsatisfiable ?? 'DoNotSchedule') === when)
    .map((c) => {
      let ls = (c.labelSelector ?? {}) as LabelSelector;
      const keys = (c.matchLabelKeys ?? []).filter((k) => pod.metadata.labels?.[k] !== undefined);
      if (keys.length) {
        ls = {
          ...ls,
          matchExpressions: [
            ...(ls.matchExpressions ?? []),
            ...keys.map((k) => ({ key: k, operator: 'In' as const, values: [pod.metadata.labels![k]!] })),
          ],
        };
      }
      return {
        maxSkew: c.maxSkew ?? 1,
        topologyKey: c.topologyKey ?? '',
        // A constraint without a selector matches no pods.
        selector: c.labelSelector
          ? selectorFromLabelSelector(ls)
          : ({ matches: () => false } as unknown as Selector),
        minDomains: c.minDomains ?? 1,
        honorNodeAffinity: (c.nodeAffinityPolicy ?? 'Honor') === 'Honor',
        honorTaints: c.nodeTaintsPolicy === 'Honor',
      };
    });
}

function hasAllKeys(node: NodeInfo, cs: Constraint[]): boolean {
  const labels = node.node.metadata.labels;
  if (!labels) return false;
  for (const c of cs) if (labels[c.topologyKey] === undefined) return false;
  return true;
}

/** Whether the pod has a nodeSelector or required node affinity: only then can nodeAffinityPolicy exclude a node. */
const hasRequiredNodeAffinity = (pod: Pod): boolean =>
  !!pod.spec?.nodeSelector ||
  !!pod.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms
    ?.length;

/**
 * Whether the node counts as a domain member for `c`, per nodeAffinityPolicy /
 * nodeTaintsPolicy. PreFilter asks this for every node, so a pod without node
 * affinity skips running NodeAffinity's filter (and a CycleState) per node.
 */
function nodeIncluded(pod: Pod, node: NodeInfo, c: Constraint, requiredNodeAffinity: boolean): boolean {
  if (
    c.honorNodeAffinity &&
    requiredNodeAffinity &&
    nodeAffinity.filter(new CycleState(), pod, node).code !== 0
  ) {
    return false;
  }
  if (c.honorTaints) {
    const intolerable = findUntoleratedTaint(
      node.node.spec?.taints,
      pod.spec?.tolerations,
      (t) => t.effect === 'NoSchedule' || t.effect === 'NoExecute',
    );
    if (intolerable) return false;
  }
  return true;
}

function countMatching(pod: Pod, node: NodeInfo, selector: Selector): number {
  const namespace = pod.metadata.namespace ?? '';
  let n = 0;
  for (const p of node.podLabels()) {
    if (p.namespace !== namespace || p.terminating) continue;
    if (selector.matches(p.labels)) n++;
  }
  return n;
}

interface FilterState {
  constraints: Constraint[];
  /**
   * Per constraint: topology value → matching pods (upstream's
   * TpValueToMatchNum). Keyed by the node's own label value, so the per-node
   * lookups build no strings.
   */
  counts: Map<string, number>[];
  /** per constraint: the smallest count over its domains, and how many domains there are */
  minMatch: number[];
  domains: number[];
  /** per constraint: 1 if the incoming pod matches its own selector (it would count once placed) */
  selfMatch: number[];
}

interface ScoreState {
  constraints: Constraint[];
  counts: Map<string, number>;
  weights: number[];
  ignored: Set<string>;
}

export const podTopologySpread: PreFilterPlugin &
  FilterPlugin &
  PreScorePlugin &
  ScorePlugin &
  EnqueueExtensions = {
  name: 'PodTopologySpread',
  events: (): ClusterEventWithHint[] => [
    { event: { resource: 'AssignedPod', actions: ['Add', 'UpdatePodLabel', 'Delete'] } },
    { event: { resource: 'Node', actions: ['Add', 'Delete', 'UpdateNodeLabel', 'UpdateNodeTaint'] } },
  ],

  preFilter(state: CycleState, pod: Pod, snapshot: Snapshot) {
    const constraints = constraintsOf(pod, 'DoNotSchedule');
    if (!constraints.length) return { status: SKIP };
    const requiredNodeAffinity = hasRequiredNodeAffinity(pod);
    const counts = constraints.map(() => new Map<string, number>());
    for (const node of snapshot.nodes()) {
      if (!hasAllKeys(node, constraints)) continue;
      const labels = node.node.metadata.labels!;
      for (let i = 0; i < constraints.length; i++) {
        const c = constraints[i]!;
        if (!nodeIncluded(pod, node, c, requiredNodeAffinity)) continue;
        const value = labels[c.topologyKey]!;
        const matching = node.pods.size ? countMatching(pod, node, c.selector) : 0;
        counts[i]!.set(value, (counts[i]!.get(value) ?? 0) + matching);
      }
    }
    const minMatch = counts.map((byValue) => Math.min(...byValue.values()));
    const domains = counts.map((byValue) => byValue.size);
    const podLabels = pod.metadata.labels ?? {};
    const selfMatch = constraints.map((c) => (c.selector.matches(podLabels) ? 1 : 0));
    state.write(PRE_FILTER, { constraints, counts, minMatch, domains, selfMatch } satisfies FilterState);
    return { status: SUCCESS };
  },

  filter(state, _pod, node) {
    const s = state.read<FilterState>(PRE_FILTER);
    if (!s) return SUCCESS;
    const labels = node.node.metadata.labels ?? {};
    for (let i = 0; i < s.constraints.length; i++) {
      const c = s.constraints[i]!;
      const value = labels[c.topologyKey];
      if (value === undefined) return unresolvable(ERR_MISSING_LABEL);
      const match = s.counts[i]!.get(value) ?? 0;
      let min = Number.isFinite(s.minMatch[i]!) ? s.minMatch[i]! : 0;
      if (s.domains[i]! < c.minDomains) min = 0;
      if (match + s.selfMatch[i]! - min > c.maxSkew) return unschedulable(ERR_CONSTRAINTS_NOT_MATCH);
    }
    return SUCCESS;
  },

  preScore(state, pod, filtered: NodeInfo[], snapshot) {
    const constraints = constraintsOf(pod, 'ScheduleAnyway');
    if (!constraints.length) return SKIP;
    const ignored = new Set<string>();
    const counts = new Map<string, number>();
    // Domains come from the feasible nodes; hostname domains are exactly those nodes.
    for (const node of filtered) {
      if (!hasAllKeys(node, constraints)) {
        ignored.add(node.name);
        continue;
      }
      for (const c of constraints)
        counts.set(pairKey(c.topologyKey, node.node.metadata.labels![c.topologyKey]!), 0);
    }
    const filteredNames = new Set(filtered.map((n) => n.name));
    const requiredNodeAffinity = hasRequiredNodeAffinity(pod);
    for (const node of snapshot.nodes()) {
      if (!hasAllKeys(node, constraints)) continue;
      for (const c of constraints) {
        if (c.topologyKey === 'kubernetes.io/hostname' && !filteredNames.has(node.name)) continue;
        if (!nodeIncluded(pod, node, c, requiredNodeAffinity)) continue;
        const key = pairKey(c.topologyKey, node.node.metadata.labels![c.topologyKey]!);
        if (!counts.has(key)) continue;
        counts.set(key, counts.get(key)! + countMatching(pod, node, c.selector));
      }
    }
    const weights = constraints.map((c) => {
      const prefix = pairKey(c.topologyKey, '');
      let size = 0;
      for (const k of counts.keys()) if (k.startsWith(prefix)) size++;
      return Math.log(size + 2);
    });
    state.write(PRE_SCORE, { constraints, counts, weights, ignored } satisfies ScoreState);
    return SUCCESS;
  },

  score(state, _pod, node) {
    const s = state.read<ScoreState>(PRE_SCORE);
    if (!s || s.ignored.has(node.name)) return 0;
    let score = 0;
    s.constraints.forEach((c, i) => {
      const v = node.node.metadata.labels?.[c.topologyKey];
      if (v === undefined) return;
      const cnt = s.counts.get(pairKey(c.topologyKey, v)) ?? 0;
      score += cnt * s.weights[i]! + (c.maxSkew - 1);
    });
    return Math.round(score);
  },

  // Fewer matching pods is better: invert into 0..100 over the non-ignored nodes.
  normalize(state, _pod, scores: NodeScore[]) {
    const s = state.read<ScoreState>(PRE_SCORE);
    if (!s) return;
    let min = Number.POSITIVE_INFINITY;
    let max = 0;
    for (const sc of scores) {
      if (s.ignored.has(sc.name)) continue;
      min = Math.min(min, sc.score);
      max = Math.max(max, sc.score);
    }
    for (const sc of scores) {
      if (s.ignored.has(sc.name)) sc.score = 0;
      else if (max === 0) sc.score = MAX_NODE_SCORE;
      else sc.score = Math.trunc((MAX_NODE_SCORE * (max + min - sc.score)) / max);
    }
  },
};
