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
// Informers are made only for the resources some quota names. What one
// object uses is src/api/quota.ts, shared with the ResourceQuota admission
// plugin.

import type { KubeObject } from '../api/meta.ts';
import { jsonEqual } from '../api/meta.ts';
import { addQuantity, newQuantity } from '../api/quantity.ts';
import {
  isPodResource,
  podMatchesScope,
  podUsage,
  pvcUsage,
  quotaScopes,
  STORAGE_CLASS_SUFFIX,
  serviceUsage,
} from '../api/quota.ts';
import { formatList, type ResourceList, toList } from '../api/resource-list.ts';
import type { PersistentVolumeClaim, Pod, Service } from '../api/types/core-v1.ts';
import { type ResourceName, resources } from '../client/clientset.ts';
import type { Informer } from '../client/informer.ts';
import { NAMESPACE_INDEX } from '../client/informer-factory.ts';
import type { ControllerContext, ControllerFactory } from './context.ts';
import { queueController } from './controller.ts';
import { discover } from './discovery.ts';

/** Upstream's --resource-quota-sync-period. */
export const RESOURCE_QUOTA_SYNC_PERIOD_MS = 5 * 60_000;

const ONE = newQuantity(1, 'DecimalSI');
const ZERO = newQuantity(0, 'DecimalSI');

// ---- which objects a quota name counts -----------------------------------

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

  // Informers of resources found through discovery, by `<plural>.<group>`.
  const dynamic = new Map<string, Informer<KubeObject>>();
  const dynamicInformerFor = async (resource: string): Promise<Informer<KubeObject> | undefined> => {
    const known = dynamic.get(resource);
    if (known) return known;
    const found = await discover(ctx.clients.transport);
    const ref = found.resources.find(
      (r) => r.preferred && r.namespaced && (r.group ? `${r.plural}.${r.group}` : r.plural) === resource,
    );
    if (!ref) return undefined;
    const informer = ctx.informers.forResource(ref);
    informer.on({
      add: (o) => enqueueNamespace(o.metadata.namespace),
      delete: (o) => enqueueNamespace(o.metadata.namespace),
    });
    dynamic.set(resource, informer);
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
      // count/<resource>.<group> of a resource the clientset does not know
      // (a custom resource): found through discovery, read with a dynamic informer.
      for (const name of hard.keys()) {
        if (!name.startsWith('count/') || sourceOf(name)) continue;
        const informer = await dynamicInformerFor(name.slice('count/'.length));
        if (!informer) continue;
        if (!informer.hasSynced()) {
          c.queue.addAfter(key, 200);
          return;
        }
        const count = informer.indexer.byIndex(NAMESPACE_INDEX, namespace).length;
        used.set(name, newQuantity(count, 'DecimalSI'));
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
    // Status writes are this controller's and the ResourceQuota admission
    // plugin's: recounting on them would undo a charge admission just made
    // for an object not stored yet. Only a new spec (hard, scopes) is worked
    // on; the full resync catches the rest, as upstream.
    update: (old, q) => {
      if (!jsonEqual(old.spec, q.spec)) c.queue.add(`${q.metadata.namespace}/${q.metadata.name}`);
    },
    delete: (q) => enqueueNamespace(q.metadata.namespace),
  });
  return c;
};
