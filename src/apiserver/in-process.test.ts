import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { KubeObject } from '../api/meta.ts';
import type { WatchEvent } from '../client/transport.ts';
import { createInProcessTransport } from './in-process.ts';
import { startTestServer, type TestServer } from './testing.ts';

const ADMIN = { name: 'test-admin', groups: ['system:masters'] };

describe('the in-process transport', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer();
  });
  after(() => s.close());

  const watchConfigMaps = (query: Record<string, string> = {}) => {
    const events: WatchEvent[] = [];
    const handle = createInProcessTransport(s.api, ADMIN).watch(
      { path: '/api/v1/namespaces/default/configmaps', query },
      (e) => events.push(e),
      () => {},
    );
    return { events, stop: () => handle.stop() };
  };
  const until = async (cond: () => boolean) => {
    for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(cond());
  };

  // Watch events reach in-process watchers as objects, without JSON in
  // between: each watcher must get its own copy, since the watch cache's
  // objects are shared by every watcher and by reads.
  it('gives each watcher its own copy of every event, as an HTTP watcher would decode it', async () => {
    const a = watchConfigMaps();
    const b = watchConfigMaps();
    const made = await s.request('POST', '/api/v1/namespaces/default/configmaps', {
      metadata: { name: 'shared', labels: { x: '1' } },
      data: { k: 'v' },
    });
    assert.equal(made.status, 201);
    await until(() => a.events.length === 1 && b.events.length === 1);
    const ea = a.events[0]!;
    const eb = b.events[0]!;
    assert.equal(ea.type, 'ADDED');
    assert.deepEqual(ea.object, eb.object);
    assert.notEqual(ea.object, eb.object);
    // What an HTTP watcher gets, after its JSON round trip.
    assert.deepEqual(ea.object, JSON.parse(JSON.stringify(made.body)));

    // A watcher that mutates its event changes nothing for anyone else.
    (ea.object as KubeObject).metadata.labels!.x = 'mutated';
    assert.equal((eb.object as KubeObject).metadata.labels!.x, '1');
    const read = await s.request('GET', '/api/v1/namespaces/default/configmaps/shared?resourceVersion=0');
    assert.equal(read.body.metadata.labels.x, '1');
    a.stop();
    b.stop();
  });

  // Response bodies reach in-process clients as values too (no JSON text in
  // between): a read from the watch cache must still be the client's own.
  it("answers a request with the client's own copy of the body, errors as upstream's Status", async () => {
    const t = createInProcessTransport(s.api, ADMIN);
    const made = await t.request({
      method: 'POST',
      path: '/api/v1/namespaces/default/configmaps',
      body: { metadata: { name: 'answered' }, data: { k: 'v' } },
    });
    assert.equal(made.status, 201);
    const path = '/api/v1/namespaces/default/configmaps/answered';
    const read = await t.request({ method: 'GET', path, query: { resourceVersion: '0' } });
    const body = read.body as KubeObject & { data: Record<string, string> };
    assert.deepEqual(body.data, { k: 'v' });
    assert.equal(body.metadata.resourceVersion, (made.body as KubeObject).metadata.resourceVersion);
    body.data.k = 'mutated by the client';
    const again = await t.request({ method: 'GET', path, query: { resourceVersion: '0' } });
    assert.deepEqual((again.body as { data: unknown }).data, { k: 'v' });
    await assert.rejects(
      t.request({ method: 'GET', path: '/api/v1/namespaces/default/configmaps/missing' }),
      (err: Error & { code?: number; reason?: string }) => err.code === 404 && err.reason === 'NotFound',
    );
  });

  it('keeps events and bookmarks in order on one watch', async () => {
    // Only this test's object: no initial ADDED events for the others' (those come in key order).
    const w = watchConfigMaps({ allowWatchBookmarks: 'true', labelSelector: 'test=order' });
    await s.request('POST', '/api/v1/namespaces/default/configmaps', {
      metadata: { name: 'one', labels: { test: 'order' } },
    });
    await until(() => w.events.some((e) => e.type === 'BOOKMARK'));
    await s.request('DELETE', '/api/v1/namespaces/default/configmaps/one');
    await until(() => w.events.some((e) => e.type === 'DELETED'));
    const types = w.events.map((e) => e.type);
    assert.equal(types[0], 'ADDED');
    assert.ok(types.indexOf('BOOKMARK') < types.indexOf('DELETED'));
    const rvs = w.events.map((e) => Number((e.object as KubeObject).metadata.resourceVersion));
    assert.deepEqual(
      rvs,
      [...rvs].sort((x, y) => x - y),
    );
    w.stop();
  });
});
