import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Pod } from '../api/types/core-v1.ts';
import { FakeClock } from '../client/fake-clock.ts';
import type { ClusterEventWithHint, QueuedPodInfo } from './framework.ts';
import { prioritySort } from './plugins/basic.ts';
import { backoffDuration, MAX_UNSCHEDULABLE_MS, SchedulingQueue } from './queue.ts';

const pod = (name: string, priority = 0): Pod => ({
  metadata: { name, namespace: 'default', uid: name },
  spec: { priority, containers: [{ name: 'c', image: 'busybox' }] },
});

function setup(events: Record<string, ClusterEventWithHint[]> = {}) {
  const clock = new FakeClock();
  const q = new SchedulingQueue({
    less: prioritySort.less,
    eventsByPlugin: new Map(Object.entries(events)),
    clock,
  });
  return { clock, q };
}

/** Pops without waiting: the queue must already hold something. */
async function popNow(q: SchedulingQueue): Promise<QueuedPodInfo> {
  const item = await Promise.race([q.pop(), new Promise<undefined>((r) => setImmediate(() => r(undefined)))]);
  assert.ok(item, 'the active queue was empty');
  return item;
}

describe('scheduling queue', () => {
  it('pops higher priority first, then first come first served', async () => {
    const { clock, q } = setup();
    q.add(pod('low-1', 0));
    clock.advance(1);
    q.add(pod('high', 100));
    clock.advance(1);
    q.add(pod('low-2', 0));
    const order = [];
    for (let i = 0; i < 3; i++) order.push((await popNow(q)).info.pod.metadata.name);
    assert.deepEqual(order, ['high', 'low-1', 'low-2']);
  });

  it('backs off 1 s, doubling per attempt up to 10 s', () => {
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6].map((a) => backoffDuration(a)),
      [1000, 2000, 4000, 8000, 10_000, 10_000],
    );
  });

  it('keeps a rejected pod unschedulable until an event its rejecting plugin registered happens', async () => {
    const { clock, q } = setup({
      NodePorts: [{ event: { resource: 'AssignedPod', actions: ['Delete'] } }],
    });
    q.add(pod('p'));
    const item = await popNow(q);
    item.unschedulablePlugins = new Set(['NodePorts']);
    q.addUnschedulable(item, q.schedulingCycle);
    assert.deepEqual(q.stats(), { active: 0, backoff: 0, unschedulable: 1 });

    // A node being added does not help a pod refused for its host ports.
    assert.equal(q.moveOnEvent({ resource: 'Node', actions: ['Add'] }), 0);
    assert.equal(q.stats().unschedulable, 1);
    // A pod leaving a node does; it still waits out its backoff first.
    assert.equal(q.moveOnEvent({ resource: 'AssignedPod', actions: ['Delete'] }), 1);
    assert.deepEqual(q.stats(), { active: 0, backoff: 1, unschedulable: 0 });
    clock.advance(999);
    assert.deepEqual(q.stats(), { active: 0, backoff: 1, unschedulable: 0 });
    clock.advance(1);
    assert.deepEqual(q.stats(), { active: 1, backoff: 0, unschedulable: 0 });
    assert.equal((await popNow(q)).info.pod.metadata.name, 'p');
  });

  it('asks the hint: only events that may help move the pod', () => {
    const { q } = setup({
      NodeAffinity: [
        {
          event: { resource: 'Node', actions: ['Add'] },
          hint: (_pod, _old, node) =>
            (node as { metadata: { labels?: Record<string, string> } }).metadata.labels?.zone === 'a',
        },
      ],
    });
    q.add(pod('p'));
    return popNow(q).then((item) => {
      item.unschedulablePlugins = new Set(['NodeAffinity']);
      q.addUnschedulable(item, q.schedulingCycle);
      assert.equal(
        q.moveOnEvent({ resource: 'Node', actions: ['Add'] }, undefined, {
          metadata: { labels: { zone: 'b' } },
        }),
        0,
      );
      assert.equal(
        q.moveOnEvent({ resource: 'Node', actions: ['Add'] }, undefined, {
          metadata: { labels: { zone: 'a' } },
        }),
        1,
      );
    });
  });

  it('backs off instead of parking a pod when a helpful event came during its cycle', async () => {
    const { q } = setup({ NodeResourcesFit: [{ event: { resource: 'Node', actions: ['Add'] } }] });
    q.add(pod('p'));
    const cycle = q.schedulingCycle + 1;
    const item = await popNow(q);
    q.moveOnEvent({ resource: 'Node', actions: ['Add'] });
    item.unschedulablePlugins = new Set(['NodeResourcesFit']);
    q.addUnschedulable(item, cycle);
    assert.deepEqual(q.stats(), { active: 0, backoff: 1, unschedulable: 0 });
  });

  it('retries unschedulable pods after 5 minutes at the latest', async () => {
    const { clock, q } = setup();
    q.add(pod('p'));
    const item = await popNow(q);
    item.unschedulablePlugins = new Set(['TaintToleration']);
    q.addUnschedulable(item, q.schedulingCycle);
    clock.advance(MAX_UNSCHEDULABLE_MS - 1);
    q.flushUnschedulableLeftover();
    assert.equal(q.stats().unschedulable, 1);
    clock.advance(1);
    q.flushUnschedulableLeftover();
    assert.equal(q.stats().unschedulable, 0);
    assert.equal((await popNow(q)).info.pod.metadata.name, 'p');
  });

  it('retries an unschedulable pod at once when its spec changes, and forgets deleted pods', async () => {
    const { clock, q } = setup();
    q.add(pod('p'));
    const item = await popNow(q);
    item.unschedulablePlugins = new Set(['NodeAffinity']);
    q.addUnschedulable(item, q.schedulingCycle);
    clock.advance(5000);
    q.update({ ...pod('p'), spec: { ...pod('p').spec, nodeSelector: { disk: 'ssd' } } });
    const again = await popNow(q);
    assert.deepEqual(again.info.pod.spec?.nodeSelector, { disk: 'ssd' });
    q.addUnschedulable(again, q.schedulingCycle);
    q.delete(pod('p'));
    assert.deepEqual(q.stats(), { active: 0, backoff: 0, unschedulable: 0 });
  });
});
