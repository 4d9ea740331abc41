// ResourceQuota: the built-in admission plugin that refuses writes which
// would take a namespace over its ResourceQuotas, as upstream's
// k8s.io/apiserver admission/plugin/resourcequota (controller.go
// checkRequest) with the evaluators of pkg/quota/v1/evaluator/core.
//
// For each write of a namespaced object (never a subresource):
// - the evaluator for its resource says which quota names it counts and
//   what the object uses (src/api/quota.ts): pods on create; services and
//   claims on create and update (charged the growth only); any other
//   resource on create, as count/<resource>[.<group>] (and configmaps,
//   secrets, replicationcontrollers, resourcequotas under their old names);
// - a quota applies when its status.hard names one of those and its scopes
//   select the object (scoped quotas select pods only);
// - a quota that limits cpu or memory requires every container to say its
//   requests/limits for them: `failed quota: q: must specify limits.cpu for: c`;
// - a quota whose status.used lacks a limited name is not trusted yet:
//   `status unknown for quota: q, resources: pods`;
// - otherwise used + requested must stay within hard for every name the
//   write consumes: `exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2`.
// All refusals are 403 Forbidden. An admitted write is charged at once: the
// quota's status.used is written (compare-and-swap; a lost race re-reads the
// quotas and checks again) before the object is stored, so writes racing
// for the last unit cannot both win. Dry runs are checked, never charged.
// The ResourceQuota controller recomputes status.used from what is stored.

import { ApiError } from '../../api/errors.ts';
import type { KubeObject } from '../../api/meta.ts';
import {
  addQuantity,
  compareQuantity,
  formatQuantity,
  isZeroQuantity,
  newQuantity,
  quantitySign,
  subQuantity,
} from '../../api/quantity.ts';
import {
  podMatchesScope,
  podUsage,
  pvcUsage,
  quotaScopes,
  STORAGE_CLASS_SUFFIX,
  serviceUsage,
} from '../../api/quota.ts';
import { formatList, type ResourceList, toList } from '../../api/resource-list.ts';
import type { PersistentVolumeClaim, Pod, ResourceQuota, Service } from '../../api/types/core-v1.ts';
import {
  type AdmissionAttributes,
  admissionForbidden,
  type Operation,
  type ValidatingPlugin,
} from './admission.ts';

export interface ResourceQuotaOptions {
  /**
   * The namespace's quotas: from a cache (upstream's lister), or with
   * `fresh` as of now, after a compare-and-swap showed the cache stale.
   */
  listQuotas(namespace: string, opts: { fresh: boolean }): Promise<ResourceQuota[]>;
  /** Writes a quota's status if its resourceVersion is still current; a 409 ApiError if not. */
  updateQuotaStatus(quota: ResourceQuota): Promise<void>;
  now?: () => Date;
}

/** How one resource is counted (upstream's quota.Evaluator). */
interface Evaluator {
  handles(op: Operation): boolean;
  /** Of a quota's hard names, the ones this evaluator accounts for. */
  matches(name: string): boolean;
  /** Scoped quotas select pods only (MatchesNoScopeFunc for the rest). */
  matchesScopes(quota: ResourceQuota, obj: KubeObject): boolean;
  usage(obj: KubeObject, now: Date): ResourceList;
  /** Requirements the object must meet for the names a quota limits (pods only). */
  constraints?(required: string[], obj: KubeObject): string | undefined;
}

/** Virtual or never-quota'd resources, as upstream's quota registry ignores them. */
const IGNORED = new Set([
  '/bindings',
  '/componentstatuses',
  '/events',
  'events.k8s.io/events',
  'authentication.k8s.io/tokenreviews',
  'authentication.k8s.io/selfsubjectreviews',
  'authorization.k8s.io/subjectaccessreviews',
  'authorization.k8s.io/selfsubjectaccessreviews',
  'authorization.k8s.io/localsubjectaccessreviews',
  'authorization.k8s.io/selfsubjectrulesreviews',
]);

/** Names pods are counted under (the pod evaluator's podResources). */
const POD_RESOURCES = new Set([
  'pods',
  'count/pods',
  'cpu',
  'memory',
  'ephemeral-storage',
  'requests.cpu',
  'requests.memory',
  'requests.ephemeral-storage',
  'limits.cpu',
  'limits.memory',
  'limits.ephemeral-storage',
]);

const isExtendedRequest = (name: string) => {
  if (!name.startsWith('requests.')) return false;
  const resource = name.slice('requests.'.length);
  return resource.includes('/') && !resource.startsWith('kubernetes.io/');
};

const podMatches = (name: string) =>
  POD_RESOURCES.has(name) ||
  name.startsWith('hugepages-') ||
  name.startsWith('requests.hugepages-') ||
  isExtendedRequest(name);

/** The compute names a quota may only limit if every container states them (validationSet). */
const MUST_BE_SPECIFIED = ['cpu', 'memory', 'requests.cpu', 'requests.memory', 'limits.cpu', 'limits.memory'];

interface ContainerLike {
  name?: string;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
}

/** What one container states, under the quota names it would be counted as. */
function containerNames(c: ContainerLike): Set<string> {
  const out = new Set<string>();
  for (const name of Object.keys(c.resources?.requests ?? {})) {
    if (name === 'cpu' || name === 'memory') out.add(name).add(`requests.${name}`);
  }
  for (const name of Object.keys(c.resources?.limits ?? {})) {
    if (name === 'cpu' || name === 'memory') out.add(`limits.${name}`);
  }
  return out;
}

const podEvaluator: Evaluator = {
  handles: (op) => op === 'CREATE',
  matches: podMatches,
  matchesScopes: (quota, obj) => quotaScopes(quota).every((s) => podMatchesScope(obj as Pod, s)),
  usage: (obj, now) => podUsage(obj as Pod, now),
  constraints(required, obj) {
    const pod = obj as Pod;
    const must = required.filter((n) => MUST_BE_SPECIFIED.includes(n));
    if (must.length === 0) return undefined;
    const missing = new Map<string, Set<string>>();
    const containers = [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])];
    for (const c of containers as ContainerLike[]) {
      const stated = containerNames(c);
      for (const name of must) {
        if (stated.has(name)) continue;
        const names = missing.get(name) ?? new Set<string>();
        names.add(c.name ?? '');
        missing.set(name, names);
      }
    }
    if (missing.size === 0) return undefined;
    const parts = [...missing.keys()]
      .sort()
      .map((name) => `${name} for: ${[...missing.get(name)!].sort().join(',')}`);
    return `must specify ${parts.join('; ')}`;
  },
};

const noScopes = (quota: ResourceQuota) => quotaScopes(quota).length === 0;

const serviceEvaluator: Evaluator = {
  handles: (op) => op === 'CREATE' || op === 'UPDATE',
  matches: (name) =>
    ['services', 'count/services', 'services.nodeports', 'services.loadbalancers'].includes(name),
  matchesScopes: noScopes,
  usage: (obj) => serviceUsage(obj as Service),
};

const claimEvaluator: Evaluator = {
  handles: (op) => op === 'CREATE' || op === 'UPDATE',
  matches: (name) =>
    name === 'persistentvolumeclaims' ||
    name === 'count/persistentvolumeclaims' ||
    name === 'requests.storage' ||
    (name.includes(STORAGE_CLASS_SUFFIX) &&
      (name.endsWith('/requests.storage') || name.endsWith('/persistentvolumeclaims'))),
  matchesScopes: noScopes,
  usage: (obj) => pvcUsage(obj as PersistentVolumeClaim),
};

/** Names counted before count/<resource> existed, for core resources. */
const LEGACY_NAMES = new Set(['configmaps', 'secrets', 'replicationcontrollers', 'resourcequotas']);

/** Upstream's generic object-count evaluator: one per object, on create. */
function objectCountEvaluator(group: string, resource: string): Evaluator {
  const names = new Set([`count/${group ? `${resource}.${group}` : resource}`]);
  if (!group && LEGACY_NAMES.has(resource)) names.add(resource);
  const one = newQuantity(1, 'DecimalSI');
  return {
    handles: (op) => op === 'CREATE',
    matches: (name) => names.has(name),
    matchesScopes: noScopes,
    usage: () => new Map([...names].map((n) => [n, one])),
  };
}

function evaluatorFor(group: string, resource: string): Evaluator | undefined {
  if (IGNORED.has(`${group}/${resource}`)) return undefined;
  if (group === '' && resource === 'pods') return podEvaluator;
  if (group === '' && resource === 'services') return serviceEvaluator;
  if (group === '' && resource === 'persistentvolumeclaims') return claimEvaluator;
  return objectCountEvaluator(group, resource);
}

// ---- resource list arithmetic (k8s.io/apiserver/pkg/quota/v1) ------------

const mask = (list: ResourceList, names: Iterable<string>): ResourceList => {
  const keep = new Set(names);
  return new Map([...list].filter(([k]) => keep.has(k)));
};

const sum = (a: ResourceList, b: ResourceList): ResourceList => {
  const out = new Map(a);
  for (const [k, v] of b) {
    const cur = out.get(k);
    out.set(k, cur ? addQuantity(cur, v) : v);
  }
  return out;
};

/** SubtractWithNonNegativeResult: a − b per name of a, never below zero. */
const growth = (a: ResourceList, b: ResourceList): ResourceList => {
  const out: ResourceList = new Map();
  for (const [k, v] of a) {
    const prev = b.get(k);
    const d = prev ? subQuantity(v, prev) : v;
    out.set(k, quantitySign(d) < 0 ? newQuantity(0, 'DecimalSI') : d);
  }
  return out;
};

/** prettyPrint: `name=quantity`, names sorted, comma-separated. */
const pretty = (list: ResourceList) =>
  [...list.keys()]
    .sort()
    .map((k) => `${k}=${formatQuantity(list.get(k)!)}`)
    .join(',');

// ---- the plugin -----------------------------------------------------------

export function resourceQuotaPlugin(opts: ResourceQuotaOptions): ValidatingPlugin {
  const now = opts.now ?? (() => new Date());
  // One check-and-charge at a time per namespace: what one write charges is
  // what the next one reads, without losing compare-and-swap races to it.
  const queues = new Map<string, Promise<unknown>>();
  const serialized = <T>(namespace: string, fn: () => Promise<T>): Promise<T> => {
    const prev = queues.get(namespace) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => undefined);
    queues.set(namespace, tail);
    void tail.then(() => {
      if (queues.get(namespace) === tail) queues.delete(namespace);
    });
    return run;
  };

  /**
   * checkRequest: refuses the write, or returns the quotas whose usage it
   * raises, with their new status.used.
   */
  function check(
    attrs: AdmissionAttributes,
    evaluator: Evaluator,
    quotas: readonly ResourceQuota[],
  ): Array<{ quota: ResourceQuota; used: ResourceList }> {
    const obj = attrs.object!;
    const interesting: ResourceQuota[] = [];
    for (const quota of quotas) {
      const hardNames = Object.keys(quota.status?.hard ?? {});
      const limited = hardNames.filter((n) => evaluator.matches(n));
      if (limited.length === 0 || !evaluator.matchesScopes(quota, obj)) continue;
      const unmet = evaluator.constraints?.(limited, obj);
      if (unmet) throw admissionForbidden(attrs, `failed quota: ${quota.metadata.name}: ${unmet}`);
      const used = quota.status?.used ?? {};
      if (!limited.every((n) => n in used)) {
        throw admissionForbidden(
          attrs,
          `status unknown for quota: ${quota.metadata.name}, resources: ${[...limited].sort().join(',')}`,
        );
      }
      interesting.push(quota);
    }
    if (interesting.length === 0) return [];

    let delta = evaluator.usage(obj, now());
    const negative = [...delta].filter(([, q]) => quantitySign(q) < 0).map(([k]) => k);
    if (negative.length > 0) {
      throw admissionForbidden(
        attrs,
        `quota usage is negative for resource(s): ${negative.sort().join(',')}`,
      );
    }
    // An update is charged what it adds, unless it creates (no old version).
    if (attrs.operation === 'UPDATE' && attrs.oldObject?.metadata.resourceVersion) {
      delta = growth(delta, evaluator.usage(attrs.oldObject, now()));
    }
    delta = new Map([...delta].filter(([, q]) => !isZeroQuantity(q)));
    if (delta.size === 0) return [];

    const charged: Array<{ quota: ResourceQuota; used: ResourceList }> = [];
    for (const quota of interesting) {
      const hard = toList(quota.status?.hard);
      const used = toList(quota.status?.used);
      const requested = mask(delta, hard.keys());
      if (requested.size === 0) continue;
      const newUsed = sum(used, requested);
      const exceeded = [...requested.keys()].filter((k) => {
        const limit = hard.get(k);
        return limit !== undefined && compareQuantity(newUsed.get(k)!, limit) > 0;
      });
      if (exceeded.length > 0) {
        throw admissionForbidden(
          attrs,
          `exceeded quota: ${quota.metadata.name}, requested: ${pretty(mask(requested, exceeded))}, ` +
            `used: ${pretty(mask(used, exceeded))}, limited: ${pretty(mask(hard, exceeded))}`,
        );
      }
      charged.push({ quota, used: newUsed });
    }
    return charged;
  }

  return {
    name: 'ResourceQuota',
    handles(attrs) {
      if (attrs.subresource !== '' || attrs.namespace === '' || !attrs.object) return false;
      if (attrs.group === '' && attrs.resource === 'namespaces') return false;
      return evaluatorFor(attrs.group, attrs.resource)?.handles(attrs.operation) ?? false;
    },
    async validate(attrs) {
      const evaluator = evaluatorFor(attrs.group, attrs.resource)!;
      // Most namespaces have no quota: nothing to wait for.
      if ((await opts.listQuotas(attrs.namespace, { fresh: false })).length === 0) return undefined;
      return serialized(attrs.namespace, async () => {
        // Quotas already charged for this write; a retry checks the others.
        const written = new Set<string>();
        for (let attempt = 0; ; attempt++) {
          const listed = await opts.listQuotas(attrs.namespace, { fresh: attempt > 0 });
          const quotas = listed.filter((q) => !written.has(q.metadata.name ?? ''));
          const charged = check(attrs, evaluator, quotas);
          if (attrs.dryRun || charged.length === 0) return undefined;
          try {
            for (const { quota, used } of charged) {
              await opts.updateQuotaStatus({
                ...quota,
                status: { ...quota.status, used: { ...quota.status?.used, ...formatList(used) } },
              });
              written.add(quota.metadata.name ?? '');
            }
            return undefined;
          } catch (err) {
            // Another writer (the controller) changed a quota: check again.
            if (err instanceof ApiError && err.code === 409 && attempt < 5) continue;
            throw err;
          }
        }
      });
    },
  };
}
