// The HPA's replica calculator for resource metrics, as upstream's
// (pkg/controller/podautoscaler/replica_calculator.go): from the pods'
// usage and requests, how many replicas bring the average to the target.
//
// Pure logic over plain inputs (pods, their usage, the time), so it is
// tested with upstream's own cases (replica-calculator.test.ts). What it
// keeps from upstream:
//   - the tolerance: no change while |usage/target - 1| <= 0.1;
//   - pods being deleted or Failed are ignored, Pending ones are unready,
//     and for CPU a pod is unready while it starts (within
//     cpuInitializationPeriod: not Ready, or its sample predates its
//     readiness by less than the metric's window; after it: never Ready
//     within initialReadinessDelay of starting);
//   - missing metrics count as 100% of the request (or the target, if
//     higher) when scaling down and as 0 when scaling up, unready pods as 0
//     when scaling up, and a change that would flip direction is no change.
//
// Usage values are milli-units (millicores, milli-bytes), as upstream's
// metrics client gives them (Quantity.MilliValue()).

import { milliValue, parseQuantity } from '../api/quantity.ts';
import type { Pod } from '../api/types/core-v1.ts';

export const DEFAULT_TOLERANCE = 0.1;

/** One pod's usage of the resource: the sum over its (or the named) containers, in milli-units. */
export interface PodMetric {
  value: number;
  /** When the sample was taken (ms since the epoch), and over what window (ms). */
  timestamp: number;
  windowMs: number;
}

/** Pod name → its metric. */
export type PodMetrics = Map<string, PodMetric>;

export interface ReplicaCalculatorOptions {
  tolerance: number;
  /** --horizontal-pod-autoscaler-cpu-initialization-period (5 min). */
  cpuInitializationPeriodMs: number;
  /** --horizontal-pod-autoscaler-initial-readiness-delay (30 s). */
  initialReadinessDelayMs: number;
  now: () => number;
}

/** An error the HPA reports in its ScalingActive condition and as an event. */
export class ReplicaCalculationError extends Error {}

interface PodGroups {
  readyPodCount: number;
  unready: Set<string>;
  missing: Set<string>;
  ignored: Set<string>;
}

const parseTime = (t: string | undefined) => (t ? Date.parse(t) : Number.NaN);

/** Upstream's groupPods. */
export function groupPods(
  pods: Pod[],
  metrics: PodMetrics,
  resource: string,
  opts: Pick<ReplicaCalculatorOptions, 'cpuInitializationPeriodMs' | 'initialReadinessDelayMs' | 'now'>,
): PodGroups {
  const groups: PodGroups = { readyPodCount: 0, unready: new Set(), missing: new Set(), ignored: new Set() };
  const now = opts.now();
  for (const pod of pods) {
    const name = pod.metadata.name ?? '';
    if (pod.metadata.deletionTimestamp || pod.status?.phase === 'Failed') {
      groups.ignored.add(name);
      continue;
    }
    if (pod.status?.phase === 'Pending') {
      groups.unready.add(name);
      continue;
    }
    const metric = metrics.get(name);
    if (!metric) {
      groups.missing.add(name);
      continue;
    }
    if (resource === 'cpu') {
      const ready = pod.status?.conditions?.find((c) => c.type === 'Ready');
      const start = parseTime(pod.status?.startTime);
      let unready: boolean;
      if (!ready || Number.isNaN(start)) unready = true;
      else {
        const transition = parseTime(ready.lastTransitionTime);
        if (start + opts.cpuInitializationPeriodMs > now) {
          // Still starting: a sample from before it was ready for a whole window says nothing yet.
          unready = ready.status === 'False' || metric.timestamp < transition + metric.windowMs;
        } else {
          // Past it: only a pod that never became ready soon after starting.
          unready = ready.status === 'False' && start + opts.initialReadinessDelayMs > transition;
        }
      }
      if (unready) {
        groups.unready.add(name);
        continue;
      }
    }
    groups.readyPodCount++;
  }
  return groups;
}

/** Each pod's request for the resource (milli-units), summed over its (or the named) containers; throws if one lacks it. */
export function podRequests(pods: Pod[], resource: string, container?: string): Map<string, number> {
  const requests = new Map<string, number>();
  for (const pod of pods) {
    let total = 0;
    for (const c of pod.spec?.containers ?? []) {
      if (container && c.name !== container) continue;
      const request = c.resources?.requests?.[resource];
      if (request === undefined)
        throw new ReplicaCalculationError(
          `missing request for ${resource} in container ${c.name} of Pod ${pod.metadata.name}`,
        );
      total += milli(String(request));
    }
    requests.set(pod.metadata.name ?? '', total);
  }
  return requests;
}

/** A quantity in milli-units, rounded up as upstream's Quantity.MilliValue(). */
export function milli(quantity: string): number {
  try {
    return Number(milliValue(parseQuantity(quantity)));
  } catch {
    throw new ReplicaCalculationError(`invalid quantity ${JSON.stringify(quantity)}`);
  }
}

/** Upstream's GetResourceUtilizationRatio: only pods with a request count. */
export function utilizationRatio(
  metrics: PodMetrics,
  requests: Map<string, number>,
  targetUtilization: number,
): { ratio: number; utilization: number; rawAverage: number } {
  let metricsTotal = 0;
  let requestsTotal = 0;
  let entries = 0;
  for (const [name, metric] of metrics) {
    const request = requests.get(name);
    if (request === undefined) continue;
    metricsTotal += metric.value;
    requestsTotal += request;
    entries++;
  }
  if (requestsTotal === 0) throw new ReplicaCalculationError('no metrics returned matched known pods');
  const utilization = Math.trunc((metricsTotal * 100) / requestsTotal);
  return {
    ratio: utilization / targetUtilization,
    utilization,
    rawAverage: Math.trunc(metricsTotal / entries),
  };
}

const averageRatio = (metrics: PodMetrics, target: number) => {
  let total = 0;
  for (const m of metrics.values()) total += m.value;
  const usage = total / metrics.size;
  return { ratio: usage / target, usage: Math.trunc(usage) };
};

function prepare(
  pods: Pod[],
  input: PodMetrics,
  resource: string,
  opts: ReplicaCalculatorOptions,
): { metrics: PodMetrics; groups: PodGroups } {
  if (pods.length === 0)
    throw new ReplicaCalculationError('no pods returned by selector while calculating replica count');
  const metrics = new Map(input);
  const groups = groupPods(pods, metrics, resource, opts);
  for (const name of [...groups.ignored, ...groups.unready]) metrics.delete(name);
  if (metrics.size === 0)
    throw new ReplicaCalculationError('did not receive metrics for targeted pods (pods might be unready)');
  return { metrics, groups };
}

/** The common tail: the rebalanced ratio's replicas, unless it is within tolerance or flips the direction. */
function rebalance(
  currentReplicas: number,
  ratio: number,
  newRatio: number,
  count: number,
  tolerance: number,
): number {
  if (Math.abs(1 - newRatio) <= tolerance || (ratio < 1 && newRatio > 1) || (ratio > 1 && newRatio < 1))
    return currentReplicas;
  const replicas = Math.ceil(newRatio * count);
  if ((newRatio < 1 && replicas > currentReplicas) || (newRatio > 1 && replicas < currentReplicas))
    return currentReplicas;
  return replicas;
}

/** Upstream's GetResourceReplicas: a Utilization target (percent of request). */
export function resourceReplicas(
  currentReplicas: number,
  targetUtilization: number,
  resource: string,
  pods: Pod[],
  input: PodMetrics,
  opts: ReplicaCalculatorOptions,
  container?: string,
): { replicas: number; utilization: number; rawAverage: number } {
  const { metrics, groups } = prepare(pods, input, resource, opts);
  const requests = podRequests(pods, resource, container);
  const { ratio, utilization, rawAverage } = utilizationRatio(metrics, requests, targetUtilization);
  const scaleUpWithUnready = groups.unready.size > 0 && ratio > 1;
  if (!scaleUpWithUnready && groups.missing.size === 0) {
    if (Math.abs(1 - ratio) <= opts.tolerance) return { replicas: currentReplicas, utilization, rawAverage };
    return { replicas: Math.ceil(ratio * groups.readyPodCount), utilization, rawAverage };
  }
  if (groups.missing.size > 0) {
    // Scaling down: assume the missing use their whole request (or the target, if higher); up: nothing.
    // (At exactly the target, they are left out: the ratio stands.)
    const fallback = Math.max(100, targetUtilization);
    for (const name of groups.missing) {
      if (ratio < 1)
        metrics.set(name, { value: ((requests.get(name) ?? 0) * fallback) / 100, timestamp: 0, windowMs: 0 });
      else if (ratio > 1) metrics.set(name, { value: 0, timestamp: 0, windowMs: 0 });
    }
  }
  if (scaleUpWithUnready)
    for (const name of groups.unready) metrics.set(name, { value: 0, timestamp: 0, windowMs: 0 });
  const newRatio = utilizationRatio(metrics, requests, targetUtilization).ratio;
  return {
    replicas: rebalance(currentReplicas, ratio, newRatio, metrics.size, opts.tolerance),
    utilization,
    rawAverage,
  };
}

/** Upstream's GetRawResourceReplicas (calcPlainMetricReplicas): an AverageValue target, in milli-units. */
export function rawResourceReplicas(
  currentReplicas: number,
  targetAverage: number,
  resource: string,
  pods: Pod[],
  input: PodMetrics,
  opts: ReplicaCalculatorOptions,
): { replicas: number; usage: number } {
  const { metrics, groups } = prepare(pods, input, resource, opts);
  const { ratio, usage } = averageRatio(metrics, targetAverage);
  const scaleUpWithUnready = groups.unready.size > 0 && ratio > 1;
  if (!scaleUpWithUnready && groups.missing.size === 0) {
    if (Math.abs(1 - ratio) <= opts.tolerance) return { replicas: currentReplicas, usage };
    return { replicas: Math.ceil(ratio * groups.readyPodCount), usage };
  }
  if (groups.missing.size > 0)
    for (const name of groups.missing)
      metrics.set(name, { value: ratio < 1 ? targetAverage : 0, timestamp: 0, windowMs: 0 });
  if (scaleUpWithUnready)
    for (const name of groups.unready) metrics.set(name, { value: 0, timestamp: 0, windowMs: 0 });
  const newRatio = averageRatio(metrics, targetAverage).ratio;
  return { replicas: rebalance(currentReplicas, ratio, newRatio, metrics.size, opts.tolerance), usage };
}
