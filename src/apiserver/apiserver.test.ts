// The REST semantics of the API server, over real HTTP on loopback.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createMemoryStore } from '../storage/memory/memory.ts';
import type { Store } from '../storage/store.ts';
import { startTestServer, type TestServer } from './testing.ts';

let s: TestServer;
before(async () => {
  s = await startTestServer();
});
after(async () => {
  await s.close();
});

const cm = (name: string, data: Record<string, string> = { a: '1' }, labels?: Record<string, string>) => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name, ...(labels ? { labels } : {}) },
  data,
});

const CMS = '/api/v1/namespaces/default/configmaps';

describe('create, get, update, delete', () => {
  it('creates with uid, creationTimestamp and resourceVersion, and refuses a duplicate with 409 AlreadyExists', async () => {
    const r = await s.request('POST', CMS, cm('c1'));
    assert.equal(r.status, 201);
    assert.match(r.body.metadata.uid, /^[0-9a-f-]{36}$/);
    assert.match(r.body.metadata.creationTimestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.match(r.body.metadata.resourceVersion, /^\d+$/);
    assert.equal(r.body.metadata.namespace, 'default');
    const dup = await s.request('POST', CMS, cm('c1'));
    assert.equal(dup.status, 409);
    assert.equal(dup.body.kind, 'Status');
    assert.equal(dup.body.reason, 'AlreadyExists');
    assert.equal(dup.body.message, 'configmaps "c1" already exists');
    assert.deepEqual(dup.body.details, { name: 'c1', group: '', kind: 'configmaps' });
  });

  it('gets, and answers 404 NotFound for a missing object', async () => {
    const r = await s.request('GET', `${CMS}/c1`);
    assert.equal(r.status, 200);
    assert.equal(r.body.data.a, '1');
    const missing = await s.request('GET', `${CMS}/nope`);
    assert.equal(missing.status, 404);
    assert.equal(missing.body.reason, 'NotFound');
    assert.equal(missing.body.message, 'configmaps "nope" not found');
  });

  it('updates with a resourceVersion precondition: a stale one gets 409 Conflict', async () => {
    const cur = (await s.request('GET', `${CMS}/c1`)).body;
    const upd = await s.request('PUT', `${CMS}/c1`, { ...cur, data: { a: '2' } });
    assert.equal(upd.status, 200);
    assert.notEqual(upd.body.metadata.resourceVersion, cur.metadata.resourceVersion);
    const stale = await s.request('PUT', `${CMS}/c1`, { ...cur, data: { a: '3' } });
    assert.equal(stale.status, 409);
    assert.equal(stale.body.reason, 'Conflict');
    assert.match(stale.body.message, /the object has been modified/);
    assert.equal((await s.request('GET', `${CMS}/c1`)).body.data.a, '2');
  });

  it('keeps uid and creationTimestamp across updates, and skips no-op writes', async () => {
    const cur = (await s.request('GET', `${CMS}/c1`)).body;
    const { resourceVersion: _rv, uid: _uid, creationTimestamp: _ct, ...meta } = cur.metadata;
    // An absent uid and creationTimestamp are the object's own (rest.BeforeUpdate).
    const same = await s.request('PUT', `${CMS}/c1`, { ...cur, metadata: meta });
    assert.equal(same.body.metadata.uid, cur.metadata.uid);
    assert.equal(same.body.metadata.creationTimestamp, cur.metadata.creationTimestamp);
    assert.equal(same.body.metadata.resourceVersion, cur.metadata.resourceVersion);
    // Another uid is refused: uid is immutable (ValidateObjectMetaUpdate).
    const forged = await s.request('PUT', `${CMS}/c1`, { ...cur, metadata: { ...meta, uid: 'forged' } });
    assert.equal(forged.status, 422, forged.text);
  });

  it('deletes and returns a Success Status', async () => {
    await s.request('POST', CMS, cm('gone'));
    const del = await s.request('DELETE', `${CMS}/gone`);
    assert.equal(del.status, 200);
    assert.equal(del.body.status, 'Success');
    assert.equal(del.body.details.name, 'gone');
    assert.equal((await s.request('GET', `${CMS}/gone`)).status, 404);
    assert.equal((await s.request('DELETE', `${CMS}/gone`)).status, 404);
  });

  it('generates names from generateName', async () => {
    const r = await s.request('POST', CMS, { metadata: { generateName: 'gen-' }, data: {} });
    assert.equal(r.status, 201);
    assert.match(r.body.metadata.name, /^gen-[a-z0-9]{5}$/);
    // A long base is cut so the generated name stays 63 characters.
    const long = await s.request('POST', '/api/v1/namespaces/default/pods', {
      metadata: { generateName: `${'a'.repeat(70)}-` },
      spec: { containers: [{ name: 'c', image: 'busybox' }] },
    });
    assert.equal(long.status, 201, long.text);
    assert.equal(long.body.metadata.name.length, 63);
  });

  it('dryRun=All validates and answers without writing', async () => {
    const r = await s.request('POST', `${CMS}?dryRun=All`, cm('dry'));
    assert.equal(r.status, 201);
    assert.equal((await s.request('GET', `${CMS}/dry`)).status, 404);
    const bad = await s.request('POST', `${CMS}?dryRun=Some`, cm('dry'));
    assert.equal(bad.status, 422, 'upstream: ValidateCreateOptions');
  });
});

describe('bad input gets a clear Status, never a 500', () => {
  it('malformed JSON is 400', async () => {
    const r = await s.request('POST', CMS, '{"metadata": {', { 'content-type': 'application/json' });
    assert.equal(r.status, 400);
    assert.equal(r.body.kind, 'Status');
  });

  it('a kind or apiVersion that does not match the URL is 400', async () => {
    const r = await s.request('POST', CMS, { ...cm('x'), kind: 'Secret' });
    assert.equal(r.status, 400);
    assert.match(r.body.message, /kind/);
    const v = await s.request('POST', CMS, { ...cm('x'), apiVersion: 'apps/v1' });
    assert.equal(v.status, 400);
  });

  it('an unknown content type is 415', async () => {
    const r = await s.request('POST', CMS, 'x', { 'content-type': 'text/plain' });
    assert.equal(r.status, 415);
    assert.equal(r.body.reason, 'UnsupportedMediaType');
  });

  it('a body over 3 MiB is 413', async () => {
    const r = await s.request('POST', CMS, cm('huge', { a: 'x'.repeat(3 * 1024 * 1024 + 10) }));
    assert.equal(r.status, 413);
    assert.equal(r.body.reason, 'RequestEntityTooLarge');
  });

  it('invalid names are 422 Invalid with causes', async () => {
    const r = await s.request('POST', CMS, cm('Bad_Name'));
    assert.equal(r.status, 422);
    assert.equal(r.body.reason, 'Invalid');
    assert.match(
      r.body.message,
      /^ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain/,
    );
    assert.equal(r.body.details.causes[0].field, 'metadata.name');
    assert.equal(r.body.details.causes[0].reason, 'FieldValueInvalid');
  });

  it('a pod without containers is 422 with the field path', async () => {
    const r = await s.request('POST', '/api/v1/namespaces/default/pods', {
      metadata: { name: 'p' },
      spec: {},
    });
    assert.equal(r.status, 422);
    assert.ok(r.body.details.causes.some((c: { field: string }) => c.field === 'spec.containers'));
  });

  it('an unknown resource is 404; a missing namespace is 404 for namespaces', async () => {
    assert.equal((await s.request('GET', '/api/v1/namespaces/default/widgets')).status, 404);
    const r = await s.request('POST', '/api/v1/namespaces/nowhere/configmaps', cm('x'));
    assert.equal(r.status, 404);
    assert.equal(r.body.message, 'namespaces "nowhere" not found');
  });
});

describe('list, selectors, pagination', () => {
  before(async () => {
    for (let i = 0; i < 7; i++) {
      await s.request(
        'POST',
        CMS,
        cm(`page-${i}`, { i: String(i) }, { tier: i % 2 ? 'odd' : 'even', page: 'yes' }),
      );
    }
  });

  it('filters by label selector (equality and set-based) and field selector', async () => {
    const odd = await s.request('GET', `${CMS}?labelSelector=${encodeURIComponent('page=yes,tier=odd')}`);
    assert.deepEqual(
      odd.body.items.map((x: { metadata: { name: string } }) => x.metadata.name),
      ['page-1', 'page-3', 'page-5'],
    );
    const set = await s.request('GET', `${CMS}?labelSelector=${encodeURIComponent('tier in (even),page')}`);
    assert.equal(set.body.items.length, 4);
    const byName = await s.request('GET', `${CMS}?fieldSelector=metadata.name%3Dpage-2`);
    assert.deepEqual(
      byName.body.items.map((x: { metadata: { name: string } }) => x.metadata.name),
      ['page-2'],
    );
    const bad = await s.request('GET', `${CMS}?fieldSelector=spec.nope%3Dx`);
    assert.equal(bad.status, 400);
    assert.match(bad.body.message, /field label not supported: spec.nope/);
  });

  it('pages with limit and continue, reporting remainingItemCount, as one snapshot', async () => {
    const first = await s.request('GET', `${CMS}?limit=3&labelSelector=page%3Dyes`);
    assert.equal(first.body.items.length, 3);
    assert.ok(first.body.metadata.continue);
    await s.request('POST', CMS, cm('page-99', {}, { page: 'yes' }));
    const names = first.body.items.map((x: { metadata: { name: string } }) => x.metadata.name);
    let token = first.body.metadata.continue;
    while (token) {
      const page = await s.request(
        'GET',
        `${CMS}?limit=3&labelSelector=page%3Dyes&continue=${encodeURIComponent(token)}`,
      );
      assert.equal(page.status, 200);
      names.push(...page.body.items.map((x: { metadata: { name: string } }) => x.metadata.name));
      token = page.body.metadata.continue;
    }
    assert.deepEqual(names, ['page-0', 'page-1', 'page-2', 'page-3', 'page-4', 'page-5', 'page-6']);
    const all = await s.request('GET', `${CMS}?limit=2`);
    assert.ok(all.body.metadata.remainingItemCount > 0);
  });

  it('a bad continue token is 400', async () => {
    const r = await s.request('GET', `${CMS}?limit=1&continue=garbage`);
    assert.equal(r.status, 400);
  });
});

describe('patch', () => {
  it('applies JSON, merge and strategic merge patches', async () => {
    await s.request('POST', CMS, cm('p1', { a: '1', b: '2' }));
    const merge = await s.request(
      'PATCH',
      `${CMS}/p1`,
      { data: { b: null, c: '3' } },
      {
        'content-type': 'application/merge-patch+json',
      },
    );
    assert.equal(merge.status, 200);
    assert.deepEqual(merge.body.data, { a: '1', c: '3' });
    const json = await s.request('PATCH', `${CMS}/p1`, [{ op: 'replace', path: '/data/a', value: 'x' }], {
      'content-type': 'application/json-patch+json',
    });
    assert.deepEqual(json.body.data, { a: 'x', c: '3' });
    const failed = await s.request('PATCH', `${CMS}/p1`, [{ op: 'test', path: '/data/a', value: 'nope' }], {
      'content-type': 'application/json-patch+json',
    });
    assert.ok(failed.status === 422 || failed.status === 400, `status ${failed.status}`);
  });

  it('strategic merge patches merge containers by name', async () => {
    const deploy = {
      metadata: { name: 'smp' },
      spec: {
        selector: { matchLabels: { app: 'smp' } },
        template: {
          metadata: { labels: { app: 'smp' } },
          spec: {
            containers: [
              { name: 'a', image: 'one' },
              { name: 'b', image: 'two' },
            ],
          },
        },
      },
    };
    const created = await s.request('POST', '/apis/apps/v1/namespaces/default/deployments', deploy);
    assert.equal(created.status, 201, created.text);
    assert.equal(created.body.metadata.generation, 1);
    const r = await s.request(
      'PATCH',
      '/apis/apps/v1/namespaces/default/deployments/smp',
      { spec: { template: { spec: { containers: [{ name: 'b', image: 'three' }] } } } },
      { 'content-type': 'application/strategic-merge-patch+json' },
    );
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(
      r.body.spec.template.spec.containers.map(
        (c: { name: string; image: string }) => `${c.name}=${c.image}`,
      ),
      ['a=one', 'b=three'],
    );
    assert.equal(r.body.metadata.generation, 2);
  });

  it('the scale subresource reads and writes replicas', async () => {
    const get = await s.request('GET', '/apis/apps/v1/namespaces/default/deployments/smp/scale');
    assert.equal(get.body.kind, 'Scale');
    assert.equal(get.body.spec.replicas, 1);
    const r = await s.request(
      'PATCH',
      '/apis/apps/v1/namespaces/default/deployments/smp/scale',
      { spec: { replicas: 4 } },
      {
        'content-type': 'application/merge-patch+json',
      },
    );
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.spec.replicas, 4);
    const d = await s.request('GET', '/apis/apps/v1/namespaces/default/deployments/smp');
    assert.equal(d.body.spec.replicas, 4);
    const neg = await s.request('PUT', '/apis/apps/v1/namespaces/default/deployments/smp/scale', {
      kind: 'Scale',
      apiVersion: 'autoscaling/v1',
      metadata: { name: 'smp' },
      spec: { replicas: -1 },
    });
    assert.equal(neg.status, 422);
  });

  it('status writes go only through /status', async () => {
    const url = '/apis/apps/v1/namespaces/default/deployments/smp';
    const cur = (await s.request('GET', url)).body;
    const main = await s.request('PUT', url, { ...cur, status: { replicas: 9 } });
    assert.equal(main.body.status.replicas, undefined);
    const st = await s.request('PUT', `${url}/status`, {
      ...main.body,
      spec: { ...main.body.spec, replicas: 0 },
      status: { replicas: 9 },
    });
    assert.equal(st.status, 200, st.text);
    assert.equal(st.body.status.replicas, 9);
    assert.equal(st.body.spec.replicas, 4);
  });
});

describe('deletion with finalizers', () => {
  it('sets deletionTimestamp while finalizers remain, and deletes when the last one goes', async () => {
    await s.request('POST', CMS, { metadata: { name: 'fin', finalizers: ['example.com/hold'] }, data: {} });
    const del = await s.request('DELETE', `${CMS}/fin`);
    assert.equal(del.status, 202);
    assert.ok(del.body.metadata.deletionTimestamp);
    const still = await s.request('GET', `${CMS}/fin`);
    assert.equal(still.status, 200);
    const r = await s.request(
      'PATCH',
      `${CMS}/fin`,
      { metadata: { finalizers: null } },
      {
        'content-type': 'application/merge-patch+json',
      },
    );
    assert.equal(r.status, 200, r.text);
    assert.equal((await s.request('GET', `${CMS}/fin`)).status, 404);
  });

  it('foreground propagation adds the foregroundDeletion finalizer', async () => {
    await s.request('POST', CMS, cm('fg'));
    const del = await s.request('DELETE', `${CMS}/fg`, { propagationPolicy: 'Foreground' });
    assert.equal(del.status, 202);
    assert.deepEqual(del.body.metadata.finalizers, ['foregroundDeletion']);
  });

  it('an explicit Background policy replaces a pending orphan finalizer and deletes at once', async () => {
    await s.request('POST', CMS, cm('orphaning'));
    const first = await s.request('DELETE', `${CMS}/orphaning`, { propagationPolicy: 'Orphan' });
    assert.deepEqual(first.body.metadata.finalizers, ['orphan']);
    const again = await s.request('DELETE', `${CMS}/orphaning`, { propagationPolicy: 'Background' });
    assert.equal(again.status, 200, again.text);
    assert.equal((await s.request('GET', `${CMS}/orphaning`)).status, 404);
  });

  it('a terminating namespace refuses new objects with 403', async () => {
    await s.request('POST', '/api/v1/namespaces', { metadata: { name: 'doomed' } });
    const del = await s.request('DELETE', '/api/v1/namespaces/doomed');
    assert.ok(del.status === 200 || del.status === 202);
    const ns = await s.request('GET', '/api/v1/namespaces/doomed');
    assert.equal(ns.body.status.phase, 'Terminating');
    const r = await s.request('POST', '/api/v1/namespaces/doomed/configmaps', cm('x'));
    assert.equal(r.status, 403);
    assert.match(r.body.message, /because it is being terminated/);
  });
});

describe('services', () => {
  it('allocates distinct ClusterIPs and NodePorts, and refuses a taken one with 422', async () => {
    const svc = (name: string, extra: Record<string, unknown> = {}) => ({
      metadata: { name },
      spec: { ports: [{ port: 80 }], selector: { app: name }, ...extra },
    });
    const a = await s.request('POST', '/api/v1/namespaces/default/services', svc('sa', { type: 'NodePort' }));
    const b = await s.request('POST', '/api/v1/namespaces/default/services', svc('sb', { type: 'NodePort' }));
    assert.equal(a.status, 201, a.text);
    assert.match(a.body.spec.clusterIP, /^10\.43\.\d+\.\d+$/);
    assert.notEqual(a.body.spec.clusterIP, b.body.spec.clusterIP);
    const portA = a.body.spec.ports[0].nodePort;
    assert.ok(portA >= 30000 && portA <= 32767);
    assert.notEqual(portA, b.body.spec.ports[0].nodePort);
    assert.equal(a.body.spec.ports[0].targetPort, 80);
    const clash = await s.request(
      'POST',
      '/api/v1/namespaces/default/services',
      svc('sc', { clusterIP: a.body.spec.clusterIP }),
    );
    assert.equal(clash.status, 422);
    assert.match(clash.body.message, /already allocated/);
  });
});

describe('tables and discovery', () => {
  it('answers Table requests with upstream columns', async () => {
    const r = await s.request('GET', CMS, undefined, {
      accept: 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json',
    });
    assert.equal(r.body.kind, 'Table');
    assert.deepEqual(
      r.body.columnDefinitions.map((c: { name: string }) => c.name),
      ['Name', 'Data', 'Age'],
    );
    assert.equal(r.body.rows[0].object.kind, 'PartialObjectMetadata');
  });

  it('serves aggregated discovery when asked, legacy otherwise', async () => {
    const agg = await s.request('GET', '/apis', undefined, {
      accept: 'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json',
    });
    assert.match(agg.headers.get('content-type') ?? '', /as=APIGroupDiscoveryList/);
    const apps = agg.body.items.find((g: { metadata: { name: string } }) => g.metadata.name === 'apps');
    assert.ok(apps.versions[0].resources.some((r: { resource: string }) => r.resource === 'deployments'));
    const legacy = await s.request('GET', '/apis', undefined, { accept: 'application/json' });
    assert.equal(legacy.body.kind, 'APIGroupList');
    const v1 = await s.request('GET', '/api/v1');
    assert.ok(v1.body.resources.some((r: { name: string }) => r.name === 'pods/status'));
  });
});

describe('watch', () => {
  it('reads boolean query parameters as upstream: watch=True and watch=yes are watches, watch=False a list', async () => {
    const controller = new AbortController();
    const res = await fetch(`${s.url}${CMS}?watch=True&timeoutSeconds=1`, { signal: controller.signal });
    assert.equal(res.status, 200);
    await s.request('POST', CMS, cm('parsebool', {}));
    const reader = res.body!.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    controller.abort();
    assert.equal(JSON.parse(first.split('\n')[0]!).type, 'ADDED', 'a watch event, not a list');
    const list = await s.request('GET', `${CMS}?watch=False`);
    assert.equal(list.body.kind, 'ConfigMapList');
    // Only "0" and "false" in any case are false (Convert_Slice_string_To_bool): never a 400.
    const yes = await s.request('GET', `${CMS}?watch=yes&timeoutSeconds=1`);
    assert.equal(yes.status, 200);
    assert.equal(JSON.parse(yes.text.split('\n')[0]!).type, 'ADDED', 'a watch event, not a list');
    assert.equal((await s.request('GET', `${CMS}?watch=FALSE`)).body.kind, 'ConfigMapList');
    assert.equal((await s.request('GET', `${CMS}?pretty=true`)).status, 200);
  });

  it('streams one JSON event per line from a resourceVersion, with selector transitions', async () => {
    const start = (await s.request('GET', CMS)).body.metadata.resourceVersion;
    const controller = new AbortController();
    const res = await fetch(`${s.url}${CMS}?watch=true&resourceVersion=${start}&labelSelector=w%3Dyes`, {
      signal: controller.signal,
    });
    assert.equal(res.status, 200);
    await s.request('POST', CMS, cm('w1', {}, { w: 'yes' }));
    await s.request(
      'PATCH',
      `${CMS}/w1`,
      { data: { x: '1' } },
      { 'content-type': 'application/merge-patch+json' },
    );
    await s.request(
      'PATCH',
      `${CMS}/w1`,
      { metadata: { labels: { w: 'no' } } },
      { 'content-type': 'application/merge-patch+json' },
    );
    const reader = res.body!.getReader();
    let buf = '';
    const events: Array<{ type: string; object: { metadata: { name: string } } }> = [];
    while (events.length < 3) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += new TextDecoder().decode(value);
      let nl = buf.indexOf('\n');
      while (nl >= 0) {
        events.push(JSON.parse(buf.slice(0, nl)));
        buf = buf.slice(nl + 1);
        nl = buf.indexOf('\n');
      }
    }
    controller.abort();
    assert.deepEqual(
      events.map((e) => e.type),
      ['ADDED', 'MODIFIED', 'DELETED'],
    );
  });
});

describe('immutable fields', () => {
  it('refuses a changed deployment selector and changed data of an immutable configmap with 422', async () => {
    const url = '/apis/apps/v1/namespaces/default/deployments/smp';
    const sel = await s.request(
      'PATCH',
      url,
      {
        spec: {
          selector: { matchLabels: { app: 'other' } },
          template: { metadata: { labels: { app: 'other' } } },
        },
      },
      {
        'content-type': 'application/merge-patch+json',
      },
    );
    assert.equal(sel.status, 422, sel.text);
    assert.match(sel.body.message, /spec.selector: Invalid value: .*field is immutable/);
    await s.request('POST', CMS, { metadata: { name: 'frozen' }, data: { a: '1' }, immutable: true });
    const r = await s.request(
      'PATCH',
      `${CMS}/frozen`,
      { data: { a: '2' } },
      { 'content-type': 'application/merge-patch+json' },
    );
    assert.equal(r.status, 422);
    assert.match(r.body.message, /data: Forbidden: field is immutable when `immutable` is set/);
    const labels = await s.request(
      'PATCH',
      `${CMS}/frozen`,
      { metadata: { labels: { ok: 'yes' } } },
      {
        'content-type': 'application/merge-patch+json',
      },
    );
    assert.equal(labels.status, 200);
  });
});

describe('watch bookmarks and timeouts', () => {
  it('sends BOOKMARK events carrying the current resourceVersion when asked, and ends at timeoutSeconds', async () => {
    const started = performance.now();
    const res = await fetch(
      `${s.url}${CMS}?watch=true&allowWatchBookmarks=true&timeoutSeconds=1&resourceVersion=0&labelSelector=none%3Dnone`,
    );
    const text = await res.text();
    const elapsed = performance.now() - started;
    const events = text
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { type: string; object: { metadata: { resourceVersion: string } } });
    assert.ok(events.length >= 2, text);
    assert.ok(events.every((e) => e.type === 'BOOKMARK'));
    assert.match(events[0]!.object.metadata.resourceVersion, /^\d+$/);
    assert.ok(elapsed >= 900, `watch ended after ${elapsed} ms`);
  });
});

describe('resourceVersion semantics', () => {
  it('get with resourceVersion=0 serves the cache; list Exact reads a past snapshot; NotOlderThan waits', async () => {
    const created = await s.request('POST', CMS, cm('rv', { v: '1' }));
    const rv1 = created.body.metadata.resourceVersion;
    await s.request(
      'PATCH',
      `${CMS}/rv`,
      { data: { v: '2' } },
      { 'content-type': 'application/merge-patch+json' },
    );
    const cached = await s.request('GET', `${CMS}/rv?resourceVersion=0`);
    assert.equal(cached.status, 200);
    const exact = await s.request(
      'GET',
      `${CMS}?resourceVersion=${rv1}&resourceVersionMatch=Exact&fieldSelector=metadata.name%3Drv`,
    );
    assert.equal(exact.status, 200, exact.text);
    assert.equal(exact.body.metadata.resourceVersion, rv1);
    assert.equal(exact.body.items[0].data.v, '1');
    const newer = await s.request(
      'GET',
      `${CMS}?resourceVersion=${rv1}&resourceVersionMatch=NotOlderThan&fieldSelector=metadata.name%3Drv`,
    );
    assert.equal(newer.body.items[0].data.v, '2');
    const unset = await s.request('GET', `${CMS}?fieldSelector=metadata.name%3Drv`);
    assert.equal(unset.body.items[0].data.v, '2');
    const bad = await s.request('GET', `${CMS}?resourceVersionMatch=Exact`);
    assert.equal(bad.status, 400);
    const future = await s.request('GET', `${CMS}/rv?resourceVersion=99999999`);
    assert.equal(future.status, 504);
  });
});

describe('pods', () => {
  const PODS = '/api/v1/namespaces/default/pods';
  const pod = (name: string, extra: Record<string, unknown> = {}) => ({
    metadata: { name },
    spec: { containers: [{ name: 'c', image: 'busybox' }], ...extra },
  });

  it('defaults like upstream and starts Pending with a QoS class', async () => {
    const r = await s.request('POST', PODS, pod('defaults'));
    assert.equal(r.status, 201, r.text);
    assert.equal(r.body.spec.restartPolicy, 'Always');
    assert.equal(r.body.spec.dnsPolicy, 'ClusterFirst');
    assert.equal(r.body.spec.schedulerName, 'default-scheduler');
    assert.equal(r.body.spec.terminationGracePeriodSeconds, 30);
    assert.equal(r.body.spec.containers[0].imagePullPolicy, 'Always');
    assert.equal(r.body.spec.containers[0].terminationMessagePath, '/dev/termination-log');
    assert.equal(r.body.status.phase, 'Pending');
    assert.equal(r.body.status.qosClass, 'BestEffort');
  });

  it('refuses a patch naming another uid (a replaced object), as immutable', async () => {
    await s.request('POST', PODS, pod('uid-guard'));
    const r = await s.request(
      'PATCH',
      `${PODS}/uid-guard`,
      { metadata: { uid: 'not-this-one', labels: { adopted: 'yes' } } },
      { 'content-type': 'application/strategic-merge-patch+json' },
    );
    assert.equal(r.status, 422, r.text);
    assert.match(r.body.message, /metadata\.uid: Invalid value: "not-this-one": field is immutable/);
    const same = await s.request('GET', `${PODS}/uid-guard`);
    assert.equal(same.body.metadata.labels, undefined);
  });

  it('fills status.podIPs and hostIPs from podIP and hostIP, as upstream', async () => {
    await s.request('POST', PODS, pod('ips'));
    const r = await s.request(
      'PATCH',
      `${PODS}/ips/status`,
      { status: { podIP: '10.42.0.7', hostIP: '192.0.2.10' } },
      { 'content-type': 'application/merge-patch+json' },
    );
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body.status.podIPs, [{ ip: '10.42.0.7' }]);
    assert.deepEqual(r.body.status.hostIPs, [{ ip: '192.0.2.10' }]);
  });

  it('binds through pods/binding once, and deletes a bound pod gracefully', async () => {
    await s.request('POST', PODS, pod('bound'));
    const bind = await s.request('POST', `${PODS}/bound/binding`, {
      apiVersion: 'v1',
      kind: 'Binding',
      metadata: { name: 'bound' },
      target: { apiVersion: 'v1', kind: 'Node', name: 'node-a' },
    });
    assert.equal(bind.status, 201, bind.text);
    const again = await s.request('POST', `${PODS}/bound/binding`, {
      metadata: { name: 'bound' },
      target: { kind: 'Node', name: 'node-b' },
    });
    assert.equal(again.status, 409);
    const got = await s.request('GET', `${PODS}/bound`);
    assert.equal(got.body.spec.nodeName, 'node-a');
    assert.ok(
      got.body.status.conditions.some(
        (c: { type: string; status: string }) => c.type === 'PodScheduled' && c.status === 'True',
      ),
    );
    // A bound pod waits for its kubelet: deletionTimestamp + grace period.
    const del = await s.request('DELETE', `${PODS}/bound`);
    assert.equal(del.status, 202);
    assert.equal(del.body.metadata.deletionGracePeriodSeconds, 30);
    assert.equal((await s.request('GET', `${PODS}/bound`)).status, 200);
    // The kubelet's final delete with grace 0 removes it.
    const last = await s.request('DELETE', `${PODS}/bound?gracePeriodSeconds=0`);
    assert.equal(last.status, 200);
    assert.equal((await s.request('GET', `${PODS}/bound`)).status, 404);
  });

  it('deletes an unscheduled pod at once; dryRun deletes nothing', async () => {
    await s.request('POST', PODS, pod('quick'));
    const dry = await s.request('DELETE', `${PODS}/quick?dryRun=All`);
    assert.equal(dry.status, 200);
    assert.equal((await s.request('GET', `${PODS}/quick`)).status, 200);
    const del = await s.request('DELETE', `${PODS}/quick`);
    assert.equal(del.status, 200);
    assert.equal((await s.request('GET', `${PODS}/quick`)).status, 404);
  });

  it('deletecollection removes what the selector matches', async () => {
    for (const n of ['dc-1', 'dc-2']) await s.request('POST', CMS, cm(n, {}, { dc: 'yes' }));
    const r = await s.request('DELETE', `${CMS}?labelSelector=dc%3Dyes`);
    assert.equal(r.status, 200, r.text);
    assert.equal((await s.request('GET', `${CMS}?labelSelector=dc%3Dyes`)).body.items.length, 0);
  });
});

describe('kinds added at run time', () => {
  it('serves a kind registered after start, in discovery and CRUD, and forgets it when removed', async () => {
    s.api.registry.add({
      group: 'example.com',
      version: 'v1',
      kind: 'Widget',
      plural: 'widgets',
      singular: 'widget',
      namespaced: true,
      custom: true,
    });
    const groups = await s.request('GET', '/apis');
    assert.ok(groups.body.groups.some((g: { name: string }) => g.name === 'example.com'));
    const created = await s.request('POST', '/apis/example.com/v1/namespaces/default/widgets', {
      apiVersion: 'example.com/v1',
      kind: 'Widget',
      metadata: { name: 'w' },
      spec: { size: 3 },
    });
    assert.equal(created.status, 201, created.text);
    const got = await s.request('GET', '/apis/example.com/v1/namespaces/default/widgets/w');
    assert.equal(got.body.spec.size, 3);
    s.api.registry.remove('example.com', 'v1', 'widgets');
    assert.equal((await s.request('GET', '/apis/example.com/v1/namespaces/default/widgets/w')).status, 404);
    const after = await s.request('GET', '/apis');
    assert.ok(!after.body.groups.some((g: { name: string }) => g.name === 'example.com'));
  });
});

describe('server-side apply and managedFields', () => {
  const apply = (body: unknown, manager: string, extra = '') =>
    s.request('PATCH', `${CMS}/ssa?fieldManager=${manager}${extra}`, body, {
      'content-type': 'application/apply-patch+yaml',
    });
  const config = (data: Record<string, string>) => ({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'ssa' },
    data,
  });

  it('creates with an Apply entry, records Update entries, and 409s on a conflict unless forced', async () => {
    const created = await apply(config({ a: '1', b: '2' }), 'alice');
    assert.equal(created.status, 201, created.text);
    const entry = created.body.metadata.managedFields.find((m: { manager: string }) => m.manager === 'alice');
    assert.equal(entry.operation, 'Apply');
    assert.deepEqual(entry.fieldsV1, { 'f:data': { 'f:a': {}, 'f:b': {} } });

    // Another manager applying a different value for a field alice owns conflicts.
    const conflict = await apply(config({ a: 'bob' }), 'bob');
    assert.equal(conflict.status, 409, conflict.text);
    assert.equal(conflict.body.reason, 'Conflict');
    assert.match(conflict.body.message, /^Apply failed with 1 conflict: conflict with "alice": \.data\.a$/);
    assert.equal(conflict.body.details.causes[0].reason, 'FieldManagerConflict');
    // The same value is shared ownership, not a conflict.
    assert.equal((await apply(config({ b: '2' }), 'carol')).status, 200);
    // force=true takes the field.
    const forced = await apply(config({ a: 'bob' }), 'bob', '&force=true');
    assert.equal(forced.status, 200, forced.text);
    assert.equal(forced.body.data.a, 'bob');

    // A plain update makes its manager own what it changed.
    const edited = await s.request(
      'PATCH',
      `${CMS}/ssa?fieldManager=editor`,
      { data: { b: 'edited' } },
      {
        'content-type': 'application/merge-patch+json',
      },
    );
    const editor = edited.body.metadata.managedFields.find(
      (m: { manager: string }) => m.manager === 'editor',
    );
    assert.equal(editor.operation, 'Update');
    assert.deepEqual(editor.fieldsV1, { 'f:data': { 'f:b': {} } });
    const again = await apply(config({ a: 'bob', b: 'back' }), 'bob');
    assert.equal(again.status, 409);
    assert.match(again.body.message, /conflict with "editor" using v1: \.data\.b/);
  });

  it('removes fields a manager stops applying (when nobody else owns them)', async () => {
    await s.request(
      'PATCH',
      `${CMS}/prune?fieldManager=solo`,
      { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'prune' }, data: { keep: '1', drop: '2' } },
      {
        'content-type': 'application/apply-patch+yaml',
      },
    );
    const r = await s.request(
      'PATCH',
      `${CMS}/prune?fieldManager=solo`,
      { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'prune' }, data: { keep: '1' } },
      {
        'content-type': 'application/apply-patch+yaml',
      },
    );
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body.data, { keep: '1' });
  });
});

describe('versions that share storage', () => {
  it('shows a core/v1 Event through events.k8s.io/v1 and back', async () => {
    const created = await s.request('POST', '/api/v1/namespaces/default/events', {
      metadata: { name: 'shared.1' },
      involvedObject: { kind: 'Pod', name: 'p', namespace: 'default' },
      reason: 'Started',
      message: 'hello',
      type: 'Normal',
      count: 2,
    });
    assert.equal(created.status, 201, created.text);
    const v1 = await s.request('GET', '/apis/events.k8s.io/v1/namespaces/default/events/shared.1');
    assert.equal(v1.status, 200, v1.text);
    assert.equal(v1.body.apiVersion, 'events.k8s.io/v1');
    assert.equal(v1.body.note, 'hello');
    assert.equal(v1.body.regarding.name, 'p');
    assert.equal(v1.body.deprecatedCount, 2);
    const made = await s.request('POST', '/apis/events.k8s.io/v1/namespaces/default/events', {
      metadata: { name: 'shared.2' },
      regarding: { kind: 'Pod', name: 'q', namespace: 'default' },
      reason: 'Pulled',
      note: 'from v1',
      type: 'Normal',
      action: 'Pull',
      reportingController: 'skiff.io/kubelet',
      reportingInstance: 'node-a',
      eventTime: '2026-11-21T00:00:00.000000Z',
    });
    assert.equal(made.status, 201, made.text);
    const core = await s.request('GET', '/api/v1/namespaces/default/events/shared.2');
    assert.equal(core.body.message, 'from v1');
    assert.equal(core.body.involvedObject.name, 'q');
    const filtered = await s.request(
      'GET',
      '/api/v1/namespaces/default/events?fieldSelector=involvedObject.name%3Dq',
    );
    assert.equal(filtered.body.items.length, 1);
  });

  it('converts HorizontalPodAutoscalers between autoscaling/v1 and v2', async () => {
    const created = await s.request(
      'POST',
      '/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers',
      {
        metadata: { name: 'h' },
        spec: {
          scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web' },
          maxReplicas: 5,
          targetCPUUtilizationPercentage: 70,
        },
      },
    );
    assert.equal(created.status, 201, created.text);
    assert.equal(created.body.spec.targetCPUUtilizationPercentage, 70);
    const v2 = await s.request('GET', '/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers/h');
    assert.equal(v2.body.apiVersion, 'autoscaling/v2');
    assert.equal(v2.body.spec.metrics[0].resource.target.averageUtilization, 70);
    assert.equal(v2.body.spec.targetCPUUtilizationPercentage, undefined);
  });
});

describe('inlined Go structs', () => {
  it('accepts probe handlers, volume sources and ingress rule values under fieldValidation=Strict', async () => {
    const p = await s.request('POST', '/api/v1/namespaces/default/pods?fieldValidation=Strict', {
      metadata: { name: 'probed' },
      spec: {
        containers: [
          {
            name: 'c',
            image: 'busybox',
            readinessProbe: { tcpSocket: { port: 80 } },
            livenessProbe: { httpGet: { path: '/', port: 80 } },
            volumeMounts: [{ name: 'v', mountPath: '/v' }],
          },
        ],
        volumes: [{ name: 'v', emptyDir: {} }],
      },
    });
    assert.equal(p.status, 201, p.text);
    assert.equal(p.body.spec.containers[0].readinessProbe.tcpSocket.port, 80);
    const ing = await s.request(
      'POST',
      '/apis/networking.k8s.io/v1/namespaces/default/ingresses?fieldValidation=Strict',
      {
        metadata: { name: 'ing' },
        spec: {
          rules: [
            {
              host: 'web.example.com',
              http: {
                paths: [
                  {
                    path: '/',
                    pathType: 'Prefix',
                    backend: { service: { name: 'web', port: { number: 80 } } },
                  },
                ],
              },
            },
          ],
        },
      },
    );
    assert.equal(ing.status, 201, ing.text);
    const bad = await s.request('POST', '/api/v1/namespaces/default/pods?fieldValidation=Strict', {
      metadata: { name: 'typo' },
      spec: { containers: [{ name: 'c', image: 'busybox', readinessProbe: { tcpSockt: { port: 80 } } }] },
    });
    assert.equal(bad.status, 400);
    assert.match(bad.body.message, /unknown field "spec.containers\[0\].readinessProbe.tcpSockt"/);
  });
});

describe('namespace finalization', () => {
  it('completes the deletion once /finalize clears spec.finalizers', async () => {
    await s.request('POST', '/api/v1/namespaces', { metadata: { name: 'finalized' } });
    const created = await s.request('GET', '/api/v1/namespaces/finalized');
    assert.deepEqual(created.body.spec.finalizers, ['kubernetes']);
    await s.request('DELETE', '/api/v1/namespaces/finalized');
    const ns = (await s.request('GET', '/api/v1/namespaces/finalized')).body;
    const r = await s.request('PUT', '/api/v1/namespaces/finalized/finalize', {
      ...ns,
      spec: { finalizers: [] },
    });
    assert.equal(r.status, 200, r.text);
    assert.equal((await s.request('GET', '/api/v1/namespaces/finalized')).status, 404);
  });
});

describe('service patches allocate', () => {
  it('gives a nodePort when a patch turns a ClusterIP service into NodePort, and an IP to a former ExternalName', async () => {
    const SVCS = '/api/v1/namespaces/default/services';
    await s.request('POST', SVCS, {
      metadata: { name: 'grow' },
      spec: { ports: [{ port: 80 }], selector: { a: 'b' } },
    });
    const r = await s.request(
      'PATCH',
      `${SVCS}/grow`,
      { spec: { type: 'NodePort' } },
      { 'content-type': 'application/merge-patch+json' },
    );
    assert.equal(r.status, 200, r.text);
    assert.ok(r.body.spec.ports[0].nodePort >= 30000);
    await s.request('POST', SVCS, {
      metadata: { name: 'ext' },
      spec: { type: 'ExternalName', externalName: 'example.com' },
    });
    const c = await s.request(
      'PATCH',
      `${SVCS}/ext`,
      { spec: { type: 'ClusterIP', externalName: null, ports: [{ port: 80 }] } },
      {
        'content-type': 'application/merge-patch+json',
      },
    );
    assert.equal(c.status, 200, c.text);
    assert.match(c.body.spec.clusterIP, /^10\.43\./);
  });
});

describe('service nodePort rules', () => {
  it('refuses a nodePort on a ClusterIP service with 422', async () => {
    const r = await s.request('POST', '/api/v1/namespaces/default/services', {
      metadata: { name: 'np-on-cip' },
      spec: { type: 'ClusterIP', ports: [{ port: 80, nodePort: 30080 }] },
    });
    assert.equal(r.status, 422, r.text);
    assert.match(
      r.body.message,
      /spec.ports\[0\].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'/,
    );
  });

  it('clears nodePorts when a NodePort service becomes ClusterIP', async () => {
    const SVCS = '/api/v1/namespaces/default/services';
    await s.request('POST', SVCS, {
      metadata: { name: 'shrink' },
      spec: { type: 'NodePort', ports: [{ port: 80 }] },
    });
    const r = await s.request(
      'PATCH',
      `${SVCS}/shrink`,
      { spec: { type: 'ClusterIP' } },
      { 'content-type': 'application/merge-patch+json' },
    );
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.spec.ports[0].nodePort, undefined);
  });
});

describe('paths', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer();
  });
  after(() => t.close());

  it('percent-escaped names are decoded, as Go decodes URL.Path (client-go escapes ":")', async () => {
    const created = await t.request('POST', '/apis/rbac.authorization.k8s.io/v1/clusterroles', {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name: 'system:escaped' },
    });
    assert.equal(created.status, 201, created.text);
    const got = await t.request('GET', '/apis/rbac.authorization.k8s.io/v1/clusterroles/system%3Aescaped');
    assert.equal(got.status, 200, got.text);
    assert.equal(got.body.metadata.name, 'system:escaped');
    // A malformed escape finds nothing rather than failing the request.
    assert.equal(
      (await t.request('GET', '/apis/rbac.authorization.k8s.io/v1/clusterroles/bad%E0%A4')).status,
      404,
    );
  });
});

describe('query parameters and methods upstream accepts', () => {
  const statusOf = (r: { body: any }) => [r.body.kind, r.body.code, r.body.reason];

  it('takes ?timeout= as a Go duration on every write, and answers 400 to one that does not parse', async () => {
    const created = await s.request('POST', `${CMS}?timeout=30s`, cm('deadline'));
    assert.equal(created.status, 201, created.text);
    const cur = created.body;
    const updated = await s.request('PUT', `${CMS}/deadline?timeout=1m0s`, { ...cur, data: { a: '2' } });
    assert.equal(updated.status, 200, updated.text);
    const patched = await s.request(
      'PATCH',
      `${CMS}/deadline?timeout=500ms`,
      { data: { b: '3' } },
      {
        'content-type': 'application/merge-patch+json',
      },
    );
    assert.equal(patched.status, 200, patched.text);
    assert.equal((await s.request('GET', `${CMS}/deadline?timeout=1.5s`)).status, 200);
    assert.equal((await s.request('DELETE', `${CMS}/deadline?timeout=1m`)).status, 200);
    const collection = await s.request('DELETE', `${CMS}?labelSelector=none%3Dhere&timeout=0s`);
    assert.equal(collection.status, 200, collection.text);

    const missingUnit = await s.request('POST', `${CMS}?timeout=30`, cm('never'));
    assert.equal(missingUnit.status, 400);
    assert.deepEqual(statusOf(missingUnit), ['Status', 400, 'BadRequest']);
    assert.equal(
      missingUnit.body.message,
      'invalid timeout specified in the request URL - time: missing unit in duration "30"',
    );
    const garbage = await s.request('PUT', `${CMS}/never?timeout=soon`, cm('never'));
    assert.equal(garbage.status, 400);
    assert.match(garbage.body.message, /time: invalid duration "soon"/);
    assert.equal((await s.request('GET', `${CMS}/never`)).status, 404, 'the refused create wrote nothing');
  });

  it('answers 504 Timeout to a write that outlasts its ?timeout=, and drops its late answer', async () => {
    // A store whose create of the "slow" object waits until released.
    const memory = createMemoryStore();
    let release = () => {};
    let landed: Promise<unknown> = Promise.resolve();
    const store: Store = Object.create(memory, {
      create: {
        value(key: string, value: string) {
          if (!key.endsWith('/slow')) return memory.create(key, value);
          landed = new Promise<void>((r) => {
            release = r;
          }).then(() => memory.create(key, value));
          return landed;
        },
      },
    });
    const slow = await startTestServer(store);
    try {
      const r = await slow.request('POST', `${CMS}?timeout=20ms`, cm('slow'));
      assert.equal(r.status, 504);
      assert.deepEqual(r.body, {
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message: 'Timeout: request did not complete within requested timeout - context deadline exceeded',
        reason: 'Timeout',
        details: {},
        code: 504,
      });
      release();
      await landed;
      // As upstream, the write itself was not undone.
      assert.equal((await slow.request('GET', `${CMS}/slow`)).status, 200);
    } finally {
      release();
      await slow.close();
    }
  });

  it('indents responses for ?pretty (as strconv.ParseBool reads it) and for curl, errors included', async () => {
    await s.request('POST', CMS, cm('pretty'));
    const compact = await s.request('GET', `${CMS}/pretty`);
    assert.equal(compact.text, JSON.stringify(compact.body));
    for (const value of ['true', '1', 't', 'True']) {
      const r = await s.request('GET', `${CMS}/pretty?pretty=${value}`);
      assert.equal(r.text, JSON.stringify(compact.body, null, 2), `pretty=${value}`);
    }
    // Not a boolean ParseBool knows: not pretty, and no error (upstream ignores it).
    const yes = await s.request('GET', `${CMS}/pretty?pretty=yes`);
    assert.equal(yes.status, 200);
    assert.equal(yes.text, JSON.stringify(compact.body));
    const list = await s.request('GET', `${CMS}?pretty=true`);
    assert.equal(list.text, JSON.stringify(list.body, null, 2));
    const missing = await s.request('GET', `${CMS}/nope?pretty=true`);
    assert.equal(missing.status, 404);
    assert.equal(missing.text, JSON.stringify(missing.body, null, 2));
    const curl = await s.request('GET', `${CMS}/pretty`, undefined, { 'user-agent': 'curl/8.5.0' });
    assert.equal(curl.text, JSON.stringify(compact.body, null, 2));
    const curlCompact = await s.request('GET', `${CMS}/pretty?pretty=false`, undefined, {
      'user-agent': 'curl/8.5.0',
    });
    assert.equal(curlCompact.text, JSON.stringify(compact.body));
  });

  it('answers 405 MethodNotAllowed with a Status to a method no route serves', async () => {
    await s.request('POST', CMS, cm('methods'));
    const paths = [CMS, `${CMS}/methods`, '/api/v1/namespaces/default/pods/p/status', '/version', '/api'];
    for (const method of ['PROPFIND', 'MKCOL', 'LOCK', 'PURGE', 'REPORT', 'SEARCH']) {
      for (const path of paths) {
        const r = await s.request(method, path);
        assert.equal(r.status, 405, `${method} ${path}`);
        assert.deepEqual(r.body, {
          kind: 'Status',
          apiVersion: 'v1',
          metadata: {},
          status: 'Failure',
          message: 'the server does not allow this method on the requested resource',
          reason: 'MethodNotAllowed',
          details: {},
          code: 405,
        });
      }
    }
    // Known methods on a path without that route: PUT or PATCH on a
    // collection, POST on an object (it would have created one).
    assert.equal((await s.request('PUT', CMS, cm('methods'))).status, 405);
    assert.equal((await s.request('PATCH', CMS, {})).status, 405);
    const post = await s.request('POST', `${CMS}/other`, cm('other'));
    assert.deepEqual(statusOf(post), ['Status', 405, 'MethodNotAllowed']);
    assert.equal((await s.request('GET', `${CMS}/other`)).status, 404);
    // An unknown resource is still 404 whatever the method.
    assert.equal((await s.request('PROPFIND', '/api/v1/namespaces/default/nothings')).status, 404);
  });
});

describe('write options validated as upstream', () => {
  const MERGE = { 'content-type': 'application/merge-patch+json' };
  const APPLY = { 'content-type': 'application/apply-patch+yaml' };

  it('answers 422 Invalid on CreateOptions, UpdateOptions and PatchOptions, before reading the body', async () => {
    const create = await s.request('POST', `${CMS}?fieldValidation=Bogus`, cm('opts'));
    assert.equal(create.status, 422, create.text);
    assert.equal(create.body.reason, 'Invalid');
    assert.equal(
      create.body.message,
      'CreateOptions.meta.k8s.io "" is invalid: fieldValidation: Unsupported value: "Bogus": supported values: "Ignore", "Strict", "Warn"',
    );
    assert.deepEqual(create.body.details, {
      group: 'meta.k8s.io',
      kind: 'CreateOptions',
      causes: [
        {
          reason: 'FieldValueNotSupported',
          message: 'Unsupported value: "Bogus": supported values: "Ignore", "Strict", "Warn"',
          field: 'fieldValidation',
        },
      ],
    });
    assert.equal((await s.request('GET', `${CMS}/opts`)).status, 404);

    // Validated before the body is read: even a malformed one gets the 422.
    const update = await s.request('PUT', `${CMS}/opts?dryRun=Some`, '{not json');
    assert.equal(update.status, 422, update.text);
    assert.match(
      update.body.message,
      /^UpdateOptions\.meta\.k8s\.io "" is invalid: dryRun: Unsupported value/,
    );

    await s.request('POST', CMS, cm('opts'));
    const forced = await s.request('PATCH', `${CMS}/opts?force=true`, { data: { b: '2' } }, MERGE);
    assert.equal(forced.status, 422, forced.text);
    assert.equal(
      forced.body.message,
      'PatchOptions.meta.k8s.io "" is invalid: force: Forbidden: may not be specified for non-apply patch',
    );
    const manager = 'm'.repeat(129);
    const both = await s.request('PATCH', `${CMS}/opts?fieldManager=${manager}`, cm('opts'), APPLY);
    assert.equal(both.status, 422, both.text);
    assert.deepEqual(
      both.body.details.causes.map((c: { field: string; reason: string }) => [c.field, c.reason]),
      [['fieldManager', 'FieldValueTooLong']],
    );
    const unnamed = await s.request('PATCH', `${CMS}/opts`, cm('opts'), APPLY);
    assert.equal(unnamed.status, 422, unnamed.text);
    assert.equal(
      unnamed.body.message,
      'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch',
    );
    assert.equal((await s.request('GET', `${CMS}/opts`)).body.data.b, undefined, 'no patch was applied');
  });

  it('accepts the values upstream accepts', async () => {
    for (const mode of ['Strict', 'Warn', 'Ignore']) {
      const r = await s.request(
        'POST',
        `${CMS}?fieldValidation=${mode}&dryRun=All`,
        cm(`ok-${mode.toLowerCase()}`),
      );
      assert.equal(r.status, 201, `${mode}: ${r.text}`);
    }
    const applied = await s.request(
      'PATCH',
      `${CMS}/applied-opts?fieldManager=me&force=false`,
      cm('applied-opts'),
      APPLY,
    );
    assert.equal(applied.status, 201, applied.text);
  });
});

describe('list options decoded as upstream', () => {
  it('answers 400 to a timeoutSeconds that is not an integer, on a list and on a watch', async () => {
    for (const query of ['timeoutSeconds=soon', 'watch=true&timeoutSeconds=1.5']) {
      const r = await s.request('GET', `${CMS}?${query}`);
      assert.equal(r.status, 400, `${query}: ${r.text}`);
      assert.equal(r.body.reason, 'BadRequest');
      assert.match(r.body.message, /^strconv\.ParseInt: parsing ".*": invalid syntax$/);
    }
    assert.equal((await s.request('GET', `${CMS}?timeoutSeconds=5`)).body.kind, 'ConfigMapList');
  });
});

describe('the bindings resource', () => {
  const PODS = '/api/v1/namespaces/default/pods';
  const BINDINGS = '/api/v1/namespaces/default/bindings';
  const binding = (pod: string, node: string) => ({
    apiVersion: 'v1',
    kind: 'Binding',
    metadata: { name: pod },
    target: { apiVersion: 'v1', kind: 'Node', name: node },
  });

  it('binds the pod its body names, once, as pods/binding does', async () => {
    await s.request('POST', PODS, {
      metadata: { name: 'bound-by-name' },
      spec: { containers: [{ name: 'c', image: 'busybox' }] },
    });
    const r = await s.request('POST', BINDINGS, binding('bound-by-name', 'node-a'));
    assert.equal(r.status, 201, r.text);
    assert.equal(r.body.status, 'Success');
    const pod = (await s.request('GET', `${PODS}/bound-by-name`)).body;
    assert.equal(pod.spec.nodeName, 'node-a');
    assert.ok(pod.status.conditions.some((c: { type: string }) => c.type === 'PodScheduled'));
    const again = await s.request('POST', BINDINGS, binding('bound-by-name', 'node-b'));
    assert.equal(again.status, 409);
    assert.equal(again.body.reason, 'Conflict');
    const missing = await s.request('POST', BINDINGS, binding('no-such-pod', 'node-a'));
    assert.equal(missing.status, 404);
    assert.equal(missing.body.message, 'pods "no-such-pod" not found');
  });

  it('is create-only: in discovery, and 405 for every other verb', async () => {
    const v1 = (await s.request('GET', '/api/v1')).body;
    const entry = v1.resources.find((r: { name: string }) => r.name === 'bindings');
    assert.deepEqual([entry.kind, entry.namespaced, entry.verbs], ['Binding', true, ['create']]);
    assert.equal((await s.request('GET', BINDINGS)).status, 405);
    assert.equal((await s.request('GET', `${BINDINGS}/x`)).status, 405);
    assert.equal((await s.request('DELETE', `${BINDINGS}/x`)).status, 405);
  });
});

describe('delete options validated as upstream', () => {
  it('answers 422 Invalid on DeleteOptions for a bad propagationPolicy, dryRun or both orphan settings', async () => {
    await s.request('POST', CMS, cm('del-opts'));
    const policy = await s.request('DELETE', `${CMS}/del-opts?propagationPolicy=Nope`);
    assert.equal(policy.status, 422, policy.text);
    assert.equal(
      policy.body.message,
      'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Unsupported value: "Nope": supported values: "Foreground", "Background", "Orphan", "nil"',
    );
    const both = await s.request('DELETE', `${CMS}/del-opts`, {
      kind: 'DeleteOptions',
      apiVersion: 'v1',
      propagationPolicy: 'Foreground',
      orphanDependents: false,
    });
    assert.equal(both.status, 422, both.text);
    assert.equal(
      both.body.message,
      'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Invalid value: "Foreground": orphanDependents and deletionPropagation cannot be both set',
    );
    const dryRun = await s.request('DELETE', `${CMS}/del-opts`, { kind: 'DeleteOptions', dryRun: ['Some'] });
    assert.equal(dryRun.status, 422, dryRun.text);
    assert.deepEqual(
      dryRun.body.details.causes.map((c: { field: string }) => c.field),
      ['dryRun'],
    );
    const collection = await s.request('DELETE', `${CMS}?dryRun=Some`);
    assert.equal(collection.status, 422, collection.text);
    assert.equal((await s.request('GET', `${CMS}/del-opts`)).status, 200, 'nothing was deleted');
  });

  it('takes a negative gracePeriodSeconds as 1 s, and a dryRun in the body as a dry run', async () => {
    const dry = await s.request('DELETE', `${CMS}/del-opts`, { kind: 'DeleteOptions', dryRun: ['All'] });
    assert.equal(dry.status, 200, dry.text);
    assert.equal((await s.request('GET', `${CMS}/del-opts`)).status, 200, 'a dry run deletes nothing');
    const r = await s.request('DELETE', `${CMS}/del-opts?gracePeriodSeconds=-5`);
    assert.equal(r.status, 200, r.text);
    assert.equal((await s.request('GET', `${CMS}/del-opts`)).status, 404);
    const nan = await s.request('DELETE', `${CMS}/del-opts?gracePeriodSeconds=soon`);
    assert.equal(nan.status, 400);
  });
});

describe('subresource write options validated as upstream', () => {
  it('answers 422 Invalid to bad options on a status update, a binding and an eviction', async () => {
    await s.request('POST', CMS, cm('sub-opts'));
    const pod = (
      await s.request('POST', '/api/v1/namespaces/default/pods', {
        metadata: { name: 'sub-opts' },
        spec: { containers: [{ name: 'c', image: 'busybox' }] },
      })
    ).body;
    const POD = '/api/v1/namespaces/default/pods/sub-opts';
    const status = await s.request('PUT', `${POD}/status?fieldValidation=Loose`, pod);
    assert.equal(status.status, 422, status.text);
    assert.match(status.body.message, /^UpdateOptions\.meta\.k8s\.io "" is invalid: fieldValidation/);
    const binding = await s.request('POST', `${POD}/binding?dryRun=Maybe`, {
      metadata: { name: 'sub-opts' },
      target: { kind: 'Node', name: 'n' },
    });
    assert.equal(binding.status, 422, binding.text);
    assert.match(binding.body.message, /^CreateOptions\.meta\.k8s\.io "" is invalid: dryRun/);
    const eviction = await s.request('POST', `${POD}/eviction?dryRun=Maybe`, {
      apiVersion: 'policy/v1',
      kind: 'Eviction',
      metadata: { name: 'sub-opts' },
    });
    assert.equal(eviction.status, 422, eviction.text);
    const after = (await s.request('GET', POD)).body;
    assert.equal(after.spec.nodeName, undefined, 'not bound');
    assert.equal(after.metadata.deletionTimestamp, undefined, 'not evicted');
  });
});
