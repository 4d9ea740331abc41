// Walks discovery as a client does (/api, /apis, then each group version's
// resource list) and asks every advertised resource and subresource with
// every advertised verb. What is advertised must be served: the answer may
// be an error about the request or the object (400, 422, an object's
// NotFound, a 503 for a kubelet that is not there), but never the route-level
// 404 "the server could not find the requested resource", nor a 405.
//
// Objects are addressed by a name that does not exist, so a 404 must be the
// NotFound of that very object (its details name it), which only a handler
// that is routed produces.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startTestServer, type TestResponse, type TestServer } from './testing.ts';

const ROUTE_404 = 'the server could not find the requested resource';
const MISSING = 'discovery-walk-missing';
const NAMESPACE = 'discovery-walk';

interface APIResource {
  name: string;
  namespaced: boolean;
  verbs: string[];
}

let t: TestServer;

before(async () => {
  t = await startTestServer();
  const ns = await t.request('POST', '/api/v1/namespaces', { metadata: { name: NAMESPACE } });
  assert.equal(ns.status, 201, ns.text);
});

after(() => t.close());

/** Every group version's prefix (/api/v1, /apis/apps/v1, ...), from /api and /apis. */
async function groupVersions(): Promise<string[]> {
  const api = await t.request('GET', '/api');
  assert.equal(api.status, 200, api.text);
  const apis = await t.request('GET', '/apis');
  assert.equal(apis.status, 200, apis.text);
  const legacy = (api.body.versions as string[]).map((v) => `/api/${v}`);
  const groups = (apis.body.groups as Array<{ versions: Array<{ groupVersion: string }> }>).flatMap((g) =>
    g.versions.map((v) => `/apis/${v.groupVersion}`),
  );
  return [...legacy, ...groups];
}

/** The HTTP request a verb makes on a collection or an object path. */
function requestFor(verb: string, collection: string): [method: string, path: string, body?: unknown] {
  const object = `${collection}/${MISSING}`;
  switch (verb) {
    case 'list':
      return ['GET', collection];
    case 'watch':
      return ['GET', `${collection}?watch=true`];
    case 'create':
      return ['POST', collection, {}];
    case 'deletecollection':
      // A selector that matches nothing: the walk must not delete what the server needs.
      return ['DELETE', `${collection}?labelSelector=discovery-walk%3Dnothing`];
    case 'get':
      return ['GET', object];
    case 'update':
      return ['PUT', object, { metadata: { name: MISSING } }];
    case 'patch':
      return ['PATCH', object, {}];
    case 'delete':
      return ['DELETE', object];
    default:
      throw new Error(`discovery advertises an unknown verb ${verb}`);
  }
}

/** For a subresource, every verb addresses the parent object: /RESOURCE/MISSING/SUB. */
function subresourceRequest(verb: string, collection: string, sub: string): [string, string, unknown?] {
  const path = `${collection}/${MISSING}/${sub}`;
  const method = { get: 'GET', create: 'POST', update: 'PUT', patch: 'PATCH', delete: 'DELETE' }[verb];
  if (!method) throw new Error(`discovery advertises verb ${verb} on subresource ${sub}`);
  return [method, path, method === 'GET' || method === 'DELETE' ? undefined : {}];
}

/** A watch's status and headers; the stream itself is left at once. */
async function watchAnswer(path: string): Promise<TestResponse> {
  const abort = new AbortController();
  const res = await fetch(`${t.url}${path}`, { signal: abort.signal });
  if (res.status === 200) {
    abort.abort();
    return { status: 200, headers: res.headers, body: undefined, text: '' };
  }
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: JSON.parse(text), text };
}

/** Why the answer shows the route is not served, or undefined when it is served. */
function notServed(r: TestResponse): string | undefined {
  if (r.status === 405) return `405 ${r.text}`;
  if (r.status !== 404) return undefined;
  if (r.body?.message === ROUTE_404) return 'the route-level 404';
  if (r.body?.details?.name !== MISSING) return `a 404 that is not the object's NotFound: ${r.text}`;
  return undefined;
}

test('every resource and subresource in discovery is served with every advertised verb', async () => {
  const failures: string[] = [];
  let asked = 0;
  for (const prefix of await groupVersions()) {
    const list = await t.request('GET', prefix);
    assert.equal(list.status, 200, `${prefix}: ${list.text}`);
    for (const resource of list.body.resources as APIResource[]) {
      const [plural, sub] = resource.name.split('/', 2) as [string, string | undefined];
      const collection = resource.namespaced
        ? `${prefix}/namespaces/${NAMESPACE}/${plural}`
        : `${prefix}/${plural}`;
      for (const verb of resource.verbs) {
        const [method, path, body] = sub
          ? subresourceRequest(verb, collection, sub)
          : requestFor(verb, collection);
        const headers = method === 'PATCH' ? { 'content-type': 'application/merge-patch+json' } : undefined;
        const r = verb === 'watch' ? await watchAnswer(path) : await t.request(method, path, body, headers);
        asked++;
        const why = notServed(r);
        if (why) failures.push(`${prefix} ${resource.name} ${verb} (${method} ${path}): ${why}`);
      }
    }
  }
  assert.ok(asked > 100, `the walk asked only ${asked} questions`);
  assert.deepEqual(failures, []);
});

test('the walk tells a route-level 404 from an object NotFound', async () => {
  const route = await t.request('GET', `/api/v1/namespaces/${NAMESPACE}/pods/${MISSING}/no-such-subresource`);
  assert.equal(notServed(route), 'the route-level 404');
  const object = await t.request('GET', `/api/v1/namespaces/${NAMESPACE}/pods/${MISSING}`);
  assert.equal(notServed(object), undefined);
  const other = await t.request('GET', `/api/v1/namespaces/${NAMESPACE}/pods/someone-else`);
  assert.match(notServed(other) ?? '', /not the object's NotFound/);
});
