// Upstream's replica calculator cases (pkg/controller/podautoscaler/
// replica_calculator_test.go), with one container per pod: upstream's
// fixtures give every pod two containers, so their raw values are twice
// these; ratios and replica counts are the same.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Pod } from '../api/types/core-v1.ts';
import {
  type PodMetrics,
  ReplicaCalculationError,
  rawResourceReplicas,
  resourceReplicas,
} from './replica-calculator.ts';

const NOW = Date.parse('2026-12-01T12:00:00Z');
const opts = {
  tolerance: 0.1,
  cpuInitializationPeriodMs: 5 * 60_000,
  initialReadinessDelayMs: 30_000,
  now: () => NOW,
};

interface PodCase {
  request?: string;
  ready?: boolean;
  phase?: string;
  deleting?: boolean;
  /** Usage in millicores; undefined: no metric for the pod. */
  level?: number;
}

/** Pods started a minute ago, Ready (or not) since then, with samples taken now over a 30 s window. */
function fixture(cases: PodCase[]): { pods: Pod[]; metrics: PodMetrics } {
  const started = new Date(NOW - 60_000).toISOString();
  const metrics: PodMetrics = new Map();
  const pods = cases.map((c, i): Pod => {
    const name = `pod-${i}`;
    if (c.level !== undefined) metrics.set(name, { value: c.level, timestamp: NOW, windowMs: 30_000 });
    return {
      metadata: { name, namespace: 'ns', ...(c.deleting ? { deletionTimestamp: started } : {}) },
      spec: {
        containers: [
          {
            name: 'c',
            image: 'x',
            resources: c.request === '' ? {} : { requests: { cpu: c.request ?? '1.0' } },
          },
        ],
      },
      status: {
        phase: c.phase ?? 'Running',
        startTime: started,
        conditions: [
          { type: 'Ready', status: c.ready === false ? 'False' : 'True', lastTransitionTime: started },
        ],
      },
    };
  });
  return { pods, metrics };
}

const calc = (current: number, target: number, cases: PodCase[]) => {
  const { pods, metrics } = fixture(cases);
  return resourceReplicas(current, target, 'cpu', pods, metrics, opts);
};

describe('HPA replica calculator (upstream cases)', () => {
  it('ScaleUp: 3 pods at 300, 500, 700m of 1 core, target 30%: 5', () => {
    assert.deepEqual(calc(3, 30, [{ level: 300 }, { level: 500 }, { level: 700 }]), {
      replicas: 5,
      utilization: 50,
      rawAverage: 500,
    });
  });

  it('ScaleUpUnreadyLessScale: the unready pod counts as 0 on a scale-up: 4', () => {
    assert.deepEqual(calc(3, 30, [{ level: 300, ready: false }, { level: 500 }, { level: 700 }]), {
      replicas: 4,
      utilization: 60,
      rawAverage: 600,
    });
  });

  it('ScaleUpPendingLessScale: a Pending pod is unready: 4', () => {
    assert.equal(calc(3, 30, [{ phase: 'Pending' }, { level: 500 }, { level: 700 }]).replicas, 4);
  });

  it('ScaleUpUnreadyNoScale: counting the unready at 0 falls under the target: no change', () => {
    assert.deepEqual(
      calc(3, 30, [{ level: 400 }, { level: 500, ready: false }, { level: 700, ready: false }]),
      {
        replicas: 3,
        utilization: 40,
        rawAverage: 400,
      },
    );
  });

  it('ScaleUpIgnoresFailedPods and deleted ones', () => {
    assert.equal(
      calc(2, 30, [
        { level: 500 },
        { level: 700 },
        { level: 3000, phase: 'Failed' },
        { level: 3000, phase: 'Failed' },
      ]).replicas,
      4,
    );
    assert.equal(calc(2, 30, [{ level: 500 }, { level: 700 }, { level: 3000, deleting: true }]).replicas, 4);
  });

  it('ScaleDown: 5 pods averaging 28% of a 50% target: 3', () => {
    assert.deepEqual(
      calc(5, 50, [{ level: 100 }, { level: 300 }, { level: 500 }, { level: 250 }, { level: 250 }]),
      { replicas: 3, utilization: 28, rawAverage: 280 },
    );
  });

  it('ScaleDownIgnoresUnreadyPods: 2', () => {
    assert.deepEqual(
      calc(5, 50, [
        { level: 100 },
        { level: 300 },
        { level: 500 },
        { level: 250, ready: false },
        { level: 250, ready: false },
      ]),
      { replicas: 2, utilization: 30, rawAverage: 300 },
    );
  });

  it('Tolerance: 102% of a 100% target is no change', () => {
    assert.deepEqual(
      calc(3, 100, [
        { level: 1010, request: '0.9' },
        { level: 1030, request: '1.0' },
        { level: 1020, request: '1.1' },
      ]),
      { replicas: 3, utilization: 102, rawAverage: 1020 },
    );
  });

  it('MissingMetricsNoChangeEq: at the target exactly, a missing pod changes nothing', () => {
    assert.equal(calc(2, 100, [{ level: 1000 }, {}]).replicas, 2);
  });

  it('MissingMetricsScaleDown: a missing pod counts as its whole request: 3', () => {
    assert.deepEqual(calc(4, 50, [{ level: 100 }, { level: 100 }, { level: 100 }, {}]), {
      replicas: 3,
      utilization: 10,
      rawAverage: 100,
    });
  });

  it('MissingMetricsScaleUp: a missing pod counts as 0: 4', () => {
    assert.equal(calc(3, 100, [{ level: 2000 }, { level: 2000 }, {}]).replicas, 4);
  });

  it('a change that would flip direction is no change (missing pods at 100% on a scale-down)', () => {
    // 24% alone, but 62% with the two missing at their request: stay.
    assert.equal(calc(4, 50, [{ level: 400 }, { level: 95 }, {}, {}]).replicas, 4);
  });

  it('errors: no pods, no metrics, a container without a request', () => {
    assert.throws(() => calc(1, 50, []), /no pods returned by selector while calculating replica count/);
    assert.throws(() => calc(2, 50, [{}, {}]), /did not receive metrics for targeted pods/);
    assert.throws(
      () => calc(1, 50, [{ level: 100, request: '' }]),
      (err: Error) =>
        err instanceof ReplicaCalculationError &&
        /missing request for cpu in container c of Pod pod-0/.test(err.message),
    );
  });

  it('a pod still starting whose sample predates a whole window of readiness is unready', () => {
    const { pods, metrics } = fixture([{ level: 900 }, { level: 900 }]);
    // pod-1 became Ready 10 s ago: its 30 s sample covers time before that.
    pods[1]!.status!.conditions![0]!.lastTransitionTime = new Date(NOW - 10_000).toISOString();
    const r = resourceReplicas(2, 30, 'cpu', pods, metrics, opts);
    // Only pod-0 is ready: 90% of 30% is 3× on 1 ready pod, then the unready one at 0 gives 45%: ceil(1.5 × 2) = 3.
    assert.equal(r.replicas, 3);
  });

  it('AverageValue: the average usage against the target value', () => {
    const { pods, metrics } = fixture([{ level: 300 }, { level: 500 }, { level: 700 }]);
    assert.deepEqual(rawResourceReplicas(3, 250, 'cpu', pods, metrics, opts), { replicas: 6, usage: 500 });
    assert.deepEqual(rawResourceReplicas(3, 480, 'cpu', pods, metrics, opts), { replicas: 3, usage: 500 });
    const half = fixture([{ level: 100 }, { level: 100 }, {}]);
    // Scaling down, the missing pod counts as the target: (100 + 100 + 400) / 3 = 200 of 400: ceil(0.5 × 3) = 2.
    assert.equal(rawResourceReplicas(3, 400, 'cpu', half.pods, half.metrics, opts).replicas, 2);
  });
});
