// The TTL-after-finished controller (upstream's ttl-after-finished-controller,
// pkg/controller/ttlafterfinished): deletes a finished Job once
// spec.ttlSecondsAfterFinished have passed since it finished, with its pods
// (foreground deletion).
//
// https://github.com/kubernetes/kubernetes/blob/master/pkg/controller/ttlafterfinished/ttlafterfinished_controller.go

import { isApiError } from '../api/errors.ts';
import type { Job } from '../api/types/batch-v1.ts';
import { type ControllerFactory, keyOf, splitKey } from './context.ts';
import { queueController } from './controller.ts';
import { finishedCondition } from './job.ts';

const needsCleanup = (job: Job) =>
  job.spec?.ttlSecondsAfterFinished !== undefined && finishedCondition(job) !== undefined;

/** When the Job's TTL runs out: its Complete or Failed condition's transition time plus the TTL. */
function expireAt(job: Job): number | undefined {
  const finishedAt = Date.parse(finishedCondition(job)?.lastTransitionTime ?? '');
  if (Number.isNaN(finishedAt)) return undefined;
  return finishedAt + (job.spec?.ttlSecondsAfterFinished ?? 0) * 1000;
}

export const ttlAfterFinishedController: ControllerFactory = (ctx) => {
  const jobs = ctx.informers.informer('jobs');
  const log = ctx.log.with({ controller: 'ttl-after-finished' });

  /** Milliseconds until the Job expires (<= 0: expired), or undefined if it never will. */
  function timeLeft(job: Job): number | undefined {
    if (job.metadata.deletionTimestamp || !needsCleanup(job)) return undefined;
    const at = expireAt(job);
    if (at === undefined) {
      log.warn('finished Job has no finish time', { job: keyOf(job) });
      return undefined;
    }
    return at - ctx.now().getTime();
  }

  const c = queueController(ctx, {
    name: 'ttl-after-finished',
    workers: 5,
    async sync(key) {
      const cached = jobs.indexer.get(key);
      if (!cached) return;
      const left = timeLeft(cached);
      if (left === undefined) return;
      if (left > 0) {
        c.queue.addAfter(key, left);
        return;
      }
      // The cache may be stale (the TTL raised, the Job replaced): decide
      // again on a fresh read before deleting anything.
      const { namespace, name } = splitKey(key);
      let fresh: Job;
      try {
        fresh = await ctx.clients.jobs.get(namespace, name);
      } catch (err) {
        if (isApiError(err, 'NotFound')) return;
        throw err;
      }
      const freshLeft = timeLeft(fresh);
      if (freshLeft === undefined) return;
      if (freshLeft > 0) {
        c.queue.addAfter(key, freshLeft);
        return;
      }
      // Foreground: the Job stays visible until its pods are gone. The uid
      // precondition keeps a new Job of the same name from being deleted.
      try {
        await ctx.clients.jobs.delete(namespace, name, {
          propagationPolicy: 'Foreground',
          preconditions: { uid: fresh.metadata.uid ?? '' },
        });
      } catch (err) {
        if (!isApiError(err, 'NotFound')) throw err;
      }
    },
  });

  const enqueue = (job: Job) => {
    if (!job.metadata.deletionTimestamp && needsCleanup(job)) c.queue.add(keyOf(job));
  };
  jobs.on({ add: enqueue, update: (_old, job) => enqueue(job) });
  return c;
};
