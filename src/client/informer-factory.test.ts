import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createInProcessTransport } from '../apiserver/in-process.ts';
import { startTestServer, type TestServer } from '../apiserver/testing.ts';
import { type Clientset, createClientset } from './clientset.ts';
import { CONTROLLER_INDEX, createInformerFactory, NAMESPACE_INDEX, NODE_INDEX } from './informer-factory.ts';

let s: TestServer;
let clients: Clientset;
before(async () => {
  s = await startTestServer();
  clients = createClientset(createInProcessTransport(s.api, { name: 'test', groups: [] }));
});
after(() => s.close());

describe('shared informer factory', () => {
  it('shares one informer per resource, with the namespace, controller and node indexes', async (t) => {
    await clients.pods.create('default', {
      metadata: {
        name: 'p1',
        ownerReferences: [
          { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'rs', uid: 'rs-uid', controller: true },
        ],
      },
      spec: { nodeName: 'node-a', containers: [{ name: 'c', image: 'busybox' }] },
    });
    const factory = createInformerFactory(clients);
    t.after(() => factory.stop());
    const pods = factory.informer('pods');
    assert.equal(factory.informer('pods'), pods, 'asked twice, one informer');
    await factory.start();
    assert.deepEqual(
      pods.indexer.byIndex(NAMESPACE_INDEX, 'default').map((p) => p.metadata.name),
      ['p1'],
    );
    assert.deepEqual(
      pods.indexer.byIndex(CONTROLLER_INDEX, 'rs-uid').map((p) => p.metadata.name),
      ['p1'],
    );
    assert.deepEqual(
      pods.indexer.byIndex(NODE_INDEX, 'node-a').map((p) => p.metadata.name),
      ['p1'],
    );

    // An informer asked for after start() is started at once.
    const nodes = factory.informer('nodes');
    await clients.nodes.create(undefined, { metadata: { name: 'late-node' } });
    const deadline = Date.now() + 5000;
    while (!nodes.indexer.get('late-node')) {
      assert.ok(Date.now() < deadline, 'late informer never saw the node');
      await new Promise((r) => setTimeout(r, 10));
    }
  });
});

describe('dynamic informers', () => {
  it('watch a custom resource, so a controller can reconcile a CRD', async (t) => {
    const { widgetCRD } = await import('../apiextensions/testing.ts');
    await clients
      .forResource({
        group: 'apiextensions.k8s.io',
        version: 'v1',
        plural: 'customresourcedefinitions',
        namespaced: false,
      })
      .create(undefined, widgetCRD());
    await s.api.crds.idle();
    const ref = { group: 'example.com', version: 'v1', plural: 'widgets', namespaced: true };
    const widgets = clients.forResource(ref);
    const factory = createInformerFactory(clients);
    t.after(() => factory.stop());
    const informer = factory.forResource(ref);
    assert.equal(factory.forResource(ref), informer, 'asked twice, one informer');
    // A reconciler: every widget's status.phase says its colour was seen.
    const seen: string[] = [];
    informer.on({
      add: (w) => {
        seen.push(w.metadata.name!);
        void widgets.updateStatus({ ...w, status: { phase: `saw ${(w.spec as { color: string }).color}` } });
      },
    });
    await factory.start();
    await widgets.create('default', {
      apiVersion: 'example.com/v1',
      kind: 'Widget',
      metadata: { name: 'dyn' },
      spec: { color: 'red' },
    });
    const phase = () =>
      (informer.indexer.get('default/dyn')?.status as { phase?: string } | undefined)?.phase;
    for (let i = 0; i < 100 && phase() !== 'saw red'; i++) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(seen, ['dyn']);
    assert.equal(phase(), 'saw red');
  });
});
