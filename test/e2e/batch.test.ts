// Jobs and CronJobs with the real kubectl against a real `skiff server`.
// There is no kubelet yet, so the test plays it: it sets each pod's phase
// through the pods/status subresource, as upstream's integration tests do.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ok, type Skiff, startSkiff } from './harness.ts';

let skiff: Skiff;
before(async () => {
  skiff = await startSkiff();
});
after(async () => {
  await skiff?.stop();
});

const k = (args: string[], version = '1.32') => ok(skiff, args, { version });

async function until<T>(what: string, check: () => Promise<T | undefined | false>, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${skiff.logs().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const podsOf = async (job: string) =>
  (await k(['get', 'pods', '-l', `batch.kubernetes.io/job-name=${job}`, '-o', 'name']))
    .split('\n')
    .filter(Boolean);

const succeed = (pod: string) =>
  k(['patch', pod, '--subresource=status', '--type=merge', '-p', '{"status":{"phase":"Succeeded"}}']);

describe('batch with kubectl', () => {
  it('kubectl create job, wait --for=condition=complete, and get jobs columns', async () => {
    await k(['create', 'job', 'hello', '--image=busybox', '--', 'echo', 'hi']);
    const [pod] = await until('the job pod', async () => {
      const p = await podsOf('hello');
      return p.length === 1 && p;
    });
    const running = await k(['get', 'jobs', 'hello']);
    assert.match(running, /^NAME\s+STATUS\s+COMPLETIONS\s+DURATION\s+AGE/);
    assert.match(running, /^hello\s+Running\s+0\/1\s+/m);

    await succeed(pod as string);
    // Every kubectl version waits on the same condition.
    for (const version of ['1.27', '1.32', '1.33'])
      await k(['wait', '--for=condition=complete', 'job/hello', '--timeout=30s'], version);
    const done = await k(['get', 'jobs', 'hello']);
    assert.match(done, /^hello\s+Complete\s+1\/1\s+\d+s\s+/m);
    const finalizers = await k(['get', pod as string, '-o', 'jsonpath={.metadata.finalizers}']);
    assert.equal(finalizers, '');
  });

  it('kubectl create cronjob, and create job --from=cronjob runs it', async () => {
    await k(['create', 'cronjob', 'nightly', '--image=busybox', '--schedule=0 3 * * *', '--', 'date']);
    const cj = await k(['get', 'cronjobs', 'nightly']);
    assert.match(cj, /^nightly\s+0 3 \* \* \*\s+<none>\s+false\s+0\s+<none>/m);

    await k(['create', 'job', 'manual', '--from=cronjob/nightly']);
    const owner = await k(['get', 'job', 'manual', '-o', 'jsonpath={.metadata.ownerReferences[0].kind}']);
    assert.equal(owner, 'CronJob');
    const [pod] = await until('the manual job pod', async () => {
      const p = await podsOf('manual');
      return p.length === 1 && p;
    });
    await succeed(pod as string);
    await k(['wait', '--for=condition=complete', 'job/manual', '--timeout=30s']);
  });
});
