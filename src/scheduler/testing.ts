// A harness for scheduler tests: a real API server (memory store) and the
// scheduler talking to it through the in-process transport, as inside
// `skiff server`. Tests create Nodes and Pods like a user (or a kubelet) would.

import type { Node, Pod } from '../api/types/core-v1.ts';
import { createInProcessTransport } from '../apiserver/in-process.ts';
import { startTestServer, type TestServer } from '../apiserver/testing.ts';
import { type Clientset, createClientset } from '../client/clientset.ts';
import { createEventRecorder } from '../client/events.ts';
import { createInformerFactory } from '../client/informer-factory.ts';
import type { Store } from '../storage/store.ts';
import { createLog } from '../util/log.ts';
import { until } from '../util/until.ts';
import type { Plugin } from './framework.ts';
import { DEFAULT_WEIGHTS, defaultPlugins } from './plugins/index.ts';
import { buildProfile } from './profile.ts';
import { createScheduler, DEFAULT_SCHEDULER_NAME, type Scheduler } from './scheduler.ts';

export interface SchedulerTest {
  server: TestServer;
  clients: Clientset;
  scheduler: Scheduler;
  until<T>(what: string, check: () => T | Promise<T>, ms?: number): Promise<NonNullable<T>>;
  close(): Promise<void>;
}

export interface SchedulerTestOptions {
  store?: Store;
  /** Plugins beyond the default set (preemption, inter-pod affinity, ...). */
  extra?: (clients: Clientset) => Plugin[];
  percentageOfNodesToScore?: number;
  quiet?: boolean;
}

export async function startSchedulerTest(opts: SchedulerTestOptions = {}): Promise<SchedulerTest> {
  const server = await startTestServer(opts.store);
  const clients = createClientset(
    createInProcessTransport(server.api, { name: 'system:kube-scheduler', groups: ['system:authenticated'] }),
  );
  const informers = createInformerFactory(clients);
  const namespaces = informers.informer('namespaces');
  const lines: string[] = [];
  const log = createLog({ component: 'scheduler' }, (l) => {
    lines.push(l);
    if (lines.length > 200) lines.shift();
    if (process.env.SKIFF_TEST_LOG) process.stderr.write(l);
  });
  const scheduler = createScheduler({
    clients,
    informers,
    recorder: createEventRecorder(clients, { component: DEFAULT_SCHEDULER_NAME }),
    log,
    profile: buildProfile(
      DEFAULT_SCHEDULER_NAME,
      defaultPlugins({
        clients,
        namespaceLabels: (ns) => namespaces.indexer.get(ns)?.metadata.labels,
        extra: opts.extra?.(clients) ?? [],
      }),
      DEFAULT_WEIGHTS,
    ),
    ...(opts.percentageOfNodesToScore !== undefined
      ? { percentageOfNodesToScore: opts.percentageOfNodesToScore }
      : {}),
  });
  await informers.start();
  scheduler.run();
  return {
    server,
    clients,
    scheduler,
    until(what, check, ms = 10_000) {
      return until(what, check, {
        ms,
        context: () => `scheduler log (last 10 lines):\n${lines.slice(-10).join('')}`,
      });
    },
    async close() {
      await scheduler.stop();
      informers.stop();
      await server.close();
    },
  };
}

/** A Ready node with the given allocatable resources and labels, as a kubelet registers it. */
export function makeNode(
  name: string,
  opts: { cpu?: string; memory?: string; pods?: string; labels?: Record<string, string> } = {},
): Node {
  const allocatable = { cpu: opts.cpu ?? '4', memory: opts.memory ?? '8Gi', pods: opts.pods ?? '110' };
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, labels: { 'kubernetes.io/hostname': name, ...opts.labels } },
    spec: {},
    status: {
      capacity: allocatable,
      allocatable,
      conditions: [{ type: 'Ready', status: 'True' }],
    },
  };
}

export function makePod(
  name: string,
  spec: Partial<NonNullable<Pod['spec']>> = {},
  labels?: Record<string, string>,
): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default', ...(labels ? { labels } : {}) },
    spec: { containers: [{ name: 'c', image: 'busybox' }], ...spec },
  };
}
