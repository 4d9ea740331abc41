// InterPodAffinity (pkg/scheduler/framework/plugins/interpodaffinity):
// required and preferred pod affinity and anti-affinity, both the incoming
// pod's terms and the existing pods' anti-affinity towards it.
//
// PreFilter counts, per topology pair (node label key=value), the existing
// pods that match each kind of term; Filter then only looks up the node's own
// label values. Score sums weighted term matches per topology pair and gives
// each node the total of its pairs.

import type { Pod } from '../../api/types/core-v1.ts';
import {
  type ClusterEventWithHint,
  type CycleState,
  type EnqueueExtensions,
  type FilterPlugin,
  MAX_NODE_SCORE,
  type NodeScore,
  type PreFilterPlugin,
  type PreScorePlugin,
  type ScorePlugin,
  SKIP,
  type Snapshot,
  type Status,
  SUCCESS,
  unresolvable,
  unschedulable,
} from '../framework.ts';
import type { NodeInfo } from '../nodeinfo.ts';
import {
  type AffinityTerm,
  type NamespaceLabels,
  pairKey,
  parseTerm,
  termMatchesLabels,
  termMatchesPod,
} from './topology.ts';

export const ERR_AFFINITY = "node(s) didn't match pod affinity rules";
export const ERR_ANTI_AFFINITY = "node(s) didn't match pod anti-affinity rules";
export const ERR_EXISTING_ANTI_AFFINITY = "node(s) didn't satisfy existing pods anti-affinity rules";

/** upstream's hardPodAffinityWeight default: existing pods' required affinity counts in scoring too. */
const HARD_POD_AFFINITY_WEIGHT = 1;

const PRE_FILTER = 'PreFilterInterPodAffinity';
const PRE_SCORE = 'PreScoreInterPodAffinity';

interface FilterState {
  affinity: AffinityTerm[];
  antiAffinity: AffinityTerm[];
  /** pair → existing pods matching all of the incoming pod's affinity terms */
  affinityCounts: Map<string, number>;
  /** pair → existing pods matching one of the incoming pod's anti-affinity terms */
  antiAffinityCounts: Map<string, number>;
  /** pair → existing pods whose required anti-affinity matches the incoming pod */
  existingAntiAffinityCounts: Map<string, number>;
}

const bump = (m: Map<string, number>, key: string, by = 1) => m.set(key, (m.get(key) ?? 0) + by);

/**
 * Parsed terms by pod object. Every cycle reads the existing pods' terms
 * (their required anti-affinity against the incoming pod, their affinity for
 * scoring); upstream parses them once, into the PodInfo, when a pod enters
 * the cache. Parsing them again per cycle was most of InterPodAffinity's
 * time. Pods from the informer are replaced, never mutated, on update, so
 * the object itself is a safe key.
 */
type TermKind = 'requiredAffinity' | 'requiredAntiAffinity' | 'preferredAffinity' | 'preferredAntiAffinity';
const parsedTerms = new WeakMap<Pod, Partial<Record<TermKind, AffinityTerm[]>>>();

function memoized(pod: Pod, kind: TermKind, parse: () => AffinityTerm[]): AffinityTerm[] {
  let terms = parsedTerms.get(pod);
  if (!terms) {
    terms = {};
    parsedTerms.set(pod, terms);
  }
  terms[kind] ??= parse();
  return terms[kind];
}

const requiredTerms = (pod: Pod, kind: 'podAffinity' | 'podAntiAffinity'): AffinityTerm[] =>
  memoized(pod, kind === 'podAffinity' ? 'requiredAffinity' : 'requiredAntiAffinity', () =>
    (pod.spec?.affinity?.[kind]?.requiredDuringSchedulingIgnoredDuringExecution ?? []).map((t) =>
      parseTerm(pod, t),
    ),
  );

const preferredTerms = (pod: Pod, kind: 'podAffinity' | 'podAntiAffinity'): AffinityTerm[] =>
  memoized(pod, kind === 'podAffinity' ? 'preferredAffinity' : 'preferredAntiAffinity', () =>
    (pod.spec?.affinity?.[kind]?.preferredDuringSchedulingIgnoredDuringExecution ?? [])
      .filter((w) => w.podAffinityTerm)
      .map((w) => parseTerm(pod, w.podAffinityTerm!, w.weight ?? 0)),
  );

export function interPodAffinity(
  nsLabels: NamespaceLabels = () => undefined,
): PreFilterPlugin & FilterPlugin & PreScorePlugin & ScorePlugin & EnqueueExtensions {
  return {
    name: 'InterPodAffinity',
    events: (): ClusterEventWithHint[] => [
      { event: { resource: 'AssignedPod', actions: ['Add', 'UpdatePodLabel', 'Delete'] } },
      { event: { resource: 'Node', actions: ['Add', 'UpdateNodeLabel'] } },
    ],

    preFilter(state: CycleState, pod: Pod, snapshot: Snapshot) {
      const affinity = requiredTerms(pod, 'podAffinity');
      const antiAffinity = requiredTerms(pod, 'podAntiAffinity');
      const s: FilterState = {
        affinity,
        antiAffinity,
        affinityCounts: new Map(),
        antiAffinityCounts: new Map(),
        existingAntiAffinityCounts: new Map(),
      };
      // Existing pods whose required anti-affinity rejects the incoming pod.
      for (const node of snapshot.havePodsWithRequiredAntiAffinity()) {
        const labels = node.node.metadata.labels ?? {};
        for (const key of node.podsWithRequiredAntiAffinity) {
          const existing = node.pods.get(key)?.pod;
          if (!existing) continue;
          for (const term of requiredTerms(existing, 'podAntiAffinity')) {
            const value = labels[term.topologyKey];
            if (value !== undefined && termMatchesPod(term, pod, nsLabels)) {
              bump(s.existingAntiAffinityCounts, pairKey(term.topologyKey, value));
            }
          }
        }
      }
      if (affinity.length || antiAffinity.length) {
        for (const node of snapshot.nodes()) {
          if (node.pods.size === 0) continue;
          const labels = node.node.metadata.labels ?? {};
          // The pods' namespaces and labels in one shape: faster to match than the Pod objects.
          for (const existing of node.podLabels()) {
            const matches = (t: AffinityTerm) =>
              termMatchesLabels(t, existing.namespace, existing.labels, nsLabels);
            if (affinity.length && affinity.every(matches)) {
              for (const t of affinity) {
                const v = labels[t.topologyKey];
                if (v !== undefined) bump(s.affinityCounts, pairKey(t.topologyKey, v));
              }
            }
            for (const t of antiAffinity) {
              const v = labels[t.topologyKey];
              if (v !== undefined && matches(t)) bump(s.antiAffinityCounts, pairKey(t.topologyKey, v));
            }
          }
        }
      }
      if (!affinity.length && !antiAffinity.length && s.existingAntiAffinityCounts.size === 0) {
        return { status: SKIP };
      }
      state.write(PRE_FILTER, s);
      return { status: SUCCESS };
    },

    filter(state, pod, node): Status {
      const s = state.read<FilterState>(PRE_FILTER);
      if (!s) return SUCCESS;
      const labels = node.node.metadata.labels ?? {};
      if (s.existingAntiAffinityCounts.size > 0) {
        for (const [k, v] of Object.entries(labels)) {
          if ((s.existingAntiAffinityCounts.get(pairKey(k, v)) ?? 0) > 0)
            return unschedulable(ERR_EXISTING_ANTI_AFFINITY);
        }
      }
      for (const t of s.antiAffinity) {
        const v = labels[t.topologyKey];
        if (v !== undefined && (s.antiAffinityCounts.get(pairKey(t.topologyKey, v)) ?? 0) > 0) {
          return unschedulable(ERR_ANTI_AFFINITY);
        }
      }
      if (s.affinity.length) {
        const satisfied = s.affinity.every((t) => {
          const v = labels[t.topologyKey];
          return v !== undefined && (s.affinityCounts.get(pairKey(t.topologyKey, v)) ?? 0) > 0;
        });
        if (!satisfied) {
          // The first pod of a group that selects itself may go anywhere its
          // topology keys exist: nothing matches yet, anywhere.
          const selfMatch = s.affinity.every((t) => termMatchesPod(t, pod, nsLabels));
          const hasKeys = s.affinity.every((t) => labels[t.topologyKey] !== undefined);
          if (!(s.affinityCounts.size === 0 && selfMatch && hasKeys)) return unresolvable(ERR_AFFINITY);
        }
      }
      return SUCCESS;
    },

    preScore(state, pod, nodes: NodeInfo[], snapshot) {
      const prefAffinity = preferredTerms(pod, 'podAffinity');
      const prefAnti = preferredTerms(pod, 'podAntiAffinity');
      const incomingHasTerms = prefAffinity.length + prefAnti.length > 0;
      // Without its own preferences, only existing pods with affinity terms can matter.
      const source = incomingHasTerms ? snapshot.nodes() : snapshot.havePodsWithAffinity();
      if (!incomingHasTerms && source.length === 0) return SKIP;
      const topologyScore = new Map<string, number>();
      const add = (term: AffinityTerm, node: NodeInfo, sign: number, weight = term.weight) => {
        const v = node.node.metadata.labels?.[term.topologyKey];
        if (v !== undefined && weight) bump(topologyScore, pairKey(term.topologyKey, v), sign * weight);
      };
      for (const node of source) {
        for (const { pod: existing, hasAffinity } of node.pods.values()) {
          for (const t of prefAffinity) if (termMatchesPod(t, existing, nsLabels)) add(t, node, 1);
          for (const t of prefAnti) if (termMatchesPod(t, existing, nsLabels)) add(t, node, -1);
          if (!hasAffinity) continue;
          for (const t of requiredTerms(existing, 'podAffinity')) {
            if (termMatchesPod(t, pod, nsLabels)) add(t, node, 1, HARD_POD_AFFINITY_WEIGHT);
          }
          for (const t of preferredTerms(existing, 'podAffinity'))
            if (termMatchesPod(t, pod, nsLabels)) add(t, node, 1);
          for (const t of preferredTerms(existing, 'podAntiAffinity')) {
            if (termMatchesPod(t, pod, nsLabels)) add(t, node, -1);
          }
        }
      }
      if (topologyScore.size === 0) return SKIP;
      state.write(PRE_SCORE, topologyScore);
      void nodes;
      return SUCCESS;
    },

    score(state, _pod, node) {
      const topologyScore = state.read<Map<string, number>>(PRE_SCORE);
      if (!topologyScore) return 0;
      let total = 0;
      for (const [k, v] of Object.entries(node.node.metadata.labels ?? {}))
        total += topologyScore.get(pairKey(k, v)) ?? 0;
      return total;
    },

    // Scores may be negative: map [min, max] onto [0, 100].
    normalize(_state, _pod, scores: NodeScore[]) {
      let min = Number.POSITIVE_INFINITY;
      let max = Number.NEGATIVE_INFINITY;
      for (const s of scores) {
        min = Math.min(min, s.score);
        max = Math.max(max, s.score);
      }
      const range = max - min;
      for (const s of scores)
        s.score = range > 0 ? Math.trunc((MAX_NODE_SCORE * (s.score - min)) / range) : 0;
    },
  };
}
