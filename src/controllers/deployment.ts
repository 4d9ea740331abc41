// The Deployment controller (upstream's deployment-controller): a Deployment
// runs its pods through ReplicaSets, one per revision of its pod template,
// named `<deployment>-<pod-template-hash>`. A template change makes a new
// ReplicaSet and moves replicas to it (RollingUpdate within maxSurge and
// maxUnavailable, or Recreate); a scale is shared among the ReplicaSets in
// proportion; old revisions are kept up to revisionHistoryLimit for
// `kubectl rollout undo`. The rollout's state is reported in status and the
// Progressing and Available conditions, which `kubectl rollout status` reads.
// https://github.com/kubernetes/kubernetes/blob/master/pkg/controller/deployment/deployment_controller.go
// https://github.com/kubernetes/kubernetes/blob/master/pkg/controller/deployment/sync.go
//
// The strategies and progress tracking are in deployment-rollout.ts, the
// pure arithmetic and annotations in deployment-util.ts.

import { isApiError } from '../api/errors.ts';
import { type LabelSelector, type Selector, selectorFromLabelSelector } from '../api/labels.ts';
import { controllerRef, deepCopy, type OwnerReference } from '../api/meta.ts';
import type { Deployment, DeploymentCondition, ReplicaSet } from '../api/types/apps-v1.ts';
import type { Pod } from '../api/types/core-v1.ts';
import { CONTROLLER_INDEX, NAMESPACE_INDEX } from '../client/informer-factory.ts';
import { type ControllerFactory, keyOf } from './context.ts';
import { queueController } from './controller.ts';
import { type RolloutOps, rolloutRecreate, rolloutRolling, sameStatus } from './deployment-rollout.ts';
import {
  byRevision,
  bySizeNewer,
  bySizeOlder,
  calculateStatus,
  computeHash,
  DEFAULT_DEPLOYMENT_UNIQUE_LABEL_KEY,
  DEPLOYMENT_PROGRESSING,
  desiredReplicasAnnotation,
  equalIgnoreHash,
  FAILED_RS_CREATE_REASON,
  FOUND_NEW_RS_REASON,
  filterActiveReplicaSets,
  findActiveOrLatest,
  findNewReplicaSet,
  findOldReplicaSets,
  getDeploymentCondition,
  getProportion,
  hasProgressDeadline,
  isRollingUpdate,
  isSaturated,
  maxRevision,
  maxSurge,
  NEW_RS_REASON,
  newDeploymentCondition,
  newRSNewReplicas,
  PAUSED_DEPLOY_REASON,
  RESUMED_DEPLOY_REASON,
  REVISION_ANNOTATION,
  replicaCount,
  replicasAnnotationsNeedUpdate,
  setDeploymentCondition,
  setDeploymentRevision,
  setNewReplicaSetAnnotations,
  setReplicasAnnotations,
  specReplicas,
  TIMED_OUT_REASON,
} from './deployment-util.ts';
import { claimObjects, ownerRef } from './ownership.ts';

const APPS_V1 = 'apps/v1';

/** Cache objects may lack kind/apiVersion; writes and events need them. */
const asDeployment = (d: Deployment): Deployment => ({
  ...deepCopy(d),
  apiVersion: APPS_V1,
  kind: 'Deployment',
});
const asReplicaSet = (rs: ReplicaSet): ReplicaSet => ({
  ...deepCopy(rs),
  apiVersion: APPS_V1,
  kind: 'ReplicaSet',
});

export const deploymentController: ControllerFactory = (ctx) => {
  const deployments = ctx.informers.informer('deployments');
  const replicaSets = ctx.informers.informer('replicaSets');
  const pods = ctx.informers.informer('pods');
  const recorder = ctx.recorder('deployment-controller');
  const log = ctx.log.with({ controller: 'deployment' });

  const c = queueController(ctx, {
    name: 'deployment',
    workers: 5, // upstream's --concurrent-deployment-syncs
    sync: syncDeployment,
  });

  const enqueue = (d: Deployment) => c.queue.add(keyOf(d));

  // ---- from ReplicaSets and pods to their Deployment ----

  /** The Deployment a controllerRef points to, if it is still that object. */
  function resolveControllerRef(namespace: string | undefined, ref: OwnerReference): Deployment | undefined {
    if (ref.kind !== 'Deployment') return undefined;
    const d = deployments.indexer.get(`${namespace}/${ref.name}`);
    return d && d.metadata.uid === ref.uid ? d : undefined;
  }

  /** Deployments whose selector matches an orphan ReplicaSet: they may adopt it. */
  function deploymentsForReplicaSet(rs: ReplicaSet): Deployment[] {
    const found = deployments.indexer.byIndex(NAMESPACE_INDEX, rs.metadata.namespace ?? '').filter((d) => {
      const sel = selectorOf(d);
      return sel !== undefined && !sel.empty() && sel.matches(rs.metadata.labels);
    });
    if (found.length > 1) {
      // Upstream logs this user error too; the Deployments race to adopt.
      log.warn('more than one deployment is selecting replica set', {
        replicaSet: keyOf(rs),
        deployments: found.map((d) => d.metadata.name),
      });
    }
    return found;
  }

  function deploymentForPod(pod: Pod): Deployment | undefined {
    const ref = controllerRef(pod);
    if (ref?.kind !== 'ReplicaSet') return undefined;
    const rs = replicaSets.indexer.get(`${pod.metadata.namespace}/${ref.name}`);
    if (!rs || rs.metadata.uid !== ref.uid) return undefined;
    const rsRef = controllerRef(rs);
    return rsRef ? resolveControllerRef(rs.metadata.namespace, rsRef) : undefined;
  }

  deployments.on({ add: enqueue, update: (_old, cur) => enqueue(cur), delete: enqueue });

  replicaSets.on({
    add(rs) {
      const ref = controllerRef(rs);
      if (ref) {
        const d = resolveControllerRef(rs.metadata.namespace, ref);
        if (d) enqueue(d);
        return;
      }
      for (const d of deploymentsForReplicaSet(rs)) enqueue(d);
    },
    update(old, cur) {
      // A periodic resync re-delivers unchanged objects; both versions would be the same.
      if (old.metadata.resourceVersion === cur.metadata.resourceVersion) return;
      const curRef = controllerRef(cur);
      const oldRef = controllerRef(old);
      const refChanged = JSON.stringify(curRef) !== JSON.stringify(oldRef);
      if (refChanged && oldRef) {
        const d = resolveControllerRef(old.metadata.namespace, oldRef);
        if (d) enqueue(d);
      }
      if (curRef) {
        const d = resolveControllerRef(cur.metadata.namespace, curRef);
        if (d) enqueue(d);
        return;
      }
      // An orphan whose labels changed may now be adoptable.
      const labelsChanged = JSON.stringify(cur.metadata.labels) !== JSON.stringify(old.metadata.labels);
      if (labelsChanged || refChanged) for (const d of deploymentsForReplicaSet(cur)) enqueue(d);
    },
    delete(rs) {
      const ref = controllerRef(rs);
      const d = ref && resolveControllerRef(rs.metadata.namespace, ref);
      if (d) enqueue(d);
    },
  });

  pods.on({
    // Recreate waits for the old pods to be gone: the last one going is its cue.
    delete(pod) {
      const d = deploymentForPod(pod);
      if (d?.spec?.strategy?.type !== 'Recreate') return;
      const rsList = replicaSets.indexer
        .byIndex(NAMESPACE_INDEX, d.metadata.namespace ?? '')
        .filter((rs) => controllerRef(rs)?.uid === d.metadata.uid);
      let n = 0;
      for (const pods of podMapFor(d, rsList).values()) n += pods.length;
      if (n === 0) enqueue(d);
    },
  });

  // ---- sync ----

  function selectorOf(d: Deployment): Selector | undefined {
    try {
      return selectorFromLabelSelector(d.spec?.selector as LabelSelector | undefined);
    } catch {
      return undefined;
    }
  }

  async function syncDeployment(key: string): Promise<void> {
    const cached = deployments.indexer.get(key);
    if (!cached) return; // deleted: the garbage collector removes its ReplicaSets
    const d = asDeployment(cached);

    const sel = d.spec?.selector;
    if (sel && !Object.keys(sel.matchLabels ?? {}).length && !(sel.matchExpressions ?? []).length) {
      // An empty selector would claim every ReplicaSet in the namespace.
      recorder.event(
        d,
        'Warning',
        'SelectingAll',
        'This deployment is selecting all pods. A non-empty selector is required.',
      );
      if ((d.status?.observedGeneration ?? 0) < (d.metadata.generation ?? 0)) {
        d.status = { ...d.status, observedGeneration: d.metadata.generation };
        await updateStatus(d);
      }
      return;
    }

    const rsList = await getReplicaSetsForDeployment(d);
    const podMap = podMapFor(d, rsList);

    if (d.metadata.deletionTimestamp) return syncStatusOnly(d, rsList);

    // Pausing and resuming set Progressing to Unknown, so a resumed
    // Deployment does not time out for the time it spent paused.
    await checkPausedConditions(d);
    if (d.spec?.paused) return sync(d, rsList);

    if (await isScalingEvent(d, rsList)) return sync(d, rsList);

    const strategy = d.spec?.strategy?.type ?? 'RollingUpdate';
    if (strategy === 'Recreate') return rolloutRecreate(ops, d, rsList, podMap);
    if (strategy === 'RollingUpdate') return rolloutRolling(ops, d, rsList);
    throw new Error(`unexpected deployment strategy type: ${strategy}`);
  }

  /**
   * The ReplicaSets this Deployment controls: adopts orphans its selector
   * matches and releases those it owns that no longer match.
   */
  async function getReplicaSetsForDeployment(d: Deployment): Promise<ReplicaSet[]> {
    let selector: Selector;
    try {
      selector = selectorFromLabelSelector(d.spec?.selector as LabelSelector | undefined);
    } catch (err) {
      throw new Error(`deployment ${keyOf(d)} has invalid label selector: ${String(err)}`);
    }
    const candidates = replicaSets.indexer.byIndex(NAMESPACE_INDEX, d.metadata.namespace ?? '');
    return claimObjects(candidates, {
      owner: d,
      ownerApiVersion: APPS_V1,
      ownerKind: 'Deployment',
      selector,
      client: ctx.clients.replicaSets,
      recheckOwner: () =>
        ctx.clients.deployments.get(d.metadata.namespace, d.metadata.name ?? '').catch((err) => {
          if (isApiError(err, 'NotFound')) return undefined;
          throw err;
        }),
    });
  }

  /** The Deployment's pods, by the uid of the ReplicaSet that controls them. */
  function podMapFor(d: Deployment, rsList: ReplicaSet[]): Map<string, Pod[]> {
    const selector = selectorOf(d);
    const map = new Map<string, Pod[]>();
    for (const rs of rsList) {
      const uid = rs.metadata.uid ?? '';
      map.set(
        uid,
        pods.indexer
          .byIndex(CONTROLLER_INDEX, uid)
          .filter(
            (p) => p.metadata.namespace === d.metadata.namespace && selector?.matches(p.metadata.labels),
          ),
      );
    }
    return map;
  }

  async function updateStatus(d: Deployment): Promise<void> {
    const updated = await ctx.clients.deployments.updateStatus(d);
    // Later writes in this sync build on this one.
    d.metadata.resourceVersion = updated.metadata.resourceVersion;
  }

  async function checkPausedConditions(d: Deployment): Promise<void> {
    if (!hasProgressDeadline(d)) return;
    const cond = getDeploymentCondition(d.status, DEPLOYMENT_PROGRESSING);
    if (cond?.reason === TIMED_OUT_REASON) return; // a timeout is kept until a new rollout
    const pausedCondExists = cond?.reason === PAUSED_DEPLOY_REASON;
    let condition: DeploymentCondition | undefined;
    if (d.spec?.paused && !pausedCondExists) {
      condition = newDeploymentCondition(
        DEPLOYMENT_PROGRESSING,
        'Unknown',
        PAUSED_DEPLOY_REASON,
        'Deployment is paused',
        ctx.now(),
      );
    } else if (!d.spec?.paused && pausedCondExists) {
      condition = newDeploymentCondition(
        DEPLOYMENT_PROGRESSING,
        'Unknown',
        RESUMED_DEPLOY_REASON,
        'Deployment is resumed',
        ctx.now(),
      );
    }
    if (!condition) return;
    d.status ??= {};
    setDeploymentCondition(d.status, condition);
    await updateStatus(d);
  }

  /**
   * A scaling event: some active ReplicaSet was last sized for another
   * spec.replicas than the Deployment has now.
   */
  async function isScalingEvent(d: Deployment, rsList: ReplicaSet[]): Promise<boolean> {
    const { newRS, oldRSs } = await getAllReplicaSetsAndSyncRevision(d, rsList, false);
    for (const rs of filterActiveReplicaSets([...oldRSs, newRS])) {
      const desired = desiredReplicasAnnotation(rs);
      if (desired !== undefined && desired !== specReplicas(d)) return true;
    }
    return false;
  }

  /** A scale or a paused Deployment: resize the ReplicaSets, no rollout. */
  async function sync(d: Deployment, rsList: ReplicaSet[]): Promise<void> {
    const { newRS, oldRSs } = await getAllReplicaSetsAndSyncRevision(d, rsList, false);
    await scale(d, newRS, oldRSs);
    // A paused Deployment may be in the middle of a rollout, so this is the
    // only place old revisions are trimmed for it.
    if (d.spec?.paused) await cleanupDeployment(oldRSs, d);
    await syncDeploymentStatus([...oldRSs, newRS], newRS, d);
  }

  async function syncStatusOnly(d: Deployment, rsList: ReplicaSet[]): Promise<void> {
    const { newRS, oldRSs } = await getAllReplicaSetsAndSyncRevision(d, rsList, false);
    await syncDeploymentStatus([...oldRSs, newRS], newRS, d);
  }

  async function syncDeploymentStatus(
    allRSs: (ReplicaSet | undefined)[],
    newRS: ReplicaSet | undefined,
    d: Deployment,
  ): Promise<void> {
    const newStatus = calculateStatus(allRSs, newRS, d, ctx.now());
    if (sameStatus(d.status, newStatus)) return;
    d.status = newStatus;
    await updateStatus(d);
  }

  async function getAllReplicaSetsAndSyncRevision(
    d: Deployment,
    rsList: ReplicaSet[],
    create: boolean,
  ): Promise<{ newRS: ReplicaSet | undefined; oldRSs: ReplicaSet[] }> {
    const oldRSs = findOldReplicaSets(d, rsList).all;
    const newRS = await getNewReplicaSet(d, rsList, oldRSs, create);
    return { newRS, oldRSs };
  }

  /**
   * The ReplicaSet of the current template, its annotations (revision,
   * copied Deployment annotations) and minReadySeconds brought up to date;
   * created when missing and `create`. The Deployment's revision follows.
   */
  async function getNewReplicaSet(
    d: Deployment,
    rsList: ReplicaSet[],
    oldRSs: ReplicaSet[],
    create: boolean,
  ): Promise<ReplicaSet | undefined> {
    const existing = findNewReplicaSet(d, rsList);
    const newRevision = maxRevision(oldRSs) + 1;
    const minReadySeconds = d.spec?.minReadySeconds ?? 0;

    if (existing) {
      const rsCopy = asReplicaSet(existing);
      const annotationsUpdated = setNewReplicaSetAnnotations(d, rsCopy, newRevision, true);
      if (annotationsUpdated || (rsCopy.spec?.minReadySeconds ?? 0) !== minReadySeconds) {
        rsCopy.spec = { ...rsCopy.spec, minReadySeconds };
        return ctx.clients.replicaSets.update(rsCopy);
      }
      let needsUpdate = setDeploymentRevision(d, rsCopy.metadata.annotations?.[REVISION_ANNOTATION] ?? '');
      if (hasProgressDeadline(d) && !getDeploymentCondition(d.status, DEPLOYMENT_PROGRESSING)) {
        d.status ??= {};
        setDeploymentCondition(
          d.status,
          newDeploymentCondition(
            DEPLOYMENT_PROGRESSING,
            'True',
            FOUND_NEW_RS_REASON,
            `Found new replica set "${rsCopy.metadata.name}"`,
            ctx.now(),
          ),
        );
        needsUpdate = true;
      }
      if (needsUpdate) await updateStatus(d);
      return rsCopy;
    }
    if (!create) return undefined;

    // The hash covers the template before the hash label is added, and the
    // collisionCount, so a collision is resolved by counting up.
    const template = deepCopy(d.spec?.template) ?? { metadata: {} };
    const hash = computeHash(template, d.status?.collisionCount);
    const labels = { ...template.metadata?.labels, [DEFAULT_DEPLOYMENT_UNIQUE_LABEL_KEY]: hash };
    template.metadata = { ...template.metadata, labels };
    const selector = deepCopy(d.spec?.selector) ?? {};
    selector.matchLabels = { ...selector.matchLabels, [DEFAULT_DEPLOYMENT_UNIQUE_LABEL_KEY]: hash };
    const namespace = d.metadata.namespace;
    const newRS: ReplicaSet = {
      apiVersion: APPS_V1,
      kind: 'ReplicaSet',
      metadata: {
        name: `${d.metadata.name}-${hash}`,
        namespace,
        ownerReferences: [ownerRef(d, APPS_V1, 'Deployment')],
        labels: { ...labels },
      },
      spec: { replicas: 0, ...(minReadySeconds ? { minReadySeconds } : {}), selector, template },
    };
    const newReplicasCount = newRSNewReplicas(d, [...oldRSs, newRS], newRS);
    (newRS.spec as { replicas: number }).replicas = newReplicasCount;
    setNewReplicaSetAnnotations(d, newRS, newRevision, false);

    let createdRS: ReplicaSet;
    let alreadyExists = false;
    try {
      createdRS = await ctx.clients.replicaSets.create(namespace, newRS);
    } catch (err) {
      if (isApiError(err, 'AlreadyExists')) {
        const rs = replicaSets.indexer.get(`${namespace}/${newRS.metadata.name}`);
        if (!rs) throw err; // our cache is behind: retry once it has it
        const ref = controllerRef(rs);
        if (ref?.uid === d.metadata.uid && equalIgnoreHash(d.spec?.template, rs.spec?.template)) {
          // Ours, made by an earlier sync the cache had not shown yet.
          createdRS = rs;
          alreadyExists = true;
        } else {
          // Another template hashed to the same name: count the collision so
          // the next attempt hashes differently.
          d.status = { ...d.status, collisionCount: (d.status?.collisionCount ?? 0) + 1 };
          try {
            await updateStatus(d);
            log('found a hash collision for deployment, bumped collisionCount', {
              deployment: keyOf(d),
              collisionCount: d.status.collisionCount,
            });
          } catch {
            // Retried with the create.
          }
          throw err;
        }
      } else if (isApiError(err, 'Forbidden') && /terminat/i.test(err.message)) {
        throw err; // the namespace is going away: no condition or event
      } else {
        const msg = `Failed to create new replica set "${newRS.metadata.name}": ${String(err)}`;
        if (hasProgressDeadline(d)) {
          d.status ??= {};
          setDeploymentCondition(
            d.status,
            newDeploymentCondition(DEPLOYMENT_PROGRESSING, 'False', FAILED_RS_CREATE_REASON, msg, ctx.now()),
          );
          await updateStatus(d).catch(() => {});
        }
        recorder.event(d, 'Warning', FAILED_RS_CREATE_REASON, msg);
        throw err;
      }
    }
    if (!alreadyExists && newReplicasCount > 0) {
      recorder.event(
        d,
        'Normal',
        'ScalingReplicaSet',
        `Scaled up replica set ${createdRS.metadata.name} to ${newReplicasCount}`,
      );
    }
    let needsUpdate = setDeploymentRevision(d, String(newRevision));
    if (!alreadyExists && hasProgressDeadline(d)) {
      d.status ??= {};
      setDeploymentCondition(
        d.status,
        newDeploymentCondition(
          DEPLOYMENT_PROGRESSING,
          'True',
          NEW_RS_REASON,
          `Created new replica set "${createdRS.metadata.name}"`,
          ctx.now(),
        ),
      );
      needsUpdate = true;
    }
    if (needsUpdate) await updateStatus(d);
    return createdRS;
  }

  /**
   * Scaling outside a rollout step. One active ReplicaSet takes the whole
   * size; a saturated new ReplicaSet means the old ones go to 0; otherwise
   * (a scale during a rolling update) the change is shared in proportion to
   * each ReplicaSet's size, leftovers to the largest.
   */
  async function scale(d: Deployment, newRS: ReplicaSet | undefined, oldRSs: ReplicaSet[]): Promise<void> {
    const replicas = specReplicas(d);
    const activeOrLatest = findActiveOrLatest(newRS, oldRSs);
    if (activeOrLatest) {
      if (specReplicas(activeOrLatest) === replicas) return;
      await scaleReplicaSetAndRecordEvent(activeOrLatest, replicas, d);
      return;
    }
    if (isSaturated(d, newRS)) {
      for (const old of filterActiveReplicaSets(oldRSs)) await scaleReplicaSetAndRecordEvent(old, 0, d);
      return;
    }
    if (!isRollingUpdate(d)) return;

    const allRSs = filterActiveReplicaSets([...oldRSs, newRS]);
    const allowedSize = replicas > 0 ? replicas + maxSurge(d) : 0;
    const toAdd = allowedSize - replicaCount(allRSs);
    let operation = '';
    if (toAdd > 0) {
      allRSs.sort(bySizeNewer);
      operation = 'up';
    } else if (toAdd < 0) {
      allRSs.sort(bySizeOlder);
      operation = 'down';
    }
    let added = 0;
    const sizes = new Map<string, number>();
    for (const rs of allRSs) {
      const proportion = toAdd !== 0 ? getProportion(rs, d, toAdd, added) : 0;
      sizes.set(rs.metadata.name ?? '', specReplicas(rs) + proportion);
      added += proportion;
    }
    for (const [i, rs] of allRSs.entries()) {
      const name = rs.metadata.name ?? '';
      if (i === 0 && toAdd !== 0) sizes.set(name, Math.max(0, (sizes.get(name) ?? 0) + toAdd - added));
      await scaleReplicaSet(rs, sizes.get(name) ?? 0, d, operation);
    }
  }

  async function scaleReplicaSetAndRecordEvent(
    rs: ReplicaSet,
    newScale: number,
    d: Deployment,
  ): Promise<{ scaled: boolean; rs: ReplicaSet }> {
    if (specReplicas(rs) === newScale) return { scaled: false, rs };
    return scaleReplicaSet(rs, newScale, d, specReplicas(rs) < newScale ? 'up' : 'down');
  }

  /** Writes the size and the desired/max-replicas annotations (the base of later proportions). */
  async function scaleReplicaSet(
    rs: ReplicaSet,
    newScale: number,
    d: Deployment,
    operation: string,
  ): Promise<{ scaled: boolean; rs: ReplicaSet }> {
    const oldScale = specReplicas(rs);
    const sizeNeedsUpdate = oldScale !== newScale;
    const desired = specReplicas(d);
    const max = desired + maxSurge(d);
    if (!sizeNeedsUpdate && !replicasAnnotationsNeedUpdate(rs, desired, max)) return { scaled: false, rs };
    const copy = asReplicaSet(rs);
    copy.spec = { ...copy.spec, replicas: newScale };
    setReplicasAnnotations(copy, desired, max);
    const updated = await ctx.clients.replicaSets.update(copy);
    if (sizeNeedsUpdate) {
      recorder.event(
        d,
        'Normal',
        'ScalingReplicaSet',
        `Scaled ${operation} replica set ${updated.metadata.name} to ${newScale} from ${oldScale}`,
      );
    }
    return { scaled: sizeNeedsUpdate, rs: updated };
  }

  /**
   * Deletes the oldest revisions beyond revisionHistoryLimit, but only
   * ReplicaSets that are fully scaled down (spec and status) and whose
   * status is current.
   */
  async function cleanupDeployment(oldRSs: ReplicaSet[], d: Deployment): Promise<void> {
    const limit = d.spec?.revisionHistoryLimit;
    if (limit === undefined) return;
    const cleanable = oldRSs.filter((rs) => !rs.metadata.deletionTimestamp).sort(byRevision);
    const diff = cleanable.length - limit;
    for (let i = 0; i < diff; i++) {
      const rs = cleanable[i] as ReplicaSet;
      if (
        (rs.status?.replicas ?? 0) !== 0 ||
        specReplicas(rs) !== 0 ||
        (rs.metadata.generation ?? 0) > (rs.status?.observedGeneration ?? 0)
      ) {
        continue;
      }
      try {
        await ctx.clients.replicaSets.delete(rs.metadata.namespace, rs.metadata.name ?? '', {
          preconditions: { uid: rs.metadata.uid ?? '' },
        });
      } catch (err) {
        if (!isApiError(err, 'NotFound') && !isApiError(err, 'Conflict')) throw err;
      }
    }
  }

  const ops: RolloutOps = {
    now: () => ctx.now(),
    getAllReplicaSetsAndSyncRevision,
    scaleReplicaSetAndRecordEvent,
    cleanupDeployment,
    updateStatus,
    requeueAfter(d, ms) {
      if (ms <= 0) c.queue.addRateLimited(keyOf(d));
      else c.queue.addAfter(keyOf(d), ms);
    },
  };

  return c;
};
