import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { rfc3339 } from '../api/meta.ts';
import { parseCronSchedule } from '../api/resources/cron.ts';
import type { CronJob, Job } from '../api/types/batch-v1.ts';
import {
  CRONJOB_SCHEDULED_TIMESTAMP_ANNOTATION,
  cronJobController,
  jobNameFor,
  mostRecentScheduleTime,
  rfc3339InZone,
} from './cronjob.ts';
import { type ControllerTest, startControllerTest } from './testing.ts';

// The controller's wall clock; tests move it forward instead of waiting minutes.
let nowMs = Date.now();
let t: ControllerTest;
before(async () => {
  t = await startControllerTest({ cronjob: cronJobController }, { now: () => new Date(nowMs) });
});
after(() => t.close());

const ns = 'default';
const cronJob = (name: string, spec: Partial<NonNullable<CronJob['spec']>>): CronJob => ({
  metadata: { name },
  spec: {
    schedule: '*/1 * * * *',
    ...spec,
    jobTemplate: {
      metadata: { labels: { team: 'a' } },
      spec: {
        template: {
          metadata: {},
          spec: { restartPolicy: 'Never', containers: [{ name: 'c', image: 'busybox' }] },
        },
      },
    },
  },
});
const jobsOf = async (cj: CronJob) =>
  (await t.clients.jobs.list(ns)).items.filter(
    (j) => j.metadata.ownerReferences?.[0]?.uid === cj.metadata.uid,
  );
const poke = (name: string) =>
  t.clients.cronJobs.patch(ns, name, 'merge', { metadata: { annotations: { poke: String(Math.random()) } } });
/** Creates a suspended CronJob, then resumes it just after the next minute: its first Job comes then. */
async function start(name: string, spec: Partial<NonNullable<CronJob['spec']>> = {}) {
  const cj = await t.clients.cronJobs.create(ns, cronJob(name, { ...spec, suspend: true }));
  nowMs = (Math.floor(nowMs / 60_000) + 1) * 60_000 + 5000;
  await t.clients.cronJobs.patch(ns, name, 'merge', { spec: { suspend: false } });
  return cj;
}
/** Moves the controller's clock to `seconds` past the next minute boundary, then wakes the CronJob. */
async function nextMinute(name: string, seconds = 5) {
  nowMs = (Math.floor(nowMs / 60_000) + 1) * 60_000 + seconds * 1000;
  await poke(name);
}
// Plays the Job controller: the Job finishes.
const finishJob = (job: Job, type: 'Complete' | 'Failed') =>
  t.clients.jobs.patch(
    ns,
    job.metadata.name ?? '',
    'merge',
    {
      status: {
        startTime: rfc3339(new Date(nowMs - 1000)),
        ...(type === 'Complete' ? { completionTime: rfc3339(new Date(nowMs)), succeeded: 1 } : { failed: 1 }),
        conditions: [
          {
            type: type === 'Complete' ? 'SuccessCriteriaMet' : 'FailureTarget',
            status: 'True',
            lastTransitionTime: rfc3339(new Date(nowMs)),
          },
          { type, status: 'True', lastTransitionTime: rfc3339(new Date(nowMs)) },
        ],
      },
    },
    { subresource: 'status' },
  );

describe('cronjob schedules', () => {
  it('finds the most recent time cheaply and flags too many missed ones', () => {
    const schedule = parseCronSchedule('*/1 * * * *', 'UTC');
    const cj = { metadata: { creationTimestamp: '2024-01-01T00:00:00Z' } } as CronJob;
    const few = mostRecentScheduleTime(cj, new Date('2024-01-01T00:10:30Z'), schedule, true);
    assert.equal(few.mostRecent?.toISOString(), '2024-01-01T00:10:00.000Z');
    assert.equal(few.tooManyMissed, false);
    const many = mostRecentScheduleTime(cj, new Date('2024-01-03T07:42:10Z'), schedule, true);
    assert.equal(many.mostRecent?.toISOString(), '2024-01-03T07:42:00.000Z');
    assert.equal(many.tooManyMissed, true);
    // startingDeadlineSeconds bounds how far back it looks.
    const bounded = { ...cj, spec: { startingDeadlineSeconds: 200 } } as CronJob;
    assert.equal(
      mostRecentScheduleTime(bounded, new Date('2024-01-03T07:42:10Z'), schedule, true).tooManyMissed,
      false,
    );
    const none = mostRecentScheduleTime(cj, new Date('2023-12-31T23:59:00Z'), schedule, true);
    assert.equal(none.mostRecent, undefined);
  });

  it('formats the scheduled timestamp in the time zone, and names Jobs by minutes since the epoch', () => {
    const at = new Date('2024-07-01T10:00:00Z');
    assert.equal(rfc3339InZone(at, 'UTC'), '2024-07-01T10:00:00Z');
    assert.equal(rfc3339InZone(at, 'Asia/Kolkata'), '2024-07-01T15:30:00+05:30');
    assert.equal(rfc3339InZone(at, 'America/New_York'), '2024-07-01T06:00:00-04:00');
    assert.equal(jobNameFor({ metadata: { name: 'x' } }, at), `x-${at.getTime() / 60_000}`);
  });

  it('reads the schedule in timeZone', () => {
    const s = parseCronSchedule('0 9 * * *', 'Europe/Berlin');
    assert.equal(s.next(new Date('2024-01-10T12:00:00Z'))?.toISOString(), '2024-01-11T08:00:00.000Z');
    assert.equal(s.next(new Date('2024-07-10T12:00:00Z'))?.toISOString(), '2024-07-11T07:00:00.000Z');
    assert.equal(
      parseCronSchedule('@weekly').next(new Date('2024-01-01T00:00:00Z'))?.toISOString(),
      '2024-01-07T00:00:00.000Z',
    );
  });
});

describe('cronjob controller', () => {
  it('creates a Job per scheduled time, with name, annotation, owner, and status', async () => {
    const cj = await start('tick', { timeZone: 'Asia/Kolkata' });
    const [job] = await t.until('a Job', async () => {
      const j = await jobsOf(cj);
      return j.length === 1 ? j : undefined;
    });
    const scheduled = new Date(Math.floor(nowMs / 60_000) * 60_000);
    assert.equal(job?.metadata.name, jobNameFor(cj, scheduled));
    assert.equal(
      job?.metadata.annotations?.[CRONJOB_SCHEDULED_TIMESTAMP_ANNOTATION],
      rfc3339InZone(scheduled, 'Asia/Kolkata'),
    );
    assert.match(job?.metadata.annotations?.[CRONJOB_SCHEDULED_TIMESTAMP_ANNOTATION] ?? '', /\+05:30$/);
    assert.equal(job?.metadata.labels?.team, 'a');
    assert.equal(job?.metadata.ownerReferences?.[0]?.kind, 'CronJob');
    assert.equal(job?.metadata.ownerReferences?.[0]?.controller, true);
    const status = await t.until('status.active', async () => {
      const c = await t.clients.cronJobs.get(ns, 'tick');
      return c.status?.active?.length === 1 ? c.status : undefined;
    });
    assert.equal(status.active?.[0]?.name, job?.metadata.name);
    assert.equal(status.lastScheduleTime, rfc3339(scheduled));

    // Allow: the next minute starts another while the first still runs.
    await nextMinute('tick');
    await t.until('2 Jobs', async () => (await jobsOf(cj)).length === 2);
    // Finished Jobs leave status.active; a Complete one sets lastSuccessfulTime.
    for (const j of await jobsOf(cj)) await finishJob(j, 'Complete');
    const done = await t.until('no active, lastSuccessfulTime', async () => {
      const c = await t.clients.cronJobs.get(ns, 'tick');
      return (c.status?.active ?? []).length === 0 && c.status?.lastSuccessfulTime ? c.status : undefined;
    });
    assert.equal(done.lastSuccessfulTime, rfc3339(new Date(nowMs)));
    await t.clients.cronJobs.patch(ns, 'tick', 'merge', { spec: { suspend: true } });
  });

  it('Forbid skips a time while a Job runs; Replace deletes the running Job', async () => {
    const cj = await start('forbid', { concurrencyPolicy: 'Forbid' });
    const [first] = await t.until('a Job', async () => {
      const j = await jobsOf(cj);
      return j.length === 1 ? j : undefined;
    });
    await t.until(
      'active',
      async () => (await t.clients.cronJobs.get(ns, 'forbid')).status?.active?.length === 1,
    );
    await nextMinute('forbid');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await jobsOf(cj)).length, 1);

    // The time Forbid skipped may run as soon as the policy is Replace (as
    // upstream: it is still within its deadline), or the next one does:
    // either way one Job replaces the first, and it is the active one.
    await t.clients.cronJobs.patch(ns, 'forbid', 'merge', { spec: { concurrencyPolicy: 'Replace' } });
    await nextMinute('forbid');
    const c = await t.until('active is the new Job', async () => {
      const j = await jobsOf(cj);
      const x = await t.clients.cronJobs.get(ns, 'forbid');
      const replaced = j.length === 1 && j[0]?.metadata.uid !== first?.metadata.uid;
      return replaced && x.status?.active?.[0]?.uid === j[0]?.metadata.uid ? x : undefined;
    });
    assert.equal(c.status?.active?.length, 1);
    await t.clients.cronJobs.patch(ns, 'forbid', 'merge', { spec: { suspend: true } });
  });

  it('does not start past startingDeadlineSeconds, nor while suspended', async () => {
    const cj = await t.clients.cronJobs.create(
      ns,
      cronJob('late', { startingDeadlineSeconds: 10, suspend: true }),
    );
    await nextMinute('late');
    await new Promise((r) => setTimeout(r, 200));
    assert.equal((await jobsOf(cj)).length, 0);
    // Resumed 30 s after the scheduled minute: too late for a 10 s deadline.
    nowMs = Math.floor(nowMs / 60_000) * 60_000 + 30_000;
    await t.clients.cronJobs.patch(ns, 'late', 'merge', { spec: { suspend: false } });
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await jobsOf(cj)).length, 0);
    // Within the deadline it starts.
    await nextMinute('late', 5);
    await t.until('a Job', async () => (await jobsOf(cj)).length === 1);
    await t.clients.cronJobs.patch(ns, 'late', 'merge', { spec: { suspend: true } });
  });

  it('keeps successfulJobsHistoryLimit and failedJobsHistoryLimit finished Jobs', async () => {
    const cj = await start('hist', { successfulJobsHistoryLimit: 1, failedJobsHistoryLimit: 1 });
    await t.until('Job 1', async () => (await jobsOf(cj)).length === 1);
    await nextMinute('hist');
    await t.until('Job 2', async () => (await jobsOf(cj)).length === 2);
    const [older, newer] = (await jobsOf(cj)).sort((a, b) =>
      (a.metadata.name ?? '').localeCompare(b.metadata.name ?? ''),
    );
    await finishJob(older as Job, 'Complete');
    nowMs += 1000;
    await finishJob(newer as Job, 'Complete');
    // Stop the schedule before counting what is kept.
    await t.clients.cronJobs.patch(ns, 'hist', 'merge', { spec: { suspend: true } });
    const left = await t.until('one successful Job kept', async () => {
      const j = await jobsOf(cj);
      return j.length === 1 ? j : undefined;
    });
    assert.equal(left[0]?.metadata.name, newer?.metadata.name);
  });
});
