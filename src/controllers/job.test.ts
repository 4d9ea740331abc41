import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { rfc3339 } from '../api/meta.ts';
import type { Job } from '../api/types/batch-v1.ts';
import type { Pod } from '../api/types/core-v1.ts';
import { JOB_COMPLETION_INDEX_ANNOTATION, JOB_TRACKING_FINALIZER, jobController } from './job.ts';
import { type ControllerTest, startControllerTest } from './testing.ts';

// Wall time the controller sees; tests move it forward for backoff and deadlines.
let nowMs = Date.now();
let t: ControllerTest;
before(async () => {
  t = await startControllerTest({ job: jobController }, { now: () => new Date(nowMs) });
});
after(() => t.close());

const ns = 'default';
const jobSpec = (name: string, spec: Job['spec']): Job => ({
  metadata: { name },
  spec: {
    ...spec,
    template: {
      metadata: { labels: { app: name } },
      spec: { restartPolicy: 'Never', containers: [{ name: 'c', image: 'busybox' }] },
    },
  },
});
const podsOf = async (job: Job) =>
  (await t.clients.pods.list(ns, { labelSelector: `batch.kubernetes.io/controller-uid=${job.metadata.uid}` }))
    .items;
const getJob = (name: string) => t.clients.jobs.get(ns, name);
const condition = (job: Job, type: string) => job.status?.conditions?.find((c) => c.type === type);

// Plays the kubelet: a pod ends in phase, turning not-ready at the controller's "now".
const finish = (pod: Pod, phase: 'Succeeded' | 'Failed') =>
  t.clients.pods.patch(
    ns,
    pod.metadata.name ?? '',
    'merge',
    {
      status: {
        phase,
        conditions: [{ type: 'Ready', status: 'False', lastTransitionTime: rfc3339(new Date(nowMs)) }],
      },
    },
    { subresource: 'status' },
  );
// Any change to the Job makes the controller sync it again (level-triggered).
const poke = (name: string) =>
  t.clients.jobs.patch(ns, name, 'merge', { metadata: { annotations: { poke: String(Math.random()) } } });
const active = (pods: Pod[]) =>
  pods.filter(
    (p) => !p.metadata.deletionTimestamp && !['Succeeded', 'Failed'].includes(p.status?.phase ?? ''),
  );

describe('job controller', () => {
  it('runs NonIndexed pods to completions with parallelism, tracking them with finalizers', async () => {
    const job = await t.clients.jobs.create(ns, jobSpec('work', { completions: 3, parallelism: 2 }));
    let pods = await t.until('2 pods', async () => {
      const p = await podsOf(job);
      return p.length === 2 ? p : undefined;
    });
    for (const pod of pods) {
      assert.ok(pod.metadata.finalizers?.includes(JOB_TRACKING_FINALIZER));
      assert.equal(pod.metadata.labels?.['batch.kubernetes.io/job-name'], 'work');
      assert.equal(pod.metadata.labels?.['batch.kubernetes.io/controller-uid'], job.metadata.uid);
      assert.equal(pod.metadata.ownerReferences?.[0]?.uid, job.metadata.uid);
      assert.equal(pod.metadata.ownerReferences?.[0]?.controller, true);
      assert.match(pod.metadata.name ?? '', /^work-[a-z0-9]{5}$/);
    }
    const running = await t.until('status.active 2 and startTime', async () => {
      const j = await getJob('work');
      return j.status?.active === 2 && j.status.startTime ? j : undefined;
    });
    assert.equal(running.status?.ready, 0);

    for (const pod of pods) await finish(pod, 'Succeeded');
    // Two done, one to go: exactly one more pod, not two.
    pods = await t.until('a third pod', async () => {
      const p = await podsOf(job);
      return p.length === 3 ? p : undefined;
    });
    const third = active(pods);
    assert.equal(third.length, 1);
    await finish(third[0] as Pod, 'Succeeded');

    const done = await t.until('Complete', async () => {
      const j = await getJob('work');
      return condition(j, 'Complete')?.status === 'True' ? j : undefined;
    });
    assert.equal(done.status?.succeeded, 3);
    assert.equal(done.status?.active, 0);
    assert.ok(done.status?.completionTime);
    assert.equal(condition(done, 'SuccessCriteriaMet')?.status, 'True');
    assert.deepEqual(done.status?.uncountedTerminatedPods, {});
    await t.until('finalizers released', async () =>
      (await podsOf(job)).every((p) => !p.metadata.finalizers?.includes(JOB_TRACKING_FINALIZER)),
    );
    assert.equal((await podsOf(job)).length, 3);
  });

  it('gives Indexed pods their index, hostname and env, and reports completedIndexes as ranges', async () => {
    const job = await t.clients.jobs.create(
      ns,
      jobSpec('idx', { completions: 4, parallelism: 4, completionMode: 'Indexed' }),
    );
    const pods = await t.until('4 pods', async () => {
      const p = await podsOf(job);
      return p.length === 4 ? p : undefined;
    });
    const byIndex = new Map(pods.map((p) => [p.metadata.annotations?.[JOB_COMPLETION_INDEX_ANNOTATION], p]));
    assert.deepEqual([...byIndex.keys()].sort(), ['0', '1', '2', '3']);
    for (const [ix, pod] of byIndex) {
      assert.equal(pod.metadata.labels?.[JOB_COMPLETION_INDEX_ANNOTATION], ix);
      assert.equal(pod.spec?.hostname, `idx-${ix}`);
      assert.match(pod.metadata.name ?? '', new RegExp(`^idx-${ix}-[a-z0-9]{5}$`));
      const env = pod.spec?.containers?.[0]?.env?.find((e) => e.name === 'JOB_COMPLETION_INDEX');
      assert.equal(
        env?.valueFrom?.fieldRef?.fieldPath,
        `metadata.annotations['${JOB_COMPLETION_INDEX_ANNOTATION}']`,
      );
    }
    for (const ix of ['0', '1', '3']) await finish(byIndex.get(ix) as Pod, 'Succeeded');
    const partial = await t.until('completedIndexes 0,1,3', async () => {
      const j = await getJob('idx');
      return j.status?.completedIndexes === '0-1,3' ? j : undefined;
    });
    assert.equal(partial.status?.succeeded, 3);
    // A failed index is retried with a new pod of the same index.
    await finish(byIndex.get('2') as Pod, 'Failed');
    nowMs += 11_000; // past the first 10 s backoff
    await poke('idx');
    const retry = await t.until('a new pod for index 2', async () =>
      active(await podsOf(job)).find(
        (p) => p.metadata.annotations?.[JOB_COMPLETION_INDEX_ANNOTATION] === '2',
      ),
    );
    await finish(retry, 'Succeeded');
    const done = await t.until('Complete', async () => {
      const j = await getJob('idx');
      return condition(j, 'Complete')?.status === 'True' ? j : undefined;
    });
    assert.equal(done.status?.completedIndexes, '0-3');
    assert.equal(done.status?.failed, 1);
  });

  it('backs off before replacing failed pods, then fails past backoffLimit', async () => {
    const job = await t.clients.jobs.create(ns, jobSpec('flaky', { backoffLimit: 1 }));
    const [first] = await t.until('a pod', async () => {
      const p = await podsOf(job);
      return p.length === 1 ? p : undefined;
    });
    await finish(first as Pod, 'Failed');
    const counted = await t.until('failed 1', async () => {
      const j = await getJob('flaky');
      return j.status?.failed === 1 ? j : undefined;
    });
    assert.equal(counted.status?.active, 0);
    // Within the 10 s backoff nothing is replaced, however often it syncs.
    nowMs += 5_000;
    await poke('flaky');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await podsOf(job)).length, 1);
    nowMs += 6_000;
    await poke('flaky');
    const second = await t.until('a replacement pod', async () => active(await podsOf(job))[0]);
    await finish(second, 'Failed');
    const failed = await t.until('Failed', async () => {
      const j = await getJob('flaky');
      return condition(j, 'Failed')?.status === 'True' ? j : undefined;
    });
    assert.equal(condition(failed, 'Failed')?.reason, 'BackoffLimitExceeded');
    assert.equal(condition(failed, 'FailureTarget')?.status, 'True');
    assert.equal(failed.status?.failed, 2);
    assert.equal(failed.status?.completionTime, undefined);
  });

  it('fails a Job past activeDeadlineSeconds, deleting its running pods', async () => {
    const job = await t.clients.jobs.create(
      ns,
      jobSpec('slow', { activeDeadlineSeconds: 30, parallelism: 2 }),
    );
    await t.until('2 pods', async () => (await podsOf(job)).length === 2);
    nowMs += 31_000;
    await poke('slow');
    const failed = await t.until('Failed', async () => {
      const j = await getJob('slow');
      return condition(j, 'Failed')?.status === 'True' ? j : undefined;
    });
    assert.equal(condition(failed, 'Failed')?.reason, 'DeadlineExceeded');
    assert.equal(condition(failed, 'Failed')?.message, 'Job was active longer than specified deadline');
    assert.equal(failed.status?.failed, 2);
    assert.equal(failed.status?.active, 0);
    // Counted, released, and (having no node) gone.
    await t.until('pods gone', async () => (await podsOf(job)).length === 0);
  });

  it('suspends and resumes: Suspended condition, pods deleted without counting as failed', async () => {
    const job = await t.clients.jobs.create(
      ns,
      jobSpec('later', { suspend: true, parallelism: 2, completions: 4 }),
    );
    const suspended = await t.until('Suspended', async () => {
      const j = await getJob('later');
      return condition(j, 'Suspended')?.status === 'True' ? j : undefined;
    });
    assert.equal(suspended.status?.startTime, undefined);
    assert.equal((await podsOf(job)).length, 0);

    await t.clients.jobs.patch(ns, 'later', 'merge', { spec: { suspend: false } });
    const resumed = await t.until('resumed with 2 pods', async () => {
      const j = await getJob('later');
      return condition(j, 'Suspended')?.status === 'False' && j.status?.active === 2 ? j : undefined;
    });
    assert.equal(condition(resumed, 'Suspended')?.reason, 'JobResumed');
    assert.ok(resumed.status?.startTime);

    await t.clients.jobs.patch(ns, 'later', 'merge', { spec: { suspend: true } });
    const again = await t.until('suspended, no pods', async () => {
      const j = await getJob('later');
      return condition(j, 'Suspended')?.status === 'True' && j.status?.active === 0 ? j : undefined;
    });
    await t.until('pods deleted', async () => (await podsOf(job)).length === 0);
    assert.equal(again.status?.failed ?? 0, 0);
  });

  it('counts a pod deleted before it finished as failed and replaces it', async () => {
    const job = await t.clients.jobs.create(ns, jobSpec('evicted', { backoffLimit: 3 }));
    const [pod] = await t.until('a pod', async () => {
      const p = await podsOf(job);
      return p.length === 1 ? p : undefined;
    });
    await t.clients.pods.delete(ns, pod?.metadata.name ?? '');
    await t.until('failed 1', async () => (await getJob('evicted')).status?.failed === 1);
    nowMs += 11_000;
    await poke('evicted');
    await t.until('a replacement', async () => active(await podsOf(job)).length === 1);
  });
});
