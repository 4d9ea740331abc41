// LimitRanger through the API server: LimitRange defaulting, defaults filled
// into new pods (with upstream's annotation and the QoS class that follows),
// and min/max/ratio refusals with upstream's messages.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer } from '../testing.ts';

const container = (name: string, resources?: Record<string, unknown>) => ({
  name,
  image: 'busybox',
  ...(resources ? { resources } : {}),
});

const pod = (name: string, containers: unknown[], extra: Record<string, unknown> = {}) => ({
  metadata: { name },
  spec: { containers, ...extra },
});

describe('LimitRanger admission', () => {
  let srv: TestServer;
  const ns = (n: string) => `/api/v1/namespaces/${n}`;

  before(async () => {
    srv = await startTestServer();
    for (const name of ['defaults', 'bounds', 'ratio', 'per-pod', 'claims']) {
      await srv.request('POST', '/api/v1/namespaces', { metadata: { name } });
    }
    const limitRange = (namespace: string, limits: unknown[]) =>
      srv.request('POST', `${ns(namespace)}/limitranges`, { metadata: { name: 'limits' }, spec: { limits } });
    const d = await limitRange('defaults', [
      { type: 'Container', default: { cpu: '500m', memory: '256Mi' }, defaultRequest: { cpu: '100m' } },
    ]);
    assert.equal(d.status, 201, d.text);
    await limitRange('bounds', [
      { type: 'Container', min: { cpu: '100m' }, max: { cpu: '1', memory: '1Gi' } },
    ]);
    await limitRange('ratio', [{ type: 'Container', maxLimitRequestRatio: { cpu: '2' } }]);
    await limitRange('per-pod', [{ type: 'Pod', max: { memory: '1Gi' } }]);
    await limitRange('claims', [
      { type: 'PersistentVolumeClaim', min: { storage: '1Gi' }, max: { storage: '10Gi' } },
    ]);
  });
  after(() => srv.close());

  it('defaults a LimitRange item as upstream: default from max, defaultRequest from default then min', async () => {
    const r = await srv.request('GET', `${ns('bounds')}/limitranges/limits`);
    assert.deepEqual(r.body.spec.limits[0], {
      type: 'Container',
      min: { cpu: '100m' },
      max: { cpu: '1', memory: '1Gi' },
      default: { cpu: '1', memory: '1Gi' },
      defaultRequest: { cpu: '1', memory: '1Gi' },
    });
    const d = await srv.request('GET', `${ns('defaults')}/limitranges/limits`);
    assert.deepEqual(d.body.spec.limits[0].defaultRequest, { cpu: '100m', memory: '256Mi' });
  });

  it('fills in what containers leave out, annotates the pod, and the QoS class follows', async () => {
    const r = await srv.request(
      'POST',
      `${ns('defaults')}/pods`,
      pod('web', [container('app'), container('side', { limits: { cpu: '1' } })], {
        initContainers: [container('init', { requests: { memory: '64Mi' } })],
      }),
    );
    assert.equal(r.status, 201, r.text);
    const [app, side] = r.body.spec.containers;
    assert.deepEqual(app.resources, {
      limits: { cpu: '500m', memory: '256Mi' },
      requests: { cpu: '100m', memory: '256Mi' },
    });
    // Requests defaulted from its own limit first (pod defaulting), then the rest.
    assert.deepEqual(side.resources, {
      limits: { cpu: '1', memory: '256Mi' },
      requests: { cpu: '1', memory: '256Mi' },
    });
    assert.deepEqual(r.body.spec.initContainers[0].resources, {
      limits: { cpu: '500m', memory: '256Mi' },
      requests: { cpu: '100m', memory: '64Mi' },
    });
    assert.equal(
      r.body.metadata.annotations['kubernetes.io/limit-ranger'],
      'LimitRanger plugin set: cpu, memory request for container app; cpu, memory limit for container app; ' +
        'memory request for container side; memory limit for container side; ' +
        'cpu request for init container init; cpu, memory limit for init container init',
    );
    assert.equal(r.body.status.qosClass, 'Burstable');
  });

  it('leaves a pod that names everything alone', async () => {
    const full = { requests: { cpu: '1', memory: '1Gi' }, limits: { cpu: '1', memory: '1Gi' } };
    const r = await srv.request('POST', `${ns('defaults')}/pods`, pod('full', [container('app', full)]));
    assert.equal(r.status, 201);
    assert.equal(r.body.metadata.annotations, undefined);
    assert.equal(r.body.status.qosClass, 'Guaranteed');
  });

  it('refuses a container over max or under min with upstream messages', async () => {
    const r = await srv.request(
      'POST',
      `${ns('bounds')}/pods`,
      pod('big', [container('app', { limits: { cpu: '2' }, requests: { cpu: '50m' } })]),
    );
    assert.equal(r.status, 403);
    assert.equal(r.body.reason, 'Forbidden');
    assert.equal(
      r.body.message,
      'pods "big" is forbidden: [minimum cpu usage per Container is 100m, but request is 50m, ' +
        'maximum cpu usage per Container is 1, but limit is 2]',
    );
    const one = await srv.request(
      'POST',
      `${ns('bounds')}/pods`,
      pod('mem', [container('app', { limits: { memory: '2Gi' } })]),
    );
    assert.equal(
      one.body.message,
      'pods "mem" is forbidden: maximum memory usage per Container is 1Gi, but limit is 2Gi',
    );
    // Within bounds, the defaults (the max) are applied.
    const fine = await srv.request('POST', `${ns('bounds')}/pods`, pod('fine', [container('app')]));
    assert.equal(fine.status, 201, fine.text);
    assert.deepEqual(fine.body.spec.containers[0].resources.limits, { cpu: '1', memory: '1Gi' });
  });

  it('refuses a limit to request ratio over the maximum', async () => {
    const r = await srv.request(
      'POST',
      `${ns('ratio')}/pods`,
      pod('spiky', [container('app', { requests: { cpu: '100m' }, limits: { cpu: '1' } })]),
    );
    assert.equal(r.status, 403);
    assert.equal(
      r.body.message,
      'pods "spiky" is forbidden: cpu max limit to request ratio per Container is 2, but provided ratio is 10.000000',
    );
    const none = await srv.request('POST', `${ns('ratio')}/pods`, pod('bare', [container('app')]));
    assert.equal(
      none.body.message,
      'pods "bare" is forbidden: cpu max limit to request ratio per Container is 2, but no request is specified or request is 0',
    );
  });

  it('checks the pod total against a Pod item', async () => {
    const r = await srv.request(
      'POST',
      `${ns('per-pod')}/pods`,
      pod('pair', [
        container('a', { limits: { memory: '768Mi' } }),
        container('b', { limits: { memory: '512Mi' } }),
      ]),
    );
    assert.equal(r.status, 403);
    assert.equal(
      r.body.message,
      'pods "pair" is forbidden: maximum memory usage per Pod is 1Gi, but limit is 1280Mi',
    );
  });

  it('checks claims on create and update, and never pod updates or subresources', async () => {
    const claim = (storage: string) => ({
      metadata: { name: 'data' },
      spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage } } },
    });
    const small = await srv.request('POST', `${ns('claims')}/persistentvolumeclaims`, claim('500Mi'));
    assert.equal(small.status, 403);
    assert.equal(
      small.body.message,
      'persistentvolumeclaims "data" is forbidden: minimum storage usage per PersistentVolumeClaim is 1Gi, but request is 500Mi',
    );
    const ok = await srv.request('POST', `${ns('claims')}/persistentvolumeclaims`, claim('5Gi'));
    assert.equal(ok.status, 201, ok.text);
    // Only a bound claim's request may change (validation, before admission).
    await srv.request(
      'PATCH',
      `${ns('claims')}/persistentvolumeclaims/data/status`,
      { status: { phase: 'Bound' } },
      { 'content-type': 'application/merge-patch+json' },
    );
    const grown = await srv.request(
      'PATCH',
      `${ns('claims')}/persistentvolumeclaims/data`,
      { spec: { resources: { requests: { storage: '20Gi' } } } },
      { 'content-type': 'application/merge-patch+json' },
    );
    assert.equal(grown.status, 403);
    assert.match(
      grown.body.message,
      /maximum storage usage per PersistentVolumeClaim is 10Gi, but request is 20Gi/,
    );

    // A LimitRange added later does not touch what exists.
    await srv.request('POST', `${ns('defaults')}/limitranges`, {
      metadata: { name: 'strict' },
      spec: { limits: [{ type: 'Container', max: { cpu: '200m' } }] },
    });
    const label = await srv.request(
      'PATCH',
      `${ns('defaults')}/pods/web`,
      { metadata: { labels: { a: 'b' } } },
      { 'content-type': 'application/merge-patch+json' },
    );
    assert.equal(label.status, 200, label.text);
  });
});
