import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MetricsStorage, parseResourceMetrics } from './metrics-server.ts';

/** A kubelet's /metrics/resource at time t (ms): node and container counters in core-seconds. */
const exposition = (t: number, nodeCpu: number, containers: [string, string, number, number][]) =>
  [
    `node_cpu_usage_seconds_total ${nodeCpu} ${t}`,
    `node_memory_working_set_bytes 1073741824 ${t}`,
    ...containers.flatMap(([pod, c, cpu, start]) => [
      `container_cpu_usage_seconds_total{container="${c}",namespace="shop",pod="${pod}"} ${cpu} ${t}`,
      `container_memory_working_set_bytes{container="${c}",namespace="shop",pod="${pod}"} 2097152 ${t}`,
      `container_start_time_seconds{container="${c}",namespace="shop",pod="${pod}"} ${start}`,
    ]),
  ].join('\n');

const labels = {
  node: () => ({ role: 'worker' }),
  pod: (_ns: string, name: string) => (name === 'gone' ? undefined : { app: name }),
};

describe('metrics-server storage', () => {
  it('answers with rates between two samples, in metrics-server quantities, and no pod until all its containers have two', () => {
    const storage = new MetricsStorage(() => Date.parse('2026-12-01T10:00:20Z'));
    const t0 = Date.parse('2026-12-01T10:00:00Z');
    storage.store(
      'n1',
      parseResourceMetrics(
        exposition(t0, 100, [
          ['web', 'app', 10, 1],
          ['web', 'side', 1, 1],
          ['gone', 'x', 1, 1],
        ]),
        t0,
      ),
    );
    assert.deepEqual(storage.nodeMetrics(labels), [], 'one sample is no rate');
    assert.deepEqual(storage.podMetrics(labels), []);
    const t1 = t0 + 15_000;
    storage.store(
      'n1',
      parseResourceMetrics(
        exposition(t1, 130, [
          ['web', 'app', 13, 1],
          ['web', 'side', 1.15, 1],
          ['new', 'c', 5, 2],
          ['gone', 'x', 2, 1],
        ]),
        t1,
      ),
    );
    const [node] = storage.nodeMetrics(labels);
    assert.deepEqual(node, {
      kind: 'NodeMetrics',
      apiVersion: 'metrics.k8s.io/v1beta1',
      metadata: { name: 'n1', creationTimestamp: '2026-12-01T10:00:20Z', labels: { role: 'worker' } },
      timestamp: '2026-12-01T10:00:15Z',
      window: '15s',
      usage: { cpu: '2', memory: '1Gi' },
    });
    // web: 3 core-seconds over 15 s = 200m, 0.15 / 15 = 10m. "new" has one sample; "gone" no longer exists.
    const pods = storage.podMetrics(labels, 'shop');
    assert.deepEqual(
      pods.map((p) => p.metadata.name),
      ['web'],
    );
    assert.deepEqual(pods[0]!.containers, [
      { name: 'app', usage: { cpu: '200m', memory: '2Mi' } },
      { name: 'side', usage: { cpu: '10m', memory: '2Mi' } },
    ]);
    assert.deepEqual(pods[0]!.metadata.labels, { app: 'web' });
    assert.deepEqual(storage.podMetrics(labels, 'other'), []);
  });

  it('gives a restarted container no rate until it has two samples of its new life', () => {
    const storage = new MetricsStorage();
    storage.store('n1', parseResourceMetrics(exposition(1000, 1, [['web', 'app', 50, 1]]), 0));
    storage.store('n1', parseResourceMetrics(exposition(16_000, 2, [['web', 'app', 0.5, 9]]), 0));
    assert.deepEqual(storage.podMetrics(labels), []);
    storage.store('n1', parseResourceMetrics(exposition(31_000, 3, [['web', 'app', 2, 9]]), 0));
    assert.deepEqual(storage.podMetrics(labels)[0]!.containers, [
      { name: 'app', usage: { cpu: '100m', memory: '2Mi' } },
    ]);
  });

  it('forgets nodes that are gone', () => {
    const storage = new MetricsStorage();
    storage.store('n1', parseResourceMetrics(exposition(1000, 1, []), 0));
    storage.store('n1', parseResourceMetrics(exposition(2000, 2, []), 0));
    assert.equal(storage.nodeMetrics(labels).length, 1);
    storage.retain(new Set());
    assert.equal(storage.nodeMetrics(labels).length, 0);
  });
});
