// The Job controller (upstream's job-controller, pkg/controller/job): runs a
// Job's pods until enough of them succeed, or gives up after too many fail.
//
// Counting is exact even when pods disappear, as upstream's tracking with
// finalizers: every pod carries the batch.kubernetes.io/job-tracking
// finalizer from its creation, so it cannot vanish before it is counted.
// A finished pod is first written to status.uncountedTerminatedPods, then
// its finalizer is removed, then it moves into status.succeeded/failed.
// A crash between those steps leaves a record from which the next sync
// resumes without counting any pod twice.
//
// https://github.com/kubernetes/kubernetes/blob/master/pkg/controller/job/job_controller.go

import { isApiError } from '../api/errors.ts';
import { type LabelSelector, selectorFromLabelSelector } from '../api/labels.ts';
import { deepCopy, rfc3339 } from '../api/meta.ts';
import type { Job, JobCondition } from '../api/types/batch-v1.ts';
import type { Container, Pod, PodTemplateSpec } from '../api/types/core-v1.ts';
import { NAMESPACE_INDEX } from '../client/informer-factory.ts';
import { type ControllerFactory, keyOf } from './context.ts';
import { queueController } from './controller.ts';
import { Expectations } from './expectations.ts';
import { claimObjects, controllerRefOf, ownerRef } from './ownership.ts';

export const JOB_TRACKING_FINALIZER = 'batch.kubernetes.io/job-tracking';
export const JOB_COMPLETION_INDEX_ANNOTATION = 'batch.kubernetes.io/job-completion-index';
const JOB_COMPLETION_INDEX_ENV = 'JOB_COMPLETION_INDEX';
const JOB_CONTROLLER_NAME = 'kubernetes.io/job-controller';

/** Upstream's DefaultJobPodFailureBackOff and MaxJobPodFailureBackOff. */
export const POD_FAILURE_BACKOFF_MS = 10_000;
export const MAX_POD_FAILURE_BACKOFF_MS = 10 * 60_000;
/** Keeps status.uncountedTerminatedPods small (upstream's MaxUncountedPods). */
const MAX_UNCOUNTED_PODS = 500;
/** Upstream's MaxPodCreateDeletePerSync. */
const MAX_POD_CREATE_DELETE_PER_SYNC = 500;

// ---- helpers over Jobs and Pods ----------------------------------------

const conditionTrue = (job: Job, type: string) =>
  job.status?.conditions?.find((c) => c.type === type && c.status === 'True');

/** Complete or Failed: the terminal conditions (upstream's IsJobFinished). */
export const finishedCondition = (job: Job): JobCondition | undefined =>
  conditionTrue(job, 'Complete') ?? conditionTrue(job, 'Failed');

const isIndexed = (job: Job) => job.spec?.completionMode === 'Indexed';
const suspended = (job: Job) => job.spec?.suspend === true;
const hasFinalizer = (pod: Pod) => pod.metadata.finalizers?.includes(JOB_TRACKING_FINALIZER) ?? false;
const isTerminal = (pod: Pod) => pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed';
const isActive = (pod: Pod) => !isTerminal(pod) && !pod.metadata.deletionTimestamp;
const isTerminating = (pod: Pod) => !isTerminal(pod) && !!pod.metadata.deletionTimestamp;
const isReady = (pod: Pod) =>
  pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;

// With podReplacementPolicy Failed (or a podFailurePolicy) a pod only
// counts as failed once it reaches the Failed phase; otherwise a pod being
// deleted before it succeeded is a failure too.
const onlyReplaceFailedPods = (job: Job) =>
  job.spec?.podReplacementPolicy === 'Failed' || job.spec?.podFailurePolicy !== undefined;

function isPodFailed(pod: Pod, job: Job): boolean {
  if (pod.status?.phase === 'Failed') return true;
  if (onlyReplaceFailedPods(job)) return false;
  return !!pod.metadata.deletionTimestamp && pod.status?.phase !== 'Succeeded';
}

/** The pod's completion index, or -1 when it has none or it is malformed. */
export function completionIndex(pod: Pod): number {
  const v = pod.metadata.annotations?.[JOB_COMPLETION_INDEX_ANNOTATION];
  if (v === undefined || !/^(0|[1-9][0-9]*)$/.test(v)) return -1;
  return Number(v);
}

function validIndex(pod: Pod, job: Job): number {
  const ix = completionIndex(pod);
  return ix >= 0 && ix < (job.spec?.completions ?? 0) ? ix : -1;
}

/** Indexes as status.completedIndexes writes them: "0-2,5,7-9". */
export function formatIndexes(indexes: Iterable<number>): string {
  const sorted = [...new Set(indexes)].sort((a, b) => a - b);
  const out: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === (sorted[j] as number) + 1) j++;
    out.push(i === j ? `${sorted[i]}` : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return out.join(',');
}

/** Parses status.completedIndexes, keeping only indexes below completions. */
export function parseIndexes(s: string | undefined, completions: number): Set<number> {
  const out = new Set<number>();
  for (const part of (s ?? '').split(',')) {
    if (!part) continue;
    const [from, to = from] = part.split('-').map(Number) as [number, number?];
    for (let i = from; i <= (to as number) && i < completions; i++) out.add(i);
  }
  return out;
}

// When a pod finished: its containers' last finish, else the time it
// turned not-ready, else when it was deleted, else its creation
// (upstream's getFinishedTime, backoff_utils.go).
function finishedTime(pod: Pod): number {
  const statuses = pod.status?.containerStatuses ?? [];
  if (statuses.length > 0 && statuses.every((c) => c.state?.terminated?.finishedAt)) {
    return Math.max(...statuses.map((c) => Date.parse(c.state?.terminated?.finishedAt as string)));
  }
  const ready = pod.status?.conditions?.find((c) => c.type === 'Ready');
  if (ready?.status === 'False' && ready.lastTransitionTime) return Date.parse(ready.lastTransitionTime);
  if (pod.metadata.deletionTimestamp)
    return Date.parse(pod.metadata.deletionTimestamp) - (pod.metadata.deletionGracePeriodSeconds ?? 0) * 1000;
  return Date.parse(pod.metadata.creationTimestamp ?? '') || 0;
}

// Which active pods to delete first, as upstream's controller.ActivePods
// ordering: unscheduled before scheduled, pending before running, not ready
// before ready, then the newest first.
const phaseRank: Record<string, number> = { Pending: 0, Unknown: 1, Running: 2 };
function deletionOrder(a: Pod, b: Pod): number {
  const scheduled = (p: Pod) => (p.spec?.nodeName ? 1 : 0);
  if (scheduled(a) !== scheduled(b)) return scheduled(a) - scheduled(b);
  const phase = (p: Pod) => phaseRank[p.status?.phase ?? 'Pending'] ?? 0;
  if (phase(a) !== phase(b)) return phase(a) - phase(b);
  if (isReady(a) !== isReady(b)) return isReady(a) ? 1 : -1;
  return (b.metadata.creationTimestamp ?? '').localeCompare(a.metadata.creationTimestamp ?? '');
}

/**
 * The active pods to delete: for Indexed Jobs first those whose index is
 * invalid, already succeeded or held by another pod, then the most
 * deletable of the rest until at least rmAtLeast are chosen.
 */
function activePodsForRemoval(job: Job, pods: Pod[], rmAtLeast: number, succeeded: Set<number>): Pod[] {
  let rm: Pod[] = [];
  let left = pods;
  if (isIndexed(job)) {
    left = [];
    const byIndex = new Map<number, Pod>();
    for (const pod of [...pods].sort((a, b) => deletionOrder(b, a))) {
      const ix = validIndex(pod, job);
      if (ix < 0 || succeeded.has(ix) || byIndex.has(ix)) rm.push(pod);
      else {
        byIndex.set(ix, pod);
        left.push(pod);
      }
    }
  }
  if (rm.length < rmAtLeast) rm = rm.concat([...left].sort(deletionOrder).slice(0, rmAtLeast - rm.length));
  return rm;
}

// Sets a condition's status, as upstream's ensureJobConditionStatus: a
// missing condition is only added when True. Returns whether it changed.
function ensureCondition(
  conditions: JobCondition[],
  type: string,
  status: 'True' | 'False',
  reason: string,
  message: string,
  now: string,
): boolean {
  const c = conditions.find((x) => x.type === type);
  if (!c) {
    if (status === 'False') return false;
    conditions.push({ type, status, reason, message, lastProbeTime: now, lastTransitionTime: now });
    return true;
  }
  if (c.status === status && c.reason === reason && c.message === message) return false;
  if (c.status !== status) c.lastTransitionTime = now;
  Object.assign(c, { status, reason, message, lastProbeTime: now });
  return true;
}

const newCondition = (type: string, reason: string, message: string, now: string): JobCondition => ({
  type,
  status: 'True',
  reason,
  message,
  lastProbeTime: now,
  lastTransitionTime: now,
});

// restartPolicy OnFailure: containers restart in place, so the restarts of
// running pods count against backoffLimit (upstream's pastBackoffLimitOnFailure).
function pastBackoffLimitOnFailure(job: Job, pods: Pod[]): boolean {
  if (job.spec?.template?.spec?.restartPolicy !== 'OnFailure') return false;
  let restarts = 0;
  for (const pod of pods) {
    if (pod.status?.phase !== 'Running' && pod.status?.phase !== 'Pending') continue;
    for (const c of [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])])
      restarts += c.restartCount ?? 0;
  }
  const limit = job.spec?.backoffLimit ?? 6;
  return limit === 0 ? restarts > 0 : restarts >= limit;
}

/**
 * Failures since the last success and when the last one happened: the
 * global pod-failure backoff (upstream's backoffRecord). Replacement pods
 * wait 10 s after the first failure, doubling per further failure, at most
 * 10 minutes.
 */
interface BackoffRecord {
  failuresAfterLastSuccess: number;
  lastFailureTime?: number;
}

function nextBackoffRecord(prev: BackoffRecord | undefined, succeeded: Pod[], failed: Pod[]): BackoffRecord {
  const record: BackoffRecord = { failuresAfterLastSuccess: 0, ...prev };
  const failTimes = failed.map(finishedTime).sort((a, b) => a - b);
  if (succeeded.length === 0) {
    if (failTimes.length === 0) return record;
    return {
      failuresAfterLastSuccess: record.failuresAfterLastSuccess + failTimes.length,
      lastFailureTime: failTimes[failTimes.length - 1] as number,
    };
  }
  // A success resets the count; only failures after the last success count.
  const lastSuccess = Math.max(...succeeded.map(finishedTime));
  const after = failTimes.filter((t) => t > lastSuccess);
  return after.length === 0
    ? { failuresAfterLastSuccess: 0 }
    : { failuresAfterLastSuccess: after.length, lastFailureTime: after[after.length - 1] as number };
}

export function backoffRemainingMs(record: BackoffRecord, now: number): number {
  if (record.failuresAfterLastSuccess === 0 || record.lastFailureTime === undefined) return 0;
  let backoff = POD_FAILURE_BACKOFF_MS;
  for (let i = 1; i < record.failuresAfterLastSuccess && backoff < MAX_POD_FAILURE_BACKOFF_MS; i++)
    backoff = Math.min(backoff * 2, MAX_POD_FAILURE_BACKOFF_MS);
  return Math.max(0, backoff - (now - record.lastFailureTime));
}

const removeFinalizerPatch = {
  metadata: { '$deleteFromPrimitiveList/finalizers': [JOB_TRACKING_FINALIZER] },
};

// ---- the controller ----------------------------------------------------

/** What one sync of a Job works with (upstream's syncJobCtx). */
interface SyncJobContext {
  key: string;
  job: Job;
  pods: Pod[];
  activePods: Pod[];
  ready: number;
  terminating: number;
  succeeded: number;
  /** Indexed Jobs: completed indexes before this sync, and including new successes. */
  prevSucceededIndexes: Set<number>;
  succeededIndexes: Set<number>;
  uncountedSucceeded: Set<string>;
  uncountedFailed: Set<string>;
  /** Pods whose finalizer removal we sent but have not seen yet. */
  expectedRmFinalizers: Set<string>;
  newBackoffRecord: BackoffRecord;
  /** The interim or terminal condition this sync is heading for. */
  finished?: JobCondition;
}

export const jobController: ControllerFactory = (ctx) => {
  const jobs = ctx.informers.informer('jobs');
  const pods = ctx.informers.informer('pods');
  const recorder = ctx.recorder('job-controller');
  const expectations = new Expectations(ctx.clock);
  const finalizerExpectations = new Map<string, Set<string>>();
  const backoffRecords = new Map<string, BackoffRecord>();
  const nowISO = () => rfc3339(ctx.now());

  const c = queueController(ctx, {
    name: 'job',
    workers: 5,
    sync: syncJob,
    onRun: () => orphans.run(),
    onStop: () => void orphans.stop(),
  });

  // Pods that still carry the tracking finalizer but whose Job is gone or
  // finished: nobody else would ever release them (upstream's orphanQueue).
  const orphans = queueController(ctx, {
    name: 'job-orphan-pod',
    workers: 1,
    async sync(key) {
      const pod = pods.indexer.get(key);
      if (!pod || !hasFinalizer(pod)) return;
      const ref = controllerRefOf(pod);
      if (ref) {
        if (ref.kind !== 'Job' || ref.apiVersion !== 'batch/v1') return;
        const job = jobFor(pod);
        if (job && managedElsewhere(job)) return;
        if (job && !finishedCondition(job)) return; // its Job still counts it
      }
      await ignoreNotFound(
        ctx.clients.pods.patch(
          pod.metadata.namespace,
          pod.metadata.name ?? '',
          'strategic',
          removeFinalizerPatch,
        ),
      );
    },
  });

  const managedElsewhere = (job: Job) =>
    job.spec?.managedBy !== undefined && job.spec.managedBy !== JOB_CONTROLLER_NAME;

  /** The Job a pod's controllerRef names, if it is in the cache with that uid. */
  function jobFor(pod: Pod): Job | undefined {
    const ref = controllerRefOf(pod);
    if (ref?.kind !== 'Job') return undefined;
    const job = jobs.indexer.get(`${pod.metadata.namespace}/${ref.name}`);
    return job && job.metadata.uid === ref.uid ? job : undefined;
  }

  function finalizerRemovalObserved(jobKey: string, uid: string | undefined) {
    const set = finalizerExpectations.get(jobKey);
    if (set && uid) set.delete(uid);
  }

  // ---- event handlers: map every change to the Job key ----

  jobs.on({
    add: (job) => c.queue.add(keyOf(job)),
    update: (_old, job) => c.queue.add(keyOf(job)),
    delete: (job) => {
      c.queue.add(keyOf(job));
      // Pods it leaves behind with a finalizer are released by the orphan queue.
      for (const pod of pods.indexer.byIndex(NAMESPACE_INDEX, job.metadata.namespace ?? '')) {
        if (hasFinalizer(pod) && controllerRefOf(pod)?.uid === job.metadata.uid)
          orphans.queue.add(keyOf(pod));
      }
    },
  });

  function enqueueForPod(pod: Pod) {
    const job = jobFor(pod);
    if (job) {
      c.queue.add(keyOf(job));
      return;
    }
    if (hasFinalizer(pod)) orphans.queue.add(keyOf(pod));
    if (!controllerRefOf(pod)) {
      // An orphan: any Job whose selector matches may adopt it.
      for (const j of jobs.indexer.byIndex(NAMESPACE_INDEX, pod.metadata.namespace ?? '')) {
        if (
          selectorFromLabelSelector(j.spec?.selector as LabelSelector | undefined).matches(
            pod.metadata.labels,
          )
        )
          c.queue.add(keyOf(j));
      }
    }
  }

  pods.on({
    add: (pod) => {
      const job = jobFor(pod);
      if (job) {
        const key = keyOf(job);
        if (pod.metadata.deletionTimestamp) expectations.deletionObserved(key, keyOf(pod));
        else expectations.creationObserved(key);
      }
      enqueueForPod(pod);
    },
    update: (old, pod) => {
      const job = jobFor(pod);
      if (job) {
        const key = keyOf(job);
        if (pod.metadata.deletionTimestamp && !old.metadata.deletionTimestamp)
          expectations.deletionObserved(key, keyOf(pod));
        if (hasFinalizer(old) && !hasFinalizer(pod)) finalizerRemovalObserved(key, pod.metadata.uid);
      }
      const oldJob = jobFor(old);
      if (oldJob && oldJob.metadata.uid !== job?.metadata.uid) c.queue.add(keyOf(oldJob));
      enqueueForPod(pod);
    },
    delete: (pod) => {
      const job = jobFor(pod);
      if (job) {
        const key = keyOf(job);
        expectations.deletionObserved(key, keyOf(pod));
        finalizerRemovalObserved(key, pod.metadata.uid);
        c.queue.add(key);
      }
    },
  });

  // ---- sync ----

  async function syncJob(key: string): Promise<void> {
    const cached = jobs.indexer.get(key);
    if (!cached) {
      expectations.delete(key);
      finalizerExpectations.delete(key);
      backoffRecords.delete(key);
      return;
    }
    if (managedElsewhere(cached)) return;
    // A finished Job is never worked on again.
    if (finishedCondition(cached)) {
      backoffRecords.delete(key);
      return;
    }
    const job = deepCopy(cached);
    const spec = job.spec ?? {};
    job.status ??= {};
    const status = job.status;
    status.uncountedTerminatedPods ??= {};
    const now = ctx.now();

    // Expectations first: a pod created after this check is simply seen
    // on the next sync.
    const satisfiedExpectations = expectations.satisfied(key);
    const jobPods = await getPodsForJob(job);
    const activePods = jobPods.filter(isActive);
    const jc: SyncJobContext = {
      key,
      job,
      pods: jobPods,
      activePods,
      ready: activePods.filter(isReady).length,
      terminating: jobPods.filter(isTerminating).length,
      succeeded: 0,
      prevSucceededIndexes: new Set(),
      succeededIndexes: new Set(),
      uncountedSucceeded: new Set(status.uncountedTerminatedPods.succeeded ?? []),
      uncountedFailed: new Set(status.uncountedTerminatedPods.failed ?? []),
      expectedRmFinalizers: new Set(finalizerExpectations.get(key) ?? []),
      newBackoffRecord: { failuresAfterLastSuccess: 0 },
    };
    let active = activePods.length;
    const newSucceeded = newFinishedPods(jc, jc.uncountedSucceeded, (p) => p.status?.phase === 'Succeeded');
    const newFailed = newFinishedPods(jc, jc.uncountedFailed, (p) => isPodFailed(p, job));
    jc.succeeded = (status.succeeded ?? 0) + newSucceeded.length + jc.uncountedSucceeded.size;
    const failed = (status.failed ?? 0) + newFailed.length + jc.uncountedFailed.size;

    // The clock for activeDeadlineSeconds starts when the Job first runs.
    if (!status.startTime && !suspended(job)) status.startTime = rfc3339(now);
    jc.newBackoffRecord = nextBackoffRecord(backoffRecords.get(key), newSucceeded, newFailed);

    const nowStr = rfc3339(now);
    jc.finished = conditionTrue(job, 'SuccessCriteriaMet');
    if (!jc.finished) {
      const target = conditionTrue(job, 'FailureTarget');
      if (target) jc.finished = newCondition('Failed', target.reason ?? '', target.message ?? '', nowStr);
    }
    if (!jc.finished) {
      if (failed > (spec.backoffLimit ?? 6) || pastBackoffLimitOnFailure(job, jobPods)) {
        jc.finished = newCondition(
          'FailureTarget',
          'BackoffLimitExceeded',
          'Job has reached the specified backoff limit',
          nowStr,
        );
      } else if (spec.activeDeadlineSeconds !== undefined && status.startTime && !suspended(job)) {
        const left = Date.parse(status.startTime) + spec.activeDeadlineSeconds * 1000 - now.getTime();
        if (left <= 0) {
          jc.finished = newCondition(
            'FailureTarget',
            'DeadlineExceeded',
            'Job was active longer than specified deadline',
            nowStr,
          );
        } else c.queue.addAfter(key, left);
      }
    }
    if (isIndexed(job)) {
      const completions = spec.completions ?? 0;
      jc.prevSucceededIndexes = parseIndexes(status.completedIndexes, completions);
      jc.succeededIndexes = new Set(jc.prevSucceededIndexes);
      for (const pod of jobPods) {
        const ix = validIndex(pod, job);
        if (ix >= 0 && pod.status?.phase === 'Succeeded' && hasFinalizer(pod)) jc.succeededIndexes.add(ix);
      }
      jc.succeeded = jc.succeededIndexes.size;
    }

    let manageJobError: unknown;
    let suspendConditionChanged = false;
    if (jc.finished) {
      // Failing: stop what still runs. The finalizers stay, so these pods
      // are counted (as failed) before they go.
      const { deleted, deletedReady, error } = await deletePods(job, key, jc.activePods, false);
      if (deleted !== active || !satisfiedExpectations) jc.finished = undefined;
      active -= deleted;
      jc.terminating += deleted;
      jc.ready -= deletedReady;
      manageJobError = error;
    } else {
      let manageJobCalled = false;
      if (satisfiedExpectations && !job.metadata.deletionTimestamp) {
        try {
          active = await manageJob(jc);
        } catch (err) {
          manageJobError = err;
        }
        manageJobCalled = true;
      }
      // Without completions, one success means the work is done once the
      // pods still running finish.
      const complete =
        spec.completions === undefined
          ? jc.succeeded > 0 && active === 0
          : jc.succeeded >= spec.completions && active === 0;
      if (complete) {
        jc.finished = newCondition(
          'SuccessCriteriaMet',
          'CompletionsReached',
          'Reached expected number of succeeded pods',
          nowStr,
        );
      } else if (manageJobCalled) {
        status.conditions ??= [];
        const conditions = status.conditions;
        if (suspended(job)) {
          if (ensureCondition(conditions, 'Suspended', 'True', 'JobSuspended', 'Job suspended', nowStr)) {
            suspendConditionChanged = true;
            recorder.event(job, 'Normal', 'Suspended', 'Job suspended');
          }
        } else if (ensureCondition(conditions, 'Suspended', 'False', 'JobResumed', 'Job resumed', nowStr)) {
          suspendConditionChanged = true;
          recorder.event(job, 'Normal', 'Resumed', 'Job resumed');
          // activeDeadlineSeconds counts time continuously active: resuming restarts it.
          status.startTime = nowStr;
        }
      }
    }

    const needsStatusUpdate =
      suspendConditionChanged ||
      active !== (status.active ?? 0) ||
      jc.ready !== status.ready ||
      jc.terminating !== status.terminating;
    status.active = active;
    status.ready = jc.ready;
    status.terminating = jc.terminating;
    await trackJobStatusAndRemoveFinalizers(jc, needsStatusUpdate);
    if (manageJobError) throw manageJobError;
  }

  /** Pods this Job owns, after adopting matching orphans and releasing non-matching pods. */
  async function getPodsForJob(job: Job): Promise<Pod[]> {
    const candidates = pods.indexer.byIndex(NAMESPACE_INDEX, job.metadata.namespace ?? '');
    const owned = await claimObjects(candidates, {
      owner: job,
      ownerApiVersion: 'batch/v1',
      ownerKind: 'Job',
      selector: selectorFromLabelSelector(job.spec?.selector as LabelSelector | undefined),
      client: ctx.clients.pods,
      recheckOwner: async () => {
        const fresh = await ctx.clients.jobs.get(job.metadata.namespace, job.metadata.name ?? '');
        return fresh.metadata.uid === job.metadata.uid ? fresh : undefined;
      },
    });
    // Adopted pods are tracked like our own: give them the finalizer.
    const result: Pod[] = [];
    for (const pod of owned) {
      if (hasFinalizer(pod)) {
        result.push(pod);
        continue;
      }
      const wasOurs = candidates.find((p) => p.metadata.uid === pod.metadata.uid && controllerRefOf(p));
      if (wasOurs) {
        result.push(pod);
        continue;
      }
      const patched = await ignoreNotFound(
        ctx.clients.pods.patch(pod.metadata.namespace, pod.metadata.name ?? '', 'strategic', {
          metadata: { finalizers: [JOB_TRACKING_FINALIZER] },
        }),
      );
      if (patched) result.push(patched);
    }
    return result;
  }

  /** Finished pods not yet recorded in the status (upstream's getNewFinishedPods). */
  function newFinishedPods(jc: SyncJobContext, uncounted: Set<string>, filter: (p: Pod) => boolean): Pod[] {
    return jc.pods.filter((p) => {
      const uid = p.metadata.uid ?? '';
      if (!hasFinalizer(p) || uncounted.has(uid) || jc.expectedRmFinalizers.has(uid)) return false;
      if (isIndexed(jc.job) && validIndex(p, jc.job) < 0) return false;
      return filter(p);
    });
  }

  /**
   * Creates or deletes pods to reach the wanted number of active pods.
   * Returns the number of active pods afterwards (upstream's manageJob).
   */
  async function manageJob(jc: SyncJobContext): Promise<number> {
    const { job, key } = jc;
    const spec = job.spec ?? {};
    let active = jc.activePods.length;
    const parallelism = spec.parallelism ?? 1;

    if (suspended(job)) {
      // Suspending deletes the pods without counting them as failures:
      // their finalizers go first.
      const toDelete = activePodsForRemoval(job, jc.activePods, active, jc.succeededIndexes);
      const r = await deletePods(job, key, toDelete, true);
      jc.terminating += r.deleted;
      jc.ready -= r.deletedReady;
      if (r.error) throw r.error;
      return active - r.deleted;
    }

    let wantActive: number;
    if (spec.completions === undefined) {
      // A work queue: after the first success, let what runs finish.
      wantActive = jc.succeeded > 0 ? active : parallelism;
    } else {
      wantActive = Math.max(0, Math.min(spec.completions - jc.succeeded, parallelism));
    }

    const rmAtLeast = Math.max(0, active - wantActive);
    const toDelete = activePodsForRemoval(job, jc.activePods, rmAtLeast, jc.succeededIndexes).slice(
      0,
      MAX_POD_CREATE_DELETE_PER_SYNC,
    );
    if (toDelete.length > 0) {
      // Deleting and creating in one sync could fight (repeated indexes);
      // deletion goes first, creation waits for the next sync.
      const r = await deletePods(job, key, toDelete, true);
      jc.terminating += r.deleted;
      jc.ready -= r.deletedReady;
      if (r.error) throw r.error;
      return active - r.deleted;
    }

    const terminatingToWaitFor = onlyReplaceFailedPods(job) ? jc.terminating : 0;
    let diff = wantActive - terminatingToWaitFor - active;
    if (diff <= 0) return active;

    const remaining = backoffRemainingMs(jc.newBackoffRecord, ctx.now().getTime());
    if (remaining > 0) {
      c.queue.addAfter(key, remaining);
      return active;
    }
    diff = Math.min(diff, MAX_POD_CREATE_DELETE_PER_SYNC);
    let indexes: number[] = [];
    if (isIndexed(job)) {
      indexes = firstPendingIndexes(jc, diff, spec.completions ?? 0);
      diff = indexes.length;
    }
    if (diff === 0) return active;

    expectations.expect(key, diff);
    active += diff;
    const template: PodTemplateSpec = deepCopy(spec.template ?? { metadata: {} });
    const templatePodSpec = template.spec ?? { containers: [] };
    if (isIndexed(job)) {
      for (const container of [
        ...(templatePodSpec.initContainers ?? []),
        ...(templatePodSpec.containers ?? []),
      ])
        addCompletionIndexEnv(container);
    }

    // Slow start, as upstream: batches of 1, 2, 4, ... so that a Job whose
    // pods are all refused (quota, admission) stops after one failure
    // instead of sending hundreds of doomed requests.
    let created = 0;
    let firstError: unknown;
    for (let batch = 1; created < diff && !firstError; batch *= 2) {
      const n = Math.min(batch, diff - created);
      const results = await Promise.allSettled(
        Array.from({ length: n }, (_, i) => createPod(job, template, indexes[created + i])),
      );
      for (const r of results) {
        if (r.status === 'rejected') {
          firstError ??= r.reason;
          expectations.creationObserved(key);
          active--;
        }
      }
      created += n;
    }
    // The batches never sent will never be observed either.
    for (let i = created; i < diff; i++) {
      expectations.creationObserved(key);
      active--;
    }
    if (firstError) throw firstError;
    return active;
  }

  async function createPod(job: Job, template: PodTemplateSpec, index?: number) {
    const name = job.metadata.name ?? '';
    const meta = template.metadata ?? {};
    const pod: Pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        generateName: `${name}-`,
        namespace: job.metadata.namespace,
        labels: { ...meta.labels },
        annotations: { ...meta.annotations },
        finalizers: [...new Set([...(meta.finalizers ?? []), JOB_TRACKING_FINALIZER])],
        ownerReferences: [ownerRef(job, 'batch/v1', 'Job')],
      },
      spec: deepCopy(template.spec ?? { containers: [] }),
    };
    if (index !== undefined) {
      const ix = String(index);
      (pod.metadata.annotations as Record<string, string>)[JOB_COMPLETION_INDEX_ANNOTATION] = ix;
      (pod.metadata.labels as Record<string, string>)[JOB_COMPLETION_INDEX_ANNOTATION] = ix;
      // Each index has a stable hostname, so indexed pods can find each
      // other through a headless Service.
      (pod.spec as NonNullable<Pod['spec']>).hostname = `${name}-${ix}`;
      pod.metadata.generateName = generateNameWithIndex(name, index);
    }
    if (Object.keys(pod.metadata.annotations ?? {}).length === 0) delete pod.metadata.annotations;
    try {
      const created = await ctx.clients.pods.create(job.metadata.namespace, pod);
      recorder.event(job, 'Normal', 'SuccessfulCreate', `Created pod: ${created.metadata.name}`);
    } catch (err) {
      recorder.event(job, 'Warning', 'FailedCreate', `Error creating: ${errorMessage(err)}`);
      throw err;
    }
  }

  /**
   * Deletes pods. With releaseFirst their finalizer is removed before the
   * delete, so they are not counted as failed (suspend, scale-down);
   * without it they stay until counted (the Job is failing).
   */
  async function deletePods(
    job: Job,
    key: string,
    toDelete: Pod[],
    releaseFirst: boolean,
  ): Promise<{ deleted: number; deletedReady: number; error?: unknown }> {
    if (toDelete.length === 0) return { deleted: 0, deletedReady: 0 };
    expectations.expect(key, 0, toDelete.map(keyOf));
    let deleted = 0;
    let deletedReady = 0;
    let error: unknown;
    await Promise.all(
      toDelete.map(async (pod) => {
        try {
          if (releaseFirst && hasFinalizer(pod))
            await ctx.clients.pods.patch(
              pod.metadata.namespace,
              pod.metadata.name ?? '',
              'strategic',
              removeFinalizerPatch,
            );
          await ctx.clients.pods.delete(pod.metadata.namespace, pod.metadata.name ?? '');
          recorder.event(job, 'Normal', 'SuccessfulDelete', `Deleted pod: ${pod.metadata.name}`);
        } catch (err) {
          // The delete will never be observed; a pod already gone counts as deleted.
          expectations.deletionObserved(key, keyOf(pod));
          if (!isApiError(err, 'NotFound')) {
            error ??= err;
            recorder.event(job, 'Warning', 'FailedDelete', `Error deleting: ${errorMessage(err)}`);
            return;
          }
        }
        deleted++;
        if (isReady(pod)) deletedReady++;
      }),
    );
    return { deleted, deletedReady, ...(error ? { error } : {}) };
  }

  /** The lowest indexes neither succeeded nor held by an active pod. */
  function firstPendingIndexes(jc: SyncJobContext, count: number, completions: number): number[] {
    const taken = new Set(jc.succeededIndexes);
    for (const pod of jc.activePods) {
      const ix = validIndex(pod, jc.job);
      if (ix >= 0) taken.add(ix);
    }
    const out: number[] = [];
    for (let i = 0; i < completions && out.length < count; i++) if (!taken.has(i)) out.push(i);
    return out;
  }

  /**
   * Records finished pods in status.uncountedTerminatedPods, removes their
   * finalizers, moves them into the counters, and writes the terminal
   * condition once nothing is left uncounted or terminating (upstream's
   * trackJobStatusAndRemoveFinalizers).
   */
  async function trackJobStatusAndRemoveFinalizers(jc: SyncJobContext, needsFlushIn: boolean): Promise<void> {
    let needsFlush = needsFlushIn;
    const indexed = isIndexed(jc.job);
    const toRelease: Pod[] = [];
    jc.job.status ??= {};
    const uncounted = jc.job.status.uncountedTerminatedPods ?? {};
    uncounted.succeeded ??= [];
    uncounted.failed ??= [];
    const newSucceededIndexes: number[] = [];
    const podsInOrder = indexed
      ? [...jc.pods].sort((a, b) => completionIndex(a) - completionIndex(b))
      : jc.pods;
    const uidsWithFinalizer = new Set<string>();
    for (const p of jc.pods) {
      const uid = p.metadata.uid ?? '';
      if (hasFinalizer(p) && !jc.expectedRmFinalizers.has(uid)) uidsWithFinalizer.add(uid);
    }
    if (countReleasedPods(jc.job, uidsWithFinalizer)) needsFlush = true;

    let reachedMaxUncounted = false;
    for (const pod of podsInOrder) {
      const uid = pod.metadata.uid ?? '';
      if (!hasFinalizer(pod) || jc.expectedRmFinalizers.has(uid)) continue; // counted earlier
      const considerFailed = isPodFailed(pod, jc.job);
      const canRelease =
        !!jc.job.metadata.deletionTimestamp ||
        !!jc.finished ||
        pod.status?.phase === 'Succeeded' ||
        considerFailed;
      if (!canRelease) continue;
      toRelease.push(pod);
      if (pod.status?.phase === 'Succeeded' && !jc.uncountedFailed.has(uid)) {
        if (indexed) {
          // The index alone keeps a success from being counted twice.
          const ix = validIndex(pod, jc.job);
          if (ix >= 0 && !jc.prevSucceededIndexes.has(ix)) {
            newSucceededIndexes.push(ix);
            needsFlush = true;
          }
        } else if (!jc.uncountedSucceeded.has(uid)) {
          uncounted.succeeded.push(uid);
          needsFlush = true;
        }
      } else if (considerFailed || (jc.finished && jc.finished.type !== 'SuccessCriteriaMet')) {
        // Once the Job is failing, every pod not yet terminated counts as failed.
        if (!jc.uncountedFailed.has(uid) && (!indexed || validIndex(pod, jc.job) >= 0)) {
          uncounted.failed.push(uid);
          needsFlush = true;
        }
      }
      if (
        newSucceededIndexes.length + uncounted.succeeded.length + uncounted.failed.length >=
        MAX_UNCOUNTED_PODS
      ) {
        // Keep the status small; the status write re-queues the Job for the rest.
        reachedMaxUncounted = true;
        break;
      }
    }
    const status = jc.job.status;
    status.uncountedTerminatedPods = uncounted;
    if (indexed) {
      for (const ix of newSucceededIndexes) jc.succeededIndexes.add(ix);
      const completedIndexes = formatIndexes(jc.succeededIndexes);
      if (completedIndexes !== (status.completedIndexes ?? '')) needsFlush = true;
      status.succeeded = jc.succeededIndexes.size;
      if (completedIndexes) status.completedIndexes = completedIndexes;
      else delete status.completedIndexes;
    }
    status.conditions ??= [];
    const conditions = status.conditions;
    // The interim conditions are written before any finalizer goes, so the
    // decision survives a crash; the terminal one follows when all is counted.
    if (jc.finished?.type === 'FailureTarget') {
      conditions.push(jc.finished);
      needsFlush = true;
      jc.finished = newCondition('Failed', jc.finished.reason ?? '', jc.finished.message ?? '', nowISO());
    }
    if (jc.finished?.type === 'SuccessCriteriaMet') {
      if (!conditionTrue(jc.job, 'SuccessCriteriaMet')) {
        conditions.push(jc.finished);
        needsFlush = true;
      }
      jc.finished = newCondition('Complete', jc.finished.reason ?? '', jc.finished.message ?? '', nowISO());
    }

    // Flush what is uncounted, then release the finalizers.
    if (needsFlush) {
      jc.job = await ctx.clients.jobs.updateStatus(jc.job);
      backoffRecords.set(jc.key, jc.newBackoffRecord);
      needsFlush = false;
    }
    let releaseError: unknown;
    if (toRelease.length > 0) {
      const expected = finalizerExpectations.get(jc.key) ?? new Set<string>();
      finalizerExpectations.set(jc.key, expected);
      for (const p of toRelease) expected.add(p.metadata.uid ?? '');
      await Promise.all(
        toRelease.map(async (pod) => {
          const uid = pod.metadata.uid ?? '';
          try {
            await ctx.clients.pods.patch(
              pod.metadata.namespace,
              pod.metadata.name ?? '',
              'strategic',
              removeFinalizerPatch,
            );
          } catch (err) {
            // No update will come for a failed patch.
            expected.delete(uid);
            if (!isApiError(err, 'NotFound')) {
              releaseError ??= err;
              return;
            }
          }
          uidsWithFinalizer.delete(uid);
        }),
      );
    }
    if (countReleasedPods(jc.job, uidsWithFinalizer)) needsFlush = true;
    if (releaseError) {
      if (needsFlush) await ctx.clients.jobs.updateStatus(jc.job);
      throw releaseError;
    }

    const jobFinished = !reachedMaxUncounted && enactJobFinished(jc);
    if (jobFinished) needsFlush = true;
    if (needsFlush) {
      jc.job = await ctx.clients.jobs.updateStatus(jc.job);
      if (jobFinished && jc.finished) recordJobFinished(jc.job, jc.finished);
    }
  }

  /** Adds the Complete or Failed condition once nothing is uncounted or terminating. */
  function enactJobFinished(jc: SyncJobContext): boolean {
    const finished = jc.finished;
    if (!finished) return false;
    const status = jc.job.status ?? {};
    const uncounted = status.uncountedTerminatedPods;
    if ((uncounted?.succeeded?.length ?? 0) + (uncounted?.failed?.length ?? 0) > 0) return false;
    if (jc.terminating > 0) return false;
    status.conditions ??= [];
    const conditions = status.conditions;
    ensureCondition(
      conditions,
      finished.type ?? '',
      'True',
      finished.reason ?? '',
      finished.message ?? '',
      nowISO(),
    );
    if (finished.type === 'Complete') status.completionTime = finished.lastTransitionTime as string;
    return true;
  }

  function recordJobFinished(job: Job, finished: JobCondition) {
    if (finished.type === 'Complete') {
      const completions = job.spec?.completions;
      if (completions !== undefined && (job.status?.succeeded ?? 0) > completions)
        recorder.event(
          job,
          'Warning',
          'TooManySucceededPods',
          'Too many succeeded pods running after completion count reached',
        );
      recorder.event(job, 'Normal', 'Completed', 'Job completed');
    } else {
      recorder.event(job, 'Warning', finished.reason ?? 'Failed', finished.message ?? '');
    }
  }

  return c;
};

/**
 * Moves uncounted pods whose finalizer is gone into status.succeeded and
 * status.failed (upstream's cleanUncountedPodsWithoutFinalizers). Returns
 * whether the status changed.
 */
function countReleasedPods(job: Job, uidsWithFinalizer: Set<string>): boolean {
  job.status ??= {};
  const status = job.status;
  status.uncountedTerminatedPods ??= {};
  const uncounted = status.uncountedTerminatedPods;
  let changed = false;
  const stillHeld = (uids: string[] | undefined) => (uids ?? []).filter((u) => uidsWithFinalizer.has(u));
  const succeeded = stillHeld(uncounted.succeeded);
  if (succeeded.length !== (uncounted.succeeded ?? []).length) {
    status.succeeded = (status.succeeded ?? 0) + (uncounted.succeeded ?? []).length - succeeded.length;
    uncounted.succeeded = succeeded;
    changed = true;
  }
  const failed = stillHeld(uncounted.failed);
  if (failed.length !== (uncounted.failed ?? []).length) {
    status.failed = (status.failed ?? 0) + (uncounted.failed ?? []).length - failed.length;
    uncounted.failed = failed;
    changed = true;
  }
  return changed;
}

// Indexed pods are named <job>-<index>-<random>; a long Job name is cut so
// the index always fits (upstream's podGenerateNameWithIndex).
const MAX_GENERATED_NAME_LENGTH = 58;
function generateNameWithIndex(jobName: string, index: number): string {
  const suffix = `-${index}-`;
  const prefix = `${jobName}${suffix}`;
  return prefix.length > MAX_GENERATED_NAME_LENGTH
    ? `${prefix.slice(0, MAX_GENERATED_NAME_LENGTH - suffix.length)}${suffix}`
    : prefix;
}

// JOB_COMPLETION_INDEX comes from the pod's own annotation through the
// downward API, so the container sees the index the pod was created with.
function addCompletionIndexEnv(container: Container) {
  container.env ??= [];
  if (container.env.some((e) => e.name === JOB_COMPLETION_INDEX_ENV)) return;
  container.env.push({
    name: JOB_COMPLETION_INDEX_ENV,
    valueFrom: { fieldRef: { fieldPath: `metadata.annotations['${JOB_COMPLETION_INDEX_ANNOTATION}']` } },
  });
}

async function ignoreNotFound<T>(p: Promise<T>): Promise<T | undefined> {
  try {
    return await p;
  } catch (err) {
    if (isApiError(err, 'NotFound')) return undefined;
    throw err;
  }
}

const errorMessage = (err: unknown) => (err instanceof Error ? err.message : String(err));
