// The namespace controller, as upstream's (pkg/controller/namespace and its
// deletion/namespaced_resources_deleter.go). Deleting a namespace only marks
// it (deletionTimestamp, phase Terminating; the API server refuses new
// content from then on). This controller then deletes everything in it, of
// every namespaced resource discovery lists (kinds added at run time too),
// waits until it is gone, reports progress in the namespace's conditions,
// and finally removes the `kubernetes` finalizer through /finalize, at which
// point the API server deletes the namespace.
// https://kubernetes.io/docs/tasks/administer-cluster/namespaces/#deleting-a-namespace

import { isApiError } from '../api/errors.ts';
import { deepCopy, type KubeObject, rfc3339 } from '../api/meta.ts';
import type { Namespace, NamespaceCondition, Pod } from '../api/types/core-v1.ts';
import type { ResourceClient } from '../client/client.ts';
import type { ControllerContext, ControllerFactory } from './context.ts';
import { queueController } from './controller.ts';
import { type DiscoveredResource, discover, supportsAll } from './discovery.ts';

/** The spec.finalizers entry this controller owns (upstream's FinalizerKubernetes). */
const FINALIZER_KUBERNETES = 'kubernetes';
/** How long to allow content with finalizers before looking again (upstream: 15 s). */
const FINALIZER_ESTIMATE_SECONDS = 15;
/** Terminating namespaces are looked at again this often even without events (upstream's 5-minute resync). */
const RESYNC_PERIOD_MS = 5 * 60_000;

/** The conditions a terminating namespace carries, in upstream's order, with their "all is well" forms. */
const CONDITIONS = [
  ['NamespaceDeletionDiscoveryFailure', 'ResourcesDiscovered', 'All resources successfully discovered'],
  [
    'NamespaceDeletionGroupVersionParsingFailure',
    'ParsedGroupVersions',
    'All legacy kube types successfully parsed',
  ],
  [
    'NamespaceDeletionContentFailure',
    'ContentDeleted',
    'All content successfully deleted, may be waiting on finalization',
  ],
  ['NamespaceContentRemaining', 'ContentRemoved', 'All content successfully removed'],
  ['NamespaceFinalizersRemaining', 'ContentHasNoFinalizers', 'All content-preserving finalizers finished'],
] as const;

type ConditionType = (typeof CONDITIONS)[number][0];

/** Content remains that will go by itself (graceful deletion, finalizers): look again in a while. */
class ResourcesRemainingError extends Error {
  readonly estimateSeconds: number;
  constructor(estimateSeconds: number) {
    super(`some content remains in the namespace, estimate ${estimateSeconds} seconds before it is removed`);
    this.estimateSeconds = estimateSeconds;
  }
}

interface ContentResult {
  estimateSeconds: number;
  remaining: number;
  finalizers: Map<string, number>;
}

export const namespaceController: ControllerFactory = (ctx) => {
  const namespaces = ctx.informers.informer('namespaces');
  let resync: unknown;
  // A namespace whose retries ran out (say, a resource that kept failing to
  // delete) is tried again at the next resync rather than left Terminating.
  const scheduleResync = () => {
    resync = ctx.clock.setTimeout(() => {
      for (const ns of namespaces.indexer.list()) enqueue(ns);
      scheduleResync();
    }, RESYNC_PERIOD_MS);
  };

  const c = queueController(ctx, {
    name: 'namespace',
    workers: 5,
    onRun: scheduleResync,
    onStop: () => ctx.clock.clearTimeout(resync),
    async sync(name) {
      const cached = namespaces.indexer.get(name);
      if (!cached?.metadata.deletionTimestamp) return;
      try {
        await deleteNamespace(ctx, name);
      } catch (err) {
        if (!(err instanceof ResourcesRemainingError)) throw err;
        // Upstream waits half the estimate (plus a second) before looking again.
        c.queue.addAfter(name, (err.estimateSeconds / 2 + 1) * 1000);
      }
    },
  });

  const enqueue = (ns: Namespace) => {
    if (ns.metadata.deletionTimestamp) c.queue.add(ns.metadata.name ?? '');
  };
  namespaces.on({ add: enqueue, update: (_old, ns) => enqueue(ns) });
  return c;
};

const specFinalizers = (ns: Namespace) => ns.spec?.finalizers ?? [];

/** Upstream's namespacedResourcesDeleter.Delete: one pass over a terminating namespace. */
async function deleteNamespace(ctx: ControllerContext, name: string): Promise<void> {
  const client = ctx.clients.namespaces;
  // Several controllers may edit a terminating namespace: work on the latest.
  let ns: Namespace;
  try {
    ns = await client.get(undefined, name);
    if (!ns.metadata.deletionTimestamp) return;
    ns = await ensureTerminating(ctx, ns);
  } catch (err) {
    if (isApiError(err, 'NotFound')) return;
    throw err;
  }
  if (!specFinalizers(ns).includes(FINALIZER_KUBERNETES)) {
    // Nothing for us to clean up (someone finalized it, or it never had our
    // finalizer): the namespace itself can go.
    if (specFinalizers(ns).length === 0) {
      await client.delete(undefined, name, { preconditions: { uid: ns.metadata.uid ?? '' } }).catch((err) => {
        if (!isApiError(err, 'NotFound') && !isApiError(err, 'Conflict')) throw err;
      });
    }
    return;
  }
  const estimate = await deleteAllContent(ctx, ns);
  if (estimate > 0) throw new ResourcesRemainingError(estimate);
  await finalizeNamespace(ctx, ns);
  ctx.log('namespace finalized', { controller: 'namespace', namespace: name });
}

async function ensureTerminating(ctx: ControllerContext, ns: Namespace): Promise<Namespace> {
  if (ns.status?.phase === 'Terminating') return ns;
  for (let attempt = 0; ; attempt++) {
    const next = deepCopy(ns);
    next.status = { ...next.status, phase: 'Terminating' };
    try {
      return await ctx.clients.namespaces.updateStatus(next);
    } catch (err) {
      if (!isApiError(err, 'Conflict') || attempt >= 4) throw err;
      ns = await ctx.clients.namespaces.get(undefined, ns.metadata.name ?? '');
    }
  }
}

/** Removes our finalizer through /finalize; the API server deletes the namespace when none remain. */
async function finalizeNamespace(ctx: ControllerContext, ns: Namespace): Promise<void> {
  const name = ns.metadata.name ?? '';
  for (let attempt = 0; ; attempt++) {
    const next = deepCopy(ns);
    next.spec = { ...next.spec, finalizers: specFinalizers(ns).filter((f) => f !== FINALIZER_KUBERNETES) };
    try {
      await ctx.clients.transport.request({
        method: 'PUT',
        path: `/api/v1/namespaces/${encodeURIComponent(name)}/finalize`,
        body: next,
      });
      return;
    } catch (err) {
      // Another controller sharing our finalizer finished first.
      if (isApiError(err, 'NotFound')) return;
      if (!isApiError(err, 'Conflict') || attempt >= 4) throw err;
      ns = await ctx.clients.namespaces.get(undefined, name);
    }
  }
}

/**
 * Deletes every namespaced object in the namespace, resource by resource,
 * and records how it went in the namespace's conditions. Returns how many
 * seconds to wait before the remaining content should be gone (0: it is);
 * throws if something could not be deleted or discovered.
 */
async function deleteAllContent(ctx: ControllerContext, ns: Namespace): Promise<number> {
  const namespace = ns.metadata.name ?? '';
  const deletedAt = new Date(ns.metadata.deletionTimestamp ?? 0);
  const errors: string[] = [];
  const conditions = new Map<ConditionType, NamespaceCondition>();
  const failed = (type: ConditionType, reason: string, message: string) =>
    conditions.set(type, { type, status: 'True', reason, message });

  // Discovery errors are not fatal: delete what we can see.
  const found = await discover(ctx.clients.transport);
  if (found.failed.size > 0) {
    const groups = [...found.failed].map(([gv, why]) => `${gv}: ${why}`).sort();
    const message =
      `Discovery failed for some groups, ${groups.length} failing: ` +
      `unable to retrieve the complete list of server APIs: ${groups.join(', ')}`;
    errors.push(message);
    failed('NamespaceDeletionDiscoveryFailure', 'DiscoveryFailed', message);
  }
  const deletable = found.resources.filter((r) => r.preferred && r.namespaced && supportsAll(r, ['delete']));

  let estimate = 0;
  const contentErrors: string[] = [];
  const remaining: string[] = [];
  const finalizers = new Map<string, number>();
  for (const r of deletable) {
    let result: ContentResult;
    try {
      result = await deleteAllContentFor(ctx, r, namespace, deletedAt);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      contentErrors.push(message);
      const est = (err as { estimateSeconds?: number }).estimateSeconds ?? 0;
      estimate = Math.max(estimate, est);
      continue;
    }
    estimate = Math.max(estimate, result.estimateSeconds);
    if (result.remaining > 0) {
      remaining.push(`${r.plural}.${r.group} has ${result.remaining} resource instances`);
      for (const [f, n] of result.finalizers) finalizers.set(f, (finalizers.get(f) ?? 0) + n);
    }
  }
  if (contentErrors.length > 0) {
    const aggregate = contentErrors.length === 1 ? contentErrors[0] : `[${contentErrors.join(', ')}]`;
    errors.push(aggregate ?? '');
    failed(
      'NamespaceDeletionContentFailure',
      'ContentDeletionFailed',
      `Failed to delete all resource types, ${contentErrors.length} remaining: ${aggregate}`,
    );
  }
  if (remaining.length > 0) {
    failed(
      'NamespaceContentRemaining',
      'SomeResourcesRemain',
      `Some resources are remaining: ${remaining.sort().join(', ')}`,
    );
  }
  if (finalizers.size > 0) {
    const byFinalizer = [...finalizers].map(([f, n]) => `${f} in ${n} resource instances`).sort();
    failed(
      'NamespaceFinalizersRemaining',
      'SomeFinalizersRemain',
      `Some content in the namespace has finalizers remaining: ${byFinalizer.join(', ')}`,
    );
  }
  await updateConditions(ctx, ns, conditions);
  if (errors.length > 0) throw new Error(errors.join('; '));
  return estimate;
}

/**
 * Writes the conditions when any changed, as upstream always does: a
 * condition that went from "failing" back to "fine" must say so too.
 */
async function updateConditions(
  ctx: ControllerContext,
  ns: Namespace,
  failing: Map<ConditionType, NamespaceCondition>,
): Promise<void> {
  const next = deepCopy(ns);
  const list = next.status?.conditions ?? [];
  let changed = false;
  for (const [type, okReason, okMessage] of CONDITIONS) {
    const want = failing.get(type) ?? { type, status: 'False', reason: okReason, message: okMessage };
    const i = list.findIndex((c) => c.type === type);
    const old = list[i];
    if (old && old.status === want.status && old.reason === want.reason && old.message === want.message)
      continue;
    const condition = { ...want, lastTransitionTime: rfc3339(ctx.now()) };
    if (i < 0) list.push(condition);
    else list[i] = condition;
    changed = true;
  }
  if (!changed) return;
  next.status = { ...next.status, conditions: list };
  try {
    await ctx.clients.namespaces.updateStatus(next);
  } catch (err) {
    // Best effort, as upstream: the next pass writes them again.
    ctx.log.warn("couldn't update status conditions", { namespace: ns.metadata.name, error: String(err) });
  }
}

/** Upstream's deleteAllContentForGroupVersionResource. */
async function deleteAllContentFor(
  ctx: ControllerContext,
  r: DiscoveredResource,
  namespace: string,
  deletedAt: Date,
): Promise<ContentResult> {
  const client = ctx.clients.forResource(r) as ResourceClient<KubeObject>;
  const estimateSeconds = await estimateGracefulTermination(ctx, r, namespace, deletedAt);
  const fail = (message: string) => Object.assign(new Error(message), { estimateSeconds });
  try {
    // Dependents go in the background: the garbage collector takes care of
    // what they own in other resources.
    if (supportsAll(r, ['deletecollection'])) {
      await ctx.clients.transport.request({
        method: 'DELETE',
        path: client.path(namespace),
        body: { kind: 'DeleteOptions', apiVersion: 'v1', propagationPolicy: 'Background' },
      });
    } else if (supportsAll(r, ['list'])) {
      for (const item of (await client.list(namespace)).items) {
        await client
          .delete(namespace, item.metadata.name ?? '', { propagationPolicy: 'Background' })
          .catch((err) => {
            if (!isApiError(err, 'NotFound')) throw err;
          });
      }
    }
  } catch (err) {
    if (!isApiError(err, 'NotFound') && !isApiError(err, 'MethodNotAllowed')) throw fail(String(err));
  }
  if (!supportsAll(r, ['list'])) return { estimateSeconds, remaining: 0, finalizers: new Map() };
  let items: KubeObject[];
  try {
    items = (await client.list(namespace)).items;
  } catch (err) {
    if (isApiError(err, 'NotFound')) return { estimateSeconds, remaining: 0, finalizers: new Map() };
    throw fail(String(err));
  }
  const finalizers = new Map<string, number>();
  for (const item of items)
    for (const f of item.metadata.finalizers ?? []) finalizers.set(f, (finalizers.get(f) ?? 0) + 1);
  if (items.length === 0) return { estimateSeconds: 0, remaining: 0, finalizers };
  // Not an error while pods may still be in their grace period.
  if (estimateSeconds > 0) return { estimateSeconds, remaining: items.length, finalizers };
  // Content held by finalizers is normal: allow time for their controllers.
  if (finalizers.size > 0)
    return { estimateSeconds: FINALIZER_ESTIMATE_SECONDS, remaining: items.length, finalizers };
  throw fail(
    `unexpected items still remain in namespace: ${namespace} for gvr: ${r.group}/${r.version}, Resource=${r.plural}`,
  );
}

/**
 * Pods may take their grace period to go (their kubelet stops them first):
 * the longest grace period of the pods still running, unless that much time
 * has passed since the namespace was deleted.
 */
async function estimateGracefulTermination(
  ctx: ControllerContext,
  r: DiscoveredResource,
  namespace: string,
  deletedAt: Date,
): Promise<number> {
  if (r.group !== '' || r.plural !== 'pods') return 0;
  let estimate = 0;
  for (const pod of (await ctx.clients.pods.list(namespace)).items as Pod[]) {
    const phase = pod.status?.phase;
    if (phase === 'Succeeded' || phase === 'Failed') continue;
    estimate = Math.max(estimate, pod.spec?.terminationGracePeriodSeconds ?? 0);
  }
  const elapsedSeconds = (ctx.now().getTime() - deletedAt.getTime()) / 1000;
  return elapsedSeconds >= estimate ? 0 : estimate;
}
