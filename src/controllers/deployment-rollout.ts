// The two rollout strategies and progress tracking of the Deployment
// controller, as upstream's rolling.go, recreate.go and progress.go:
// https://github.com/kubernetes/kubernetes/tree/master/pkg/controller/deployment
//
// Each function reads the ReplicaSets it is given (from the informer cache),
// makes at most the scaling steps that are safe right now, and writes the
// Deployment's status. The controller is level-triggered: the next ReplicaSet
// status change brings the Deployment back here for the next step.

import { jsonEqual } from '../api/meta.ts';
import type { Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet } from '../api/types/apps-v1.ts';
import type { Pod } from '../api/types/core-v1.ts';
import {
  actualReplicaCount,
  availableReplicaCount,
  byCreationTimestamp,
  calculateStatus,
  DEPLOYMENT_PROGRESSING,
  DEPLOYMENT_REPLICA_FAILURE,
  deploymentComplete,
  deploymentProgressing,
  deploymentTimedOut,
  filterActiveReplicaSets,
  getDeploymentCondition,
  hasProgressDeadline,
  maxUnavailable,
  NEW_RS_AVAILABLE_REASON,
  newDeploymentCondition,
  newRSNewReplicas,
  REPLICA_SET_UPDATED_REASON,
  removeDeploymentCondition,
  replicaCount,
  replicaSetToDeploymentCondition,
  setDeploymentCondition,
  specReplicas,
  TIMED_OUT_REASON,
} from './deployment-util.ts';

/** What the strategies need from the controller: its writes and its clock. */
export interface RolloutOps {
  now(): Date;
  /** The new ReplicaSet (created when `create` and missing) and the old ones; syncs the revision. */
  getAllReplicaSetsAndSyncRevision(
    d: Deployment,
    rsList: ReplicaSet[],
    create: boolean,
  ): Promise<{ newRS: ReplicaSet | undefined; oldRSs: ReplicaSet[] }>;
  /** Scales a ReplicaSet and records a ScalingReplicaSet event; returns the written object. */
  scaleReplicaSetAndRecordEvent(
    rs: ReplicaSet,
    newScale: number,
    d: Deployment,
  ): Promise<{ scaled: boolean; rs: ReplicaSet }>;
  /** Deletes old ReplicaSets beyond revisionHistoryLimit. */
  cleanupDeployment(oldRSs: ReplicaSet[], d: Deployment): Promise<void>;
  /** Writes d.status (and annotations) through /status, keeping d's resourceVersion current. */
  updateStatus(d: Deployment): Promise<void>;
  /** Re-syncs the Deployment after `ms` (0: soon, rate limited). */
  requeueAfter(d: Deployment, ms: number): void;
}

// ---- RollingUpdate (rolling.go) ----

/**
 * One step of a rolling update: grow the new ReplicaSet within maxSurge;
 * if nothing grew, shrink old ones within maxUnavailable; once complete,
 * trim old revisions.
 */
export async function rolloutRolling(ops: RolloutOps, d: Deployment, rsList: ReplicaSet[]): Promise<void> {
  const got = await ops.getAllReplicaSetsAndSyncRevision(d, rsList, true);
  const newRS = got.newRS;
  const oldRSs = got.oldRSs;
  if (!newRS) throw new Error('no new replica set'); // created above, or the create threw
  const allRSs = [...oldRSs, newRS];

  if (await reconcileNewReplicaSet(ops, allRSs, newRS, d)) return syncRolloutStatus(ops, allRSs, newRS, d);
  if (await reconcileOldReplicaSets(ops, allRSs, filterActiveReplicaSets(oldRSs), newRS, d)) {
    return syncRolloutStatus(ops, allRSs, newRS, d);
  }
  if (deploymentComplete(d, d.status ?? {})) await ops.cleanupDeployment(oldRSs, d);
  return syncRolloutStatus(ops, allRSs, newRS, d);
}

async function reconcileNewReplicaSet(
  ops: RolloutOps,
  allRSs: ReplicaSet[],
  newRS: ReplicaSet,
  d: Deployment,
): Promise<boolean> {
  const replicas = specReplicas(d);
  if (specReplicas(newRS) === replicas) return false;
  if (specReplicas(newRS) > replicas) {
    return (await ops.scaleReplicaSetAndRecordEvent(newRS, replicas, d)).scaled;
  }
  return (await ops.scaleReplicaSetAndRecordEvent(newRS, newRSNewReplicas(d, allRSs, newRS), d)).scaled;
}

/**
 * Scales old ReplicaSets down as far as maxUnavailable allows, counting the
 * new ReplicaSet's not-yet-available pods against the budget. Unhealthy old
 * pods go first: removing them costs no availability.
 */
async function reconcileOldReplicaSets(
  ops: RolloutOps,
  allRSs: ReplicaSet[],
  oldRSs: ReplicaSet[],
  newRS: ReplicaSet,
  d: Deployment,
): Promise<boolean> {
  if (replicaCount(oldRSs) === 0) return false; // can't scale down further
  const allPodsCount = replicaCount(allRSs);
  const minAvailable = specReplicas(d) - maxUnavailable(d);
  const newRSUnavailablePodCount = specReplicas(newRS) - (newRS.status?.availableReplicas ?? 0);
  // E.g. 10 desired, maxUnavailable 2, maxSurge 3 → 13 pods; if the 5 new ones
  // are all unavailable, 13 - 8 - 5 = 0 may go: scaling old ones down would
  // leave fewer than 8 available.
  const maxScaledDown = allPodsCount - minAvailable - newRSUnavailablePodCount;
  if (maxScaledDown <= 0) return false;

  const cleaned = await cleanupUnhealthyReplicas(ops, oldRSs, d, maxScaledDown);
  const scaledDown = await scaleDownOldReplicaSetsForRollingUpdate(
    ops,
    [...cleaned.oldRSs, newRS],
    cleaned.oldRSs,
    d,
  );
  return cleaned.scaledDown + scaledDown > 0;
}

/** Scales old ReplicaSets down by their unavailable pods, oldest first, at most maxCleanupCount in all. */
async function cleanupUnhealthyReplicas(
  ops: RolloutOps,
  oldRSs: ReplicaSet[],
  d: Deployment,
  maxCleanupCount: number,
): Promise<{ oldRSs: ReplicaSet[]; scaledDown: number }> {
  const sorted = [...oldRSs].sort(byCreationTimestamp);
  let total = 0;
  for (let i = 0; i < sorted.length; i++) {
    if (total >= maxCleanupCount) break;
    const rs = sorted[i] as ReplicaSet;
    const replicas = specReplicas(rs);
    const available = rs.status?.availableReplicas ?? 0;
    if (replicas === 0 || replicas === available) continue; // nothing unhealthy here
    const count = Math.min(maxCleanupCount - total, replicas - available);
    const newReplicas = replicas - count;
    if (newReplicas > replicas) {
      throw new Error(
        `when cleaning up unhealthy replicas, got invalid request to scale down ${rs.metadata.name} ${replicas} -> ${newReplicas}`,
      );
    }
    sorted[i] = (await ops.scaleReplicaSetAndRecordEvent(rs, newReplicas, d)).rs;
    total += count;
  }
  return { oldRSs: sorted, scaledDown: total };
}

/** Scales old ReplicaSets down, oldest first, by the available pods above minAvailable. */
async function scaleDownOldReplicaSetsForRollingUpdate(
  ops: RolloutOps,
  allRSs: ReplicaSet[],
  oldRSs: ReplicaSet[],
  d: Deployment,
): Promise<number> {
  const minAvailable = specReplicas(d) - maxUnavailable(d);
  const availablePodCount = availableReplicaCount(allRSs);
  if (availablePodCount <= minAvailable) return 0;
  const totalScaleDownCount = availablePodCount - minAvailable;
  let total = 0;
  for (const rs of [...oldRSs].sort(byCreationTimestamp)) {
    if (total >= totalScaleDownCount) break;
    if (specReplicas(rs) === 0) continue;
    const count = Math.min(specReplicas(rs), totalScaleDownCount - total);
    await ops.scaleReplicaSetAndRecordEvent(rs, specReplicas(rs) - count, d);
    total += count;
  }
  return total;
}

// ---- Recreate (recreate.go) ----

/**
 * Recreate: scale every old ReplicaSet to 0, wait until none of their pods
 * is left running, then create the new ReplicaSet at full size.
 * `podMap` is the Deployment's pods by the uid of their ReplicaSet.
 */
export async function rolloutRecreate(
  ops: RolloutOps,
  d: Deployment,
  rsList: ReplicaSet[],
  podMap: Map<string, Pod[]>,
): Promise<void> {
  // Don't create a new ReplicaSet until the old pods are gone.
  let { newRS, oldRSs } = await ops.getAllReplicaSetsAndSyncRevision(d, rsList, false);
  let allRSs = [...oldRSs, newRS];
  const activeOldRSs = filterActiveReplicaSets(oldRSs);

  let scaledDown = false;
  for (const rs of activeOldRSs) {
    if ((await ops.scaleReplicaSetAndRecordEvent(rs, 0, d)).scaled) scaledDown = true;
  }
  if (scaledDown) return syncRolloutStatus(ops, allRSs, newRS, d);
  if (oldPodsRunning(newRS, oldRSs, podMap)) return syncRolloutStatus(ops, allRSs, newRS, d);

  if (!newRS) {
    ({ newRS, oldRSs } = await ops.getAllReplicaSetsAndSyncRevision(d, rsList, true));
    allRSs = [...oldRSs, newRS];
  }
  if (newRS) await ops.scaleReplicaSetAndRecordEvent(newRS, specReplicas(d), d);
  if (deploymentComplete(d, d.status ?? {})) await ops.cleanupDeployment(oldRSs, d);
  return syncRolloutStatus(ops, allRSs, newRS, d);
}

/**
 * True while an old ReplicaSet still reports pods, or a pod of one is not
 * finished (Failed and Succeeded pods are done; any other phase, Unknown
 * included, may still be running).
 */
function oldPodsRunning(
  newRS: ReplicaSet | undefined,
  oldRSs: ReplicaSet[],
  podMap: Map<string, Pod[]>,
): boolean {
  if (actualReplicaCount(oldRSs) > 0) return true;
  for (const [uid, pods] of podMap) {
    if (newRS && newRS.metadata.uid === uid) continue;
    for (const pod of pods) {
      const phase = pod.status?.phase;
      if (phase !== 'Failed' && phase !== 'Succeeded') return true;
    }
  }
  return false;
}

// ---- progress (progress.go) ----

/**
 * Writes the status with the Progressing condition brought up to date:
 * NewReplicaSetAvailable once complete, ReplicaSetUpdated whenever progress
 * was made (which moves the deadline), ProgressDeadlineExceeded once
 * progressDeadlineSeconds passed without progress. A Deployment that may
 * still time out is re-synced when its deadline comes.
 */
export async function syncRolloutStatus(
  ops: RolloutOps,
  allRSs: (ReplicaSet | undefined)[],
  newRS: ReplicaSet | undefined,
  d: Deployment,
): Promise<void> {
  const now = ops.now();
  const newStatus = calculateStatus(allRSs, newRS, d, now);
  if (!hasProgressDeadline(d)) removeDeploymentCondition(newStatus, DEPLOYMENT_PROGRESSING);

  const currentCond = getDeploymentCondition(d.status, DEPLOYMENT_PROGRESSING);
  const isCompleteDeployment =
    newStatus.replicas === newStatus.updatedReplicas && currentCond?.reason === NEW_RS_AVAILABLE_REASON;
  if (hasProgressDeadline(d) && !isCompleteDeployment) {
    const subject = newRS ? `ReplicaSet "${newRS.metadata.name}"` : `Deployment "${d.metadata.name}"`;
    if (deploymentComplete(d, newStatus)) {
      setDeploymentCondition(
        newStatus,
        newDeploymentCondition(
          DEPLOYMENT_PROGRESSING,
          'True',
          NEW_RS_AVAILABLE_REASON,
          `${subject} has successfully progressed.`,
          now,
        ),
      );
    } else if (deploymentProgressing(d, newStatus)) {
      // Progress: a fresh lastUpdateTime, which restarts the deadline; the
      // transition time stays if it was already True.
      const condition = newDeploymentCondition(
        DEPLOYMENT_PROGRESSING,
        'True',
        REPLICA_SET_UPDATED_REASON,
        `${subject} is progressing.`,
        now,
      );
      if (currentCond) {
        if (currentCond.status === 'True') condition.lastTransitionTime = currentCond.lastTransitionTime;
        removeDeploymentCondition(newStatus, DEPLOYMENT_PROGRESSING);
      }
      setDeploymentCondition(newStatus, condition);
    } else if (deploymentTimedOut(d, newStatus, now)) {
      setDeploymentCondition(
        newStatus,
        newDeploymentCondition(
          DEPLOYMENT_PROGRESSING,
          'False',
          TIMED_OUT_REASON,
          `${subject} has timed out progressing.`,
          now,
        ),
      );
    }
  }

  // A ReplicaSet's ReplicaFailure (e.g. pods refused by quota) becomes the
  // Deployment's; the new ReplicaSet's failure wins over old ones'.
  const failure = replicaFailures(allRSs, newRS)[0];
  if (failure) setDeploymentCondition(newStatus, failure);
  else removeDeploymentCondition(newStatus, DEPLOYMENT_REPLICA_FAILURE);

  if (sameStatus(d.status, newStatus)) {
    requeueStuckDeployment(ops, d, newStatus);
    return;
  }
  d.status = newStatus;
  await ops.updateStatus(d);
}

function replicaFailures(
  allRSs: (ReplicaSet | undefined)[],
  newRS: ReplicaSet | undefined,
): DeploymentCondition[] {
  const of = (rs: ReplicaSet | undefined) =>
    (rs?.status?.conditions ?? [])
      .filter((c) => c.type === DEPLOYMENT_REPLICA_FAILURE)
      .map(replicaSetToDeploymentCondition);
  const fromNew = of(newRS);
  return fromNew.length ? fromNew : allRSs.flatMap(of);
}

/**
 * Without progress, nothing else would bring the Deployment back when its
 * deadline passes, so it is queued for then (upstream issue 34458).
 */
function requeueStuckDeployment(ops: RolloutOps, d: Deployment, newStatus: DeploymentStatus): void {
  const currentCond = getDeploymentCondition(d.status, DEPLOYMENT_PROGRESSING);
  if (!hasProgressDeadline(d) || !currentCond) return;
  if (deploymentComplete(d, newStatus) || currentCond.reason === TIMED_OUT_REASON) return;
  const lastUpdate = Date.parse(currentCond.lastUpdateTime ?? '') || 0;
  const after = lastUpdate + (d.spec?.progressDeadlineSeconds ?? 0) * 1000 - ops.now().getTime();
  ops.requeueAfter(d, after < 1000 ? 0 : after + 1000);
}

/** Deep equality of two statuses, as upstream's reflect.DeepEqual before a write. */
export const sameStatus = (a: DeploymentStatus | undefined, b: DeploymentStatus | undefined): boolean =>
  jsonEqual(a ?? {}, b ?? {});
