// The CronJob controller (upstream's cronjob-controller, the "v2" one in
// pkg/controller/cronjob/cronjob_controllerv2.go and utils.go): creates a
// Job for each scheduled time, honours concurrencyPolicy and
// startingDeadlineSeconds, keeps status.active / lastScheduleTime /
// lastSuccessfulTime, and deletes finished Jobs beyond the history limits.
//
// Each sync works out the most recent scheduled time that has passed and
// re-queues the CronJob for the next one, so no periodic scan is needed.
// A Job's name is the CronJob's name plus the scheduled time in minutes since
// the epoch: creating it twice for the same time fails with AlreadyExists,
// which is what keeps a restart from running a schedule twice.

import { isApiError } from '../api/errors.ts';
import { rfc3339 } from '../api/meta.ts';
import {
  type CronSchedule,
  parseCronSchedule,
  timeZoneLoadError,
  zoneOffset,
} from '../api/resources/cron.ts';
import type { CronJob, Job } from '../api/types/batch-v1.ts';
import type { ObjectReference } from '../api/types/core-v1.ts';
import { NAMESPACE_INDEX } from '../client/informer-factory.ts';
import { type ControllerFactory, keyOf } from './context.ts';
import { queueController } from './controller.ts';
import { finishedCondition } from './job.ts';
import { controllerRefOf, ownerRef } from './ownership.ts';

export const CRONJOB_SCHEDULED_TIMESTAMP_ANNOTATION = 'batch.kubernetes.io/cronjob-scheduled-timestamp';
/** Re-queue a little after the scheduled time, so "now" is surely past it (upstream's nextScheduleDelta). */
const NEXT_SCHEDULE_DELTA_MS = 100;
/** More missed times than this means a broken clock or a long outage (upstream's 100). */
const TOO_MANY_MISSED = 100;

/** Upstream's getJobName: `<cronjob>-<scheduled time in minutes since the epoch>`. */
export const jobNameFor = (cj: CronJob, scheduledTime: Date) =>
  `${cj.metadata.name}-${Math.floor(scheduledTime.getTime() / 60_000)}`;

/** Go's time.RFC3339 in the given zone: "2024-01-01T10:00:00+01:00" ("Z" for UTC). */
export function rfc3339InZone(t: Date, timeZone: string): string {
  const offset = zoneOffset(t.getTime(), timeZone);
  if (offset === 0) return rfc3339(t);
  const local = new Date(t.getTime() + offset).toISOString().slice(0, 19);
  const abs = Math.abs(offset) / 60_000;
  const hh = String(Math.floor(abs / 60)).padStart(2, '0');
  const mm = String(abs % 60).padStart(2, '0');
  return `${local}${offset < 0 ? '-' : '+'}${hh}:${mm}`;
}

interface MostRecent {
  /** lastScheduleTime, else the CronJob's creation. */
  earliest: Date;
  /** The most recent scheduled time not after now, if any since earliest. */
  mostRecent?: Date;
  tooManyMissed: boolean;
  error?: string;
}

/**
 * Upstream's mostRecentScheduleTime: rather than walking every missed time
 * (which could be years of minutes after a clock jump), it measures the
 * interval between the first two times after `earliest`, estimates how many
 * fit before now, and walks only the last stretch.
 */
export function mostRecentScheduleTime(
  cj: CronJob,
  now: Date,
  schedule: CronSchedule,
  includeStartingDeadline: boolean,
): MostRecent {
  let earliest = new Date(cj.status?.lastScheduleTime ?? cj.metadata.creationTimestamp ?? now);
  const deadline = cj.spec?.startingDeadlineSeconds;
  if (includeStartingDeadline && deadline !== undefined) {
    // Nothing older than the deadline may still start.
    const schedulingDeadline = new Date(now.getTime() - deadline * 1000);
    if (schedulingDeadline > earliest) earliest = schedulingDeadline;
  }
  const t1 = schedule.next(earliest);
  const t2 = t1 && schedule.next(t1);
  if (!t1 || !t2) return { earliest, tooManyMissed: false, error: 'the schedule never fires' };
  if (now < t1) return { earliest, tooManyMissed: false };
  if (now < t2) return { earliest, mostRecent: t1, tooManyMissed: false };

  const interval = Math.round((t2.getTime() - t1.getTime()) / 1000);
  if (interval < 1)
    return {
      earliest,
      tooManyMissed: false,
      error: 'time difference between two schedules is less than 1 second',
    };
  const missed = Math.floor((now.getTime() - t1.getTime()) / 1000 / interval) + 1;
  // Start two intervals before the estimated last time and let the schedule
  // find the exact one (irregular schedules such as "30 6-16/4 * * 1-5").
  let t: Date | undefined = new Date(t1.getTime() + (missed - 2) * interval * 1000);
  let mostRecent: Date | undefined;
  for (t = schedule.next(t); t && t <= now; t = schedule.next(t)) mostRecent = t;
  return {
    earliest,
    ...(mostRecent ? { mostRecent } : {}),
    tooManyMissed: missed > TOO_MANY_MISSED,
  };
}

const isFinished = (job: Job) => finishedCondition(job) !== undefined;
const isControlledBy = (job: Job, cj: CronJob) => {
  const ref = controllerRefOf(job);
  return ref?.kind === 'CronJob' && ref.uid === cj.metadata.uid;
};

export const cronJobController: ControllerFactory = (ctx) => {
  const cronJobs = ctx.informers.informer('cronJobs');
  const jobs = ctx.informers.informer('jobs');
  const recorder = ctx.recorder('cronjob-controller');
  // The zone a schedule without timeZone is read in: upstream uses the
  // controller manager's local zone.
  const localZone = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';

  const c = queueController(ctx, {
    name: 'cronjob',
    workers: 5,
    async sync(key) {
      const cached = cronJobs.indexer.get(key);
      if (!cached) return;
      const cj = structuredClone(cached);
      const owned = jobs.indexer
        .byIndex(NAMESPACE_INDEX, cj.metadata.namespace ?? '')
        .filter((j) => isControlledBy(j, cj));
      const now = ctx.now();
      const { requeueAfterMs, updateStatus } = await syncCronJob(cj, owned, now);
      await cleanupFinishedJobs(cj, owned);
      if (updateStatus || !sameStatus(cached, cj)) {
        // A merge patch of just these fields rather than a PUT: a concurrent
        // spec or metadata change must not make us drop (and then redo) the
        // Job we just created. Only this controller writes them.
        const { active = [], lastScheduleTime = null, lastSuccessfulTime = null } = cj.status ?? {};
        await ctx.clients.cronJobs.patch(
          cj.metadata.namespace,
          cj.metadata.name ?? '',
          'merge',
          { status: { active, lastScheduleTime, lastSuccessfulTime } },
          { subresource: 'status' },
        );
      }
      if (requeueAfterMs !== undefined) c.queue.addAfter(key, Math.max(0, requeueAfterMs));
    },
  });

  function scheduleOf(cj: CronJob): CronSchedule {
    const spec = cj.spec?.schedule ?? '';
    if (spec.includes('TZ')) {
      recorder.event(
        cj,
        'Warning',
        'UnsupportedSchedule',
        `CRON_TZ or TZ used in schedule "${spec}" is not officially supported, see https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/ for more details`,
      );
    }
    return parseCronSchedule(spec, cj.spec?.timeZone ?? localZone);
  }

  /** When the next schedule comes, counted from the most recent one (upstream's nextScheduleTimeDuration). */
  function nextScheduleDelay(cj: CronJob, now: Date, schedule: CronSchedule): number | undefined {
    const r = mostRecentScheduleTime(cj, now, schedule, false);
    const from = r.error ? now : (r.mostRecent ?? r.earliest);
    const next = schedule.next(from);
    return next ? next.getTime() + NEXT_SCHEDULE_DELTA_MS - now.getTime() : undefined;
  }

  async function syncCronJob(
    cj: CronJob,
    owned: Job[],
    now: Date,
  ): Promise<{ requeueAfterMs?: number; updateStatus: boolean }> {
    cj.status ??= {};
    const status = cj.status;
    let updateStatus = false;
    const ownedUIDs = new Set(owned.map((j) => j.metadata.uid));

    for (const job of owned) {
      const inActive = status.active?.some((r) => r.uid === job.metadata.uid) ?? false;
      if (!inActive && !isFinished(job)) {
        // Created by us just before a crash, or by `kubectl create job --from`.
        recorder.event(
          cj,
          'Warning',
          'UnexpectedJob',
          `Saw a job that the controller did not create or forgot: ${job.metadata.name}`,
        );
      } else if (inActive && isFinished(job)) {
        const cond = finishedCondition(job);
        status.active = (status.active ?? []).filter((r) => r.uid !== job.metadata.uid);
        recorder.event(
          cj,
          'Normal',
          'SawCompletedJob',
          `Saw completed job: ${job.metadata.name}, condition: ${cond?.type}`,
        );
        updateStatus = true;
      }
      // A successful Job, in the active list or not, moves lastSuccessfulTime.
      const completion = job.status?.completionTime;
      if (finishedCondition(job)?.type === 'Complete' && completion) {
        const last = status.lastSuccessfulTime;
        if (!last || Date.parse(completion) > Date.parse(last)) {
          status.lastSuccessfulTime = completion;
          updateStatus = true;
        }
      }
    }
    // Active Jobs that no longer exist leave the list.
    for (const ref of status.active ?? []) {
      if (ownedUIDs.has(ref.uid)) continue;
      const job = jobs.indexer.get(`${ref.namespace}/${ref.name}`);
      if (job && job.metadata.uid === ref.uid) continue;
      recorder.event(cj, 'Normal', 'MissingJob', `Active job went missing: ${ref.name}`);
      status.active = (status.active ?? []).filter((r) => r.uid !== ref.uid);
      updateStatus = true;
    }

    if (cj.metadata.deletionTimestamp) return { updateStatus };
    const tz = cj.spec?.timeZone;
    if (tz !== undefined) {
      const err = timeZoneLoadError(tz);
      if (err) {
        recorder.event(cj, 'Warning', 'UnknownTimeZone', `invalid timeZone: "${tz}": ${err}`);
        return { updateStatus };
      }
    }
    if (cj.spec?.suspend) return { updateStatus };

    let schedule: CronSchedule;
    try {
      schedule = scheduleOf(cj);
    } catch (err) {
      // A user error in the spec: wait for the spec to change.
      recorder.event(
        cj,
        'Warning',
        'UnparseableSchedule',
        `unparseable schedule: "${cj.spec?.schedule}" : ${String((err as Error).message)}`,
      );
      return { updateStatus };
    }

    const recent = mostRecentScheduleTime(cj, now, schedule, true);
    if (recent.error) {
      recorder.event(
        cj,
        'Warning',
        'InvalidSchedule',
        `invalid schedule: ${cj.spec?.schedule} : ${recent.error}`,
      );
    }
    const scheduledTime = recent.mostRecent;
    const next = () => ({ requeueAfterMs: nextScheduleDelay(cj, now, schedule), updateStatus });
    if (!scheduledTime) return next();
    if (recent.tooManyMissed) {
      recorder.event(
        cj,
        'Warning',
        'TooManyMissedTimes',
        'too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew',
      );
    }

    const deadline = cj.spec?.startingDeadlineSeconds;
    if (deadline !== undefined && scheduledTime.getTime() + deadline * 1000 < now.getTime()) {
      recorder.event(
        cj,
        'Warning',
        'MissSchedule',
        `Missed scheduled time to start a job: ${scheduledTime.toUTCString()}`,
      );
      return next();
    }
    const name = jobNameFor(cj, scheduledTime);
    if (
      status.active?.some((r) => r.name === name) ||
      (status.lastScheduleTime && Date.parse(status.lastScheduleTime) === scheduledTime.getTime())
    ) {
      return next(); // already done for this time
    }
    const policy = cj.spec?.concurrencyPolicy ?? 'Allow';
    if (policy === 'Forbid' && (status.active?.length ?? 0) > 0) {
      recorder.event(
        cj,
        'Normal',
        'JobAlreadyActive',
        'Not starting job because prior execution is running and concurrency policy is Forbid',
      );
      return next();
    }
    if (policy === 'Replace') {
      for (const ref of [...(status.active ?? [])]) {
        await deleteJob(cj, ref.namespace, ref.name ?? '', ref.uid);
        updateStatus = true;
      }
    }

    const job = jobFromTemplate(cj, scheduledTime);
    let created: Job;
    try {
      created = await ctx.clients.jobs.create(cj.metadata.namespace, job);
      recorder.event(cj, 'Normal', 'SuccessfulCreate', `Created job ${created.metadata.name}`);
    } catch (err) {
      if (!isApiError(err, 'AlreadyExists')) {
        recorder.event(cj, 'Warning', 'FailedCreate', `Error creating job: ${(err as Error).message}`);
        throw err;
      }
      // Made before (our status write was lost): take it over if it is ours.
      created = await ctx.clients.jobs.get(cj.metadata.namespace, name);
      if (!isControlledBy(created, cj)) return { updateStatus };
      if (status.active?.some((r) => r.uid === created.metadata.uid)) return { updateStatus };
    }
    status.active = [...(status.active ?? []), jobReference(created)];
    status.lastScheduleTime = rfc3339(scheduledTime);
    updateStatus = true;
    return { requeueAfterMs: nextScheduleDelay(cj, now, schedule), updateStatus };
  }

  // Background propagation: the Job goes now, the garbage collector takes its pods.
  async function deleteJob(
    cj: CronJob,
    namespace: string | undefined,
    name: string,
    uid?: string,
  ): Promise<void> {
    try {
      await ctx.clients.jobs.delete(namespace, name, {
        propagationPolicy: 'Background',
        ...(uid ? { preconditions: { uid } } : {}),
      });
      recorder.event(cj, 'Normal', 'SuccessfulDelete', `Deleted job ${name}`);
    } catch (err) {
      if (!isApiError(err, 'NotFound') && !isApiError(err, 'Conflict')) {
        recorder.event(cj, 'Warning', 'FailedDelete', `Deleted job: ${(err as Error).message}`);
        throw err;
      }
    }
    if (cj.status?.active) cj.status.active = cj.status.active.filter((r) => r.name !== name);
  }

  /** Deletes the oldest finished Jobs beyond the history limits. Returns whether any went. */
  async function cleanupFinishedJobs(cj: CronJob, owned: Job[]): Promise<boolean> {
    const successLimit = cj.spec?.successfulJobsHistoryLimit;
    const failedLimit = cj.spec?.failedJobsHistoryLimit;
    if (successLimit === undefined && failedLimit === undefined) return false;
    const succeeded = owned.filter((j) => finishedCondition(j)?.type === 'Complete');
    const failed = owned.filter((j) => finishedCondition(j)?.type === 'Failed');
    let removed = false;
    for (const [list, limit] of [
      [succeeded, successLimit],
      [failed, failedLimit],
    ] as const) {
      if (limit === undefined || list.length <= limit) continue;
      // Oldest first by start time (Jobs never started last), then by name.
      const sorted = [...list].sort((a, b) => {
        const sa = a.status?.startTime;
        const sb = b.status?.startTime;
        if (sa !== sb) {
          if (!sa) return 1;
          if (!sb) return -1;
          return Date.parse(sa) - Date.parse(sb);
        }
        return (a.metadata.name ?? '').localeCompare(b.metadata.name ?? '');
      });
      for (const job of sorted.slice(0, list.length - limit)) {
        await deleteJob(cj, job.metadata.namespace, job.metadata.name ?? '', job.metadata.uid);
        removed = true;
      }
    }
    return removed;
  }

  // ---- event handlers ----

  const enqueueOwner = (job: Job) => {
    const ref = controllerRefOf(job);
    if (ref?.kind !== 'CronJob') return;
    const cj = cronJobs.indexer.get(`${job.metadata.namespace}/${ref.name}`);
    if (cj && cj.metadata.uid === ref.uid) c.queue.add(keyOf(cj));
  };
  jobs.on({
    add: enqueueOwner,
    update: (old, job) => {
      enqueueOwner(job);
      if (controllerRefOf(old)?.uid !== controllerRefOf(job)?.uid) enqueueOwner(old);
    },
    delete: enqueueOwner,
  });
  cronJobs.on({
    add: (cj) => c.queue.add(keyOf(cj)),
    update: (_old, cj) => c.queue.add(keyOf(cj)),
  });
  return c;
};

/** Upstream's getJobFromTemplate2. */
function jobFromTemplate(cj: CronJob, scheduledTime: Date): Job {
  const template = cj.spec?.jobTemplate;
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: {
      name: jobNameFor(cj, scheduledTime),
      namespace: cj.metadata.namespace,
      labels: { ...template?.metadata?.labels },
      annotations: {
        ...template?.metadata?.annotations,
        // In the CronJob's zone (UTC without one), as upstream formats it.
        [CRONJOB_SCHEDULED_TIMESTAMP_ANNOTATION]: rfc3339InZone(scheduledTime, cj.spec?.timeZone ?? 'UTC'),
      },
      ownerReferences: [ownerRef(cj, 'batch/v1', 'CronJob')],
    },
    spec: structuredClone(template?.spec ?? {}),
  };
}

const jobReference = (job: Job): ObjectReference => ({
  kind: 'Job',
  namespace: job.metadata.namespace,
  name: job.metadata.name,
  uid: job.metadata.uid,
  apiVersion: 'batch/v1',
  resourceVersion: job.metadata.resourceVersion,
});

const sameStatus = (a: CronJob, b: CronJob) =>
  JSON.stringify(a.status ?? {}) === JSON.stringify(b.status ?? {});
