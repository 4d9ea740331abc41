// The ReplicaSet controller (upstream's replicaset-controller,
// pkg/controller/replicaset/replica_set.go): keeps `spec.replicas` active pods
// matching each ReplicaSet's selector, creating them from the template or
// deleting the extra ones, and reports what it sees in the status.
//
// The ReplicationController controller (replicationcontroller.ts) is the same
// machine with a map selector and a core/v1 owner, as upstream's
// pkg/controller/replication is an adapter around this one; so everything
// here is written against `ReplicaSetLike` and a `ReplicaSetKind` saying
// which of the two it drives.
//
// How it stays correct with a cache that lags the API server:
// - Expectations (expectations.ts): after creating or deleting N pods the
//   controller waits to see N watch events before it trusts its pod cache
//   again, so it never creates a pod twice for one missing replica.
// - Ownership (ownership.ts): it only counts pods whose controller
//   ownerReference is this ReplicaSet, adopting matching orphans first and
//   releasing pods whose labels stopped matching.

import { isApiError } from '../api/errors.ts';
import {
  type LabelSelector,
  type Selector,
  selectorFromLabelSelector,
  selectorFromSet,
} from '../api/labels.ts';
import { deepCopy, jsonEqual, type KubeObject, type OwnerReference, rfc3339 } from '../api/meta.ts';
import { isPodActive, isPodAvailable, isPodReady, readyCondition } from '../api/pod-util.ts';
import type { ReplicaSet, ReplicaSetCondition, ReplicaSetStatus } from '../api/types/apps-v1.ts';
import type { Pod, PodTemplateSpec } from '../api/types/core-v1.ts';
import type { ResourceClient } from '../client/client.ts';
import type { Informer } from '../client/informer.ts';
import { CONTROLLER_INDEX, NAMESPACE_INDEX } from '../client/informer-factory.ts';
import { type ControllerContext, type ControllerFactory, keyOf, splitKey } from './context.ts';
import { type QueueController, queueController } from './controller.ts';
import { Expectations } from './expectations.ts';
import { claimObjects, controllerRefOf, ownerRef } from './ownership.ts';

/** What a ReplicaSet and a ReplicationController have in common. */
export type ReplicaSetLike = KubeObject & {
  spec?: { replicas?: number; minReadySeconds?: number; template?: PodTemplateSpec };
  status?: ReplicaSetStatus;
};

/** Which kind a replica-set-like controller drives. */
export interface ReplicaSetKind<T extends ReplicaSetLike> {
  /** The controller's name in the manager (`replicaset`, `replicationcontroller`). */
  name: string;
  /** The event source (`replicaset-controller`, `replication-controller`). */
  component: string;
  resource: 'replicaSets' | 'replicationControllers';
  apiVersion: string;
  kind: string;
  /** The owner's pod selector; throws if it cannot be parsed. */
  selectorOf(owner: T): Selector;
}

/**
 * Most pods created or deleted in one sync (upstream's BurstReplicas), so one
 * huge scale-up does not hold a worker or flood the API server; the next sync
 * does the rest.
 */
export const BURST_REPLICAS = 500;

/** The first slow-start batch (upstream's SlowStartInitialBatchSize). */
export const SLOW_START_INITIAL_BATCH_SIZE = 1;

/** The annotation users set to pick which pods go first on scale-down (PodDeletionCost). */
export const POD_DELETION_COST_ANNOTATION = 'controller.kubernetes.io/pod-deletion-cost';

/** The status condition set when pods cannot be created or deleted. */
export const REPLICA_FAILURE = 'ReplicaFailure';

export const replicaSetKind: ReplicaSetKind<ReplicaSet> = {
  name: 'replicaset',
  component: 'replicaset-controller',
  resource: 'replicaSets',
  apiVersion: 'apps/v1',
  kind: 'ReplicaSet',
  selectorOf: (rs) => selectorFromLabelSelector(rs.spec?.selector as LabelSelector | undefined),
};

export const replicaSetController: ControllerFactory = (ctx) => replicaSetLikeController(ctx, replicaSetKind);

// ---- pod helpers (upstream's pkg/api/v1/pod and controller_utils.go) ----

/** Not finished and not being deleted: the pods that count towards `replicas` (IsPodActive). */
export { isPodActive, isPodAvailable, isPodReady };

// ---- which pods to delete first (controller_utils.go ActivePodsWithRanks) ----

/** Pending before Unknown before Running: the earlier a pod is in its life, the cheaper to lose. */
const PHASE_ORDER: Record<string, number> = { Pending: 0, Unknown: 1, Running: 2 };

/** The pod-deletion-cost annotation as an int32; missing or invalid counts as 0. */
export function podDeletionCost(pod: Pod): number {
  const v = pod.metadata.annotations?.[POD_DELETION_COST_ANNOTATION];
  if (v === undefined || !/^[+-]?[0-9]+$/.test(v)) return 0;
  const n = Number(v);
  return n < -(2 ** 31) || n > 2 ** 31 - 1 ? 0 : n;
}

const timeOf = (t: string | null | undefined): number => {
  const ms = t ? Date.parse(t) : Number.NaN;
  return Number.isNaN(ms) ? 0 : ms;
};

const podReadyTime = (pod: Pod): number =>
  isPodReady(pod) ? timeOf(readyCondition(pod)?.lastTransitionTime) : 0;

const maxContainerRestarts = (pod: Pod): number =>
  Math.max(0, ...(pod.status?.containerStatuses ?? []).map((c) => c.restartCount ?? 0));

/** True if t1 is after t2; a zero (unknown) time counts as after any other. */
const afterOrZero = (t1: number, t2: number): boolean => (t1 === 0 || t2 === 0 ? t1 === 0 : t1 > t2);

/**
 * Compares how long ago two times were on a log2 scale (nanoseconds, as
 * upstream), so pods of about the same age are treated as equals and ties go
 * to a random-ish pick (the uid) rather than always the newest: that is
 * upstream's LogarithmicScaleDown, which spreads deletions across ages.
 */
function logarithmicRankDiff(t1: number, t2: number, now: number): number {
  const rank = (t: number) => {
    const d = (now - t) * 1e6;
    return d > 0 ? Math.floor(Math.log2(d)) : -1;
  };
  return rank(t1) - rank(t2);
}

function newerFirst(t1: number, t2: number, uid1: string, uid2: string, now: number): boolean {
  if (now === 0 || t1 === 0 || t2 === 0) return afterOrZero(t1, t2);
  const diff = logarithmicRankDiff(t1, t2, now);
  if (diff === 0) return uid1 < uid2;
  return diff < 0;
}

/**
 * True when pod `a` should be deleted before pod `b`, as upstream's
 * ActivePodsWithRanks.Less: unscheduled before scheduled, Pending before
 * Unknown before Running, not ready before ready, lower deletion cost first,
 * more pods of the same owner on its node first (`rank`), ready for less
 * time first, more restarts first, newer first.
 * https://github.com/kubernetes/kubernetes/blob/master/pkg/controller/controller_utils.go
 */
export function deletesBefore(a: Pod, rankA: number, b: Pod, rankB: number, now: Date): boolean {
  // 1. Unassigned < assigned.
  const nodeA = a.spec?.nodeName ?? '';
  const nodeB = b.spec?.nodeName ?? '';
  if (nodeA !== nodeB && (nodeA === '' || nodeB === '')) return nodeA === '';
  // 2. Pending < Unknown < Running.
  const phaseA = PHASE_ORDER[a.status?.phase ?? ''] ?? 0;
  const phaseB = PHASE_ORDER[b.status?.phase ?? ''] ?? 0;
  if (phaseA !== phaseB) return phaseA < phaseB;
  // 3. Not ready < ready.
  const readyA = isPodReady(a);
  if (readyA !== isPodReady(b)) return !readyA;
  // 4. Lower pod-deletion-cost < higher.
  const costA = podDeletionCost(a);
  const costB = podDeletionCost(b);
  if (costA !== costB) return costA < costB;
  // 5. Doubled up (more related pods on the same node) < not.
  if (rankA !== rankB) return rankA > rankB;
  const uidA = a.metadata.uid ?? '';
  const uidB = b.metadata.uid ?? '';
  // 6. Ready for a shorter time < longer.
  if (readyA && isPodReady(b)) {
    const ta = podReadyTime(a);
    const tb = podReadyTime(b);
    if (ta !== tb) return newerFirst(ta, tb, uidA, uidB, now.getTime());
  }
  // 7. More container restarts < fewer.
  const restartsA = maxContainerRestarts(a);
  const restartsB = maxContainerRestarts(b);
  if (restartsA !== restartsB) return restartsA > restartsB;
  // 8. Newer < older.
  const createdA = timeOf(a.metadata.creationTimestamp);
  const createdB = timeOf(b.metadata.creationTimestamp);
  if (createdA !== createdB) return newerFirst(createdA, createdB, uidA, uidB, now.getTime());
  return false;
}

/**
 * The `diff` pods to delete, in order. Each pod's rank is how many active pods
 * related to its owner (its own and those of ReplicaSets under the same
 * Deployment) share its node, so scale-down evens out the spread.
 * As upstream's getPodsToDelete and getPodsRankedByRelatedPodsOnSameNode.
 */
export function getPodsToDelete(filteredPods: Pod[], relatedPods: Pod[], diff: number, now: Date): Pod[] {
  if (diff >= filteredPods.length) return filteredPods.slice(0, diff);
  const podsOnNode = new Map<string, number>();
  for (const pod of relatedPods) {
    if (!isPodActive(pod)) continue;
    const node = pod.spec?.nodeName ?? '';
    podsOnNode.set(node, (podsOnNode.get(node) ?? 0) + 1);
  }
  const ranked = filteredPods.map((pod) => ({ pod, rank: podsOnNode.get(pod.spec?.nodeName ?? '') ?? 0 }));
  ranked.sort((x, y) =>
    deletesBefore(x.pod, x.rank, y.pod, y.rank, now)
      ? -1
      : deletesBefore(y.pod, y.rank, x.pod, x.rank, now)
        ? 1
        : 0,
  );
  return ranked.slice(0, diff).map((r) => r.pod);
}

/**
 * Calls fn `count` times in batches of 1, 2, 4, ... (upstream's
 * slowStartBatch): when every call is going to fail (a quota, a bad
 * template) this fails after one request instead of hundreds. Stops at the
 * first batch with a failure. Returns how many calls succeeded and the first
 * error.
 */
export async function slowStartBatch(
  count: number,
  initialBatchSize: number,
  fn: () => Promise<void>,
): Promise<{ successes: number; error?: unknown }> {
  let remaining = count;
  let successes = 0;
  for (let batch = Math.min(remaining, initialBatchSize); batch > 0; batch = Math.min(2 * batch, remaining)) {
    const results = await Promise.allSettled(Array.from({ length: batch }, () => fn()));
    let error: unknown;
    for (const r of results) {
      if (r.status === 'fulfilled') successes++;
      else error ??= r.reason;
    }
    if (error !== undefined) return { successes, error };
    remaining -= batch;
  }
  return { successes };
}

/** The API server refused a create because the namespace is going away (NamespaceTerminatingCause). */
const namespaceTerminating = (err: unknown): boolean =>
  isApiError(err, 'Forbidden') &&
  ((err.status.details?.causes ?? []).some((c) => c.reason === 'NamespaceTerminating') ||
    err.message.endsWith('because it is being terminated'));

const errorMessage = (err: unknown): string => (err instanceof Error ? err.message : String(err));

// ---- the controller ----

export function replicaSetLikeController<T extends ReplicaSetLike>(
  ctx: ControllerContext,
  kind: ReplicaSetKind<T>,
): QueueController {
  const owners = ctx.informers.informer(kind.resource) as unknown as Informer<T>;
  const ownerClient = ctx.clients[kind.resource] as unknown as ResourceClient<T>;
  const pods = ctx.informers.informer('pods');
  const recorder = ctx.recorder(kind.component);
  const log = ctx.log.with({ controller: kind.name });
  const expectations = new Expectations(ctx.clock);

  /** The owner a controller ownerReference names, if it is still the same object (resolveControllerRef). */
  const resolveControllerRef = (namespace: string, ref: OwnerReference): T | undefined => {
    if (ref.kind !== kind.kind) return undefined;
    const owner = owners.indexer.get(`${namespace}/${ref.name}`);
    return owner && owner.metadata.uid === ref.uid ? owner : undefined;
  };

  /** Every owner whose selector matches an orphan pod's labels (upstream's getPodReplicaSets). */
  const ownersSelecting = (pod: Pod): T[] => {
    const labels = pod.metadata.labels;
    if (!labels || Object.keys(labels).length === 0) return [];
    const matching = owners.indexer.byIndex(NAMESPACE_INDEX, pod.metadata.namespace ?? '').filter((o) => {
      try {
        // An empty selector must match nothing here, not everything.
        const selector = kind.selectorOf(o);
        return !selector.empty() && selector.matches(labels);
      } catch {
        return false;
      }
    });
    if (matching.length > 1)
      log.warn('more than one owner selects the same pod; fix their selectors', {
        pod: keyOf(pod),
        owners: matching.map((o) => o.metadata.name),
      });
    return matching;
  };

  const c = queueController(ctx, {
    name: kind.name,
    workers: 5,
    sync: (key) => syncReplicaSet(key),
  });
  const enqueue = (owner: T) => c.queue.add(keyOf(owner));

  // ---- event handlers: they only enqueue keys and count expectations ----

  const ownerDeleted = (owner: T) => {
    const key = keyOf(owner);
    expectations.delete(key);
    c.queue.add(key);
  };
  owners.on({
    add: enqueue,
    update: (old, cur) => {
      // Deleted and recreated under the same name between two events.
      if (old.metadata.uid !== cur.metadata.uid) ownerDeleted(old);
      enqueue(cur);
    },
    delete: ownerDeleted,
  });

  const podDeleted = (pod: Pod) => {
    const ref = controllerRefOf(pod);
    if (!ref) return; // an orphan's deletion changes no owner's count
    const owner = resolveControllerRef(pod.metadata.namespace ?? '', ref);
    if (!owner) return;
    const key = keyOf(owner);
    expectations.deletionObserved(key, keyOf(pod));
    c.queue.add(key);
  };

  pods.on({
    add: (pod) => {
      // A pod that is already being deleted (seen first on a relist) counts
      // as a deletion, never as a creation.
      if (pod.metadata.deletionTimestamp) {
        podDeleted(pod);
        return;
      }
      const ref = controllerRefOf(pod);
      if (ref) {
        const owner = resolveControllerRef(pod.metadata.namespace ?? '', ref);
        if (!owner) return;
        const key = keyOf(owner);
        expectations.creationObserved(key);
        c.queue.add(key);
        return;
      }
      // An orphan: whoever selects it may want to adopt it.
      for (const owner of ownersSelecting(pod)) enqueue(owner);
    },
    update: (old, cur) => {
      if (old.metadata.resourceVersion === cur.metadata.resourceVersion) return; // a resync
      const labelsChanged = !jsonEqual(old.metadata.labels ?? {}, cur.metadata.labels ?? {});
      if (cur.metadata.deletionTimestamp) {
        // Graceful deletion: the pod stops counting now, not when it is gone,
        // so a replacement can start while it terminates.
        podDeleted(cur);
        if (labelsChanged) podDeleted(old);
        return;
      }
      const curRef = controllerRefOf(cur);
      const oldRef = controllerRefOf(old);
      const refChanged = !jsonEqual(curRef ?? null, oldRef ?? null);
      if (refChanged && oldRef) {
        // The old owner lost a pod: it may have to make another.
        const oldOwner = resolveControllerRef(old.metadata.namespace ?? '', oldRef);
        if (oldOwner) enqueue(oldOwner);
      }
      if (curRef) {
        const owner = resolveControllerRef(cur.metadata.namespace ?? '', curRef);
        if (!owner) return;
        enqueue(owner);
        // Nothing changes on the pod when it has been ready for
        // minReadySeconds, so look again then (plus a second for clock skew).
        const minReadySeconds = owner.spec?.minReadySeconds ?? 0;
        if (!isPodReady(old) && isPodReady(cur) && minReadySeconds > 0)
          c.queue.addAfter(keyOf(owner), minReadySeconds * 1000 + 1000);
        return;
      }
      // An orphan whose labels or owner changed: someone may adopt it now.
      if (labelsChanged || refChanged) for (const owner of ownersSelecting(cur)) enqueue(owner);
    },
    delete: podDeleted,
  });

  // ---- sync ----

  async function syncReplicaSet(key: string): Promise<void> {
    const { namespace = '', name } = splitKey(key);
    const owner = owners.indexer.get(key);
    if (!owner) {
      expectations.delete(key);
      return;
    }
    // Read before listing pods: an event arriving meanwhile re-queues the key.
    const needsSync = expectations.satisfied(key);
    let selector: Selector;
    try {
      selector = kind.selectorOf(owner);
    } catch (err) {
      // Validation keeps bad selectors out; nothing a retry would fix.
      log.warn('invalid selector', { key, error: errorMessage(err) });
      return;
    }

    // Every active pod of the namespace, not only the matching ones: pods we
    // own whose labels stopped matching must be seen to be released.
    const active = pods.indexer.byIndex(NAMESPACE_INDEX, namespace).filter(isPodActive);
    const filteredPods = await claimObjects(active, {
      owner,
      ownerApiVersion: kind.apiVersion,
      ownerKind: kind.kind,
      selector,
      client: ctx.clients.pods,
      recheckOwner: async () => {
        try {
          return await ownerClient.get(namespace, name);
        } catch (err) {
          if (isApiError(err, 'NotFound')) return undefined;
          throw err;
        }
      },
    });

    let manageErr: unknown;
    if (needsSync && !owner.metadata.deletionTimestamp) {
      try {
        await manageReplicas(key, owner, filteredPods);
      } catch (err) {
        manageErr = err;
      }
    }

    const updated = await updateStatus(owner, calculateStatus(owner, filteredPods, manageErr));
    // The pods are ready but not yet for minReadySeconds: look again then.
    const replicas = updated.spec?.replicas ?? 1;
    const minReadySeconds = updated.spec?.minReadySeconds ?? 0;
    if (
      manageErr === undefined &&
      minReadySeconds > 0 &&
      (updated.status?.readyReplicas ?? 0) === replicas &&
      (updated.status?.availableReplicas ?? 0) !== replicas
    )
      c.queue.addAfter(key, minReadySeconds * 1000);
    if (manageErr !== undefined) throw manageErr;
  }

  /** Creates or deletes pods so that `replicas` active ones exist (upstream's manageReplicas). */
  async function manageReplicas(key: string, owner: T, filteredPods: Pod[]): Promise<void> {
    const diff = filteredPods.length - (owner.spec?.replicas ?? 1);
    if (diff < 0) {
      const count = Math.min(-diff, BURST_REPLICAS);
      // Expect every create before making any: their watch events may come
      // back before the last request returns.
      expectations.expect(key, count);
      const { successes, error } = await slowStartBatch(count, SLOW_START_INITIAL_BATCH_SIZE, () =>
        createPod(owner),
      );
      // The creates that failed or were never tried will never be observed.
      for (let i = successes; i < count; i++) expectations.creationObserved(key);
      if (error !== undefined) throw error;
    } else if (diff > 0) {
      const count = Math.min(diff, BURST_REPLICAS);
      const toDelete = getPodsToDelete(filteredPods, relatedPods(owner), count, ctx.now());
      expectations.expect(
        key,
        0,
        toDelete.map((p) => keyOf(p)),
      );
      const results = await Promise.allSettled(toDelete.map((pod) => deletePod(key, owner, pod)));
      const failed = results.find((r) => r.status === 'rejected');
      if (failed) throw failed.reason;
    }
  }

  /**
   * The active pods of this owner and of every owner sharing its controller
   * (the ReplicaSets of one Deployment), for ranking by node (getIndirectlyRelatedPods).
   */
  function relatedPods(owner: T): Pod[] {
    const parent = controllerRefOf(owner);
    const related = parent
      ? owners.indexer
          .byIndex(CONTROLLER_INDEX, parent.uid)
          .filter((o) => o.metadata.namespace === owner.metadata.namespace)
      : [owner];
    const seen = new Map<string, Pod>();
    for (const o of related)
      for (const pod of pods.indexer.byIndex(CONTROLLER_INDEX, o.metadata.uid ?? ''))
        seen.set(pod.metadata.uid ?? keyOf(pod), pod);
    return [...seen.values()];
  }

  /** A pod from the owner's template (upstream's GetPodFromTemplate and CreatePods). */
  async function createPod(owner: T): Promise<void> {
    const template = owner.spec?.template ?? { metadata: {} };
    const meta = template.metadata ?? {};
    const pod: Pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        generateName: `${owner.metadata.name}-`,
        namespace: owner.metadata.namespace,
        labels: { ...meta.labels },
        ...(meta.annotations ? { annotations: { ...meta.annotations } } : {}),
        ...(meta.finalizers ? { finalizers: [...meta.finalizers] } : {}),
        ownerReferences: [ownerRef(owner, kind.apiVersion, kind.kind)],
      },
      spec: deepCopy(template.spec ?? {}),
    };
    // A pod without labels could never be matched back to its owner.
    if (Object.keys(pod.metadata.labels ?? {}).length === 0)
      throw new Error('unable to create pods, no labels');
    let created: Pod;
    try {
      created = await ctx.clients.pods.create(owner.metadata.namespace, pod);
    } catch (err) {
      // A terminating namespace takes its owners with it: nothing to report.
      if (namespaceTerminating(err)) return;
      recorder.event(owner, 'Warning', 'FailedCreate', `Error creating: ${errorMessage(err)}`);
      throw err;
    }
    recorder.event(owner, 'Normal', 'SuccessfulCreate', `Created pod: ${created.metadata.name}`);
  }

  async function deletePod(key: string, owner: T, pod: Pod): Promise<void> {
    const name = pod.metadata.name ?? '';
    try {
      await ctx.clients.pods.delete(pod.metadata.namespace, name);
    } catch (err) {
      // Never to be observed: stop waiting for it.
      expectations.deletionObserved(key, keyOf(pod));
      if (isApiError(err, 'NotFound')) return; // already gone: what we wanted
      recorder.event(owner, 'Warning', 'FailedDelete', `Error deleting: ${errorMessage(err)}`);
      throw err;
    }
    recorder.event(owner, 'Normal', 'SuccessfulDelete', `Deleted pod: ${name}`);
  }

  /** The status the owner should have (upstream's calculateStatus). */
  function calculateStatus(owner: T, filteredPods: Pod[], manageErr: unknown): ReplicaSetStatus {
    const status: ReplicaSetStatus = deepCopy(owner.status ?? {});
    const templateLabels = selectorFromSet(owner.spec?.template?.metadata?.labels ?? {});
    const minReadySeconds = owner.spec?.minReadySeconds ?? 0;
    const now = ctx.now();
    let fullyLabeled = 0;
    let ready = 0;
    let available = 0;
    for (const pod of filteredPods) {
      if (templateLabels.matches(pod.metadata.labels ?? {})) fullyLabeled++;
      if (isPodReady(pod)) {
        ready++;
        if (isPodAvailable(pod, minReadySeconds, now)) available++;
      }
    }
    const failure = status.conditions?.find((cond) => cond.type === REPLICA_FAILURE);
    if (manageErr !== undefined && !failure) {
      const diff = filteredPods.length - (owner.spec?.replicas ?? 1);
      const condition: ReplicaSetCondition = {
        type: REPLICA_FAILURE,
        status: 'True',
        lastTransitionTime: rfc3339(now),
        reason: diff < 0 ? 'FailedCreate' : diff > 0 ? 'FailedDelete' : '',
        message: errorMessage(manageErr),
      };
      status.conditions = [...(status.conditions ?? []), condition];
    } else if (manageErr === undefined && failure) {
      status.conditions = status.conditions?.filter((cond) => cond.type !== REPLICA_FAILURE);
      if (status.conditions?.length === 0) delete status.conditions;
    }
    // Zero counts are left out, as upstream's omitempty fields are.
    status.replicas = filteredPods.length;
    setOrOmit(status, 'fullyLabeledReplicas', fullyLabeled);
    setOrOmit(status, 'readyReplicas', ready);
    setOrOmit(status, 'availableReplicas', available);
    return status;
  }

  /**
   * Writes the status through /status when it changed or the generation is
   * new; one retry on a fresh copy after a conflict (updateReplicaSetStatus).
   */
  async function updateStatus(owner: T, status: ReplicaSetStatus): Promise<T> {
    const old = owner.status ?? {};
    const generation = owner.metadata.generation ?? 0;
    if (
      (old.replicas ?? 0) === (status.replicas ?? 0) &&
      (old.fullyLabeledReplicas ?? 0) === (status.fullyLabeledReplicas ?? 0) &&
      (old.readyReplicas ?? 0) === (status.readyReplicas ?? 0) &&
      (old.availableReplicas ?? 0) === (status.availableReplicas ?? 0) &&
      (old.observedGeneration ?? 0) === generation &&
      jsonEqual(old.conditions ?? [], status.conditions ?? [])
    )
      return owner;
    // The generation acted on, not a newer one a retry might read: a spec
    // change this sync did not see must not look observed.
    const next = { ...status };
    setOrOmit(next, 'observedGeneration', generation);
    const copy = deepCopy(owner);
    copy.status = next;
    try {
      return await ownerClient.updateStatus(copy);
    } catch {
      // Most likely a conflict: our copy was stale. Once more on a fresh one.
      const fresh = await ownerClient.get(owner.metadata.namespace, owner.metadata.name ?? '');
      fresh.status = next;
      return await ownerClient.updateStatus(fresh);
    }
  }

  return c;
}

function setOrOmit<
  K extends 'fullyLabeledReplicas' | 'readyReplicas' | 'availableReplicas' | 'observedGeneration',
>(status: ReplicaSetStatus, field: K, value: number): void {
  if (value) status[field] = value;
  else delete status[field];
}
