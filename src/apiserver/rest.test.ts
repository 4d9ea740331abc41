import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { KubeObject } from '../api/meta.ts';
import type { ResourceStorage } from './rest.ts';
import { startTestServer, type TestServer } from './testing.ts';

type Seen = Array<{ type: string; name: string; phase: string }>;

describe('watch with a field selector', () => {
  let s: TestServer;
  let pods: ResourceStorage;
  before(async () => {
    s = await startTestServer();
    pods = s.api.storage('', 'v1', 'pods')!;
  });
  after(() => s.close());

  const setPhase = (name: string, phase: string) =>
    pods.guaranteedUpdate(
      'default',
      name,
      (pod) => ({ ...pod, status: { ...(pod.status as object), phase } }),
      { subresource: 'status' },
    );

  // Two watchers of one field each see the same events through their own
  // selector, including the transitions in and out of it.
  it('sends each watcher the ADDED, MODIFIED and DELETED its selector makes of each change', async () => {
    const watch = async (fieldSelector: string) => {
      const seen: Seen = [];
      const w = await pods.watch(
        'default',
        { fieldSelector },
        (events) => {
          for (const e of events) {
            const status = (e.object as KubeObject & { status?: { phase?: string } }).status;
            seen.push({ type: e.type, name: e.object.metadata.name!, phase: status?.phase ?? '' });
          }
        },
        () => {},
      );
      return { seen, stop: w.stop };
    };
    const running = await watch('status.phase=Running');
    const notRunning = await watch('status.phase!=Running');
    await pods.create('default', {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'p' },
      spec: { containers: [{ name: 'c', image: 'busybox' }] },
    });
    await setPhase('p', 'Running');
    await setPhase('p', 'Running'); // no change: no event
    await pods.guaranteedUpdate(
      'default',
      'p',
      (pod) => ({
        ...pod,
        metadata: { ...pod.metadata, labels: { a: 'b' } },
      }),
      {},
    );
    await setPhase('p', 'Succeeded');
    await new Promise((r) => setTimeout(r, 50));
    running.stop();
    notRunning.stop();
    assert.deepEqual(running.seen, [
      { type: 'ADDED', name: 'p', phase: 'Running' },
      { type: 'MODIFIED', name: 'p', phase: 'Running' },
      { type: 'DELETED', name: 'p', phase: 'Succeeded' },
    ]);
    assert.deepEqual(notRunning.seen, [
      { type: 'ADDED', name: 'p', phase: 'Pending' },
      { type: 'DELETED', name: 'p', phase: 'Running' },
      { type: 'ADDED', name: 'p', phase: 'Succeeded' },
    ]);
  });
});

describe('create with the encoded callback', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer();
  });
  after(() => s.close());

  // The store's value and the response body come from one encoding: both
  // must be byte for byte what JSON.stringify makes of them.
  it('stores what #encode would and hands over JSON.stringify of the returned object', async () => {
    const pods = s.api.storage('', 'v1', 'pods')!;
    let json: string | undefined;
    const created = await pods.create(
      'default',
      {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'enc', labels: { a: 'b' }, annotations: { note: '<&> \u2028 "q"' } },
        spec: { containers: [{ name: 'c', image: 'busybox' }] },
        extra: undefined,
      } as unknown as KubeObject,
      {
        encoded: (t) => {
          json = t;
        },
      },
    );
    assert.equal(json, JSON.stringify(created));
    const kv = await s.store.get('/registry/pods/default/enc');
    const { resourceVersion: _, ...metadata } = created.metadata;
    assert.equal(kv?.value, JSON.stringify({ ...created, metadata }));
  });

  it('is not called for a body whose metadata has a resourceVersion key', async () => {
    const cms = s.api.storage('', 'v1', 'configmaps')!;
    let called = false;
    const created = await cms.create(
      'default',
      {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'rv', resourceVersion: '' },
        data: { a: 'b' },
      },
      { encoded: () => (called = true) },
    );
    assert.equal(called, false);
    assert.equal(created.metadata.resourceVersion !== '', true);
  });
});
