// Shared by InterPodAffinity and PodTopologySpread: which existing pods a
// term or constraint selects (namespaces + label selector), and topology
// pairs (a node label key and its value on a node).

import type { LabelSelector } from '../../api/labels.ts';
import { type Selector, selectorFromLabelSelector } from '../../api/labels.ts';
import type { Pod, PodAffinityTerm } from '../../api/types/core-v1.ts';

/** Looks up a namespace's labels, for namespaceSelector. */
export type NamespaceLabels = (namespace: string) => Record<string, string> | undefined;

/** A pod affinity term, parsed once per cycle. */
export interface AffinityTerm {
  topologyKey: string;
  selector: Selector;
  /** Explicit namespaces (or the pod's own when none are given and there is no namespaceSelector). */
  namespaces: Set<string>;
  /** Set when the term has a namespaceSelector; {} selects every namespace. */
  namespaceSelector?: Selector;
  weight: number;
}

export function parseTerm(pod: Pod, term: PodAffinityTerm, weight = 1): AffinityTerm {
  const namespaces = new Set(term.namespaces ?? []);
  if (namespaces.size === 0 && !term.namespaceSelector) namespaces.add(pod.metadata.namespace ?? 'default');
  // matchLabelKeys / mismatchLabelKeys fold the incoming pod's label values into the selector.
  let labelSelector = (term.labelSelector ?? {}) as LabelSelector;
  const extra = [
    ...(term.matchLabelKeys ?? []).map((k) => ({
      key: k,
      operator: 'In' as const,
      values: [pod.metadata.labels?.[k] ?? ''],
    })),
    ...(term.mismatchLabelKeys ?? []).map((k) => ({
      key: k,
      operator: 'NotIn' as const,
      values: [pod.metadata.labels?.[k] ?? ''],
    })),
  ].filter((r) => pod.metadata.labels?.[r.key] !== undefined);
  if (extra.length) {
    labelSelector = {
      ...labelSelector,
      matchExpressions: [...(labelSelector.matchExpressions ?? []), ...extra],
    };
  }
  return {
    topologyKey: term.topologyKey ?? '',
    // An absent labelSelector selects nothing, as upstream.
    selector: term.labelSelector
      ? selectorFromLabelSelector(labelSelector)
      : ({ matches: () => false } as unknown as Selector),
    namespaces,
    ...(term.namespaceSelector
      ? { namespaceSelector: selectorFromLabelSelector(term.namespaceSelector as LabelSelector) }
      : {}),
    weight,
  };
}

export const termMatchesPod = (term: AffinityTerm, pod: Pod, nsLabels: NamespaceLabels): boolean =>
  termMatchesLabels(term, pod.metadata.namespace ?? '', pod.metadata.labels ?? {}, nsLabels);

/** The same, for a pod known by its namespace and labels (NodeInfo.podLabels()). */
export function termMatchesLabels(
  term: AffinityTerm,
  namespace: string,
  labels: Record<string, string>,
  nsLabels: NamespaceLabels,
): boolean {
  let inNamespace = term.namespaces.has(namespace);
  if (!inNamespace && term.namespaceSelector)
    inNamespace = term.namespaceSelector.matches(nsLabels(namespace) ?? {});
  return inNamespace && term.selector.matches(labels);
}

/** key=value, the index of topology counts. */
export const pairKey = (key: string, value: string): string => `${key}\u0000${value}`;
