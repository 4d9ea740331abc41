// Upstream's workqueue_* metrics (k8s.io/component-base/metrics/prometheus/workqueue),
// one series per queue name, fed by the queues (client/workqueue.ts WorkQueueMetrics).

import { Counter, Gauge, Histogram } from 'prom-client';
import type { QueueState, WorkQueueMetrics } from '../client/workqueue.ts';
import type { Registry } from './prometheus.ts';

/** Makes each queue's metrics, by its name; what a controller manager hands its controllers. */
export type WorkQueueMetricsProvider = (queueName: string) => WorkQueueMetrics;

/** Upstream's buckets for queue and work durations: 10 ns to 10 s, by tens. */
const DURATION_BUCKETS = Array.from({ length: 10 }, (_, i) => 1e-8 * 10 ** i);

export function workQueueMetricsProvider(registry: Registry): WorkQueueMetricsProvider {
  const registers = [registry];
  const labelNames = ['name'] as const;
  const adds = new Counter({
    name: 'workqueue_adds_total',
    help: 'Total number of adds handled by workqueue',
    labelNames,
    registers,
  });
  const latency = new Histogram({
    name: 'workqueue_queue_duration_seconds',
    help: 'How long in seconds an item stays in workqueue before being requested.',
    labelNames,
    buckets: DURATION_BUCKETS,
    registers,
  });
  const work = new Histogram({
    name: 'workqueue_work_duration_seconds',
    help: 'How long in seconds processing an item from workqueue takes.',
    labelNames,
    buckets: DURATION_BUCKETS,
    registers,
  });
  const retries = new Counter({
    name: 'workqueue_retries_total',
    help: 'Total number of retries handled by workqueue',
    labelNames,
    registers,
  });
  const probes = new Map<string, () => QueueState>();
  const states = () => [...probes].map(([name, probe]) => [name, probe()] as const);
  new Gauge({
    name: 'workqueue_depth',
    help: 'Current depth of workqueue',
    labelNames,
    registers,
    collect() {
      for (const [name, state] of states()) this.set({ name }, state.depth);
    },
  });
  new Gauge({
    name: 'workqueue_unfinished_work_seconds',
    help: "How many seconds of work has done that is in progress and hasn't been observed by work_duration. Large values indicate stuck threads. One can deduce the number of stuck threads by observing the rate at which this increases.",
    labelNames,
    registers,
    collect() {
      for (const [name, { runningSeconds }] of states())
        this.set(
          { name },
          runningSeconds.reduce((a, b) => a + b, 0),
        );
    },
  });
  new Gauge({
    name: 'workqueue_longest_running_processor_seconds',
    help: 'How many seconds has the longest running processor for workqueue been running.',
    labelNames,
    registers,
    collect() {
      for (const [name, { runningSeconds }] of states()) this.set({ name }, Math.max(0, ...runningSeconds));
    },
  });
  return (name) => {
    const a = adds.labels(name);
    const l = latency.labels(name);
    const w = work.labels(name);
    const r = retries.labels(name);
    // Every queue's series exist from its start, at 0, as upstream's: a scrape
    // between a queue's creation and its first finished item still shows it.
    a.inc(0);
    r.inc(0);
    latency.zero({ name });
    work.zero({ name });
    return {
      added: () => a.inc(),
      handedOut: (seconds) => l.observe(seconds),
      processed: (seconds) => w.observe(seconds),
      retried: () => r.inc(),
      observe: (probe) => void probes.set(name, probe),
    };
  };
}
