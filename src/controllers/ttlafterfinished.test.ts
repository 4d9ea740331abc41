import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { isApiError } from '../api/errors.ts';
import { rfc3339 } from '../api/meta.ts';
import type { Job } from '../api/types/batch-v1.ts';
import { type ControllerTest, startControllerTest } from './testing.ts';
import { ttlAfterFinishedController } from './ttlafterfinished.ts';

let nowMs = Date.now();
let t: ControllerTest;
before(async () => {
  t = await startControllerTest(
    { 'ttl-after-finished': ttlAfterFinishedController },
    { now: () => new Date(nowMs) },
  );
});
after(() => t.close());

const ns = 'default';
const job = (name: string, ttl?: number): Job => ({
  metadata: { name },
  spec: {
    ...(ttl === undefined ? {} : { ttlSecondsAfterFinished: ttl }),
    template: {
      metadata: {},
      spec: { restartPolicy: 'Never', containers: [{ name: 'c', image: 'busybox' }] },
    },
  },
});
// Plays the Job controller: the Job completes at the controller's "now".
const complete = (name: string) =>
  t.clients.jobs.patch(
    ns,
    name,
    'merge',
    {
      status: {
        startTime: rfc3339(new Date(nowMs - 1000)),
        completionTime: rfc3339(new Date(nowMs)),
        succeeded: 1,
        conditions: [
          { type: 'SuccessCriteriaMet', status: 'True', lastTransitionTime: rfc3339(new Date(nowMs)) },
          { type: 'Complete', status: 'True', lastTransitionTime: rfc3339(new Date(nowMs)) },
        ],
      },
    },
    { subresource: 'status' },
  );
const poke = (name: string) =>
  t.clients.jobs.patch(ns, name, 'merge', { metadata: { annotations: { poke: String(Math.random()) } } });
const getJob = (name: string) =>
  t.clients.jobs.get(ns, name).catch((err) => {
    if (isApiError(err, 'NotFound')) return undefined;
    throw err;
  });

describe('ttl-after-finished controller', () => {
  it('deletes a finished Job ttlSecondsAfterFinished after it finished, in the foreground', async () => {
    const created = await t.clients.jobs.create(ns, job('short', 60));
    await t.clients.jobs.create(ns, job('keep'));
    await complete('short');
    await complete('keep');
    nowMs += 30_000;
    await poke('short');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await getJob('short'))?.metadata.deletionTimestamp, undefined);

    nowMs += 31_000;
    await poke('short');
    // Foreground: without a garbage collector running here, the Job stays
    // with a deletionTimestamp and the foregroundDeletion finalizer.
    const deleting = await t.until('short being deleted', async () => {
      const j = await getJob('short');
      return !j || j.metadata.deletionTimestamp ? (j ?? created) : undefined;
    });
    if (deleting !== created) assert.ok(deleting.metadata.finalizers?.includes('foregroundDeletion'));
    // Without a TTL a finished Job stays.
    assert.equal((await getJob('keep'))?.metadata.deletionTimestamp, undefined);
  });

  it('does not delete a running Job with a TTL', async () => {
    await t.clients.jobs.create(ns, job('running', 0));
    nowMs += 10_000;
    await poke('running');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await getJob('running'))?.metadata.deletionTimestamp, undefined);
    await complete('running');
    await t.until('running deleted once finished', async () => {
      const j = await getJob('running');
      return !j || !!j.metadata.deletionTimestamp;
    });
  });
});
