import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createInProcessTransport } from '../apiserver/in-process.ts';
import { startTestServer, type TestServer } from '../apiserver/testing.ts';
import { type Clientset, createClientset } from '../client/clientset.ts';
import { createLog } from '../util/log.ts';
import { type RunningAgent, startAgent } from './agent.ts';

let server: TestServer;
let clients: Clientset;
let agent: RunningAgent;
before(async () => {
  server = await startTestServer();
  await server.api
    .storage('', 'v1', 'namespaces')!
    .create(undefined, { metadata: { name: 'kube-node-lease' } });
  clients = createClientset(createInProcessTransport(server.api, { name: 'system:skiff-agent', groups: [] }));
  agent = await startAgent({
    clients,
    dataDir: '/tmp',
    runtime: 'hollow',
    hollowNodes: 3,
    log: createLog({ component: 'agent' }, () => {}),
  });
});
after(async () => {
  await agent.stop();
  await server.close();
});

describe('agent with hollow nodes', () => {
  it('registers hollow-0 … hollow-2, each Ready with its own Lease, and runs pods bound to them', async () => {
    const nodes = await clients.nodes.list();
    assert.deepEqual(nodes.items.map((n) => n.metadata.name).sort(), ['hollow-0', 'hollow-1', 'hollow-2']);
    for (const n of nodes.items) {
      assert.equal(n.status?.conditions?.find((c) => c.type === 'Ready')?.status, 'True');
      assert.equal(n.status?.capacity?.cpu, '4');
      assert.equal(n.metadata.labels?.['node-role.kubernetes.io/control-plane'], undefined);
    }
    // Each kubelet creates its Lease as it starts, not before startAgent returns.
    const deadline0 = Date.now() + 10_000;
    let leases = await clients.leases.list('kube-node-lease');
    while (leases.items.length < 3 && Date.now() < deadline0) {
      await new Promise((r) => setTimeout(r, 50));
      leases = await clients.leases.list('kube-node-lease');
    }
    assert.deepEqual(leases.items.map((l) => l.metadata.name).sort(), ['hollow-0', 'hollow-1', 'hollow-2']);
    await clients.pods.create('default', {
      metadata: { name: 'on-hollow-2' },
      spec: { nodeName: 'hollow-2', containers: [{ name: 'app', image: 'busybox' }] },
    });
    const deadline = Date.now() + 10_000;
    let phase: string | undefined;
    while (Date.now() < deadline && phase !== 'Running') {
      phase = (await clients.pods.get('default', 'on-hollow-2')).status?.phase;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(phase, 'Running');
  });
});
