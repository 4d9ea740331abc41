// The garbage collector, as upstream's (pkg/controller/garbagecollector/
// garbagecollector.go and operations.go): deletes objects whose every owner is
// gone, carries out foreground deletion (dependents first, then the owner) and
// orphaning (dependents lose the ownerReference, the owner goes).
//
// It watches every resource discovery says can be listed, watched and deleted
// (not just the kinds Skiff knows at build time), feeds the events into the
// dependency graph (garbagecollector-graph.ts), and runs two work queues as
// upstream does:
// - attemptToDelete: is this object garbage? Decided on the live object and
//   live GETs of its owners, never on the cache alone, because a lagging
//   cache must never make the collector delete something that has an owner.
// - attemptToOrphan: an owner deleted with the `orphan` finalizer; remove its
//   ownerReference from every dependent, then the finalizer.
// https://kubernetes.io/docs/concepts/architecture/garbage-collection/

import { isApiError } from '../api/errors.ts';
import { jsonEqual, type KubeObject, type OwnerReference } from '../api/meta.ts';
import type { ResourceClient } from '../client/client.ts';
import { type ResourceName, resources } from '../client/clientset.ts';
import { createInformer, type Informer } from '../client/informer.ts';
import { createWorkQueue, type WorkQueue } from '../client/workqueue.ts';
import type { Controller, ControllerFactory } from './context.ts';
import { apiVersionOf, type DiscoveredResource, discover, restMapper, supportsAll } from './discovery.ts';
import {
  DependencyGraph,
  FINALIZER_FOREGROUND,
  FINALIZER_ORPHAN,
  type GraphNode,
  type ObjectIdentity,
} from './garbagecollector-graph.ts';

/** Upstream's default ignoredResources: events never own anything and churn a lot. */
const IGNORED_RESOURCES = new Set(['/events', 'events.k8s.io/events']);
/** How often discovery is read again to pick up added and removed kinds (upstream: 30 s). */
const RESYNC_PERIOD_MS = 30_000;
/** An unknown kind in an ownerReference reads discovery again, at most this often. */
const REDISCOVERY_MIN_INTERVAL_MS = 1_000;
/** How long to wait for new monitors' caches before working anyway (upstream: the resync period). */
const CACHE_SYNC_TIMEOUT_MS = 30_000;
/** Upstream's --concurrent-gc-syncs is 20; two queues share the work here. */
const WORKERS = 5;

/** The worker found the object gone and told the graph; nothing to retry. */
const ENQUEUED_VIRTUAL_DELETE = new Error('enqueued virtual delete event');
/** Will not resolve on retry: an ownerReference has no namespace to look a namespaced owner up in. */
const NAMESPACED_OWNER_OF_CLUSTER_SCOPED = new Error(
  'cluster-scoped objects cannot refer to namespaced owners',
);

/** An ownerReference whose apiVersion/kind discovery does not know (yet): retried. */
class RestMappingError extends Error {
  constructor(apiVersion: string, kind: string) {
    super(`unable to get REST mapping for ${apiVersion}/${kind}.`);
  }
}

interface Monitor {
  resource: DiscoveredResource;
  informer: Informer<KubeObject>;
  /** Ours to stop (not a shared informer of the factory). */
  own: boolean;
  active: boolean;
}

type Action = 'forget' | 'requeue';

const resourceKey = (r: { group: string; plural: string }) => `${r.group}/${r.plural}`;
const hasFinalizer = (obj: KubeObject, f: string) => (obj.metadata.finalizers ?? []).includes(f);
// Upstream's objectReference.String(), as its messages print it.
const describe = (i: ObjectIdentity) =>
  `[${i.apiVersion}/${i.kind}, namespace: ${i.namespace}, name: ${i.name}, uid: ${i.uid}]`;

export const garbageCollectorController: ControllerFactory = (ctx) => {
  const name = 'garbagecollector';
  const log = ctx.log.with({ controller: name });
  const recorder = ctx.recorder('garbage-collector-controller');
  const attemptToDelete = createWorkQueue<string>({
    name: 'garbage_collector_attempt_to_delete',
    clock: ctx.clock,
    ...(ctx.queueMetrics ? { metrics: ctx.queueMetrics('garbage_collector_attempt_to_delete') } : {}),
  });
  const attemptToOrphan = createWorkQueue<string>({
    name: 'garbage_collector_attempt_to_orphan',
    clock: ctx.clock,
    ...(ctx.queueMetrics ? { metrics: ctx.queueMetrics('garbage_collector_attempt_to_orphan') } : {}),
  });
  const monitors = new Map<string, Monitor>();
  let mapper: ReturnType<typeof restMapper> = () => undefined;
  let stopped = false;
  let resyncTimer: unknown;
  let lastDiscovery = 0;
  const workers: Promise<void>[] = [];
  let onStop = () => {};
  const stopping = new Promise<void>((r) => {
    onStop = r;
  });

  // Queues hold uids: the graph's current node for a uid is what a worker sees.
  const graph = new DependencyGraph({
    attemptToDelete: (n) => attemptToDelete.add(n.identity.uid),
    attemptToOrphan: (n) => attemptToOrphan.add(n.identity.uid),
    invalidNamespaceOwnerRef(dep, ref) {
      const invalid = { ...ref, namespace: dep.identity.namespace };
      recorder.event(
        {
          apiVersion: dep.identity.apiVersion,
          kind: dep.identity.kind,
          metadata: { name: dep.identity.name, namespace: dep.identity.namespace, uid: dep.identity.uid },
        },
        'Warning',
        'OwnerRefInvalidNamespace',
        `ownerRef ${describe(invalid)} does not resolve to a valid object in namespace ${dep.identity.namespace}. ` +
          'This is invalid and will be ignored by the garbage collector.',
      );
    },
  });

  const resolve = (apiVersion: string, kind: string): DiscoveredResource => {
    const r = mapper(apiVersion, kind);
    if (!r) {
      // A kind added since the last discovery: look again soon.
      if (ctx.clock.now() - lastDiscovery > REDISCOVERY_MIN_INTERVAL_MS)
        void resyncMonitors().catch((err) =>
          log.warn('garbage collector discovery failed', { error: String(err) }),
        );
      throw new RestMappingError(apiVersion, kind);
    }
    return r;
  };
  const clientFor = (r: DiscoveredResource) => ctx.clients.forResource(r) as ResourceClient<KubeObject>;

  // ---- monitors: one informer per deletable resource ----

  const sharedInformerName = (r: DiscoveredResource): ResourceName | undefined =>
    (Object.keys(resources) as ResourceName[]).find((n) => {
      const ref = resources[n];
      return ref.group === r.group && ref.version === r.version && ref.plural === r.plural;
    });

  const startMonitor = (r: DiscoveredResource): Promise<void> => {
    const key = resourceKey(r);
    const existing = monitors.get(key);
    if (existing?.active && existing.resource.version === r.version) return Promise.resolve();
    if (existing?.own) existing.informer.stop();
    const apiVersion = apiVersionOf(r);
    const kind = r.kind;
    const shared = sharedInformerName(r);
    if (existing && !existing.own && shared) {
      // A shared informer keeps its handlers; replay what it holds.
      existing.active = true;
      for (const obj of existing.informer.indexer.list())
        graph.process({ type: 'add', obj, apiVersion, kind });
      return waitForSync(existing.informer);
    }
    const informer = shared
      ? (ctx.informers.informer(shared) as unknown as Informer<KubeObject>)
      : createInformer(clientFor(r), { log: (msg, fields) => log.warn(msg, fields) });
    const m: Monitor = { resource: r, informer, own: !shared, active: true };
    monitors.set(key, m);
    informer.on({
      add: (obj) => m.active && graph.process({ type: 'add', obj, apiVersion, kind }),
      update: (old, obj) => m.active && graph.process({ type: 'update', obj, old, apiVersion, kind }),
      delete: (obj) => m.active && graph.process({ type: 'delete', obj, apiVersion, kind }),
    });
    if (shared) {
      // Handlers added to a running shared informer see only later events.
      for (const obj of informer.indexer.list()) graph.process({ type: 'add', obj, apiVersion, kind });
      return waitForSync(informer);
    }
    return informer.start();
  };

  const waitForSync = async (informer: Informer<KubeObject>) => {
    while (!informer.hasSynced() && !stopped) await new Promise((r) => setTimeout(r, 20));
  };

  /**
   * Reads discovery and starts a monitor for every resource that can be
   * listed, watched and deleted (upstream's GetDeletableResources, preferred
   * versions only). Monitors of resources that disappeared stop; those of
   * groups whose discovery failed are kept, as upstream does.
   */
  const resyncMonitors = async (): Promise<Promise<void>[]> => {
    lastDiscovery = ctx.clock.now();
    const found = await discover(ctx.clients.transport);
    if (stopped) return [];
    mapper = restMapper(found.resources);
    const deletable = found.resources.filter(
      (r) =>
        r.preferred && supportsAll(r, ['delete', 'list', 'watch']) && !IGNORED_RESOURCES.has(resourceKey(r)),
    );
    if (deletable.length === 0) throw new Error('discovery found no deletable resources');
    const wanted = new Set(deletable.map(resourceKey));
    const failedGroups = new Set(
      [...found.failed.keys()].map((gv) => (gv.includes('/') ? gv.split('/')[0] : '')),
    );
    for (const [key, m] of monitors) {
      if (wanted.has(key) || failedGroups.has(m.resource.group) || !m.active) continue;
      m.active = false;
      if (m.own) {
        m.informer.stop();
        monitors.delete(key);
      }
      log('stopped monitoring a removed resource', { resource: key });
    }
    return deletable.map((r) => startMonitor(r));
  };

  const withTimeout = (p: Promise<unknown>, ms: number) =>
    Promise.race([p, stopping, new Promise((r) => setTimeout(r, ms).unref())]);

  const scheduleResync = () => {
    if (stopped) return;
    resyncTimer = ctx.clock.setTimeout(async () => {
      try {
        await Promise.all(await resyncMonitors());
      } catch (err) {
        log.warn('garbage collector discovery failed', { error: String(err) });
      }
      scheduleResync();
    }, RESYNC_PERIOD_MS);
  };

  // ---- attemptToDelete ----

  /** The live object, undefined if it is not there. */
  const getObject = async (i: ObjectIdentity): Promise<KubeObject | undefined> => {
    const r = resolve(i.apiVersion, i.kind);
    if (r.namespaced && !i.namespace) throw NAMESPACED_OWNER_OF_CLUSTER_SCOPED;
    try {
      return await clientFor(r).get(r.namespaced ? i.namespace : undefined, i.name);
    } catch (err) {
      if (isApiError(err, 'NotFound')) return undefined;
      throw err;
    }
  };

  /**
   * Is the owner this reference names absent? Checked with a live GET in the
   * dependent's namespace (ownerReferences carry none), as upstream's
   * isDangling: an object of that name with another uid is a different
   * object, so the owner counts as absent.
   */
  const isDangling = async (
    ref: OwnerReference,
    item: GraphNode,
  ): Promise<{ dangling: true } | { dangling: false; owner: KubeObject }> => {
    const coordinates: ObjectIdentity = { ...ref, namespace: '' };
    if (graph.absentOwnerCache.has(coordinates)) return { dangling: true };
    coordinates.namespace = item.identity.namespace;
    if (graph.absentOwnerCache.has(coordinates)) return { dangling: true };
    const r = resolve(ref.apiVersion, ref.kind);
    if (!r.namespaced) coordinates.namespace = '';
    if (!item.identity.namespace && r.namespaced) throw NAMESPACED_OWNER_OF_CLUSTER_SCOPED;
    let owner: KubeObject;
    try {
      owner = await clientFor(r).get(r.namespaced ? item.identity.namespace : undefined, ref.name);
    } catch (err) {
      if (!isApiError(err, 'NotFound')) throw err;
      graph.absentOwnerCache.add(coordinates);
      return { dangling: true };
    }
    if (owner.metadata.uid !== ref.uid) {
      graph.absentOwnerCache.add(coordinates);
      return { dangling: true };
    }
    return { dangling: false, owner };
  };

  /**
   * Rewrites the live object's ownerReferences with `edit` (undefined: leave
   * them). A merge patch carrying the resourceVersion read, so a concurrent
   * change makes it fail with a conflict and the worker tries again.
   */
  const patchOwnerReferences = async (
    i: ObjectIdentity,
    edit: (refs: OwnerReference[]) => OwnerReference[] | undefined,
  ): Promise<KubeObject | undefined> => {
    const live = await getObject(i);
    if (!live || live.metadata.uid !== i.uid) return undefined;
    const next = edit(live.metadata.ownerReferences ?? []);
    if (!next) return live;
    const r = resolve(i.apiVersion, i.kind);
    try {
      return await clientFor(r).patch(r.namespaced ? i.namespace : undefined, i.name, 'merge', {
        metadata: {
          uid: i.uid,
          resourceVersion: live.metadata.resourceVersion,
          ownerReferences: next.length ? next : null,
        },
      });
    } catch (err) {
      if (!isApiError(err, 'NotFound')) throw err;
      return undefined;
    }
  };

  const deleteOwnerReferences = (i: ObjectIdentity, uids: Set<string>) =>
    patchOwnerReferences(i, (refs) =>
      refs.some((r) => uids.has(r.uid)) ? refs.filter((r) => !uids.has(r.uid)) : undefined,
    );

  /**
   * Deletes the object with the uid and resourceVersion it was judged on. If
   * only something other than its ownerReferences changed meanwhile, the
   * verdict still holds: delete with the uid alone (upstream does the same so
   * a busy object cannot starve the collector).
   */
  const deleteObject = async (
    i: ObjectIdentity,
    latest: KubeObject,
    policy: 'Orphan' | 'Foreground' | 'Background',
  ) => {
    const r = resolve(i.apiVersion, i.kind);
    const client = clientFor(r);
    const ns = r.namespaced ? i.namespace : undefined;
    try {
      await client.delete(ns, i.name, {
        propagationPolicy: policy,
        preconditions: { uid: i.uid, resourceVersion: latest.metadata.resourceVersion ?? '' },
      });
    } catch (err) {
      if (isApiError(err, 'NotFound')) return;
      if (!isApiError(err, 'Conflict')) throw err;
      const now = await getObject(i);
      if (!now || now.metadata.uid !== i.uid) return;
      if (!jsonEqual(now.metadata.ownerReferences ?? [], latest.metadata.ownerReferences ?? [])) throw err;
      await client
        .delete(ns, i.name, { propagationPolicy: policy, preconditions: { uid: i.uid } })
        .catch((e) => {
          if (!isApiError(e, 'NotFound')) throw e;
        });
    }
  };

  /** Removes one finalizer from the live object, retrying conflicts as upstream's removeFinalizer. */
  const removeFinalizer = async (i: ObjectIdentity, finalizer: string) => {
    for (let attempt = 0; ; attempt++) {
      const live = await getObject(i);
      if (!live || live.metadata.uid !== i.uid || !hasFinalizer(live, finalizer)) return;
      const rest = (live.metadata.finalizers ?? []).filter((f) => f !== finalizer);
      const r = resolve(i.apiVersion, i.kind);
      try {
        await clientFor(r).patch(r.namespaced ? i.namespace : undefined, i.name, 'merge', {
          metadata: { resourceVersion: live.metadata.resourceVersion, finalizers: rest.length ? rest : null },
        });
        log('removed finalizer', { object: describe(i), finalizer });
        return;
      } catch (err) {
        if (isApiError(err, 'NotFound')) return;
        if (!isApiError(err, 'Conflict') || attempt >= 4) throw err;
      }
    }
  };

  // An owner deleting in the foreground: once no dependent blocks it, the
  // foregroundDeletion finalizer comes off and the API server deletes it.
  // Until then, every blocking dependent is looked at (and deleted).
  const processDeletingDependentsItem = async (item: GraphNode) => {
    const blocking = graph.blockingDependents(item);
    if (blocking.length === 0) {
      await removeFinalizer(item.identity, FINALIZER_FOREGROUND);
      return;
    }
    for (const dep of blocking) if (!dep.deletingDependents) attemptToDelete.add(dep.identity.uid);
  };

  const attemptToDeleteItem = async (item: GraphNode): Promise<void> => {
    // Being deleted is a one-way trip: wait for the final delete event.
    if (item.beingDeleted && !item.deletingDependents) return;
    const latest = await getObject(item.identity);
    if (!latest || latest.metadata.uid !== item.identity.uid) {
      graph.process({ type: 'virtualDelete', identity: item.identity });
      throw ENQUEUED_VIRTUAL_DELETE;
    }
    if (item.deletingDependents) return processDeletingDependentsItem(item);
    const refs = latest.metadata.ownerReferences ?? [];
    if (refs.length === 0) return;

    const solid: OwnerReference[] = [];
    const dangling: OwnerReference[] = [];
    const waitingForDependentsDeletion: OwnerReference[] = [];
    for (const ref of refs) {
      const verdict = await isDangling(ref, item);
      if (verdict.dangling) dangling.push(ref);
      else if (verdict.owner.metadata.deletionTimestamp && hasFinalizer(verdict.owner, FINALIZER_FOREGROUND))
        waitingForDependentsDeletion.push(ref);
      else solid.push(ref);
    }

    if (solid.length > 0) {
      // Some owner remains, so the object stays. References to absent owners
      // go, and so do those to owners waiting for their dependents (or they
      // would wait for this one forever).
      if (dangling.length === 0 && waitingForDependentsDeletion.length === 0) return;
      const uids = new Set([...dangling, ...waitingForDependentsDeletion].map((r) => r.uid));
      await deleteOwnerReferences(item.identity, uids);
      return;
    }
    if (waitingForDependentsDeletion.length > 0 && item.dependents.size > 0) {
      // An owner is deleting in the foreground and this object has dependents
      // of its own: delete it in the foreground too. If one of its dependents
      // is also deleting its dependents we may be in a cycle (A owns B owns A);
      // unblock our references first so neither waits for the other.
      let current: KubeObject | undefined = latest;
      if ([...item.dependents].some((dep) => dep.deletingDependents)) {
        current = await patchOwnerReferences(item.identity, (refs) =>
          refs.some((r) => r.blockOwnerDeletion)
            ? refs.map((r) => (r.blockOwnerDeletion ? { ...r, blockOwnerDeletion: false } : r))
            : undefined,
        );
        if (!current) return;
      }
      await deleteObject(item.identity, current, 'Foreground');
      return;
    }
    // No owner remains: garbage. Honour a propagation finalizer already on it.
    const policy = hasFinalizer(latest, FINALIZER_ORPHAN)
      ? 'Orphan'
      : hasFinalizer(latest, FINALIZER_FOREGROUND)
        ? 'Foreground'
        : 'Background';
    log('deleting garbage', { object: describe(item.identity), propagationPolicy: policy });
    await deleteObject(item.identity, latest, policy);
  };

  const attemptToDeleteWorker = async (uid: string): Promise<Action> => {
    const n = graph.uidToNode.get(uid);
    if (!n) return 'forget';
    try {
      await attemptToDeleteItem(n);
    } catch (err) {
      if (err === ENQUEUED_VIRTUAL_DELETE || err === NAMESPACED_OWNER_OF_CLUSTER_SCOPED) return 'forget';
      if (!(err instanceof RestMappingError) && !isApiError(err, 'Conflict'))
        log.warn('garbage collection failed, will retry', {
          object: describe(n.identity),
          error: String(err),
        });
      return 'requeue';
    }
    // A virtual node whose object exists but has not reached our informer
    // yet: look again later, or it could stay in the graph forever (upstream
    // issue 56121).
    return n.observed ? 'forget' : 'requeue';
  };

  // ---- attemptToOrphan ----

  const attemptToOrphanWorker = async (uid: string): Promise<Action> => {
    const owner = graph.uidToNode.get(uid);
    if (!owner) return 'forget';
    try {
      const only = new Set([uid]);
      const results = await Promise.allSettled(
        [...owner.dependents].map((dep) => deleteOwnerReferences(dep.identity, only)),
      );
      const failed = results.find((r) => r.status === 'rejected');
      if (failed) throw (failed as PromiseRejectedResult).reason;
      await removeFinalizer(owner.identity, FINALIZER_ORPHAN);
      return 'forget';
    } catch (err) {
      if (!isApiError(err, 'Conflict'))
        log.warn('orphaning dependents failed, will retry', {
          owner: describe(owner.identity),
          error: String(err),
        });
      return 'requeue';
    }
  };

  // ---- workers ----

  // Upstream's GC queues never give up on an item (rate-limited requeues
  // without a cap): an object must not stay garbage because of a bad minute.
  const runWorker = async (queue: WorkQueue<string>, work: (key: string) => Promise<Action>) => {
    for (;;) {
      const item = await queue.get();
      if (item.shutdown) return;
      try {
        if ((await work(item.key)) === 'forget') queue.forget(item.key);
        else queue.addRateLimited(item.key);
      } finally {
        queue.done(item.key);
      }
    }
  };

  const start = async () => {
    for (;;) {
      try {
        const syncs = await resyncMonitors();
        const synced = await withTimeout(
          Promise.all(syncs).then(() => true),
          CACHE_SYNC_TIMEOUT_MS,
        );
        if (!synced) log.warn('timed out waiting for the garbage collector caches to sync; starting anyway');
        break;
      } catch (err) {
        log.warn('garbage collector discovery failed, will retry', { error: String(err) });
        await new Promise((r) => setTimeout(r, 1_000).unref());
      }
      if (stopped) return;
    }
    if (stopped) return;
    for (let i = 0; i < WORKERS; i++) {
      workers.push(runWorker(attemptToDelete, attemptToDeleteWorker));
      workers.push(runWorker(attemptToOrphan, attemptToOrphanWorker));
    }
    log('garbage collector synced', { monitors: [...monitors.keys()].length });
    scheduleResync();
  };

  let starting: Promise<void> | undefined;
  const controller: Controller = {
    name,
    run() {
      starting = start();
    },
    async stop() {
      stopped = true;
      onStop();
      if (resyncTimer !== undefined) ctx.clock.clearTimeout(resyncTimer);
      attemptToDelete.shutDown();
      attemptToOrphan.shutDown();
      for (const m of monitors.values()) if (m.own) m.informer.stop();
      await starting;
      await Promise.all(workers);
    },
  };
  return controller;
};
