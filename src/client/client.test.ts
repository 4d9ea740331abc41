// The client and informers against a real API server, through both
// transports: HTTP on loopback, and in process (the handler chain, no socket).
// One suite, run once per transport.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ApiError, isApiError } from '../api/errors.ts';
import type { KubeObject } from '../api/meta.ts';
import { createInProcessTransport } from '../apiserver/in-process.ts';
import { startTestServer, type TestServer } from '../apiserver/testing.ts';
import { ResourceClient } from './client.ts';
import { createHttpTransport } from './http-transport.ts';
import { createInformer, indexByControllerUID } from './informer.ts';
import type { Transport } from './transport.ts';

const transports: Record<string, (s: TestServer) => Transport & { close?(): void }> = {
  http: (s) => createHttpTransport({ server: s.url }),
  'in-process': (s) => createInProcessTransport(s.api, { name: 'test-admin', groups: ['system:masters'] }),
};

for (const [transportName, makeTransport] of Object.entries(transports)) {
  describe(`client over the ${transportName} transport`, () => {
    let s: TestServer;
    let transport: Transport & { close?(): void };
    let configmaps: ResourceClient;

    before(async () => {
      s = await startTestServer();
      transport = makeTransport(s);
      configmaps = new ResourceClient(transport, {
        group: '',
        version: 'v1',
        plural: 'configmaps',
        namespaced: true,
      });
    });
    after(async () => {
      transport.close?.();
      await s.close();
    });

    const until = async (what: string, check: () => boolean) => {
      const deadline = Date.now() + 5000;
      while (!check()) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    };

    describe('ResourceClient', () => {
      it('runs every verb and surfaces Status errors as ApiErrors', async () => {
        const created = await configmaps.create('default', { metadata: { name: 'k1' }, data: { a: '1' } });
        assert.ok(created.metadata.uid);
        const got = await configmaps.get('default', 'k1');
        assert.equal((got.data as Record<string, string>).a, '1');
        const updated = await configmaps.update({ ...got, data: { a: '2' } });
        assert.equal((updated.data as Record<string, string>).a, '2');
        await assert.rejects(configmaps.update({ ...got, data: { a: '3' } }), (err: unknown) =>
          isApiError(err, 'Conflict'),
        );
        const patched = await configmaps.patch('default', 'k1', 'merge', { data: { b: 'x' } });
        assert.deepEqual(patched.data, { a: '2', b: 'x' });
        const list = await configmaps.list('default', { fieldSelector: 'metadata.name=k1' });
        assert.equal(list.items.length, 1);
        await configmaps.delete('default', 'k1');
        await assert.rejects(
          configmaps.get('default', 'k1'),
          (err: unknown) => err instanceof ApiError && err.code === 404,
        );
      });
    });

    describe('watch', () => {
      it('streams events, and ends with the Status for a bad request', async () => {
        const events: string[] = [];
        let closed: Error | undefined | 'open' = 'open';
        const h = configmaps.watch(
          'kube-system',
          { labelSelector: 'w=1' },
          (e) => events.push(`${e.type} ${(e.object as KubeObject).metadata?.name}`),
          (err) => {
            closed = err;
          },
        );
        await new Promise((r) => setTimeout(r, 50));
        await configmaps.create('kube-system', { metadata: { name: 'w1', labels: { w: '1' } } });
        await until('the ADDED event', () => events.length === 1);
        assert.deepEqual(events, ['ADDED w1']);
        h.stop();
        await until('onClose', () => closed !== 'open');
        assert.equal(closed, undefined);

        const errs: (Error | undefined)[] = [];
        configmaps.watch(
          'kube-system',
          { resourceVersion: 'abc' },
          () => {},
          (err) => errs.push(err),
        );
        await until('the failed watch to close', () => errs.length === 1);
        assert.ok(errs[0] instanceof ApiError && errs[0].code === 400, String(errs[0]));
      });

      it('reports server warnings', async () => {
        const res = await transport.request({
          method: 'POST',
          path: '/api/v1/namespaces/kube-system/configmaps',
          query: { fieldValidation: 'Warn' },
          body: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'warned' }, bogus: 1 },
        });
        assert.equal(res.status, 201);
        assert.ok(
          res.warnings.some((w) => w.includes('bogus')),
          res.warnings.join(),
        );
      });
    });

    describe('informer', () => {
      it('lists, then follows adds, updates and deletes, and indexes by owner', async (t) => {
        await configmaps.create('default', { metadata: { name: 'pre' } });
        const informer = createInformer(configmaps, {
          namespace: 'default',
          indexers: { owner: indexByControllerUID },
        });
        const seen: string[] = [];
        informer.on({
          add: (o) => seen.push(`add ${o.metadata.name}`),
          update: (_a, b) => seen.push(`update ${b.metadata.name}`),
          delete: (o) => seen.push(`delete ${o.metadata.name}`),
        });
        t.after(() => informer.stop());
        await informer.start();
        assert.ok(informer.hasSynced());
        assert.ok(informer.indexer.get('default/pre'));
        await configmaps.create('default', {
          metadata: {
            name: 'owned',
            ownerReferences: [{ apiVersion: 'v1', kind: 'X', name: 'x', uid: 'owner-1', controller: true }],
          },
        });
        await configmaps.patch('default', 'pre', 'merge', { data: { n: '1' } });
        await configmaps.delete('default', 'pre');
        await until('three watch events', () => seen.length >= 4);
        assert.deepEqual(seen, ['add pre', 'add owned', 'update pre', 'delete pre']);
        assert.deepEqual(
          informer.indexer.byIndex('owner', 'owner-1').map((o) => o.metadata.name),
          ['owned'],
        );
        informer.stop();
      });

      it('relists when its watch answers 410 Expired, and delivers what changed meanwhile', async (t) => {
        // A transport that fails the first watch with 410, like a server whose
        // watch window moved past the informer's resourceVersion.
        let failNext = true;
        const flaky: Transport = {
          request: (r) => transport.request(r),
          watch(r, onEvent, onClose) {
            if (failNext) {
              failNext = false;
              setTimeout(() => onClose(new ApiError(410, 'Expired', 'too old resource version')), 50);
              return { stop() {} };
            }
            return transport.watch(r, onEvent, onClose);
          },
        };
        const client = new ResourceClient<KubeObject>(flaky, {
          group: '',
          version: 'v1',
          plural: 'configmaps',
          namespaced: true,
        });
        const informer = createInformer(client, { namespace: 'default', labelSelector: 'relist=yes' });
        t.after(() => informer.stop());
        await informer.start();
        assert.equal(informer.lists, 1);
        await configmaps.create('default', {
          metadata: { name: 'while-expired', labels: { relist: 'yes' } },
        });
        await until(
          'the relist',
          () => informer.lists === 2 && informer.indexer.get('default/while-expired') !== undefined,
        );
        informer.stop();
      });

      it('follows bookmarks: its resourceVersion moves on while nothing it watches changes', async (t) => {
        // The test server sends a bookmark every 200 ms.
        const informer = createInformer(configmaps, { namespace: 'default', labelSelector: 'bookmark=yes' });
        t.after(() => informer.stop());
        let events = 0;
        informer.on({ add: () => events++, update: () => events++, delete: () => events++ });
        await informer.start();
        const startRV = Number(informer.resourceVersion);
        // Writes the informer does not see (other label) move the store's revision.
        await configmaps.create('default', { metadata: { name: 'unwatched-1' } });
        await configmaps.create('default', { metadata: { name: 'unwatched-2' } });
        await until('a bookmark past the writes', () => Number(informer.resourceVersion) >= startRV + 2);
        assert.equal(events, 0);
      });

      it('resyncs: re-delivers every cached object as an update', async (t) => {
        await configmaps.create('default', { metadata: { name: 'resynced', labels: { resync: 'yes' } } });
        const informer = createInformer(configmaps, {
          namespace: 'default',
          labelSelector: 'resync=yes',
          resyncMs: 50,
        });
        t.after(() => informer.stop());
        const updates: string[] = [];
        informer.on({ update: (a, b) => a === b && updates.push(b.metadata.name ?? '') });
        await informer.start();
        await until('two resyncs', () => updates.length >= 2);
        assert.deepEqual([...new Set(updates)], ['resynced']);
      });
    });
  });
}
