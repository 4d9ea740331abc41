// Nominated pods, after upstream's PodNominator (pkg/scheduler/backend/queue)
// and RunFilterPluginsWithNominatedPods (framework/runtime/framework.go).
//
// A pod that preempted others is *nominated* to the node it freed
// (status.nominatedNodeName) and waits there for its victims to go. Until it
// is bound, every other pod of equal or lower priority is filtered as if the
// nominated pod were already on that node, so none of them takes the room
// the preemption made.

import type { CycleState, FilterPlugin, Pod, PodInfo, PreFilterPlugin, Status } from './framework.ts';
import { Code, SUCCESS } from './framework.ts';
import { type NodeInfo, newPodInfo, podKey } from './nodeinfo.ts';

export class Nominator {
  /** node name → pod key → the nominated pod */
  readonly #byNode = new Map<string, Map<string, PodInfo>>();
  readonly #nodeOf = new Map<string, string>();

  /** Records (or moves, or with no node name clears) a pending pod's nomination. */
  set(pod: Pod, nodeName: string | undefined): void {
    const key = podKey(pod);
    this.delete(pod);
    if (!nodeName) return;
    let pods = this.#byNode.get(nodeName);
    if (!pods) {
      pods = new Map();
      this.#byNode.set(nodeName, pods);
    }
    pods.set(key, newPodInfo(pod));
    this.#nodeOf.set(key, nodeName);
  }

  /**
   * A pending pod arrived or changed (from the watch): follow its
   * status.nominatedNodeName. When neither the old nor the new version has
   * one, a nomination made here and not yet written back is kept (upstream's
   * updateNominatedPodUnlocked); a nomination removed through the API goes.
   */
  update(old: Pod | undefined, pod: Pod): void {
    const written = pod.status?.nominatedNodeName;
    const keep = !old?.status?.nominatedNodeName && !written ? this.#nodeOf.get(podKey(pod)) : undefined;
    this.set(pod, written || keep);
  }

  delete(pod: Pod): void {
    const key = podKey(pod);
    const node = this.#nodeOf.get(key);
    if (node === undefined) return;
    this.#nodeOf.delete(key);
    const pods = this.#byNode.get(node);
    pods?.delete(key);
    if (pods?.size === 0) this.#byNode.delete(node);
  }

  nodeOf(pod: Pod): string | undefined {
    return this.#nodeOf.get(podKey(pod));
  }

  /** The pods nominated to `nodeName`; a shared empty array when there are none (the common case, per node per cycle). */
  podsForNode(nodeName: string): readonly PodInfo[] {
    const pods = this.#byNode.get(nodeName);
    return pods?.size ? [...pods.values()] : NONE;
  }
}

const NONE: readonly PodInfo[] = Object.freeze([]);

const priorityOf = (pod: Pod) => pod.spec?.priority ?? 0;

/** The profile's filters on one node, stopping at the first that rejects. */
export function runFilters(filters: FilterPlugin[], state: CycleState, pod: Pod, node: NodeInfo): Status {
  for (const f of filters) {
    if (state.skipFilter.has(f.name)) continue;
    const s = f.filter(state, pod, node);
    if (s.code !== Code.Success) return { ...s, plugin: f.name };
  }
  return SUCCESS;
}

/**
 * The PreFilter plugins' AddPod/RemovePod extensions (upstream's
 * RunPreFilterExtensionAddPod/RemovePod): what-if runs tell them a pod joined
 * or left a node, so state computed in PreFilter stays true.
 */
export function runPreFilterExtensions(
  preFilters: PreFilterPlugin[],
  state: CycleState,
  call: (p: PreFilterPlugin) => Status | undefined,
): Status {
  for (const p of preFilters) {
    if (state.skipFilter.has(p.name)) continue;
    const s = call(p);
    if (s && s.code !== Code.Success) return { ...s, plugin: p.name };
  }
  return SUCCESS;
}

/**
 * Filters `pod` on `node` as if the pods nominated there with at least its
 * priority were already running (their PreFilter state added too). When
 * that passes, filters again without them: a filter such as inter-pod
 * affinity may only pass thanks to a nominated pod, which may never come.
 */
export function runFiltersWithNominatedPods(
  preFilters: PreFilterPlugin[],
  filters: FilterPlugin[],
  state: CycleState,
  pod: Pod,
  node: NodeInfo,
  nominated: readonly PodInfo[],
): Status {
  const others = nominated.filter(
    (p) => p.pod.metadata.uid !== pod.metadata.uid && priorityOf(p.pod) >= priorityOf(pod),
  );
  if (others.length === 0) return runFilters(filters, state, pod, node);
  const withNominated = node.clone();
  const stateWith = state.clone();
  for (const p of others) {
    withNominated.addPod(p);
    const s = runPreFilterExtensions(preFilters, stateWith, (pf) =>
      pf.addPod?.(stateWith, pod, p, withNominated),
    );
    if (s.code !== Code.Success) return s;
  }
  const s = runFilters(filters, stateWith, pod, withNominated);
  if (s.code !== Code.Success) return s;
  return runFilters(filters, state, pod, node);
}
