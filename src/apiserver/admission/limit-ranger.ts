// LimitRanger: the built-in admission plugin that applies a namespace's
// LimitRange objects, as upstream's plugin/pkg/admission/limitranger.
//
// Mutating, on pod creation: a container (or init container) that names no
// request or limit for a resource gets the `defaultRequest` / `default` of
// every LimitRange item of type Container, and the pod is annotated
// `kubernetes.io/limit-ranger: LimitRanger plugin set: ...` with what was
// filled in.
//
// Validating, on pod creation and on claim creation and update: the min,
// max and maxLimitRequestRatio of items of type Container (each container),
// Pod (the pod's total, init containers and sidecars counted as the
// scheduler counts them) and PersistentVolumeClaim (the claim's storage
// request). A violation is 403 with upstream's messages, e.g.
// `pods "p" is forbidden: maximum cpu usage per Container is 500m, but limit is 1`.
//
// Pod updates are not checked: containers' resources cannot change through
// an update, and subresources (status, binding, ...) are never looked at.

import { formatQuantity, milliValue, type Quantity, value } from '../../api/quantity.ts';
import { podResources, type ResourceList, toList } from '../../api/resource-list.ts';
import type { LimitRange, LimitRangeItem, PersistentVolumeClaim, Pod } from '../../api/types/core-v1.ts';
import {
  type AdmissionAttributes,
  admissionForbidden,
  aggregateMessage,
  type MutatingPlugin,
  type ValidatingPlugin,
} from './admission.ts';

export const LIMIT_RANGER_ANNOTATION = 'kubernetes.io/limit-ranger';

export interface LimitRangerOptions {
  /** The namespace's LimitRanges, as of now (a LimitRange made a moment ago counts). */
  listLimitRanges(namespace: string): Promise<LimitRange[]>;
}

interface ContainerLike {
  name?: string;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
}

/** Upstream's SupportsAttributes: pods on create, claims on create and update, no subresources. */
function supports(attrs: AdmissionAttributes): boolean {
  if (attrs.subresource !== '' || attrs.group !== '') return false;
  if (attrs.operation !== 'CREATE' && attrs.operation !== 'UPDATE') return false;
  if (attrs.resource === 'pods') return attrs.operation === 'CREATE';
  return attrs.resource === 'persistentvolumeclaims';
}

export function limitRangerPlugins(opts: LimitRangerOptions): {
  mutating: MutatingPlugin;
  validating: ValidatingPlugin;
} {
  /** The LimitRanges that apply, or none: objects being deleted are left alone. */
  const limitRanges = async (attrs: AdmissionAttributes) => {
    if (!attrs.object || attrs.oldObject?.metadata.deletionTimestamp) return [];
    return opts.listLimitRanges(attrs.namespace);
  };
  return {
    mutating: {
      name: 'LimitRanger',
      handles: (attrs) => supports(attrs) && attrs.resource === 'pods',
      async admit(attrs) {
        for (const lr of await limitRanges(attrs)) applyDefaults(lr, attrs.object as Pod);
        return undefined;
      },
    },
    validating: {
      name: 'LimitRanger',
      handles: supports,
      async validate(attrs) {
        for (const lr of await limitRanges(attrs)) {
          const errors =
            attrs.resource === 'pods'
              ? validatePod(lr, attrs.object as Pod)
              : validateClaim(lr, attrs.object as PersistentVolumeClaim);
          if (errors.length > 0) throw admissionForbidden(attrs, aggregateMessage(errors));
        }
        return undefined;
      },
    },
  };
}

const items = (lr: LimitRange): LimitRangeItem[] => lr.spec?.limits ?? [];

// ---- defaults -----------------------------------------------------------

/** defaultContainerResourceRequirements, then mergePodResourceRequirements. */
function applyDefaults(lr: LimitRange, pod: Pod): void {
  const requests: Record<string, string> = {};
  const limits: Record<string, string> = {};
  for (const item of items(lr)) {
    if (item.type !== 'Container') continue;
    Object.assign(requests, item.defaultRequest ?? {});
    Object.assign(limits, item.default ?? {});
  }
  const notes: string[] = [];
  const merge = (c: ContainerLike, what: string) => {
    const resources = c.resources ?? {};
    c.resources = resources;
    const setRequests: string[] = [];
    const setLimits: string[] = [];
    const podLimits = resources.limits ?? {};
    const podRequests = resources.requests ?? {};
    resources.limits = podLimits;
    resources.requests = podRequests;
    for (const [k, v] of Object.entries(limits)) {
      if (!(k in podLimits)) {
        podLimits[k] = v;
        setLimits.push(k);
      }
    }
    for (const [k, v] of Object.entries(requests)) {
      if (!(k in podRequests)) {
        podRequests[k] = v;
        setRequests.push(k);
      }
    }
    if (Object.keys(podLimits).length === 0) delete resources.limits;
    if (Object.keys(podRequests).length === 0) delete resources.requests;
    if (setRequests.length > 0) notes.push(`${setRequests.sort().join(', ')} request for ${what} ${c.name}`);
    if (setLimits.length > 0) notes.push(`${setLimits.sort().join(', ')} limit for ${what} ${c.name}`);
  };
  for (const c of (pod.spec?.containers ?? []) as ContainerLike[]) merge(c, 'container');
  for (const c of (pod.spec?.initContainers ?? []) as ContainerLike[]) merge(c, 'init container');
  if (notes.length > 0) {
    pod.metadata.annotations = {
      ...pod.metadata.annotations,
      [LIMIT_RANGER_ANNOTATION]: `LimitRanger plugin set: ${notes.join('; ')}`,
    };
  }
}

// ---- validation ---------------------------------------------------------

/** resource.MaxMilliValue: the largest value whose milli-value fits an int64. */
const MAX_MILLI_VALUE = ((1n << 63n) - 1n) / 1000n;

/** requestLimitEnforcedValues: milli-units when all three fit, else whole units. */
function comparable(
  req: Quantity | undefined,
  lim: Quantity | undefined,
  enforced: Quantity,
): [bigint, bigint, bigint] {
  const v = (q: Quantity | undefined) => (q ? value(q) : 0n);
  if (v(req) <= MAX_MILLI_VALUE && v(lim) <= MAX_MILLI_VALUE && value(enforced) <= MAX_MILLI_VALUE) {
    const m = (q: Quantity | undefined) => (q ? milliValue(q) : 0n);
    return [m(req), m(lim), milliValue(enforced)];
  }
  return [v(req), v(lim), value(enforced)];
}

const text = (q: Quantity) => formatQuantity(q);

function minConstraint(
  type: string,
  name: string,
  enforced: Quantity,
  requests: ResourceList,
  limits: ResourceList,
): string | undefined {
  const req = requests.get(name);
  const lim = limits.get(name);
  const [r, l, e] = comparable(req, lim, enforced);
  if (!req) return `minimum ${name} usage per ${type} is ${text(enforced)}.  No request is specified`;
  if (r < e) return `minimum ${name} usage per ${type} is ${text(enforced)}, but request is ${text(req)}`;
  if (lim && l < e)
    return `minimum ${name} usage per ${type} is ${text(enforced)}, but limit is ${text(lim)}`;
  return undefined;
}

function maxConstraint(
  type: string,
  name: string,
  enforced: Quantity,
  requests: ResourceList,
  limits: ResourceList,
): string | undefined {
  const req = requests.get(name);
  const lim = limits.get(name);
  const [r, l, e] = comparable(req, lim, enforced);
  if (!lim) return `maximum ${name} usage per ${type} is ${text(enforced)}.  No limit is specified`;
  if (l > e) return `maximum ${name} usage per ${type} is ${text(enforced)}, but limit is ${text(lim)}`;
  if (req && r > e)
    return `maximum ${name} usage per ${type} is ${text(enforced)}, but request is ${text(req)}`;
  return undefined;
}

/** maxRequestConstraint: claims have requests only. */
function maxRequestConstraint(
  type: string,
  name: string,
  enforced: Quantity,
  requests: ResourceList,
): string | undefined {
  const req = requests.get(name);
  const [r, , e] = comparable(req, undefined, enforced);
  if (!req) return `maximum ${name} usage per ${type} is ${text(enforced)}.  No request is specified`;
  if (r > e) return `maximum ${name} usage per ${type} is ${text(enforced)}, but request is ${text(req)}`;
  return undefined;
}

function limitRequestRatioConstraint(
  type: string,
  name: string,
  enforced: Quantity,
  requests: ResourceList,
  limits: ResourceList,
): string | undefined {
  const req = requests.get(name);
  const lim = limits.get(name);
  const [r, l] = comparable(req, lim, enforced);
  const max = text(enforced);
  if (!req || r === 0n)
    return `${name} max limit to request ratio per ${type} is ${max}, but no request is specified or request is 0`;
  if (!lim || l === 0n)
    return `${name} max limit to request ratio per ${type} is ${max}, but no limit is specified or limit is 0`;
  const ratio = Number(l) / Number(r);
  // Compared in milli-units when the bound allows, as upstream.
  const [observed, bound] =
    value(enforced) <= MAX_MILLI_VALUE
      ? [ratio * 1000, Number(milliValue(enforced))]
      : [ratio, Number(value(enforced))];
  if (observed > bound)
    return `${name} max limit to request ratio per ${type} is ${max}, but provided ratio is ${ratio.toFixed(6)}`;
  return undefined;
}

function checkItem(
  item: LimitRangeItem,
  type: string,
  requests: ResourceList,
  limits: ResourceList,
  out: string[],
): void {
  const push = (m: string | undefined) => m !== undefined && out.push(m);
  for (const [k, q] of toList(item.min)) push(minConstraint(type, k, q, requests, limits));
  for (const [k, q] of toList(item.max)) push(maxConstraint(type, k, q, requests, limits));
  for (const [k, q] of toList(item.maxLimitRequestRatio))
    push(limitRequestRatioConstraint(type, k, q, requests, limits));
}

/** PodValidateLimitFunc: every container against Container items, the pod's total against Pod items. */
function validatePod(lr: LimitRange, pod: Pod): string[] {
  const out: string[] = [];
  for (const item of items(lr)) {
    if (item.type === 'Container') {
      const containers = [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])];
      for (const c of containers as ContainerLike[]) {
        checkItem(item, 'Container', toList(c.resources?.requests), toList(c.resources?.limits), out);
      }
    }
    if (item.type === 'Pod') {
      const requests = podResources(pod, 'requests', { overhead: false });
      const limits = podResources(pod, 'limits', { overhead: false });
      checkItem(item, 'Pod', requests, limits, out);
    }
  }
  return out;
}

/** PersistentVolumeClaimValidateLimitFunc: the claim's requests against min and max. */
function validateClaim(lr: LimitRange, pvc: PersistentVolumeClaim): string[] {
  const out: string[] = [];
  const requests = toList(pvc.spec?.resources?.requests);
  for (const item of items(lr)) {
    if (item.type !== 'PersistentVolumeClaim') continue;
    for (const [k, q] of toList(item.min)) {
      const m = minConstraint('PersistentVolumeClaim', k, q, requests, new Map());
      if (m) out.push(m);
    }
    for (const [k, q] of toList(item.max)) {
      const m = maxRequestConstraint('PersistentVolumeClaim', k, q, requests);
      if (m) out.push(m);
    }
  }
  return out;
}
