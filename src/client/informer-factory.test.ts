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
