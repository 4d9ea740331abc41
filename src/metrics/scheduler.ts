// The scheduler's metrics, with upstream's names (pkg/scheduler/metrics):
// scheduler_pending_pods by queue, and each scheduling attempt's result and
// duration.

import { Counter, Gauge, Histogram } from 'prom-client';
import type { SchedulerMetrics } from '../scheduler/scheduler.ts';
import type { Registry } from './prometheus.ts';

/** How many pods each of the scheduler's queues holds (SchedulingQueue.stats()). */
export type PendingPods = () => { active: number; backoff: number; unschedulable: number };

export function schedulerMetrics(registry: Registry, pending: PendingPods): SchedulerMetrics {
  const registers = [registry];
  new Gauge({
    name: 'scheduler_pending_pods',
    help: "Number of pending pods, by the queue type. 'active' means number of pods in activeQ; 'backoff' means number of pods in backoffQ; 'unschedulable' means number of pods in unschedulablePods that the scheduler attempted to schedule and failed; 'gated' is the number of unschedulable pods that the scheduler never attempted to schedule because they are gated.",
    labelNames: ['queue'],
    registers,
    collect() {
      const p = pending();
      this.set({ queue: 'active' }, p.active);
      this.set({ queue: 'backoff' }, p.backoff);
      this.set({ queue: 'unschedulable' }, p.unschedulable);
      // Pods with scheduling gates never enter Skiff's queues.
      this.set({ queue: 'gated' }, 0);
    },
  });
  const attempts = new Counter({
    name: 'scheduler_schedule_attempts_total',
    help: "Number of attempts to schedule pods, by the result. 'unschedulable' means a pod could not be scheduled, while 'error' means an internal scheduler problem.",
    labelNames: ['result', 'profile'],
    registers,
  });
  const durations = new Histogram({
    name: 'scheduler_scheduling_attempt_duration_seconds',
    help: 'Scheduling attempt latency in seconds (scheduling algorithm + binding)',
    labelNames: ['result', 'profile'],
    // Upstream's: 1 ms doubling 15 times.
    buckets: Array.from({ length: 15 }, (_, i) => 0.001 * 2 ** i),
    registers,
  });
  return {
    attempt(result, profile, seconds) {
      attempts.inc({ result, profile });
      durations.observe({ result, profile }, seconds);
    },
  };
}
