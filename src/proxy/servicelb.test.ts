import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { type ControllerTest, startControllerTest } from '../controllers/testing.ts';
import { serviceLBController } from './servicelb.ts';

let t: ControllerTest;
before(async () => {
  t = await startControllerTest({ servicelb: serviceLBController });
});
after(() => t.close());

const addNode = async (name: string, addresses: { type: string; address: string }[], ready = 'True') => {
  await t.clients.nodes.create(undefined, { metadata: { name } });
  await t.clients.nodes.patch(
    undefined,
    name,
    'merge',
    { status: { addresses, conditions: [{ type: 'Ready', status: ready }] } },
    { subresource: 'status' },
  );
};
const ingressOf = async (name: string) =>
  ((await t.clients.services.get('default', name)).status?.loadBalancer?.ingress ?? []).map((i) => i.ip);

it('LoadBalancer ingress follows the Ready nodes (ExternalIP before InternalIP), and leaves with the type', async () => {
  await addNode('a', [{ type: 'InternalIP', address: '192.168.0.2' }]);
  await addNode('b', [
    { type: 'InternalIP', address: '192.168.0.3' },
    { type: 'ExternalIP', address: '203.0.113.3' },
  ]);
  await addNode('c', [{ type: 'InternalIP', address: '192.168.0.4' }], 'False');
  await t.clients.services.create('default', {
    metadata: { name: 'lb' },
    spec: { type: 'LoadBalancer', selector: { app: 'x' }, ports: [{ port: 80 }] },
  });
  await t.until('ingress of the two Ready nodes', async () => (await ingressOf('lb')).length === 2);
  assert.deepEqual(await ingressOf('lb'), ['192.168.0.2', '203.0.113.3']);

  // Node c turns Ready: it joins the load balancer.
  await t.clients.nodes.patch(
    undefined,
    'c',
    'merge',
    { status: { conditions: [{ type: 'Ready', status: 'True' }] } },
    { subresource: 'status' },
  );
  await t.until('node c added', async () => (await ingressOf('lb')).includes('192.168.0.4'));

  // No longer a LoadBalancer: the ingress goes.
  await t.clients.services.patch('default', 'lb', 'merge', { spec: { type: 'ClusterIP' } });
  await t.until('ingress removed', async () => (await ingressOf('lb')).length === 0);
});

it('a Service with a loadBalancerClass belongs to another implementation', async () => {
  await t.clients.services.create('default', {
    metadata: { name: 'other' },
    spec: { type: 'LoadBalancer', loadBalancerClass: 'example.com/lb', ports: [{ port: 80 }] },
  });
  await new Promise((r) => setTimeout(r, 300));
  assert.deepEqual(await ingressOf('other'), []);
});

it('two LoadBalancers cannot share a port: the newer stays pending, with an event, until the older goes', async () => {
  // Named so that, created in the same second, "a-first" is still the older by name.
  await t.clients.services.create('default', {
    metadata: { name: 'a-first' },
    spec: { type: 'LoadBalancer', selector: { app: 'x' }, ports: [{ port: 8443 }] },
  });
  await t.until('a-first has its ingress', async () => (await ingressOf('a-first')).length > 0);
  await t.clients.services.create('default', {
    metadata: { name: 'b-second' },
    spec: {
      type: 'LoadBalancer',
      selector: { app: 'y' },
      ports: [
        { name: 'a', port: 9000 },
        { name: 'b', port: 8443 },
      ],
    },
  });
  const event = await t.until('a PortInUse event on b-second', async () =>
    (await t.clients.events.list('default', { fieldSelector: 'involvedObject.name=b-second' })).items.find(
      (e) => e.reason === 'PortInUse',
    ),
  );
  assert.equal(event.type, 'Warning');
  assert.match(event.message ?? '', /port TCP\/8443 .* Service default\/a-first/);
  assert.deepEqual(await ingressOf('b-second'), []);
  await t.clients.services.delete('default', 'a-first');
  await t.until('b-second gets the port', async () => (await ingressOf('b-second')).length > 0);
});
