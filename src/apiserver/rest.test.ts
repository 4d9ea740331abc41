import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ApiError } from '../api/errors.ts';
import type { KubeObject } from '../api/meta.ts';
import { builtinRegistry } from '../api/resources/index.ts';
import { createMemoryStore } from '../storage/memory/memory.ts';
import type { Store } from '../storage/store.ts';
import { ResourceStorage } from './rest.ts';
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

describe('guaranteedUpdate from the watch cache', () => {
  // A store whose watch events the test holds back, so the cache's copy is
  // behind the store on purpose (as it is, briefly, after any write).
  const gatedStore = () => {
    const inner = createMemoryStore();
    let held: Array<() => void> | undefined;
    const reads = { count: 0 };
    const store: Store = {
      ...inner,
      create: (...a) => inner.create(...a),
      update: (...a) => inner.update(...a),
      delete: (...a) => inner.delete(...a),
      get: (...a) => {
        reads.count++;
        return inner.get(...a);
      },
      list: (...a) => inner.list(...a),
      count: (...a) => inner.count(...a),
      currentRevision: () => inner.currentRevision(),
      compactedRevision: () => inner.compactedRevision(),
      compact: (r) => inner.compact(r),
      close: () => inner.close(),
      watch: (prefix, opts) =>
        inner.watch(prefix, {
          ...opts,
          onEvents: (events) => (held ? held.push(() => opts.onEvents(events)) : opts.onEvents(events)),
        }),
    };
    return {
      store,
      reads,
      hold: () => {
        held = [];
      },
      release: () => {
        const run = held ?? [];
        held = undefined;
        for (const f of run) f();
      },
    };
  };
  const labels = (o: KubeObject) => o.metadata.labels ?? {};
  const withLabel = (k: string, v: string) => (o: KubeObject) => ({
    ...o,
    metadata: { ...o.metadata, labels: { ...labels(o), [k]: v } },
  });

  async function setup() {
    const g = gatedStore();
    const rt = builtinRegistry().get('', 'v1', 'configmaps')!;
    const cms = new ResourceStorage(rt, g.store);
    await cms.cache.start();
    const made = await cms.create('default', {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'c' },
    });
    await cms.cache.waitFor(Number(made.metadata.resourceVersion));
    g.hold();
    // Another writer moves the object on; the cache does not see it yet.
    const moved = await cms.guaranteedUpdate('default', 'c', withLabel('other', 'yes'), { dryRun: false });
    assert.equal(
      cms.cache.get(cms.key('default', 'c'))?.metadata.resourceVersion,
      made.metadata.resourceVersion,
    );
    return { g, cms, made, moved: moved.object };
  }

  it('reads nothing from the store when the cache is current', async () => {
    const { g, cms } = await setup();
    g.release();
    const rv = await g.store.currentRevision();
    await cms.cache.waitFor(rv);
    const before = g.reads.count;
    const r = await cms.guaranteedUpdate('default', 'c', withLabel('mine', 'yes'), {});
    assert.deepEqual(labels(r.object), { other: 'yes', mine: 'yes' });
    assert.equal(g.reads.count, before);
    // A dry run writes nothing a swap could check, so it reads the store.
    await cms.guaranteedUpdate('default', 'c', withLabel('dry', 'yes'), { dryRun: true });
    assert.equal(g.reads.count, before + 1);
    await g.store.close();
  });

  it("keeps the other writer's change: the stale copy loses the swap and the update runs again on the store's object", async () => {
    const { g, cms, moved } = await setup();
    const r = await cms.guaranteedUpdate('default', 'c', withLabel('mine', 'yes'), {});
    assert.deepEqual(labels(r.object), { other: 'yes', mine: 'yes' });
    assert.ok(Number(r.object.metadata.resourceVersion) > Number(moved.metadata.resourceVersion));
    g.release();
    await g.store.close();
  });

  it('checks a precondition against the store, not the stale copy', async () => {
    const { g, cms, made, moved } = await setup();
    // The client's version is the stale one: 409, as upstream.
    await assert.rejects(
      cms.guaranteedUpdate('default', 'c', withLabel('mine', 'yes'), {
        resourceVersion: made.metadata.resourceVersion!,
      }),
      (err: ApiError) => err.code === 409,
    );
    // The current one (which the cache has not seen) is accepted.
    const r = await cms.guaranteedUpdate('default', 'c', withLabel('mine', 'yes'), {
      resourceVersion: moved.metadata.resourceVersion!,
    });
    assert.deepEqual(labels(r.object), { other: 'yes', mine: 'yes' });
    g.release();
    await g.store.close();
  });

  it('does not take a change for a no-op because the stale copy already looks that way', async () => {
    const { g, cms, moved } = await setup();
    // Undo the other writer's label: against the stale copy this changes nothing.
    const r = await cms.guaranteedUpdate(
      'default',
      'c',
      (o) => {
        const { labels: _, ...metadata } = o.metadata;
        return { ...o, metadata };
      },
      {},
    );
    assert.equal(r.object.metadata.labels, undefined);
    assert.ok(Number(r.object.metadata.resourceVersion) > Number(moved.metadata.resourceVersion));
    assert.deepEqual(labels(decodeStored(await g.store.get(cms.key('default', 'c')))), {});
    g.release();
    await g.store.close();
  });

  it('runs a mutation that fails on the stale copy again on the current object', async () => {
    const { g, cms } = await setup();
    const r = await cms.guaranteedUpdate(
      'default',
      'c',
      (o) => {
        if (labels(o).other !== 'yes') throw new ApiError(409, 'Conflict', 'not moved yet');
        return withLabel('mine', 'yes')(o);
      },
      {},
    );
    assert.deepEqual(labels(r.object), { other: 'yes', mine: 'yes' });
    g.release();
    await g.store.close();
  });
});

const decodeStored = (kv: { value: string } | undefined): KubeObject => JSON.parse(kv!.value) as KubeObject;
