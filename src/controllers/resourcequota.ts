// The ResourceQuota controller (upstream pkg/controller/resourcequota, with
// the usage rules of pkg/quota/v1/evaluator/core): it keeps each quota's
// status.hard equal to spec.hard and status.used equal to what the namespace
// consumes, for the resources spec.hard names.
//
// What is counted, as upstream's evaluators count it:
// - pods: non-terminal pods (not Succeeded/Failed, and not past their
//   deletion grace period); count/pods: every pod object.
// - cpu/requests.cpu, memory/requests.memory, limits.cpu, limits.memory,
//   ephemeral-storage, hugepages and extended resources: summed over those
//   non-terminal pods, each pod's requests being max(sum of containers,
//   largest init container) plus its overhead.
// - services, services.nodeports, services.loadbalancers.
// - persistentvolumeclaims and requests.storage, also per storage class.
// - configmaps, secrets, replicationcontrollers, resourcequotas and any
//   count/<resource>[.<group>] of a resource the clientset knows.
// - Scopes (spec.scopes and spec.scopeSelector): Terminating, NotTerminating,
//   BestEffort, NotBestEffort, PriorityClass and CrossNamespacePodAffinity
//   select which pods count; a scoped quota counts nothing but pods.
//
// Usage is recalculated when a counted object in the namespace changes, and
// every quota is recalculated every 5 minutes (upstream's full resync).
// Informers are made only for the resources some quota names.
//
// Not done: refusing creates over quota at admission (upstream's
// ResourceQuota admission plugin). Quotas are reported, not enforced.

import type { KubeObject } from '../api/meta.ts';
import { jsonEqual } from '../api/meta.ts';
import {
  addQuantity,
  compareQuantity,
  formatQuantity,
  newQuantity,
  parseQuantity,
  type Quantity,
} from '../api/quantity.ts';
import { qosClass } from '../api/resources/core.ts';
import type {
  PersistentVolumeClaim,
  Pod,
  ResourceQuota,
  ScopedResourceSelectorRequirement,
  Service,
} from '../api/types/core-v1.ts';
import { type ResourceName, resources } from '../client/clientset.ts';
import { NAMESPACE_INDEX } from '../client/informer-factory.ts';
import type { ControllerContext, ControllerFactory } from './context.ts';
import { queueController } from './controller.ts';

/** Upstream's --resource-quota-sync-period. */
export const RESOURCE_QUOTA_SYNC_PERIOD_MS = 5 * 60_000;

type ResourceList = Map<string, Quantity>;

const ONE = newQuantity(1, 'DecimalSI');
const ZERO = newQuantity(0, 'DecimalSI');

function quantityOf(v: unknown): Quantity | undefined {
  if (v === undefined || v === null) return undefined;
  try {
    return parseQuantity(String(v));
  } catch {
    return undefined;
  }
}

function toList(obj: Record<string, unknown> | undefined): ResourceList {
  const out: ResourceList = new Map();
  for (const [k, v] of Object.entries(obj ?? {})) {
    const q = quantityOf(v);
    if (q) out.set(k, q);
  }
  return out;
}

function add(into: ResourceList, from: ResourceList): void {
  for (const [k, v] of from) {
    const cur = into.get(k);
    into.set(k, cur ? addQuantity(cur, v) : v);
  }
}

function max(into: ResourceList, from: ResourceList): void {
  for (const [k, v] of from) {
    const cur = into.get(k);
    if (!cur || compareQuantity(v, cur) > 0) into.set(k, v);
  }
}

// ---- pods ---------------------------------------------------------------

interface ContainerLike {
  restartPolicy?: string;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
}

/**
 * What a pod asks for (upstream's resourcehelper.PodRequests/PodLimits):
 * its containers run together, its init containers one at a time before
 * them, except sidecars (restartPolicy Always) which keep running; then the
 * RuntimeClass overhead on top.
 */
function podResources(pod: Pod, which: 'requests' | 'limits'): ResourceList {
  const total: ResourceList = new Map();
  for (const c of (pod.spec?.containers ?? []) as ContainerLike[]) add(total, toList(c.resources?.[which]));
  const sidecars: ResourceList = new Map();
  const initPeak: ResourceList = new Map();
  for (const c of (pod.spec?.initContainers ?? []) as ContainerLike[]) {
    const own = toList(c.resources?.[which]);
    if (c.restartPolicy === 'Always') {
      add(total, own);
      add(sidecars, own);
      max(initPeak, sidecars);
    } else {
      const whileRunning: ResourceList = new Map(own);
      add(whileRunning, sidecars);
      max(initPeak, whileRunning);
    }
  }
  max(total, initPeak);
  const overhead = toList(pod.spec?.overhead);
  if (which === 'requests') add(total, overhead);
  else {
    // Overhead only raises limits that are set: an unset limit means unlimited.
    for (const [k, v] of overhead) {
      const cur = total.get(k);
      if (cur) total.set(k, addQuantity(cur, v));
    }
  }
  return total;
}

/** Upstream's QuotaV1Pod: terminal pods, and pods stuck past their deletion grace period, are free. */
function podCountsForQuota(pod: Pod, now: Date): boolean {
  if (pod.status?.phase === 'Failed' || pod.status?.phase === 'Succeeded') return false;
  const deletion = pod.metadata.deletionTimestamp;
  const grace = pod.metadata.deletionGracePeriodSeconds;
  if (deletion && grace !== undefined && now.getTime() > Date.parse(deletion) + grace * 1000) return false;
  return true;
}

const COMPUTE_WITH_BARE_NAME = ['cpu', 'memory', 'ephemeral-storage'];

function podUsage(pod: Pod, now: Date): ResourceList {
  // count/pods tracks every pod in storage; the rest only live ones.
  const usage: ResourceList = new Map([['count/pods', ONE]]);
  if (!podCountsForQuota(pod, now)) return usage;
  usage.set('pods', ONE);
  for (const [name, q] of podResources(pod, 'requests')) {
    if (COMPUTE_WITH_BARE_NAME.includes(name) || name.startsWith('hugepages-')) usage.set(name, q);
    usage.set(`requests.${name}`, q);
  }
  for (const [name, q] of podResources(pod, 'limits')) {
    if (COMPUTE_WITH_BARE_NAME.includes(name)) usage.set(`limits.${name}`, q);
  }
  return usage;
}

const isPodResource = (name: string) =>
  name === 'pods' ||
  name === 'count/pods' ||
  COMPUTE_WITH_BARE_NAME.includes(name) ||
  name.startsWith('hugepages-') ||
  name.startsWith('requests.') ||
  name.startsWith('limits.');

// ---- scopes -------------------------------------------------------------

function hasCrossNamespacePodAffinity(pod: Pod): boolean {
  const terms: { namespaces?: string[]; namespaceSelector?: unknown }[] = [];
  for (const kind of [pod.spec?.affinity?.podAffinity, pod.spec?.affinity?.podAntiAffinity]) {
    if (!kind) continue;
    terms.push(...(kind.requiredDuringSchedulingIgnoredDuringExecution ?? []));
    for (const w of kind.preferredDuringSchedulingIgnoredDuringExecution ?? []) {
      if (w.podAffinityTerm) terms.push(w.podAffinityTerm);
    }
  }
  return terms.some((t) => (t.namespaces?.length ?? 0) > 0 || t.namespaceSelector != null);
}

/** Whether `pod` is in the scope `req` names (upstream's podMatchesScopeFunc). */
function podMatchesScope(pod: Pod, req: ScopedResourceSelectorRequirement): boolean {
  const negate = req.operator === 'DoesNotExist';
  let matches: boolean;
  switch (req.scopeName) {
    case 'Terminating':
      matches = pod.spec?.activeDeadlineSeconds != null && pod.spec.activeDeadlineSeconds >= 0;
      break;
    case 'NotTerminating':
      matches = !(pod.spec?.activeDeadlineSeconds != null && pod.spec.activeDeadlineSeconds >= 0);
      break;
    case 'BestEffort':
      matches = (pod.status?.qosClass ?? qosClass(pod.spec ?? {})) === 'BestEffort';
      break;
    case 'NotBestEffort':
      matches = (pod.status?.qosClass ?? qosClass(pod.spec ?? {})) !== 'BestEffort';
      break;
    case 'PriorityClass': {
      // As upstream, the pod's priorityClassName is matched like a label that
      // is always present (possibly empty), so Exists matches every pod.
      const value = pod.spec?.priorityClassName ?? '';
      const values = req.values ?? [];
      if (req.operator === 'In') return values.includes(value);
      if (req.operator === 'NotIn') return !values.includes(value);
      return req.operator === 'Exists';
    }
    case 'CrossNamespacePodAffinity':
      matches = hasCrossNamespacePodAffinity(pod);
      break;
    default:
      return false;
  }
  return negate ? !matches : matches;
}

function quotaScopes(quota: ResourceQuota): ScopedResourceSelectorRequirement[] {
  return [
    ...(quota.spec?.scopes ?? []).map((scopeName) => ({ scopeName, operator: 'Exists' })),
    ...(quota.spec?.scopeSelector?.matchExpressions ?? []),
  ];
}

// ---- other evaluators ---------------------------------------------------

function serviceUsage(svc: Service): ResourceList {
  const usage: ResourceList = new Map([
    ['services', ONE],
    ['count/services', ONE],
    ['services.nodeports', ZERO],
    ['services.loadbalancers', ZERO],
  ]);
  const ports = svc.spec?.ports ?? [];
  if (svc.spec?.type === 'NodePort') usage.set('services.nodeports', newQuantity(ports.length, 'DecimalSI'));
  if (svc.spec?.type === 'LoadBalancer') {
    // Node ports are not allocated yet when a quota is checked, so upstream
    // counts the intent: every port, unless node ports are switched off, in
    // which case only the ports that ask for one.
    const nodePorts =
      svc.spec.allocateLoadBalancerNodePorts === false
        ? ports.filter((p) => p.nodePort).length
        : ports.length;
    usage.set('services.nodeports', newQuantity(nodePorts, 'DecimalSI'));
    usage.set('services.loadbalancers', ONE);
  }
  return usage;
}

const STORAGE_CLASS_SUFFIX = '.storageclass.storage.k8s.io/';

function pvcUsage(pvc: PersistentVolumeClaim): ResourceList {
  const usage: ResourceList = new Map([
    ['persistentvolumeclaims', ONE],
    ['count/persistentvolumeclaims', ONE],
  ]);
  // A claim being expanded counts at the larger of what it asks and what it
  // has been given (upstream's RecoverVolumeExpansionFailure rule).
  let storage = quantityOf(pvc.spec?.resources?.requests?.storage);
  const allocated = quantityOf(pvc.status?.allocatedResources?.storage);
  if (allocated && (!storage || compareQuantity(allocated, storage) > 0)) storage = allocated;
  if (storage) usage.set('requests.storage', storage);
  const storageClass = pvc.spec?.storageClassName;
  if (storageClass) {
    usage.set(`${storageClass}${STORAGE_CLASS_SUFFIX}persistentvolumeclaims`, ONE);
    if (storage) usage.set(`${storageClass}${STORAGE_CLASS_SUFFIX}requests.storage`, storage);
  }
  return usage;
}

/** The clientset's name for every namespaced resource, by its quota name (plural[.group]). */
const resourceByQuotaName = new Map<string, ResourceName>(
  Object.entries(resources)
    .filter(([, r]) => r.namespaced)
    .map(([name, r]) => [r.group ? `${r.plural}.${r.group}` : r.plural, name as ResourceName]),
);

/** Legacy object-count names (before count/<resource> existed) and the resource they count. */
const LEGACY_COUNTS: Record<string, ResourceName> = {
  configmaps: 'configMaps',
  secrets: 'secrets',
  replicationcontrollers: 'replicationControllers',
  resourcequotas: 'resourceQuotas',
};

/** Which resource's objects a quota resource name is computed from. */
function sourceOf(name: string): ResourceName | undefined {
  // requests.storage is the claims', not the pods' requests.<resource>.
  if (
    name === 'persistentvolumeclaims' ||
    name === 'requests.storage' ||
    name.includes(STORAGE_CLASS_SUFFIX)
  ) {
    return 'persistentVolumeClaims';
  }
  if (isPodResource(name)) return 'pods';
  if (name === 'services' || name.startsWith('services.')) return 'services';
  if (LEGACY_COUNTS[name]) return LEGACY_COUNTS[name];
  if (name.startsWith('count/')) return resourceByQuotaName.get(name.slice('count/'.length));
  return undefined;
}

function objectUsage(resource: ResourceName, obj: KubeObject, now: Date): ResourceList {
  if (resource === 'pods') return podUsage(obj as Pod, now);
  if (resource === 'services') return serviceUsage(obj as Service);
  if (resource === 'persistentVolumeClaims') return pvcUsage(obj as PersistentVolumeClaim);
  // An object count: under its count/ name, and its legacy name if it has one.
  const usage: ResourceList = new Map();
  for (const [quotaName, r] of resourceByQuotaName) if (r === resource) usage.set(`count/${quotaName}`, ONE);
  for (const [legacy, r] of Object.entries(LEGACY_COUNTS)) if (r === resource) usage.set(legacy, ONE);
  return usage;
}

// ---- the controller -----------------------------------------------------

/** The canonical text of each quantity, as the API would store it. */
const formatList = (list: ResourceList): Record<string, string> =>
  Object.fromEntries([...list].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, q]) => [k, formatQuantity(q)]));

export const resourceQuotaController: ControllerFactory = (ctx: ControllerContext) => {
  const quotas = ctx.informers.informer('resourceQuotas');
  let resyncTimer: unknown;

  const enqueueNamespace = (namespace: string | undefined) => {
    for (const q of quotas.indexer.byIndex(NAMESPACE_INDEX, namespace ?? '')) {
      c.queue.add(`${q.metadata.namespace}/${q.metadata.name}`);
    }
  };

  // Informers for the resources quotas name, made on first need.
  const watched = new Set<ResourceName>(['resourceQuotas']);
  const informerFor = (resource: ResourceName) => {
    const informer = ctx.informers.informer(resource);
    if (!watched.has(resource)) {
      watched.add(resource);
      informer.on({
        add: (o) => enqueueNamespace(o.metadata.namespace),
        update: (old, o) => {
          // A pod's status changes often; only what usage depends on matters.
          if (resource === 'pods') {
            const a = old as Pod;
            const b = o as Pod;
            if (
              a.status?.phase === b.status?.phase &&
              a.metadata.deletionTimestamp === b.metadata.deletionTimestamp &&
              jsonEqual(a.spec, b.spec)
            ) {
              return;
            }
          }
          enqueueNamespace(o.metadata.namespace);
        },
        delete: (o) => enqueueNamespace(o.metadata.namespace),
      });
    }
    return informer;
  };

  const c = queueController(ctx, {
    name: 'resourcequota',
    async sync(key) {
      const quota = quotas.indexer.get(key);
      if (!quota) return;
      const namespace = quota.metadata.namespace ?? '';
      const hard = toList(quota.spec?.hard);
      const scopes = quotaScopes(quota);
      const now = ctx.now();

      // Which resources to read, for which of the hard names.
      const bySource = new Map<ResourceName, string[]>();
      for (const name of hard.keys()) {
        const source = sourceOf(name);
        if (!source) continue;
        bySource.set(source, [...(bySource.get(source) ?? []), name]);
      }

      // Like upstream, usage of a resource we cannot compute is left as the
      // quota last reported it.
      const used: ResourceList = toList(quota.status?.used);
      for (const [source, names] of bySource) {
        const informer = informerFor(source);
        if (!informer.hasSynced()) {
          // Just asked for: count once its cache is filled.
          c.queue.addAfter(key, 200);
          return;
        }
        const sum: ResourceList = new Map(names.map((n) => [n, ZERO]));
        // A scoped quota selects pods; it counts no other kind of object.
        if (scopes.length === 0 || source === 'pods') {
          for (const obj of informer.indexer.byIndex(NAMESPACE_INDEX, namespace)) {
            if (source === 'pods' && !scopes.every((s) => podMatchesScope(obj as Pod, s))) continue;
            const usage = objectUsage(source, obj, now);
            for (const n of names) {
              const q = usage.get(n);
              if (q) sum.set(n, addQuantity(sum.get(n) ?? ZERO, q));
            }
          }
        }
        for (const [n, q] of sum) used.set(n, q);
      }
      // status.used names exactly what spec.hard names.
      for (const n of used.keys()) if (!hard.has(n)) used.delete(n);

      const status = { hard: formatList(hard), used: formatList(used) };
      if (
        jsonEqual(status.hard, quota.status?.hard ?? {}) &&
        jsonEqual(status.used, quota.status?.used ?? {})
      ) {
        return;
      }
      await ctx.clients.resourceQuotas.updateStatus({ ...quota, status });
    },
    onRun() {
      const resync = () => {
        for (const q of quotas.indexer.list()) c.queue.add(`${q.metadata.namespace}/${q.metadata.name}`);
        resyncTimer = ctx.clock.setTimeout(resync, RESOURCE_QUOTA_SYNC_PERIOD_MS);
      };
      resyncTimer = ctx.clock.setTimeout(resync, RESOURCE_QUOTA_SYNC_PERIOD_MS);
    },
    onStop() {
      if (resyncTimer !== undefined) ctx.clock.clearTimeout(resyncTimer);
    },
  });

  // Adding or deleting a quota also changes the count of quotas that other
  // quotas in its namespace may track (resourcequotas, count/resourcequotas).
  quotas.on({
    add: (q) => enqueueNamespace(q.metadata.namespace),
    update: (_old, q) => c.queue.add(`${q.metadata.namespace}/${q.metadata.name}`),
    delete: (q) => enqueueNamespace(q.metadata.namespace),
  });
  return c;
};
