// Resource lists (a ResourceList's quantities by name) and what a pod asks
// for, as upstream's pkg/api/v1/resource (resourcehelper.PodRequests and
// PodLimits) computes it. The one place that sum is made: the ResourceQuota
// controller, the LimitRanger and ResourceQuota admission plugins and the
// scheduler's NodeInfo all take it from here.

import { addQuantity, compareQuantity, formatQuantity, parseQuantity, type Quantity } from './quantity.ts';
import type { Pod } from './types/core-v1.ts';

export type ResourceList = Map<string, Quantity>;

/** One quantity from the wire; undefined for a missing or unparsable value. */
export function quantityOf(v: unknown): Quantity | undefined {
  if (v === undefined || v === null) return undefined;
  try {
    return parseQuantity(String(v));
  } catch {
    return undefined;
  }
}

/** A wire ResourceList ({name: "quantity"}) as quantities; bad values are left out. */
export function toList(obj: Record<string, unknown> | undefined | null): ResourceList {
  const out: ResourceList = new Map();
  for (const [k, v] of Object.entries(obj ?? {})) {
    const q = quantityOf(v);
    if (q) out.set(k, q);
  }
  return out;
}

/** into += from, name by name. */
export function addList(into: ResourceList, from: ResourceList): void {
  for (const [k, v] of from) {
    const cur = into.get(k);
    into.set(k, cur ? addQuantity(cur, v) : v);
  }
}

/** into = max(into, from), name by name. */
export function maxList(into: ResourceList, from: ResourceList): void {
  for (const [k, v] of from) {
    const cur = into.get(k);
    if (!cur || compareQuantity(v, cur) > 0) into.set(k, v);
  }
}

/** The wire form, names sorted, each quantity in its canonical text. */
export const formatList = (list: ResourceList): Record<string, string> =>
  Object.fromEntries([...list].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, q]) => [k, formatQuantity(q)]));

interface ContainerLike {
  name?: string;
  restartPolicy?: string;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
}

/** Upstream's PodResourcesOptions, for the parts Skiff uses. */
export interface PodResourcesOptions {
  /** Add the RuntimeClass overhead (spec.overhead) on top; default true. */
  overhead?: boolean;
  /**
   * Upstream's NonMissingContainerRequests (requests only): a container that
   * states no request for one of these names counts as asking this much. The
   * scheduler scores with 100m CPU and 200Mi memory for such containers.
   */
  nonMissingContainerRequests?: ResourceList;
}

/**
 * What a pod asks for (upstream's resourcehelper.PodRequests/PodLimits):
 * its containers run together, its init containers one at a time before
 * them, except sidecars (restartPolicy Always) which keep running; then,
 * unless `overhead` is false, the RuntimeClass overhead on top.
 */
export function podResources(
  pod: Pod,
  which: 'requests' | 'limits',
  { overhead = true, nonMissingContainerRequests }: PodResourcesOptions = {},
): ResourceList {
  const own = (c: ContainerLike): ResourceList => {
    const stated = c.resources?.[which];
    const list = toList(stated);
    if (which === 'requests' && nonMissingContainerRequests)
      for (const [k, q] of nonMissingContainerRequests) if (stated?.[k] === undefined) list.set(k, q);
    return list;
  };
  const total: ResourceList = new Map();
  for (const c of (pod.spec?.containers ?? []) as ContainerLike[]) addList(total, own(c));
  const sidecars: ResourceList = new Map();
  const initPeak: ResourceList = new Map();
  for (const c of (pod.spec?.initContainers ?? []) as ContainerLike[]) {
    const mine = own(c);
    if (c.restartPolicy === 'Always') {
      addList(total, mine);
      addList(sidecars, mine);
      maxList(initPeak, sidecars);
    } else {
      const whileRunning: ResourceList = new Map(mine);
      addList(whileRunning, sidecars);
      maxList(initPeak, whileRunning);
    }
  }
  maxList(total, initPeak);
  if (!overhead) return total;
  const podOverhead = toList(pod.spec?.overhead);
  if (which === 'requests') addList(total, podOverhead);
  else {
    // Overhead only raises limits that are set: an unset limit means unlimited.
    for (const [k, v] of podOverhead) {
      const cur = total.get(k);
      if (cur) total.set(k, addQuantity(cur, v));
    }
  }
  return total;
}
