// The Priority admission plugin through the API server: a pod's priority and
// preemptionPolicy come from its PriorityClass, the global default, or 0.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer } from '../testing.ts';

describe('Priority admission', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer();
    const pc = (name: string, value: number, extra: Record<string, unknown> = {}) =>
      t.request('POST', '/apis/scheduling.k8s.io/v1/priorityclasses', {
        apiVersion: 'scheduling.k8s.io/v1',
        kind: 'PriorityClass',
        metadata: { name },
        value,
        ...extra,
      });
    assert.equal((await pc('high', 1000)).status, 201);
    assert.equal((await pc('batch', 10, { preemptionPolicy: 'Never' })).status, 201);
  });
  after(() => t.close());

  const createPod = (name: string, spec: Record<string, unknown> = {}) =>
    t.request('POST', '/api/v1/namespaces/default/pods', {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name },
      spec: { containers: [{ name: 'c', image: 'busybox' }], ...spec },
    });

  it('resolves spec.priority and spec.preemptionPolicy from the named PriorityClass', async () => {
    const high = await createPod('high', { priorityClassName: 'high' });
    assert.equal(high.status, 201);
    assert.equal(high.body.spec.priority, 1000);
    assert.equal(high.body.spec.preemptionPolicy, 'PreemptLowerPriority');
    const batch = await createPod('batch', { priorityClassName: 'batch' });
    assert.equal(batch.body.spec.priority, 10);
    assert.equal(batch.body.spec.preemptionPolicy, 'Never');
  });

  it('gives priority 0 without a class, and the globalDefault class once there is one', async () => {
    const plain = await createPod('plain');
    assert.equal(plain.body.spec.priority, 0);
    assert.equal(plain.body.spec.priorityClassName, undefined);
    assert.equal(plain.body.spec.preemptionPolicy, 'PreemptLowerPriority');
    const dflt = await t.request('POST', '/apis/scheduling.k8s.io/v1/priorityclasses', {
      apiVersion: 'scheduling.k8s.io/v1',
      kind: 'PriorityClass',
      metadata: { name: 'normal' },
      value: 100,
      globalDefault: true,
    });
    assert.equal(dflt.status, 201);
    const defaulted = await createPod('defaulted');
    assert.equal(defaulted.body.spec.priority, 100);
    assert.equal(defaulted.body.spec.priorityClassName, 'normal');
  });

  it('refuses an unknown class and a priority that disagrees with the class (403 Forbidden)', async () => {
    const unknown = await createPod('nope', { priorityClassName: 'does-not-exist' });
    assert.equal(unknown.status, 403);
    assert.equal(unknown.body.reason, 'Forbidden');
    assert.equal(
      unknown.body.message,
      'pods "nope" is forbidden: no PriorityClass with name does-not-exist was found',
    );
    const mismatch = await createPod('liar', { priorityClassName: 'high', priority: 5 });
    assert.equal(mismatch.status, 403);
    assert.equal(
      mismatch.body.message,
      'pods "liar" is forbidden: the integer value of priority (5) must not be provided in pod spec; priority admission controller computed 1000 from the given PriorityClass name',
    );
    const same = await createPod('honest', { priorityClassName: 'high', priority: 1000 });
    assert.equal(same.status, 201, 'the value the class gives is accepted');
  });

  it('keeps the priority when a client replaces the pod without it', async () => {
    const got = await t.request('GET', '/api/v1/namespaces/default/pods/high');
    const body = got.body;
    delete body.spec.priority;
    delete body.spec.preemptionPolicy;
    body.metadata.labels = { touched: 'yes' };
    const put = await t.request('PUT', '/api/v1/namespaces/default/pods/high', body);
    assert.equal(put.status, 200, put.text);
    assert.equal(put.body.spec.priority, 1000);
  });
});
