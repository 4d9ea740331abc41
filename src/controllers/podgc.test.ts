import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { isApiError } from '../api/errors.ts';
import type { Pod } from '../api/types/core-v1.ts';
import { newPodGCController } from './podgc.ts';
import { type ControllerTest, startControllerTest } from './testing.ts';

let t: ControllerTest;
before(async () => {
  t = await startControllerTest(
    { podgc: newPodGCController({ gcCheckPeriodMs: 100, quarantineMs: 1_000 }) },
    { options: { terminatedPodGCThreshold: 2 } },
  );
});
after(() => t.close());

const pod = (name: string, extra: Partial<NonNullable<Pod['spec']>> = {}, finalizers?: string[]): Pod => ({
  metadata: { name, ...(finalizers ? { finalizers } : {}) },
  spec: { containers: [{ name: 'c', image: 'busybox' }], ...extra },
});

const getPod = (name: string) =>
  t.clients.pods.get('default', name).catch((err) => {
    if (isApiError(err, 'NotFound')) return undefined;
    throw err;
  });

const setStatus = (name: string, status: Record<string, unknown>) =>
  t.clients.pods.patch('default', name, 'merge', { status }, { subresource: 'status' });

describe('pod GC', () => {
  it('deletes terminated pods over the threshold, evicted first, then oldest', async () => {
    for (const name of ['done-1', 'done-2', 'done-3', 'done-4'])
      await t.clients.pods.create('default', pod(name));
    await setStatus('done-1', { phase: 'Succeeded' });
    await setStatus('done-2', { phase: 'Failed' });
    await setStatus('done-3', { phase: 'Succeeded' });
    await setStatus('done-4', { phase: 'Failed', reason: 'Evicted' });
    await t.until('two terminated pods left', async () => {
      const left = (await t.clients.pods.list('default')).items.filter((p) =>
        p.metadata.name?.startsWith('done-'),
      );
      return left.length === 2 ? left : undefined;
    });
    assert.equal(await getPod('done-4'), undefined, 'the evicted pod goes first');
    assert.equal(await getPod('done-1'), undefined, 'then the oldest');
    assert.ok(await getPod('done-2'));
    assert.ok(await getPod('done-3'));
    // A running pod is never counted.
    await t.clients.pods.create('default', pod('running'));
    await setStatus('running', { phase: 'Running' });
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(await getPod('running'));
  });

  it('deletes pods of a node that no longer exists after the quarantine, marked Failed and DisruptionTarget', async () => {
    // The finalizer keeps the pod visible after its forced deletion.
    await t.clients.pods.create('default', pod('orphan', { nodeName: 'ghost' }, ['example.com/hold']));
    await setStatus('orphan', { phase: 'Running' });
    const started = Date.now();
    const gone = await t.until('orphan deleted', async () => {
      const p = await getPod('orphan');
      return p?.metadata.deletionTimestamp ? p : undefined;
    });
    assert.ok(Date.now() - started >= 900, 'not before the quarantine ends');
    assert.equal(gone.status?.phase, 'Failed');
    const c = gone.status?.conditions?.find((x) => x.type === 'DisruptionTarget');
    assert.equal(c?.status, 'True');
    assert.equal(c?.reason, 'DeletionByPodGC');
    assert.equal(c?.message, 'PodGC: node no longer exists');
    assert.equal(gone.metadata.deletionGracePeriodSeconds, 0);
    await t.clients.pods.patch('default', 'orphan', 'merge', { metadata: { finalizers: null } });
  });

  it('keeps pods of a node that turns up during the quarantine', async () => {
    await t.clients.pods.create('default', pod('early', { nodeName: 'late' }));
    await new Promise((r) => setTimeout(r, 300));
    await t.clients.nodes.create(undefined, { metadata: { name: 'late' } });
    await new Promise((r) => setTimeout(r, 1_500));
    const p = await getPod('early');
    assert.ok(p && !p.metadata.deletionTimestamp);
  });

  it('force deletes terminating pods on an out-of-service node that is not Ready', async () => {
    const node = await t.clients.nodes.create(undefined, {
      metadata: { name: 'dead' },
      spec: {
        taints: [{ key: 'node.kubernetes.io/out-of-service', value: 'nodeshutdown', effect: 'NoExecute' }],
      },
    });
    await t.clients.nodes.updateStatus({
      ...node,
      status: { conditions: [{ type: 'Ready', status: 'False' }] },
    });
    await t.clients.pods.create('default', pod('stuck', { nodeName: 'dead' }));
    await t.clients.pods.delete('default', 'stuck');
    await t.until('stuck gone', async () => (await getPod('stuck')) === undefined);
  });

  it('force deletes unscheduled pods that are terminating', async () => {
    await t.clients.pods.create('default', pod('never-scheduled', {}, ['example.com/hold']));
    await t.clients.pods.delete('default', 'never-scheduled');
    const p = await t.until('marked Failed', async () => {
      const p = await getPod('never-scheduled');
      return p?.status?.phase === 'Failed' ? p : undefined;
    });
    assert.ok(p.metadata.deletionTimestamp);
    await t.clients.pods.patch('default', 'never-scheduled', 'merge', { metadata: { finalizers: null } });
  });
});
