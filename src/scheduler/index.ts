// Starts the scheduler as `skiff server` runs it: its own shared informers
// (pods and nodes), an event recorder reporting as default-scheduler, and the
// default profile.

import type { Clientset } from '../client/clientset.ts';
import { createEventRecorder } from '../client/events.ts';
import { createInformerFactory } from '../client/informer-factory.ts';
import type { Log } from '../util/log.ts';
import { defaultProfile } from './plugins/index.ts';
import {
  createScheduler,
  DEFAULT_SCHEDULER_NAME,
  type Scheduler,
  type SchedulerMetrics,
} from './scheduler.ts';

export interface RunningScheduler {
  scheduler: Scheduler;
  stop(): Promise<void>;
}

export async function startScheduler(opts: {
  clients: Clientset;
  log: Log;
  percentageOfNodesToScore?: number;
  /** The scheduler's metrics, given its queue's counts (metrics/scheduler.ts). */
  metrics?: (pending: () => ReturnType<Scheduler['queue']['stats']>) => SchedulerMetrics;
}): Promise<RunningScheduler> {
  const informers = createInformerFactory(opts.clients, { log: (m, f) => opts.log.warn(m, f) });
  const namespaces = informers.informer('namespaces');
  const metrics = opts.metrics?.(() => scheduler.queue.stats());
  const scheduler: Scheduler = createScheduler({
    clients: opts.clients,
    informers,
    recorder: createEventRecorder(opts.clients, {
      component: DEFAULT_SCHEDULER_NAME,
      log: (m, f) => opts.log.warn(m, f),
    }),
    log: opts.log,
    profile: defaultProfile(DEFAULT_SCHEDULER_NAME, {
      clients: opts.clients,
      informers,
      namespaceLabels: (ns) => namespaces.indexer.get(ns)?.metadata.labels,
    }),
    ...(opts.percentageOfNodesToScore !== undefined
      ? { percentageOfNodesToScore: opts.percentageOfNodesToScore }
      : {}),
    ...(metrics ? { metrics } : {}),
  });
  await informers.start();
  scheduler.run();
  opts.log('scheduler started', { schedulerName: DEFAULT_SCHEDULER_NAME });
  return {
    scheduler,
    async stop() {
      await scheduler.stop();
      informers.stop();
    },
  };
}
