import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Pod } from '../api/types/core-v1.ts';
import { createInProcessTransport } from '../apiserver/in-process.ts';
import { startTestServer, type TestServer } from '../apiserver/testing.ts';
import { type Clientset, createClientset } from '../client/clientset.ts';
import { type SharedSources, sharedSources } from './sources.ts';

let server: TestServer;
let clients: Clientset;
let shared: SharedSources;
before(async () => {
  server = await startTestServer();
  clients = createClientset(createInProcessTransport(server.api, { name: 'system:skiff-agent', groups: [] }));
  shared = sharedSources(clients);
});
after(async () => {
  shared.stop();
  await server.close();
});

const until = async (what: string, check: () => boolean) => {
  const deadline = Date.now() + 10_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};
const pod = (name: string, nodeName?: string): Pod => ({
  metadata: { name },
  spec: { ...(nodeName ? { nodeName } : {}), containers: [{ name: 'app', image: 'busybox' }] },
});

describe('shared kubelet sources (many kubelets, one watch each of Nodes, pods, Services)', () => {
  it("routes each pod's events to its node's kubelet only, binding included", async () => {
    const seen: Record<string, string[]> = { 'node-a': [], 'node-b': [] };
    const a = shared.forNode('node-a');
    const b = shared.forNode('node-b');
    for (const [name, s] of [
      ['node-a', a],
      ['node-b', b],
    ] as const) {
      s.pods.on({
        add: (p) => seen[name]!.push(`add ${p.metadata.name}`),
        update: (_o, p) => seen[name]!.push(`update ${p.metadata.name}`),
        delete: (p) => seen[name]!.push(`delete ${p.metadata.name}`),
      });
    }
    await shared.start();
    await clients.pods.create('default', pod('on-a', 'node-a'));
    await clients.pods.create('default', pod('unbound'));
    await until('on-a reaches node-a', () => seen['node-a']!.includes('add on-a'));
    // The scheduler's binding sets spec.nodeName: for node-b's kubelet the pod arrives.
    await clients.transport.request({
      method: 'POST',
      path: clients.pods.path('default', 'unbound', 'binding'),
      body: {
        apiVersion: 'v1',
        kind: 'Binding',
        metadata: { name: 'unbound', namespace: 'default' },
        target: { apiVersion: 'v1', kind: 'Node', name: 'node-b' },
      },
    });
    await until('unbound reaches node-b', () => seen['node-b']!.includes('add unbound'));
    assert.deepEqual(
      b.pods.list().map((p) => p.metadata.name),
      ['unbound'],
    );
    assert.equal(a.pods.get('default/unbound'), undefined, "node-a's kubelet does not see node-b's pod");
    assert.equal(b.pods.get('default/unbound')?.spec?.nodeName, 'node-b');
    await clients.pods.delete('default', 'on-a', { gracePeriodSeconds: 0 });
    await until('on-a gone from node-a', () => seen['node-a']!.includes('delete on-a'));
    assert.deepEqual(seen['node-a'], ['add on-a', 'delete on-a']);
    assert.deepEqual(seen['node-b'], ['add unbound']);
  });

  it('a kubelet that starts after the watch synced hears of the pods and Node already there', async () => {
    await clients.nodes.create(undefined, { metadata: { name: 'node-c' } });
    await clients.pods.create('default', pod('early', 'node-c'));
    await until('the shared cache has both', () => shared.forNode('node-c').pods.list().length === 1);
    await until(
      'the shared cache has node-c',
      () => shared.forNode('node-c').node.get('node-c') !== undefined,
    );
    const c = shared.forNode('node-c');
    const pods: string[] = [];
    const nodes: string[] = [];
    c.pods.on({ add: (p) => pods.push(p.metadata.name ?? '') });
    c.node.on({ add: (n) => nodes.push(n.metadata.name ?? '') });
    assert.deepEqual(pods, ['early']);
    assert.deepEqual(nodes, ['node-c']);
    assert.equal(c.node.get('node-a'), undefined, 'only its own Node');
  });
});
