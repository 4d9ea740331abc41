// The pods/eviction subresource through the API server: budgets are
// respected (429 when a PodDisruptionBudget allows no disruption), pods that
// are not running are evicted regardless, evicted pods carry the
// DisruptionTarget condition.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer } from './testing.ts';

describe('pods/eviction', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer();
  });
  after(() => t.close());

  const ns = '/api/v1/namespaces/default';
  /** A pod bound to a node, Running, Ready or not, as a kubelet would report it. */
  async function runningPod(
    name: string,
    labels: Record<string, string>,
    ready = true,
    namespace = 'default',
  ) {
    const ns = `/api/v1/namespaces/${namespace}`;
    const created = await t.request('POST', `${ns}/pods`, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, labels },
      spec: {
        nodeName: 'n1',
        terminationGracePeriodSeconds: 0,
        containers: [{ name: 'c', image: 'busybox' }],
      },
    });
    assert.equal(created.status, 201, created.text);
    const status = await t.request(
      'PATCH',
      `${ns}/pods/${name}/status`,
      { status: { phase: 'Running', conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }] } },
      { 'content-type': 'application/merge-patch+json' },
    );
    assert.equal(status.status, 200, status.text);
  }
  const evict = (name: string, dryRun = false, namespace = 'default') =>
    t.request('POST', `/api/v1/namespaces/${namespace}/pods/${name}/eviction${dryRun ? '?dryRun=All' : ''}`, {
      apiVersion: 'policy/v1',
      kind: 'Eviction',
      metadata: { name, namespace },
    });
  const exists = async (name: string) => (await t.request('GET', `${ns}/pods/${name}`)).status === 200;

  it('refuses with 429 when the budget allows no disruption, and evicts once it does', async () => {
    await runningPod('web-1', { app: 'web' });
    await runningPod('web-2', { app: 'web' });
    const pdb = await t.request('POST', '/apis/policy/v1/namespaces/default/poddisruptionbudgets', {
      apiVersion: 'policy/v1',
      kind: 'PodDisruptionBudget',
      metadata: { name: 'web' },
      spec: { minAvailable: 2, selector: { matchLabels: { app: 'web' } } },
    });
    assert.equal(pdb.status, 201, pdb.text);

    const refused = await evict('web-1');
    assert.equal(refused.status, 429);
    assert.equal(refused.body.reason, 'TooManyRequests');
    assert.equal(refused.body.message, "Cannot evict pod as it would violate the pod's disruption budget.");
    assert.deepEqual(refused.body.details.causes, [
      {
        reason: 'DisruptionBudget',
        message: 'The disruption budget web needs 2 healthy pods and has 2 currently',
      },
    ]);
    assert.ok(await exists('web-1'));

    // A third healthy pod: one disruption is allowed.
    await runningPod('web-3', { app: 'web' });
    assert.equal((await evict('web-1', true)).status, 201, 'dry run');
    assert.ok(await exists('web-1'), 'a dry run deletes nothing');
    const ok = await evict('web-1');
    assert.equal(ok.status, 201, ok.text);
    assert.equal(ok.body.status, 'Success');
    assert.equal(await exists('web-1'), false);
    // Now two are left and two are needed again.
    assert.equal((await evict('web-2')).status, 429);
  });

  it('evicts a not-Ready pod while the healthy ones meet the budget', async () => {
    await runningPod('api-1', { app: 'api' });
    await runningPod('api-2', { app: 'api' }, false);
    await t.request('POST', '/apis/policy/v1/namespaces/default/poddisruptionbudgets', {
      apiVersion: 'policy/v1',
      kind: 'PodDisruptionBudget',
      metadata: { name: 'api' },
      spec: { maxUnavailable: 0, selector: { matchLabels: { app: 'api' } } },
    });
    // maxUnavailable 0 of 2 pods: 2 must be healthy and only 1 is, so the Ready one stays...
    assert.equal((await evict('api-1')).status, 429);
    // ...and the unhealthy one may go only under AlwaysAllow.
    assert.equal((await evict('api-2')).status, 429);
    const pdb = await t.request('GET', '/apis/policy/v1/namespaces/default/poddisruptionbudgets/api');
    pdb.body.spec.unhealthyPodEvictionPolicy = 'AlwaysAllow';
    assert.equal(
      (await t.request('PUT', '/apis/policy/v1/namespaces/default/poddisruptionbudgets/api', pdb.body))
        .status,
      200,
    );
    assert.equal((await evict('api-2')).status, 201);
    assert.equal(await exists('api-2'), false);
  });

  it('evicts pods that are not running without looking at budgets, marking them DisruptionTarget', async () => {
    // Pending (no kubelet has started it) and bound, with a grace period: it is marked, not removed.
    const created = await t.request('POST', `${ns}/pods`, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'pending', labels: { app: 'web' } },
      spec: { nodeName: 'n1', containers: [{ name: 'c', image: 'busybox' }] },
    });
    assert.equal(created.status, 201);
    assert.equal((await evict('pending')).status, 201);
    const pod = (await t.request('GET', `${ns}/pods/pending`)).body;
    assert.ok(pod.metadata.deletionTimestamp, 'graceful deletion started');
    const cond = pod.status.conditions.find((c: { type: string }) => c.type === 'DisruptionTarget');
    assert.deepEqual(
      { status: cond.status, reason: cond.reason, message: cond.message },
      { status: 'True', reason: 'EvictionByEvictionAPI', message: 'Eviction API: evicting' },
    );
  });

  it('rejects an Eviction naming another pod, and 404s for a missing pod', async () => {
    const r = await t.request('POST', `${ns}/pods/web-2/eviction`, {
      apiVersion: 'policy/v1',
      kind: 'Eviction',
      metadata: { name: 'web-3' },
    });
    assert.equal(r.status, 400);
    assert.equal(r.body.message, 'name in URL does not match name in Eviction object');
    assert.equal((await evict('ghost')).status, 404);
  });

  it('a budget with an empty selector covers every pod of its namespace (policy/v1)', async () => {
    // upstream #119732: before it, drain went through such a budget.
    const created = await t.request('POST', '/api/v1/namespaces', {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: 'whole' },
    });
    assert.equal(created.status, 201, created.text);
    await runningPod('one', { app: 'one' }, true, 'whole');
    await runningPod('two', {}, true, 'whole');
    const pdb = await t.request('POST', '/apis/policy/v1/namespaces/whole/poddisruptionbudgets', {
      apiVersion: 'policy/v1',
      kind: 'PodDisruptionBudget',
      metadata: { name: 'all' },
      spec: { minAvailable: 2, selector: {} },
    });
    assert.equal(pdb.status, 201, pdb.text);
    const refused = await evict('two', false, 'whole');
    assert.equal(refused.status, 429, refused.text);
    assert.equal(
      refused.body.details.causes[0].message,
      'The disruption budget all needs 2 healthy pods and has 2 currently',
    );
  });
});
