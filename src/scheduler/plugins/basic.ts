// The small default plugins: PrioritySort, NodeName, NodeUnschedulable,
// TaintToleration and NodeAffinity (pkg/scheduler/framework/plugins/...).

import {
  nodeSelectorTermsMatch as anyTermMatches,
  nodeSelectorTermMatches as termMatches,
  tolerationsTolerateTaint as toleratedBy,
} from '../../api/scheduling.ts';
import type { Pod, PreferredSchedulingTerm, Taint } from '../../api/types/core-v1.ts';
import {
  type ClusterEventWithHint,
  type CycleState,
  type EnqueueExtensions,
  type FilterPlugin,
  type NodeScore,
  type PreFilterPlugin,
  type PreFilterResult,
  type PreScorePlugin,
  type QueuedPodInfo,
  type QueueSortPlugin,
  type ScorePlugin,
  SKIP,
  type Status,
  SUCCESS,
  unresolvable,
} from '../framework.ts';
import type { NodeInfo } from '../nodeinfo.ts';
import { defaultNormalize, taintString } from './helpers.ts';

const priorityOf = (q: QueuedPodInfo) => q.info.pod.spec?.priority ?? 0;

/** Higher priority first, then the pod that entered the queue first. */
export const prioritySort: QueueSortPlugin = {
  name: 'PrioritySort',
  less: (a, b) => {
    const pa = priorityOf(a);
    const pb = priorityOf(b);
    return pa > pb || (pa === pb && a.initialAttemptTimestamp < b.initialAttemptTimestamp);
  },
};

export const ERR_NODE_NAME = "node(s) didn't match the requested node name";

export const nodeName: FilterPlugin & EnqueueExtensions = {
  name: 'NodeName',
  events: () => [{ event: { resource: 'Node', actions: ['Add'] } }],
  filter(_state, pod, node) {
    const want = pod.spec?.nodeName;
    return !want || want === node.name ? SUCCESS : unresolvable(ERR_NODE_NAME);
  },
};

export const ERR_UNSCHEDULABLE = 'node(s) were unschedulable';
const UNSCHEDULABLE_TAINT: Taint = { key: 'node.kubernetes.io/unschedulable', effect: 'NoSchedule' };

export const nodeUnschedulable: FilterPlugin & EnqueueExtensions = {
  name: 'NodeUnschedulable',
  events: () => [{ event: { resource: 'Node', actions: ['Add', 'UpdateNodeTaint'] } }],
  filter(_state, pod, node) {
    if (!node.node.spec?.unschedulable) return SUCCESS;
    return toleratedBy(pod.spec?.tolerations, UNSCHEDULABLE_TAINT)
      ? SUCCESS
      : unresolvable(ERR_UNSCHEDULABLE);
  },
};

export const taintToleration: FilterPlugin & ScorePlugin & EnqueueExtensions = {
  name: 'TaintToleration',
  events: () => [{ event: { resource: 'Node', actions: ['Add', 'UpdateNodeTaint'] } }],
  filter(_state, pod, node) {
    for (const taint of node.node.spec?.taints ?? []) {
      if (taint.effect !== 'NoSchedule' && taint.effect !== 'NoExecute') continue;
      if (!toleratedBy(pod.spec?.tolerations, taint)) {
        return unresolvable(`node(s) had untolerated taint ${taintString(taint)}`);
      }
    }
    return SUCCESS;
  },
  // Fewer intolerable PreferNoSchedule taints is better.
  score(_state, pod, node) {
    const tolerations = (pod.spec?.tolerations ?? []).filter(
      (t) => !t.effect || t.effect === 'PreferNoSchedule',
    );
    let n = 0;
    for (const taint of node.node.spec?.taints ?? []) {
      if (taint.effect === 'PreferNoSchedule' && !toleratedBy(tolerations, taint)) n++;
    }
    return n;
  },
  normalize(_state, _pod, scores: NodeScore[]) {
    defaultNormalize(scores, true);
  },
};

export const ERR_NODE_AFFINITY = "node(s) didn't match Pod's node affinity/selector";

interface NodeAffinityState {
  preferred: PreferredSchedulingTerm[];
}

export const nodeAffinity: PreFilterPlugin & FilterPlugin & PreScorePlugin & ScorePlugin & EnqueueExtensions =
  {
    name: 'NodeAffinity',
    events: (): ClusterEventWithHint[] => [
      { event: { resource: 'Node', actions: ['Add', 'UpdateNodeLabel'] } },
    ],
    // A required term that pins metadata.name narrows the candidates before filtering.
    preFilter(_state: CycleState, pod: Pod): { status: Status; result?: PreFilterResult } {
      const terms =
        pod.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms;
      if (!terms?.length && !pod.spec?.nodeSelector) return { status: SKIP };
      if (!terms?.length) return { status: SUCCESS };
      let names: Set<string> | undefined = new Set();
      for (const t of terms) {
        const f = t.matchFields?.find((r) => r.key === 'metadata.name' && r.operator === 'In');
        if (!f) {
          names = undefined;
          break;
        }
        for (const v of f.values ?? []) names.add(v);
      }
      if (names && names.size === 0) return { status: unresolvable(ERR_NODE_AFFINITY) };
      return { status: SUCCESS, ...(names ? { result: { nodeNames: names } } : {}) };
    },
    filter(_state, pod, node) {
      const selector = pod.spec?.nodeSelector;
      if (selector) {
        const labels = node.node.metadata.labels ?? {};
        for (const [k, v] of Object.entries(selector))
          if (labels[k] !== v) return unresolvable(ERR_NODE_AFFINITY);
      }
      const terms =
        pod.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms;
      if (terms?.length && !anyTermMatches(terms, node.node)) return unresolvable(ERR_NODE_AFFINITY);
      return SUCCESS;
    },
    preScore(state, pod) {
      const preferred =
        pod.spec?.affinity?.nodeAffinity?.preferredDuringSchedulingIgnoredDuringExecution ?? [];
      if (!preferred.length) return SKIP;
      state.write('NodeAffinity', { preferred } satisfies NodeAffinityState);
      return SUCCESS;
    },
    score(state, _pod, node: NodeInfo) {
      const s = state.read<NodeAffinityState>('NodeAffinity');
      let total = 0;
      for (const p of s?.preferred ?? []) {
        if (p.weight && p.preference && termMatches(p.preference, node.node)) total += p.weight;
      }
      return total;
    },
    normalize(_state, _pod, scores) {
      defaultNormalize(scores, false);
    },
  };
