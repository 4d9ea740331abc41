// The scheduler through the real API server: binding, FailedScheduling
// wording, requeue on cluster events, multiple schedulers.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Pod } from '../api/types/core-v1.ts';
import { numFeasibleNodesToFind } from './scheduler.ts';
import { makeNode, makePod, type SchedulerTest, startSchedulerTest } from './testing.ts';

describe('numFeasibleNodesToFind (percentageOfNodesToScore)', () => {
  it('scores every node below 100 nodes, then an adaptive share floored at 5% and 100 nodes', () => {
    assert.equal(numFeasibleNodesToFind(50), 50);
    assert.equal(numFeasibleNodesToFind(99), 99);
    assert.equal(numFeasibleNodesToFind(100), 100, '50% of 100 is 50, floored to 100');
    assert.equal(numFeasibleNodesToFind(500), 230, '50 - 500/125 = 46%');
    assert.equal(numFeasibleNodesToFind(5000), 500, '50 - 40 = 10%');
    assert.equal(numFeasibleNodesToFind(6000), 300, '50 - 48 = 2%, floored at 5%');
    assert.equal(numFeasibleNodesToFind(1000, 30), 300, 'an explicit percentage');
    assert.equal(numFeasibleNodesToFind(200, 10), 100, 'never fewer than 100');
  });
});

describe('scheduler', () => {
  let t: SchedulerTest;
  before(async () => {
    t = await startSchedulerTest();
  });
  after(() => t.close());

  const get = (name: string) => t.clients.pods.get('default', name);
  const scheduledCondition = (p: Pod) => p.status?.conditions?.find((c) => c.type === 'PodScheduled');

  it('binds a pod to a node that fits and records Scheduled', async () => {
    await t.clients.nodes.create(undefined, makeNode('small', { cpu: '1' }));
    await t.clients.nodes.create(undefined, makeNode('big', { cpu: '8' }));
    await t.clients.pods.create(
      'default',
      makePod('needs-2-cpus', {
        containers: [{ name: 'c', image: 'busybox', resources: { requests: { cpu: '2' } } }],
      }),
    );
    const pod = await t.until('the pod bound', async () => (await get('needs-2-cpus')).spec?.nodeName);
    assert.equal(pod, 'big');
    const events = await t.until('the Scheduled event', async () =>
      (await t.clients.events.list('default')).items.find(
        (e) => e.reason === 'Scheduled' && e.involvedObject?.name === 'needs-2-cpus',
      ),
    );
    assert.equal(events.message, 'Successfully assigned default/needs-2-cpus to big');
  });

  it('leaves a pod that fits nowhere Pending, says why like upstream, and places it when a node joins', async () => {
    await t.clients.pods.create(
      'default',
      makePod('needs-16-cpus', {
        containers: [{ name: 'c', image: 'busybox', resources: { requests: { cpu: '16' } } }],
      }),
    );
    const cond = await t.until('PodScheduled=False', async () => {
      const c = scheduledCondition(await get('needs-16-cpus'));
      return c?.status === 'False' ? c : undefined;
    });
    assert.equal(cond.reason, 'Unschedulable');
    // Upstream's wording, down to the double period its preemption message ends with.
    assert.equal(
      cond.message,
      '0/2 nodes are available: 2 Insufficient cpu. preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod..',
    );
    const event = await t.until('FailedScheduling', async () =>
      (await t.clients.events.list('default')).items.find(
        (e) => e.reason === 'FailedScheduling' && e.involvedObject?.name === 'needs-16-cpus',
      ),
    );
    assert.equal(event.type, 'Warning');
    // A node that fits arrives: the NodeAdd event requeues the pod.
    await t.clients.nodes.create(undefined, makeNode('huge', { cpu: '32' }));
    const node = await t.until(
      'bound after the node joined',
      async () => (await get('needs-16-cpus')).spec?.nodeName,
    );
    assert.equal(node, 'huge');
  });

  it('ignores pods for other schedulers', async () => {
    await t.clients.pods.create('default', makePod('not-mine', { schedulerName: 'my-scheduler' }));
    await t.clients.pods.create('default', makePod('mine'));
    await t.until('mine bound', async () => (await get('mine')).spec?.nodeName);
    const other = await get('not-mine');
    assert.equal(other.spec?.nodeName, undefined);
    assert.equal(scheduledCondition(other), undefined);
  });

  it('does not place pods on a cordoned node', async () => {
    for (const n of ['small', 'big', 'huge']) {
      await t.clients.nodes.patch(undefined, n, 'merge', { spec: { unschedulable: n !== 'small' } });
    }
    await t.clients.pods.create('default', makePod('while-cordoned'));
    assert.equal(await t.until('bound', async () => (await get('while-cordoned')).spec?.nodeName), 'small');
    for (const n of ['big', 'huge'])
      await t.clients.nodes.patch(undefined, n, 'merge', { spec: { unschedulable: false } });
  });
});

describe('the guestbook hostPort scenario', () => {
  let t: SchedulerTest;
  before(async () => {
    t = await startSchedulerTest();
  });
  after(() => t.close());

  it('three replicas with one hostPort on two nodes leave exactly one Pending, until a third node joins', async () => {
    await t.clients.nodes.create(undefined, makeNode('node-1'));
    await t.clients.nodes.create(undefined, makeNode('node-2'));
    const frontend = (i: number) =>
      makePod(`frontend-${i}`, {
        containers: [{ name: 'php-redis', image: 'busybox', ports: [{ containerPort: 80, hostPort: 80 }] }],
      });
    for (let i = 0; i < 3; i++) await t.clients.pods.create('default', frontend(i));
    const pending = await t.until('two bound, one refused', async () => {
      const items = (await t.clients.pods.list('default')).items;
      const bound = items.filter((p) => p.spec?.nodeName);
      const refused = items.filter(
        (p) => p.status?.conditions?.find((c) => c.type === 'PodScheduled')?.status === 'False',
      );
      return bound.length === 2 && refused.length === 1 ? refused[0] : undefined;
    });
    const bound = (await t.clients.pods.list('default')).items.filter((p) => p.spec?.nodeName);
    assert.deepEqual(bound.map((p) => p.spec?.nodeName).sort(), ['node-1', 'node-2']);
    const cond = pending.status?.conditions?.find((c) => c.type === 'PodScheduled');
    assert.equal(
      cond?.message,
      "0/2 nodes are available: 2 node(s) didn't have free ports for the requested pod ports. preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod..",
    );

    await t.clients.nodes.create(undefined, makeNode('node-3'));
    const node = await t.until(
      'the pending pod placed on the new node',
      async () => (await t.clients.pods.get('default', pending.metadata.name ?? '')).spec?.nodeName,
    );
    assert.equal(node, 'node-3');
  });
});

describe('a cluster without nodes', () => {
  let t: SchedulerTest;
  before(async () => {
    t = await startSchedulerTest();
  });
  after(() => t.close());

  it('says no nodes are available, and schedules the pod once a node registers', async () => {
    await t.clients.pods.create('default', makePod('early'));
    const cond = await t.until('PodScheduled=False', async () =>
      (await t.clients.pods.get('default', 'early')).status?.conditions?.find(
        (c) => c.type === 'PodScheduled',
      ),
    );
    assert.equal(cond.reason, 'Unschedulable');
    assert.equal(cond.message, 'no nodes available to schedule pods');
    await t.clients.nodes.create(undefined, makeNode('first'));
    assert.equal(
      await t.until('bound', async () => (await t.clients.pods.get('default', 'early')).spec?.nodeName),
      'first',
    );
  });
});
