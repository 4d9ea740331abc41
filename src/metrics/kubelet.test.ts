import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { HollowRuntime } from '../kubelet/runtime/hollow/hollow.ts';
import { findSamples, parseExposition, sumOf } from './exposition.ts';
import { kubeletMetrics } from './kubelet.ts';

describe('kubelet metrics', () => {
  it('count running pods and containers in the runtime, and time a pod from first seen to started', async () => {
    const registry = new Registry();
    const runtime = new HollowRuntime();
    let t = 0;
    const trace = kubeletMetrics(registry, runtime, () => t);
    const scrape = async () => parseExposition(await registry.metrics());
    assert.equal(sumOf(await scrape(), 'kubelet_running_pods'), 0);

    trace('uid-1', 'seen');
    t = 1500;
    trace('uid-1', 'seen'); // seen again (an update): the first time counts
    const sandbox = await runtime.runPodSandbox({
      metadata: { name: 'web', namespace: 'default', uid: 'uid-1', attempt: 0 },
    });
    const id = await runtime.createContainer(sandbox, {
      metadata: { name: 'app', attempt: 0 },
      image: { image: 'busybox' },
    });
    await runtime.startContainer(id);
    trace('uid-1', 'statusWritten'); // a status write before any container started is not the start
    t = 2500;
    trace('uid-1', 'containerStarted');
    t = 3000;
    trace('uid-1', 'statusWritten');
    t = 9000;
    trace('uid-1', 'statusWritten'); // later syncs are not starts

    const s = await scrape();
    assert.equal(sumOf(s, 'kubelet_running_pods'), 1);
    assert.equal(sumOf(s, 'kubelet_running_containers', { container_state: 'running' }), 1);
    assert.equal(sumOf(s, 'kubelet_pod_start_duration_seconds_count'), 1);
    assert.equal(sumOf(s, 'kubelet_pod_start_duration_seconds_sum'), 3);
    assert.equal(sumOf(s, 'kubelet_pod_start_duration_seconds_bucket', { le: '2' }), 0);
    assert.equal(sumOf(s, 'kubelet_pod_start_duration_seconds_bucket', { le: '3' }), 1);
    assert.equal(findSamples(s, 'kubelet_pod_start_duration_seconds_bucket').length, 26);
    await runtime.close();
  });
});
