import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { FakeClock } from '../client/fake-clock.ts';
import { createWorkQueue } from '../client/workqueue.ts';
import { parseExposition, sumOf } from './exposition.ts';
import { workQueueMetricsProvider } from './workqueue.ts';

describe('workqueue_* metrics', () => {
  it('count adds and retries, time waits and work, and report depth and work in progress', async () => {
    const registry = new Registry();
    const clock = new FakeClock();
    const provider = workQueueMetricsProvider(registry);
    const q = createWorkQueue<string>({ name: 'deployment', clock, metrics: provider('deployment') });
    const scrape = async () => parseExposition(await registry.metrics());
    const name = { name: 'deployment' };

    let s = await scrape();
    assert.equal(sumOf(s, 'workqueue_adds_total', name), 0);
    assert.equal(sumOf(s, 'workqueue_retries_total', name), 0);
    for (const histogram of ['workqueue_queue_duration_seconds', 'workqueue_work_duration_seconds'])
      assert.equal(
        s.filter((x) => x.name === `${histogram}_bucket` && x.labels.name === 'deployment').length,
        11,
      );

    q.add('a');
    q.add('a'); // already waiting: not an add
    q.add('b');
    clock.advance(2000);
    s = await scrape();
    assert.equal(sumOf(s, 'workqueue_adds_total', name), 2);
    assert.equal(sumOf(s, 'workqueue_depth', name), 2);

    const item = await q.get();
    assert.ok(!item.shutdown && item.key === 'a');
    clock.advance(3000);
    s = await scrape();
    assert.equal(sumOf(s, 'workqueue_depth', name), 1);
    assert.equal(sumOf(s, 'workqueue_queue_duration_seconds_count', name), 1);
    assert.equal(sumOf(s, 'workqueue_queue_duration_seconds_sum', name), 2);
    assert.equal(sumOf(s, 'workqueue_unfinished_work_seconds', name), 3);
    assert.equal(sumOf(s, 'workqueue_longest_running_processor_seconds', name), 3);

    q.addRateLimited('a');
    q.done('a');
    s = await scrape();
    assert.equal(sumOf(s, 'workqueue_retries_total', name), 1);
    assert.equal(sumOf(s, 'workqueue_work_duration_seconds_count', name), 1);
    assert.equal(sumOf(s, 'workqueue_work_duration_seconds_sum', name), 3);
    assert.equal(sumOf(s, 'workqueue_unfinished_work_seconds', name), 0);
    // Upstream's buckets: 10 ns to 10 s by tens.
    assert.equal(s.filter((x) => x.name === 'workqueue_work_duration_seconds_bucket').length, 11);
    q.shutDown();
  });
});
