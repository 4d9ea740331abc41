// The worker loop every controller shares, as in client-go's sample-controller:
// take a key from the queue, sync it, forget it on success, and on failure put
// it back with per-item exponential backoff. A key is never synced by two
// workers at once (the queue guarantees it), so sync(key) can assume it is
// alone with its object.

import { isApiError } from '../api/errors.ts';
import { createWorkQueue, type WorkQueue } from '../client/workqueue.ts';
import type { Controller, ControllerContext } from './context.ts';

export interface QueueControllerOptions {
  name: string;
  /** Concurrent workers (upstream's --concurrent-*-syncs; 5 for most controllers). */
  workers?: number;
  /** Level-triggered: read the cache, compare desired with actual, act. Throw to retry. */
  sync(key: string): Promise<void>;
  /** Extra work for run() and stop() (periodic scans, timers). */
  onRun?: () => void;
  onStop?: () => void;
}

export interface QueueController extends Controller {
  readonly queue: WorkQueue<string>;
}

/** After this many failed retries a key is dropped until its next event (upstream: 15 for most). */
const MAX_RETRIES = 15;

export function queueController(ctx: ControllerContext, opts: QueueControllerOptions): QueueController {
  const queue = createWorkQueue<string>({
    name: opts.name,
    clock: ctx.clock,
    ...(ctx.queueMetrics ? { metrics: ctx.queueMetrics(opts.name) } : {}),
  });
  const log = ctx.log.with({ controller: opts.name });
  const workers: Promise<void>[] = [];

  const worker = async () => {
    for (;;) {
      const item = await queue.get();
      if (item.shutdown) return;
      const key = item.key;
      try {
        await opts.sync(key);
        queue.forget(key);
      } catch (err) {
        // A conflict means our cache was behind: retry soon, quietly.
        const conflict = isApiError(err, 'Conflict');
        if (queue.numRequeues(key) < MAX_RETRIES) {
          if (!conflict) log.warn('sync failed, will retry', { key, error: String(err) });
          queue.addRateLimited(key);
        } else {
          log.error('sync failed, giving up until the next change', { key, error: String(err) });
          queue.forget(key);
        }
      } finally {
        queue.done(key);
      }
    }
  };

  return {
    name: opts.name,
    queue,
    run() {
      for (let i = 0; i < (opts.workers ?? 5); i++) workers.push(worker());
      opts.onRun?.();
    },
    async stop() {
      opts.onStop?.();
      queue.shutDown();
      await Promise.all(workers);
    },
  };
}
