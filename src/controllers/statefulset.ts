// The StatefulSet controller, as upstream's pkg/controller/statefulset
// (stateful_set.go, stateful_set_control.go, stateful_pod_control.go).
//
// A StatefulSet's pods have stable identities: `<set>-<ordinal>`, the same
// hostname, and the same PersistentVolumeClaims `<template>-<set>-<ordinal>`
// whenever they are recreated. With podManagementPolicy OrderedReady (the
// default) pods are created one at a time in ordinal order, each only once
// its predecessors are Running and Ready, and removed one at a time from the
// highest ordinal down; Parallel lifts that ordering for scaling. Template
// changes are recorded as ControllerRevisions; the RollingUpdate strategy
// replaces pods from the highest ordinal down to spec.updateStrategy.
// rollingUpdate.partition, one at a time, waiting for each to be Ready;
// OnDelete leaves that to the user.
//
// Unlike the ReplicaSet controller, this one needs no expectations: a pod's
// name is its identity, so a create against a stale cache fails with
// AlreadyExists instead of making a duplicate.

import { isApiError } from '../api/errors.ts';
import type { Selector } from '../api/labels.ts';
import { deepCopy, jsonEqual, type OwnerReference } from '../api/meta.ts';
import type { ControllerRevision, StatefulSet, StatefulSetStatus } from '../api/types/apps-v1.ts';
import type { Pod } from '../api/types/core-v1.ts';
import { NAMESPACE_INDEX } from '../client/informer-factory.ts';
import { type ControllerFactory, keyOf } from './context.ts';
import { queueController } from './controller.ts';
import {
  findEqualRevisions,
  newHistory,
  nextRevision,
  revisionsToTruncate,
  sortControllerRevisions,
} from './history.ts';
import { claimObjects, controllerRefOf } from './ownership.ts';
import {
  allowsBurst,
  applyRevision,
  byDescendingOrdinal,
  completeRollingUpdate,
  countReplicas,
  getOrdinal,
  getPodRevision,
  hasUnexpectedController,
  identityMatches,
  inconsistentStatus,
  isClaimOwnerUpToDate,
  isCreated,
  isFailed,
  isHealthy,
  isMemberOf,
  isPending,
  isPodReady,
  isRunningAndAvailable,
  isRunningAndReady,
  isSucceeded,
  isTerminating,
  newRevision,
  newVersionedStatefulSetPod,
  persistentVolumeClaims,
  podInOrdinalRange,
  replicasOf,
  STATEFULSET_API_VERSION,
  STATEFULSET_KIND,
  selectorOf,
  startOrdinal,
  storageMatches,
  updateClaimOwnerRefs,
  updateIdentity,
  updateStorage,
} from './statefulset-utils.ts';

/** Parallel creations and deletions go out in batches of 1, 2, 4, ... (slowStartBatch), at most this many. */
const MAX_BATCH_SIZE = 500;

/** How soon to look again when a create found the pod already there but our cache does not show it yet. */
const CACHE_BEHIND_RETRY_MS = 200;

/** What processing one pod decided: keep going, or stop this sync here (monotonic mode waits). */
type Step = 'continue' | 'stop';

export const statefulSetController: ControllerFactory = (ctx) => {
  const sets = ctx.informers.informer('statefulSets');
  const pods = ctx.informers.informer('pods');
  const controllerRevisions = ctx.informers.informer('controllerRevisions');
  const claims = ctx.informers.informer('persistentVolumeClaims');
  const recorder = ctx.recorder('statefulset-controller');
  const history = newHistory(ctx.clients.controllerRevisions, controllerRevisions.indexer);

  // ---- talking to the API: stateful_pod_control.go --------------------------------

  const podEvent = (set: StatefulSet, verb: 'create' | 'update' | 'delete', pod: Pod, err?: unknown) => {
    const title = verb[0]?.toUpperCase() + verb.slice(1);
    if (err === undefined) {
      recorder.event(
        set,
        'Normal',
        `Successful${title}`,
        `${verb} Pod ${pod.metadata.name} in StatefulSet ${set.metadata.name} successful`,
      );
    } else {
      recorder.event(
        set,
        'Warning',
        `Failed${title}`,
        `${verb} Pod ${pod.metadata.name} in StatefulSet ${set.metadata.name} failed error: ${String(err)}`,
      );
    }
  };

  /**
   * createPersistentVolumeClaims: each missing claim of the pod's ordinal is
   * created; existing ones are reused as they are (that is the point of
   * stable storage). A claim still being deleted blocks the pod until it is gone.
   */
  const createPersistentVolumeClaims = async (set: StatefulSet, pod: Pod) => {
    const errors: string[] = [];
    for (const claim of persistentVolumeClaims(set, getOrdinal(pod)).values()) {
      const existing = claims.indexer.get(keyOf(claim));
      if (existing) {
        if (existing.metadata.deletionTimestamp) errors.push(`pvc ${claim.metadata.name} is being deleted`);
        continue;
      }
      try {
        await ctx.clients.persistentVolumeClaims.create(claim.metadata.namespace, claim);
        recorder.event(
          set,
          'Normal',
          'SuccessfulCreate',
          `create Claim ${claim.metadata.name} Pod ${pod.metadata.name} in StatefulSet ${set.metadata.name} success`,
        );
      } catch (err) {
        if (isApiError(err, 'AlreadyExists')) continue; // our cache was behind
        errors.push(`failed to create PVC ${claim.metadata.name}: ${String(err)}`);
        recorder.event(
          set,
          'Warning',
          'FailedCreate',
          `create Claim ${claim.metadata.name} for Pod ${pod.metadata.name} in StatefulSet ${set.metadata.name} failed error: ${String(err)}`,
        );
      }
    }
    if (errors.length) throw new Error(errors.join('; '));
  };

  /** The member's claims as cached, by name; undefined for one not in the cache (yet). */
  const memberClaims = (set: StatefulSet, pod: Pod) =>
    [...persistentVolumeClaims(set, getOrdinal(pod)).values()].map((claim) => ({
      name: claim.metadata.name ?? '',
      cached: claims.indexer.get(keyOf(claim)),
    }));

  /** ClaimsMatchRetentionPolicy: every claim of the member exists and carries the references the policy wants. */
  const claimsMatchRetentionPolicy = (set: StatefulSet, pod: Pod) =>
    memberClaims(set, pod).every(({ cached }) => !!cached && isClaimOwnerUpToDate(cached, set, pod));

  /**
   * UpdatePodClaimForRetentionPolicy: sets the ownerReferences of the
   * member's claims as the retention policy wants them. A claim missing from
   * the cache is picked up by a later sync; one another controller manages
   * is left alone, with a warning.
   */
  const updatePodClaimForRetentionPolicy = async (set: StatefulSet, pod: Pod) => {
    for (const { name, cached } of memberClaims(set, pod)) {
      if (!cached) continue;
      if (hasUnexpectedController(cached, set, pod)) {
        recorder.event(
          set,
          'Warning',
          'ConflictingController',
          `PersistentVolumeClaim ${name} has a conflicting OwnerReference that acts as a manging controller, the retention policy is ignored for this claim`,
        );
        continue;
      }
      if (isClaimOwnerUpToDate(cached, set, pod)) continue;
      const claim = deepCopy(cached);
      updateClaimOwnerRefs(claim, set, pod);
      try {
        await ctx.clients.persistentVolumeClaims.update(claim);
      } catch (err) {
        if (isApiError(err, 'NotFound')) continue;
        throw new Error(`could not update claim ${name} for delete policy ownerRefs: ${String(err)}`);
      }
    }
  };

  /** CreateStatefulPod: claims first, then the pod. Resolves false when the cache turned out to be behind. */
  const createStatefulPod = async (set: StatefulSet, pod: Pod): Promise<boolean> => {
    try {
      await createPersistentVolumeClaims(set, pod);
    } catch (err) {
      podEvent(set, 'create', pod, err);
      throw err;
    }
    let created: Pod;
    try {
      created = await ctx.clients.pods.create(pod.metadata.namespace, pod);
    } catch (err) {
      if (isApiError(err, 'AlreadyExists')) {
        // The pod exists though our cache had none: the cache is behind, and
        // its add event will bring us back. A pod in the cache that we do not
        // own is a real conflict, retried with backoff as upstream does.
        if (pods.indexer.get(keyOf(pod))) throw err;
        c.queue.addAfter(keyOf(set), CACHE_BEHIND_RETRY_MS);
        return false;
      }
      podEvent(set, 'create', pod, err);
      throw err;
    }
    // The claims' references need the pod's uid: set them as far as the cache allows now.
    try {
      await updatePodClaimForRetentionPolicy(set, created);
    } catch (err) {
      podEvent(set, 'update', pod, err);
      throw err;
    }
    podEvent(set, 'create', pod);
    return true;
  };

  /**
   * UpdateStatefulPod: restores a member's identity labels and claim volumes
   * (and creates its missing claims); retried against fresh copies on conflict.
   */
  const updateStatefulPod = async (set: StatefulSet, cached: Pod) => {
    let pod = deepCopy(cached);
    for (let attempt = 0; ; attempt++) {
      let consistent = true;
      if (!identityMatches(set, pod)) {
        updateIdentity(set, pod);
        consistent = false;
      }
      if (!storageMatches(set, pod)) {
        updateStorage(set, pod);
        consistent = false;
        await createPersistentVolumeClaims(set, pod);
      }
      // Claims whose references do not follow the retention policy are fixed.
      // Upstream then updates the pod as well; nothing of the pod changed, so
      // it is left as it is here.
      if (!claimsMatchRetentionPolicy(set, pod)) await updatePodClaimForRetentionPolicy(set, pod);
      if (consistent) return;
      try {
        await ctx.clients.pods.update(pod);
        podEvent(set, 'update', pod);
        return;
      } catch (err) {
        if (!isApiError(err, 'Conflict') || attempt >= 4) {
          if (isApiError(err, 'NotFound')) return;
          podEvent(set, 'update', pod, err);
          throw err;
        }
        pod = deepCopy(await ctx.clients.pods.get(pod.metadata.namespace, pod.metadata.name ?? ''));
      }
    }
  };

  /**
   * DeleteStatefulPod. The uid precondition makes sure a stale cache can
   * never delete the successor that now carries the same name; a pod that is
   * already gone needs nothing more.
   */
  const deleteStatefulPod = async (set: StatefulSet, pod: Pod) => {
    try {
      await ctx.clients.pods.delete(pod.metadata.namespace, pod.metadata.name ?? '', {
        preconditions: { uid: pod.metadata.uid ?? '' },
      });
    } catch (err) {
      if (isApiError(err, 'NotFound') || isApiError(err, 'Conflict')) return;
      podEvent(set, 'delete', pod, err);
      throw err;
    }
    podEvent(set, 'delete', pod);
  };

  // ---- revisions: getStatefulSetRevisions ------------------------------------------

  /**
   * The current revision (what status.currentRevision names, or the update
   * revision when there is none yet) and the update revision (the live
   * template). A template equal to an older revision re-uses that revision,
   * renumbered as the newest: that is how a rollback avoids a new hash.
   */
  const getStatefulSetRevisions = async (set: StatefulSet, sorted: ControllerRevision[]) => {
    let collisionCount = set.status?.collisionCount ?? 0;
    const candidate = newRevision(set, nextRevision(sorted), collisionCount);
    const equal = findEqualRevisions(sorted, candidate);
    const latest = sorted[sorted.length - 1];
    const lastEqual = equal[equal.length - 1];
    let updateRevision: ControllerRevision;
    if (lastEqual && latest === lastEqual) {
      updateRevision = latest;
    } else if (lastEqual) {
      updateRevision = await history.update(lastEqual, candidate.revision ?? 0);
    } else {
      const created = await history.create(set, candidate, collisionCount);
      updateRevision = created.revision;
      collisionCount = created.collisionCount;
    }
    const currentName = set.status?.currentRevision;
    const currentRevision = sorted.find((r) => r.metadata.name === currentName) ?? updateRevision;
    return { currentRevision, updateRevision, collisionCount };
  };

  /**
   * truncateHistory: revisions in use (current, update, and any a pod still
   * runs) are kept; of the others, the oldest beyond revisionHistoryLimit go.
   */
  const truncateHistory = async (
    set: StatefulSet,
    members: Pod[],
    sorted: ControllerRevision[],
    live: ControllerRevision[],
  ) => {
    const liveNames = new Set([...live.map((r) => r.metadata.name), ...members.map(getPodRevision)]);
    const doomed = revisionsToTruncate(sorted, {
      isLive: (r) => liveNames.has(r.metadata.name),
      limit: set.spec?.revisionHistoryLimit ?? 10,
    });
    for (const r of doomed) await history.delete(r);
  };

  // ---- the core: updateStatefulSet ---------------------------------------------------

  /**
   * Creates, fixes and deletes pods to move the set one step closer to its
   * spec, and returns the status to record. In monotonic (OrderedReady) mode
   * it stops at the first pod it has to wait for.
   */
  const updateStatefulSet = async (
    set: StatefulSet,
    currentRevision: ControllerRevision,
    updateRevision: ControllerRevision,
    collisionCount: number,
    members: Pod[],
  ): Promise<StatefulSetStatus> => {
    const currentSet = applyRevision(set, currentRevision);
    const updateSet = applyRevision(set, updateRevision);
    const currentName = currentRevision.metadata.name ?? '';
    const updateName = updateRevision.metadata.name ?? '';
    const minReadySeconds = set.spec?.minReadySeconds ?? 0;
    const status: StatefulSetStatus = {
      ...set.status,
      observedGeneration: set.metadata.generation ?? 0,
      currentRevision: currentName,
      updateRevision: updateName,
      collisionCount,
    };
    const recount = (...lists: Pod[][]) =>
      Object.assign(status, countReplicas(lists.flat(), minReadySeconds, currentName, updateName, ctx.now()));
    recount(members);

    // Members with an ordinal in [start, start+replicas) fill their slot;
    // members outside it are condemned; pods whose ordinal does not parse are ignored.
    const start = startOrdinal(set);
    const replicas: Pod[] = new Array(replicasOf(set));
    const condemned: Pod[] = [];
    for (const pod of members) {
      if (podInOrdinalRange(pod, set)) replicas[getOrdinal(pod) - start] = pod;
      else if (getOrdinal(pod) >= 0) condemned.push(pod);
    }
    // Empty slots get a placeholder built at the right revision; it has no
    // phase until it is created (isCreated).
    for (let i = 0; i < replicas.length; i++) {
      replicas[i] ??= newVersionedStatefulSetPod(currentSet, updateSet, currentName, updateName, start + i);
    }
    condemned.sort(byDescendingOrdinal);

    // The first unhealthy pod: the lowest unhealthy replica, else the lowest
    // unhealthy condemned pod. It alone may be removed while unhealthy.
    const firstUnhealthyPod =
      replicas.find((p) => !isHealthy(p)) ?? [...condemned].reverse().find((p) => !isHealthy(p));

    // A set being deleted only has its status recorded; the garbage collector removes its pods.
    if (set.metadata.deletionTimestamp) return status;

    const monotonic = !allowsBurst(set);

    // processReplica: one slot in [start, start+replicas).
    const processReplica = async (i: number): Promise<Step> => {
      const pod = replicas[i] as Pod;
      // A pod that ran to completion (Failed, or Succeeded after an eviction
      // or a node reboot) is deleted; the next sync, after it is gone,
      // recreates it under the same name.
      if (isFailed(pod) || isSucceeded(pod)) {
        if (!isTerminating(pod)) await deleteStatefulPod(set, pod);
        return 'stop';
      }
      if (!isCreated(pod)) {
        const created = await createStatefulPod(set, pod);
        if (!created) return 'stop';
        // OrderedReady waits for this pod before doing anything else.
        return monotonic ? 'stop' : 'continue';
      }
      // Claims deleted under a pending pod are recreated so it can start.
      if (isPending(pod)) await createPersistentVolumeClaims(set, pod);
      if (monotonic) {
        if (isTerminating(pod)) return 'stop';
        if (!isRunningAndReady(pod)) return 'stop';
        if (!isRunningAndAvailable(pod, minReadySeconds, ctx.now())) return 'stop';
      }
      // Enforce the invariants: the pod's identity and storage are its
      // ordinal's, and its claims carry the retention policy's references.
      if (identityMatches(set, pod) && storageMatches(set, pod) && claimsMatchRetentionPolicy(set, pod))
        return 'continue';
      await updateStatefulPod(updateSet, pod);
      return 'continue';
    };

    // processCondemned: one pod beyond the ordinal range, highest first.
    const processCondemned = async (i: number): Promise<Step> => {
      const pod = condemned[i] as Pod;
      if (isTerminating(pod)) return monotonic ? 'stop' : 'continue';
      // OrderedReady removes a pod only when every pod below it is healthy,
      // except the first unhealthy pod itself.
      if (monotonic && pod !== firstUnhealthyPod) {
        if (!isRunningAndReady(pod)) return 'stop';
        if (!isRunningAndAvailable(pod, minReadySeconds, ctx.now())) return 'stop';
      }
      await deleteStatefulPod(set, pod);
      return 'stop';
    };

    if (await runForAll(replicas.length, processReplica, monotonic)) {
      recount(replicas, condemned);
      return status;
    }
    // Condemned pods' claims get the references scaling down wants (a pod
    // reference under whenScaled Delete, so they go with the pod) before
    // any of those pods is deleted.
    await runForAll(
      condemned.length,
      async (i) => {
        const pod = condemned[i] as Pod;
        if (!claimsMatchRetentionPolicy(updateSet, pod))
          await updatePodClaimForRetentionPolicy(updateSet, pod);
        return 'continue';
      },
      monotonic,
    );
    // Scaling down takes precedence over updating.
    if (await runForAll(condemned.length, processCondemned, monotonic)) {
      recount(replicas, condemned);
      return status;
    }
    recount(replicas, condemned);

    // OnDelete: pods are updated when the user deletes them.
    if (set.spec?.updateStrategy?.type === 'OnDelete') return status;

    // RollingUpdate: replace the highest ordinal not at the update revision,
    // down to the partition, one pod at a time, each only after every pod
    // above it is healthy again.
    const partition = set.spec?.updateStrategy?.rollingUpdate?.partition ?? 0;
    for (let target = replicas.length - 1; target >= partition; target--) {
      const pod = replicas[target] as Pod;
      if (getPodRevision(pod) !== updateName && !isTerminating(pod)) {
        await deleteStatefulPod(set, pod);
        status.currentReplicas = (status.currentReplicas ?? 0) - 1;
        return status;
      }
      if (!isHealthy(pod)) return status;
    }
    return status;
  };

  /**
   * runForAll: in monotonic mode one pod after another, stopping where a pod
   * says so; otherwise all of them in slow-start batches (1, 2, 4, ...), so a
   * failing API stops after a few calls rather than hundreds. Resolves true
   * when the sync should end here.
   */
  async function runForAll(count: number, fn: (i: number) => Promise<Step>, monotonic: boolean) {
    if (monotonic) {
      for (let i = 0; i < count; i++) if ((await fn(i)) === 'stop') return true;
      return false;
    }
    let next = 0;
    for (let size = Math.min(1, count); size > 0; size = Math.min(2 * size, count - next, MAX_BATCH_SIZE)) {
      const batch = Array.from({ length: size }, (_, k) => fn(next + k));
      next += size;
      const results = await Promise.allSettled(batch);
      const failed = results.filter((r) => r.status === 'rejected');
      if (failed.length) throw (failed[0] as PromiseRejectedResult).reason;
    }
    return false;
  }

  // ---- sync ---------------------------------------------------------------------------

  /**
   * getPodsForStatefulSet: the pods this set controls, after adopting
   * matching orphans named like its members and releasing owned pods whose
   * labels stopped matching.
   */
  const claimPods = (set: StatefulSet, selector: Selector) =>
    claimObjects(
      pods.indexer.byIndex(NAMESPACE_INDEX, set.metadata.namespace ?? '').filter((p) => isMemberOf(set, p)),
      {
        owner: set,
        ownerApiVersion: STATEFULSET_API_VERSION,
        ownerKind: STATEFULSET_KIND,
        selector,
        client: ctx.clients.pods,
        recheckOwner: () => recheck(set),
      },
    );

  /** RecheckDeletionTimestamp: a fresh read of the set before adopting anything. */
  const recheck = async (set: StatefulSet) => {
    try {
      return await ctx.clients.statefulSets.get(set.metadata.namespace, set.metadata.name ?? '');
    } catch (err) {
      if (isApiError(err, 'NotFound')) return undefined;
      throw err;
    }
  };

  // sync: claim the set's revisions and pods, find its current and update
  // revisions, take one step (updateStatefulSet), trim the history, record status.
  const c = queueController(ctx, {
    name: 'statefulset',
    async sync(key) {
      const set = sets.indexer.get(key);
      if (!set) return;
      let selector: Selector;
      try {
        selector = selectorOf(set);
      } catch (err) {
        // Validation keeps bad selectors out; retrying could not fix one anyway.
        ctx.log.warn('statefulset has an invalid selector', { key, error: String(err) });
        return;
      }
      const revisions = sortControllerRevisions(
        await history.claim({
          parent: set,
          parentApiVersion: STATEFULSET_API_VERSION,
          parentKind: STATEFULSET_KIND,
          selector,
          recheckParent: () => recheck(set),
        }),
      );
      const members = await claimPods(set, selector);

      const { currentRevision, updateRevision, collisionCount } = await getStatefulSetRevisions(
        set,
        revisions,
      );
      let status: StatefulSetStatus;
      try {
        status = await updateStatefulSet(set, currentRevision, updateRevision, collisionCount, members);
      } finally {
        await truncateHistory(set, members, revisions, [currentRevision, updateRevision]);
      }
      completeRollingUpdate(set, status);
      if (inconsistentStatus(set, status)) {
        await ctx.clients.statefulSets.updateStatus({ ...deepCopy(set), status });
      }
      // Availability is a matter of time: look again once minReadySeconds have passed.
      const minReadySeconds = set.spec?.minReadySeconds ?? 0;
      if (minReadySeconds > 0 && status.availableReplicas !== replicasOf(set)) {
        c.queue.addAfter(key, minReadySeconds * 1000);
      }
    },
  });

  // ---- event handlers: enqueue the owning set ---------------------------------------

  const enqueue = (set: StatefulSet) => c.queue.add(keyOf(set));

  /** resolveControllerRef: the set a controller reference names, if it is still that set. */
  const resolve = (namespace: string | undefined, ref: OwnerReference | undefined) => {
    if (!ref || ref.kind !== STATEFULSET_KIND || !ref.apiVersion.startsWith('apps/')) return undefined;
    const set = sets.indexer.get(`${namespace}/${ref.name}`);
    return set?.metadata.uid === ref.uid ? set : undefined;
  };

  /** getPodStatefulSets: sets whose selector matches an orphan pod, to consider adopting it. */
  const setsForOrphan = (pod: Pod) =>
    sets.indexer.byIndex(NAMESPACE_INDEX, pod.metadata.namespace ?? '').filter((set) => {
      try {
        const selector = selectorOf(set);
        return !selector.empty() && selector.matches(pod.metadata.labels);
      } catch {
        return false;
      }
    });

  sets.on({
    add: enqueue,
    update: (_old, cur) => enqueue(cur),
    delete: enqueue,
  });

  pods.on({
    add(pod) {
      const owner = controllerRefOf(pod);
      if (owner) {
        const set = resolve(pod.metadata.namespace, owner);
        if (set) enqueue(set);
        return;
      }
      for (const set of setsForOrphan(pod)) enqueue(set);
    },
    update(old, cur) {
      if (old.metadata.resourceVersion === cur.metadata.resourceVersion) return;
      const labelsChanged = !jsonEqual(old.metadata.labels ?? {}, cur.metadata.labels ?? {});
      const oldRef = controllerRefOf(old);
      const curRef = controllerRefOf(cur);
      const refChanged = !jsonEqual(oldRef ?? null, curRef ?? null);
      if (refChanged && oldRef) {
        const set = resolve(old.metadata.namespace, oldRef);
        if (set) enqueue(set);
      }
      if (curRef) {
        const set = resolve(cur.metadata.namespace, curRef);
        if (!set) return;
        enqueue(set);
        // A pod that just turned Ready becomes available minReadySeconds later.
        const minReadySeconds = set.spec?.minReadySeconds ?? 0;
        if (minReadySeconds > 0 && !isPodReady(old) && isPodReady(cur)) {
          c.queue.addAfter(keyOf(set), minReadySeconds * 1000);
        }
        return;
      }
      if (labelsChanged || refChanged) for (const set of setsForOrphan(cur)) enqueue(set);
    },
    delete(pod) {
      const set = resolve(pod.metadata.namespace, controllerRefOf(pod));
      if (set) enqueue(set);
    },
  });

  return c;
};
