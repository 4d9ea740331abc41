// Resource lists (a ResourceList's quantities by name) and what a pod asks
// for, as upstream's pkg/api/v1/resource (resourcehelper.PodRequests and
// PodLimits) computes it. Used by the ResourceQuota controller and the
// LimitRanger and ResourceQuota admission plugins.

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

/**
 * What a pod asks for (upstream's resourcehelper.PodRequests/PodLimits):
 * its containers run together, its init containers one at a time before
 * them, except sidecars (restartPolicy Always) which keep running; then,
 * unless `overhead` is false, the RuntimeClass overhead on top.
 */
export function podResources(
  pod: Pod,
  which: 'requests' | 'limits',
  { overhead = true }: { overhead?: boolean } = {},
): ResourceList {
  const total: ResourceList = new Map();
  for (const c of (pod.spec?.containers ?? []) as ContainerLike[])
    addList(total, toList(c.resources?.[which]));
  const sidecars: ResourceList = new Map();
  const initPeak: ResourceList = new Map();
  for (const c of (pod.spec?.initContainers ?? []) as ContainerLike[]) {
    const own = toList(c.resources?.[which]);
    if (c.restartPolicy === 'Always') {
      addList(total, own);
      addList(sidecars, own);
      maxList(initPeak, sidecars);
    } else {
      const whileRunning: ResourceList = new Map(own);
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
