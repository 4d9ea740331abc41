import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { builtinRegistry } from '../api/resources/index.ts';
import { findSamples, parseExposition, sumOf } from '../metrics/exposition.ts';
import { instrumentStore } from '../storage/instrumented.ts';
import { createMemoryStore } from '../storage/memory/memory.ts';
import { ApiServerMetrics, reportedVerb, requestScope, storageKeySegment } from './metrics.ts';
import { parseRequestInfo } from './request-info.ts';
import { startTestServer, type TestServer } from './testing.ts';

const info = (method: string, path: string, query = '') =>
  parseRequestInfo(method, path, new URLSearchParams(query));

describe('apiserver metrics labels, as upstream reports them', () => {
  const cases: Array<[string, string, string, string | undefined, string, string]> = [
    ['GET', '/api/v1/namespaces/default/pods', '', undefined, 'LIST', 'namespace'],
    ['GET', '/api/v1/pods', '', undefined, 'LIST', 'cluster'],
    ['GET', '/api/v1/namespaces/default/pods', 'watch=true', undefined, 'WATCH', 'namespace'],
    ['GET', '/api/v1/namespaces/default/pods/p', '', undefined, 'GET', 'resource'],
    ['POST', '/api/v1/namespaces/default/pods', '', undefined, 'POST', 'resource'],
    ['PUT', '/api/v1/nodes/n1/status', '', undefined, 'PUT', 'resource'],
    [
      'PATCH',
      '/apis/apps/v1/namespaces/a/deployments/d',
      '',
      'application/merge-patch+json',
      'PATCH',
      'resource',
    ],
    [
      'PATCH',
      '/apis/apps/v1/namespaces/a/deployments/d',
      '',
      'application/apply-patch+yaml',
      'APPLY',
      'resource',
    ],
    ['DELETE', '/api/v1/namespaces/default/pods', '', undefined, 'DELETE', 'namespace'],
    ['GET', '/healthz', '', undefined, 'GET', ''],
  ];
  for (const [method, path, query, contentType, verb, scope] of cases) {
    it(`${method} ${path}${query ? `?${query}` : ''} ${contentType ?? ''}: ${verb}, scope "${scope}"`, () => {
      const i = info(method, path, query);
      assert.equal(reportedVerb(i, contentType), verb);
      assert.equal(requestScope(i), scope);
    });
  }

  it('finds the resource in a storage key, a custom resource with its group', () => {
    assert.equal(storageKeySegment('/registry/pods/default/p'), 'pods');
    assert.equal(storageKeySegment('/registry/nodes/'), 'nodes');
    assert.equal(storageKeySegment('/registry/example.com/widgets/ns/w'), 'example.com/widgets');
    assert.equal(storageKeySegment('/elsewhere'), '');
  });
});

describe('/metrics on the API server', () => {
  let s: TestServer;
  before(async () => {
    const registry = builtinRegistry();
    let api: TestServer['api'] | undefined;
    const metrics = new ApiServerMetrics(registry, () => api!.objectCounts());
    s = await startTestServer(instrumentStore(createMemoryStore(), metrics.storeObserver), { metrics });
    api = s.api;
  });
  after(() => s.close());

  const scrape = async () => {
    const r = await s.request('GET', '/metrics');
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    return parseExposition(r.text);
  };

  it('counts and times requests with upstream labels and buckets', async () => {
    const cm = (name: string) => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name } });
    const created = { verb: 'POST', resource: 'configmaps', group: '', version: 'v1', scope: 'resource' };
    const before = sumOf(await scrape(), 'apiserver_request_total', { ...created, code: '201' });
    for (const name of ['a', 'b', 'c'])
      assert.equal((await s.request('POST', '/api/v1/namespaces/default/configmaps', cm(name))).status, 201);
    assert.equal((await s.request('POST', '/api/v1/namespaces/default/configmaps', cm('a'))).status, 409);
    assert.equal((await s.request('GET', '/api/v1/namespaces/default/configmaps/nope')).status, 404);
    const samples = await scrape();
    const total = findSamples(samples, 'apiserver_request_total', { ...created, code: '201' });
    assert.equal(total.length, 1);
    assert.deepEqual(total[0]!.labels, {
      ...created,
      dry_run: '',
      subresource: '',
      component: 'apiserver',
      code: '201',
    });
    assert.equal(total[0]!.value - before, 3);
    assert.equal(sumOf(samples, 'apiserver_request_total', { ...created, code: '409' }), 1);
    assert.equal(
      sumOf(samples, 'apiserver_request_total', { verb: 'GET', resource: 'configmaps', code: '404' }),
      1,
    );
    const buckets = findSamples(samples, 'apiserver_request_duration_seconds_bucket', created).map(
      (b) => b.labels.le,
    );
    assert.deepEqual(buckets, [
      '0.005',
      '0.025',
      '0.05',
      '0.1',
      '0.2',
      '0.4',
      '0.6',
      '0.8',
      '1',
      '1.25',
      '1.5',
      '2',
      '3',
      '4',
      '5',
      '6',
      '8',
      '10',
      '15',
      '20',
      '30',
      '45',
      '60',
      '+Inf',
    ]);
    assert.ok(sumOf(samples, 'apiserver_request_duration_seconds_count', created) >= 4);
  });

  it('times the store per operation and type, and counts stored objects', async () => {
    await s.request('POST', '/apis/apps/v1/namespaces/default/deployments', {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'web' },
      spec: {
        selector: { matchLabels: { app: 'web' } },
        template: {
          metadata: { labels: { app: 'web' } },
          spec: { containers: [{ name: 'c', image: 'busybox' }] },
        },
      },
    });
    const samples = await scrape();
    assert.ok(
      sumOf(samples, 'etcd_request_duration_seconds_count', {
        operation: 'create',
        type: 'deployments.apps',
      }) >= 1,
    );
    assert.ok(
      sumOf(samples, 'etcd_request_duration_seconds_count', { operation: 'create', type: 'configmaps' }) >= 3,
    );
    assert.equal(sumOf(samples, 'apiserver_storage_objects', { resource: 'deployments.apps' }), 1);
    assert.equal(sumOf(samples, 'apiserver_storage_objects', { resource: 'namespaces' }), 2);
  });

  it('reports the requests in flight, by kind, and the process and Node.js runtime', async () => {
    const samples = await scrape();
    // The scrape itself is a read in flight.
    assert.ok(sumOf(samples, 'apiserver_current_inflight_requests', { request_kind: 'readOnly' }) >= 1);
    assert.equal(
      findSamples(samples, 'apiserver_current_inflight_requests', { request_kind: 'mutating' }).length,
      1,
    );
    for (const name of [
      'process_cpu_seconds_total',
      'process_resident_memory_bytes',
      'process_start_time_seconds',
      'nodejs_heap_size_used_bytes',
    ])
      assert.equal(findSamples(samples, name).length, 1, name);
  });
});
