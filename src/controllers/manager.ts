// The controller manager, as kube-controller-manager: builds every controller
// (each asks for the shared informers it needs and adds its handlers), starts
// the informers, waits until their caches have synced, then starts the
// controllers' workers. It runs inside `skiff server` over the in-process
// transport, or anywhere else over HTTPS: only the Clientset differs.

import type { Clientset } from '../client/clientset.ts';
import { createEventRecorder } from '../client/events.ts';
import { createInformerFactory } from '../client/informer-factory.ts';
import { type Clock, realClock, type WorkQueueMetrics } from '../client/workqueue.ts';
import type { Log } from '../util/log.ts';
import {
  type Controller,
  type ControllerContext,
  type ControllerFactory,
  type ControllerOptions,
  defaultControllerOptions,
} from './context.ts';

export interface ControllerManagerOptions {
  /** The manager's own identity: the shared informers list and watch with it. */
  clients: Clientset;
  /**
   * Each controller's clients for its writes and events, as upstream's
   * --use-service-account-credentials (one ServiceAccount per controller);
   * the manager's own when unset.
   */
  clientsFor?: (controller: string) => Clientset;
  log: Log;
  /** Which controllers to run, by name (default: all of `controllers`). */
  controllers: Record<string, ControllerFactory>;
  options?: Partial<ControllerOptions>;
  now?: () => Date;
  clock?: Clock;
  /** Each work queue's metrics (metrics/workqueue.ts); none when unset. */
  queueMetrics?: (queueName: string) => WorkQueueMetrics;
}

export interface ControllerManager {
  readonly context: ControllerContext;
  readonly controllers: Controller[];
  stop(): Promise<void>;
}

export async function startControllerManager(opts: ControllerManagerOptions): Promise<ControllerManager> {
  const log = opts.log;
  const now = opts.now ?? (() => new Date());
  const informers = createInformerFactory(opts.clients, {
    log: (msg, fields) => log.warn(msg, fields),
  });
  const context: ControllerContext = {
    clients: opts.clients,
    informers,
    recorder: (component) =>
      createEventRecorder(opts.clients, { component, now, log: (msg, fields) => log.warn(msg, fields) }),
    log,
    now,
    clock: opts.clock ?? realClock,
    options: { ...defaultControllerOptions, ...opts.options },
    ...(opts.queueMetrics ? { queueMetrics: opts.queueMetrics } : {}),
  };
  const contextFor = (name: string): ControllerContext => {
    const clients = opts.clientsFor?.(name);
    if (!clients) return context;
    return {
      ...context,
      clients,
      recorder: (component) =>
        createEventRecorder(clients, { component, now, log: (msg, fields) => log.warn(msg, fields) }),
    };
  };
  const controllers = Object.entries(opts.controllers).map(([name, factory]) => {
    const c = factory(contextFor(name));
    if (c.name !== name) throw new Error(`controller ${name} calls itself ${c.name}`);
    return c;
  });
  const started = performance.now();
  await informers.start();
  for (const c of controllers) c.run();
  log('controllers started', {
    controllers: controllers.map((c) => c.name),
    cacheSyncMs: Math.round(performance.now() - started),
  });
  return {
    context,
    controllers,
    async stop() {
      await Promise.all(controllers.map((c) => c.stop()));
      informers.stop();
    },
  };
}
