import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KUBERNETES_CONTAINER_NAME_LABEL, KUBERNETES_POD_UID_LABEL } from '../kubelet/labels.ts';
import { HollowRuntime } from '../kubelet/runtime/hollow/hollow.ts';
import { findSamples, parseExposition } from './exposition.ts';
import { parseResourceMetrics } from './metrics-server.ts';
import { createStatsProvider, hollowNodeStats } from './summary.ts';

/** A hollow node with one pod of two running containers, on a clock the test moves. */
async function node() {
  let t = Date.parse('2026-12-01T10:00:00Z');
  const now = () => new Date(t);
  const runtime = new HollowRuntime({ now });
  const metadata = { name: 'web', namespace: 'shop', uid: 'uid-1', attempt: 0 };
  const labels = {
    'io.kubernetes.pod.name': 'web',
    'io.kubernetes.pod.namespace': 'shop',
    [KUBERNETES_POD_UID_LABEL]: 'uid-1',
    app: 'web',
  };
  const sandbox = await runtime.runPodSandbox({ metadata, labels });
  for (const name of ['app', 'sidecar']) {
    const id = await runtime.createContainer(sandbox, {
      metadata: { name, attempt: 0 },
      image: { image: 'busybox' },
      labels: { ...labels, [KUBERNETES_CONTAINER_NAME_LABEL]: name },
      // app is capped at 20 millicores (cpuQuota / cpuPeriod).
      ...(name === 'app' ? { linux: { resources: { cpuQuota: 2000, cpuPeriod: 100000 } } } : {}),
    });
    await runtime.startContainer(id);
  }
  const stats = createStatsProvider({ runtime, nodeName: 'hollow-0', node: hollowNodeStats(() => t) });
  return { stats, advance: (ms: number) => (t += ms), now: () => t };
}

describe('kubelet stats (Summary API and /metrics/resource)', () => {
  it('reports the node, the pod and each container, with CPU rates from successive samples', async () => {
    const { stats, advance } = await node();
    advance(10_000);
    const first = await stats.summary();
    assert.equal(first.node.nodeName, 'hollow-0');
    assert.equal(first.pods.length, 1);
    const pod = first.pods[0]!;
    assert.deepEqual(pod.podRef, { name: 'web', namespace: 'shop', uid: 'uid-1' });
    assert.deepEqual(
      pod.containers.map((c) => c.name),
      ['app', 'sidecar'],
    );
    const app = pod.containers[0]!;
    // A steady rate of at most the 20 millicore cap, running for 10 s.
    const rate = app.cpu!.usageNanoCores!;
    assert.ok(rate > 0 && rate <= 20_000_000, String(rate));
    assert.equal(app.cpu?.usageCoreNanoSeconds, rate * 10);
    assert.ok((app.memory?.workingSetBytes ?? 0) >= 4 * 1024 * 1024);
    // The pod is its containers' sum; the node is its pods' plus its own daemons.
    const sum = pod.containers.reduce((n, c) => n + (c.cpu?.usageCoreNanoSeconds ?? 0), 0);
    assert.equal(pod.cpu?.usageCoreNanoSeconds, sum);
    assert.ok((first.node.cpu?.usageCoreNanoSeconds ?? 0) > sum);
    assert.equal(first.node.cpu?.usageNanoCores, undefined, 'no rate before a second sample');
    advance(5_000);
    const second = await stats.summary();
    // 100 millicores of daemons plus the pods' steady rates.
    const podRate = second.pods[0]!.cpu!.usageNanoCores!;
    assert.equal(second.node.cpu?.usageNanoCores, podRate + 100_000_000);
  });

  it("writes /metrics/resource in upstream names with the samples' own timestamps, as metrics-server reads them", async () => {
    const { stats, advance, now } = await node();
    advance(3_000);
    const text = await stats.resourceMetrics();
    assert.match(text, /# TYPE container_cpu_usage_seconds_total counter/);
    const samples = parseExposition(text);
    const cpu = findSamples(samples, 'container_cpu_usage_seconds_total', {
      namespace: 'shop',
      pod: 'web',
      container: 'app',
    });
    assert.equal(cpu.length, 1);
    assert.ok(cpu[0]!.value > 0 && cpu[0]!.value <= 0.06, String(cpu[0]!.value));
    assert.equal(
      findSamples(samples, 'pod_memory_working_set_bytes', { namespace: 'shop', pod: 'web' }).length,
      1,
    );
    assert.equal(findSamples(samples, 'node_cpu_usage_seconds_total').length, 1);
    const scrape = parseResourceMetrics(text, 0);
    assert.equal(scrape.cpu?.t, now(), 'the node sample carries its own time, to the millisecond');
    assert.equal(scrape.pods.get('shop/web')?.get('app')?.cpu?.v, cpu[0]!.value);
  });
});
