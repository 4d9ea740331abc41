// Preemption through the real API server: a pod that fits nowhere evicts
// lower-priority pods, waits nominated on their node while they terminate
// (no other pod takes the room), and is bound there once they are gone.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Pod } from '../api/types/core-v1.ts';
import { makeNode, makePod, type SchedulerTest, startSchedulerTest } from './testing.ts';

describe('scheduler preemption', () => {
  let t: SchedulerTest;
  before(async () => {
    t = await startSchedulerTest();
    for (const [name, value, preemptionPolicy] of [
      ['low', 10, 'PreemptLowerPriority'],
      ['high', 1000, 'PreemptLowerPriority'],
      ['high-never', 1000, 'Never'],
    ] as const) {
      await t.clients.priorityClasses.create(undefined, {
        apiVersion: 'scheduling.k8s.io/v1',
        kind: 'PriorityClass',
        metadata: { name },
        value,
        preemptionPolicy,
      });
    }
  });
  after(() => t.close());

  const get = (name: string) => t.clients.pods.get('default', name);
  const cpuPod = (name: string, priorityClassName: string, cpu: string, nodeName?: string): Pod =>
    makePod(name, {
      priorityClassName,
      ...(nodeName ? { nodeName } : {}),
      containers: [{ name: 'c', image: 'busybox', resources: { requests: { cpu } } }],
    });
  const condition = (p: Pod, type: string) => p.status?.conditions?.find((c) => c.type === type);
  const events = async (name: string, reason: string) =>
    (await t.clients.events.list('default')).items.filter(
      (e) => e.reason === reason && e.involvedObject?.name === name,
    );

  it('a high-priority pod preempts a low one and ends up bound to that node', async () => {
    await t.clients.nodes.create(undefined, makeNode('n1', { cpu: '2' }));
    await t.clients.nodes.create(undefined, makeNode('n2', { cpu: '2' }));
    // n1 runs a low-priority pod; n2 one as important as the newcomer, which
    // is therefore no victim. Both are bound already (as by a kubelet) and
    // terminate gracefully, as running pods do.
    await t.clients.pods.create('default', cpuPod('low-a', 'low', '2', 'n1'));
    await t.clients.pods.create('default', cpuPod('peer', 'high', '2', 'n2'));
    const preemptor = await t.clients.pods.create('default', cpuPod('preemptor', 'high', '2'));

    const nominated = await t.until(
      'the preemptor nominated to n1',
      async () => (await get('preemptor')).status?.nominatedNodeName,
    );
    assert.equal(nominated, 'n1');
    const victim = await get('low-a');
    assert.ok(victim.metadata.deletionTimestamp, 'the victim is being deleted');
    const target = condition(victim, 'DisruptionTarget');
    assert.equal(target?.status, 'True');
    assert.equal(target?.reason, 'PreemptionByScheduler');
    assert.equal(target?.message, 'default-scheduler: preempting to accommodate a higher priority pod');
    const preempted = await t.until(
      'the Preempted event',
      async () => (await events('low-a', 'Preempted'))[0],
    );
    assert.equal(preempted.message, `Preempted by pod ${preemptor.metadata.uid} on node n1`);
    assert.ok(await get('peer'), 'the pod of equal priority stays');

    // While the victim terminates, a low-priority pod arrives: the room on n1
    // is the preemptor's, and it cannot preempt anyone itself.
    await t.clients.pods.create('default', cpuPod('low-b', 'low', '2'));
    const lowB = await t.until('low-b unschedulable', async () => {
      const c = condition(await get('low-b'), 'PodScheduled');
      return c?.status === 'False' ? c : undefined;
    });
    assert.equal(
      lowB.message,
      '0/2 nodes are available: 2 Insufficient cpu. preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod..',
    );
    // A node too small for anyone joins, so both pending pods are retried;
    // the preemptor does not preempt again while its victim terminates.
    await t.clients.nodes.create(undefined, makeNode('tiny', { cpu: '500m' }));
    const waiting = await t.until('the preemptor told it waits', async () => {
      const c = condition(await get('preemptor'), 'PodScheduled');
      return c?.message?.includes('not eligible') ? c : undefined;
    });
    assert.equal(
      waiting.message,
      '0/3 nodes are available: 3 Insufficient cpu. preemption: not eligible due to a terminating pod on the nominated node..',
    );

    // The kubelet finishes the victim off.
    await t.clients.pods.delete('default', 'low-a', { gracePeriodSeconds: 0 });
    const bound = await t.until(
      'the preemptor bound',
      async () => (await get('preemptor')).spec?.nodeName,
      20_000,
    );
    assert.equal(bound, 'n1');
    // Give low-b every chance to have been scheduled wrongly.
    await t.until(
      'low-b retried after the deletion',
      async () => (await events('low-b', 'FailedScheduling'))[0],
    );
    assert.equal((await get('low-b')).spec?.nodeName, undefined, 'low-b is still Pending');
    await t.clients.pods.delete('default', 'low-b', { gracePeriodSeconds: 0 });
  });

  it('a pod whose PriorityClass says preemptionPolicy Never waits instead of preempting', async () => {
    await t.clients.nodes.create(undefined, makeNode('n3', { cpu: '1' }));
    await t.clients.pods.create('default', cpuPod('low-c', 'low', '1', 'n3'));
    await t.clients.pods.create('default', cpuPod('polite', 'high-never', '4'));
    const c = await t.until('polite unschedulable', async () => {
      const cond = condition(await get('polite'), 'PodScheduled');
      return cond?.status === 'False' ? cond : undefined;
    });
    assert.equal(
      c.message,
      '0/4 nodes are available: 4 Insufficient cpu. preemption: not eligible due to preemptionPolicy=Never..',
    );
    assert.equal((await get('low-c')).metadata.deletionTimestamp, undefined);
  });

  it('evicts no one when preemption cannot make the pod fit', async () => {
    await t.clients.pods.create('default', cpuPod('huge', 'high', '64'));
    const c = await t.until('huge unschedulable', async () => {
      const cond = condition(await get('huge'), 'PodScheduled');
      return cond?.status === 'False' ? cond : undefined;
    });
    // Only n3 has a lower-priority pod, and even without it 64 cpus do not fit.
    assert.equal(
      c.message,
      '0/4 nodes are available: 4 Insufficient cpu. preemption: 0/4 nodes are available: 1 Insufficient cpu, 3 No preemption victims found for incoming pod..',
    );
    assert.equal((await get('low-c')).metadata.deletionTimestamp, undefined);
  });
});
