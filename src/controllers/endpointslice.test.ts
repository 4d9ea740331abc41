import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { rfc3339 } from '../api/meta.ts';
import type { Endpoint, EndpointSlice } from '../api/types/discovery-v1.ts';
import { endpointFixtures } from './endpoint-fixtures.ts';
import { LAST_CHANGE_TRIGGER_TIME } from './endpoint-util.ts';
import {
  CONTROLLER_NAME,
  endpointSliceController,
  MANAGED_BY_LABEL,
  SERVICE_NAME_LABEL,
} from './endpointslice.ts';
import { type ControllerTest, startControllerTest } from './testing.ts';

let t: ControllerTest;
before(async () => {
  t = await startControllerTest({ endpointslice: endpointSliceController });
  for (const [name, zone] of [
    ['node-a', 'zone-a'],
    ['node-b', 'zone-b'],
  ] as const) {
    await t.clients.nodes.create(undefined, {
      metadata: { name, labels: { 'topology.kubernetes.io/zone': zone } },
    });
  }
});
after(() => t.close());

const NS = 'default';

/** The controller's slices of a Service. */
async function slicesOf(service: string): Promise<EndpointSlice[]> {
  const list = await t.clients.endpointSlices.list(NS, {
    labelSelector: `${SERVICE_NAME_LABEL}=${service},${MANAGED_BY_LABEL}=${CONTROLLER_NAME}`,
  });
  return list.items ?? [];
}

const allEndpoints = (slices: EndpointSlice[]) => slices.flatMap((s) => s.endpoints ?? []);
const addressesOf = (slices: EndpointSlice[]) =>
  allEndpoints(slices)
    .flatMap((e) => e.addresses ?? [])
    .sort();

/** Waits until the Service's slices satisfy `check`. */
const slicesWhere = (service: string, what: string, check: (s: EndpointSlice[]) => boolean, ms?: number) =>
  t.until(
    `${service}: ${what}`,
    async () => {
      const s = await slicesOf(service);
      return check(s) ? s : undefined;
    },
    ms,
  );

const { createService, createPod, setPodStatus } = endpointFixtures(() => t.clients, {
  namespace: NS,
  nodeName: 'node-a',
  transitionTime: () => rfc3339(new Date()),
});

const byAddress = (slices: EndpointSlice[]) =>
  new Map<string, Endpoint>(allEndpoints(slices).map((e) => [e.addresses?.[0] ?? '', e]));

describe('endpointslice controller', () => {
  it('writes a labelled, owned IPv4 slice with conditions, targetRef, node and zone', async () => {
    const svc = await createService(
      'web',
      { selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 8080 }] },
      { tier: 'front' },
    );
    const pod = await createPod('web-1', { labels: { app: 'web' }, ip: '10.1.0.1' });
    await createPod('web-2', { labels: { app: 'web' }, ip: '10.1.0.2', ready: false, nodeName: 'node-b' });
    await createPod('web-3', { labels: { app: 'web' } }); // no IP: skipped

    const slices = await slicesWhere('web', 'two endpoints', (s) => addressesOf(s).length === 2);
    assert.equal(slices.length, 1);
    const slice = slices[0]!;
    assert.equal(slice.addressType, 'IPv4');
    assert.ok(slice.metadata.name?.startsWith('web-'));
    assert.deepEqual(slice.metadata.labels, {
      tier: 'front',
      [SERVICE_NAME_LABEL]: 'web',
      [MANAGED_BY_LABEL]: CONTROLLER_NAME,
    });
    assert.deepEqual(slice.metadata.ownerReferences, [
      {
        apiVersion: 'v1',
        kind: 'Service',
        name: 'web',
        uid: svc.metadata.uid,
        controller: true,
        blockOwnerDeletion: true,
      },
    ]);
    assert.deepEqual(slice.ports, [{ name: 'http', port: 8080, protocol: 'TCP' }]);
    assert.ok(slice.metadata.annotations?.[LAST_CHANGE_TRIGGER_TIME]);
    const eps = byAddress(slices);
    assert.deepEqual(eps.get('10.1.0.1'), {
      addresses: ['10.1.0.1'],
      conditions: { ready: true, serving: true, terminating: false },
      targetRef: { kind: 'Pod', namespace: NS, name: 'web-1', uid: pod.metadata.uid },
      nodeName: 'node-a',
      zone: 'zone-a',
    });
    assert.deepEqual(eps.get('10.1.0.2')?.conditions, { ready: false, serving: false, terminating: false });
    assert.equal(eps.get('10.1.0.2')?.zone, 'zone-b');

    // Readiness and new IPs update the slice in place.
    await setPodStatus('web-2', '10.1.0.2', true);
    await setPodStatus('web-3', '10.1.0.3', true);
    const after = await slicesWhere(
      'web',
      'three ready endpoints',
      (s) => allEndpoints(s).filter((e) => e.conditions?.ready).length === 3,
    );
    assert.equal(after.length, 1);
    assert.equal(after[0]?.metadata.name, slice.metadata.name);
  });

  it('marks terminating pods, and keeps them ready with publishNotReadyAddresses', async () => {
    await createService('term', { selector: { app: 'term' }, ports: [{ name: 'p', port: 80 }] });
    await createService('term-pnr', {
      selector: { app: 'term' },
      publishNotReadyAddresses: true,
      ports: [{ name: 'p', port: 80 }],
    });
    await createPod('term-1', { labels: { app: 'term' }, ip: '10.2.0.1' });
    await createPod('term-2', { labels: { app: 'term' }, ip: '10.2.0.2', ready: false });
    await slicesWhere('term', 'two endpoints', (s) => addressesOf(s).length === 2);
    const pnr = await slicesWhere('term-pnr', 'two endpoints', (s) => addressesOf(s).length === 2);
    assert.deepEqual(byAddress(pnr).get('10.2.0.2')?.conditions, {
      ready: true,
      serving: false,
      terminating: false,
    });

    // Graceful deletion (no kubelet finishes it): the pod stays, terminating.
    await t.clients.pods.delete(NS, 'term-1');
    const term = await slicesWhere(
      'term',
      'terminating',
      (s) => !!byAddress(s).get('10.2.0.1')?.conditions?.terminating,
    );
    assert.deepEqual(byAddress(term).get('10.2.0.1')?.conditions, {
      ready: false,
      serving: true,
      terminating: true,
    });
    const pnr2 = await slicesWhere(
      'term-pnr',
      'terminating',
      (s) => !!byAddress(s).get('10.2.0.1')?.conditions?.terminating,
    );
    assert.deepEqual(byAddress(pnr2).get('10.2.0.1')?.conditions, {
      ready: true,
      serving: true,
      terminating: true,
    });
  });

  it('splits slices by the port numbers a named target port resolves to', async () => {
    await createService('named', {
      selector: { app: 'named' },
      ports: [{ name: 'web', port: 80, targetPort: 'http' }],
    });
    await createPod('named-1', {
      labels: { app: 'named' },
      ip: '10.3.0.1',
      ports: [{ name: 'http', containerPort: 8080 }],
    });
    await createPod('named-2', {
      labels: { app: 'named' },
      ip: '10.3.0.2',
      ports: [{ name: 'http', containerPort: 9090 }],
    });
    await createPod('named-3', {
      labels: { app: 'named' },
      ip: '10.3.0.3',
      ports: [{ name: 'http', containerPort: 8080 }],
    });
    const slices = await slicesWhere(
      'named',
      'two slices, three endpoints',
      (s) => s.length === 2 && addressesOf(s).length === 3,
    );
    const byPort = new Map(slices.map((s) => [s.ports?.[0]?.port, addressesOf([s]).join()]));
    assert.deepEqual(
      byPort,
      new Map([
        [8080, '10.3.0.1,10.3.0.3'],
        [9090, '10.3.0.2'],
      ]),
    );
  });

  it('keeps one empty placeholder slice for a Service without endpoints, then fills it', async () => {
    await createService('empty', { selector: { app: 'empty' }, ports: [{ name: 'p', port: 80 }] });
    const [placeholder] = await slicesWhere('empty', 'placeholder', (s) => s.length === 1);
    assert.deepEqual(placeholder?.endpoints ?? [], []);
    assert.equal(placeholder?.ports, undefined);
    await createPod('empty-1', { labels: { app: 'empty' }, ip: '10.4.0.1' });
    const [filled] = await slicesWhere('empty', 'one endpoint', (s) => addressesOf(s).length === 1);
    assert.equal(filled?.metadata.name, placeholder?.metadata.name, 'the placeholder is reused');
    assert.deepEqual(filled?.ports, [{ name: 'p', port: 80, protocol: 'TCP' }]);
    assert.equal((await slicesOf('empty')).length, 1);
  });

  it('puts at most 100 endpoints in a slice', async () => {
    await createService('big', { selector: { app: 'big' }, ports: [{ name: 'p', port: 80 }] });
    for (let i = 0; i < 101; i++) {
      await createPod(`big-${i}`, { labels: { app: 'big' }, ip: `10.5.${Math.floor(i / 200)}.${i % 200}` });
    }
    const slices = await slicesWhere('big', '101 endpoints', (s) => addressesOf(s).length === 101, 60_000);
    assert.deepEqual(slices.map((s) => s.endpoints?.length).sort(), [1, 100]);
  });

  it('labels slices of headless Services and publishes hostnames for their subdomain', async () => {
    await createService('db', { clusterIP: 'None', selector: { app: 'db' } });
    await createPod('db-0', { labels: { app: 'db' }, ip: '10.6.0.1', hostname: 'db-0', subdomain: 'db' });
    const [slice] = await slicesWhere('db', 'one endpoint', (s) => addressesOf(s).length === 1);
    assert.equal(slice?.metadata.labels?.['service.kubernetes.io/headless'], '');
    assert.equal(slice?.ports, undefined);
    assert.equal(slice?.endpoints?.[0]?.hostname, 'db-0');
  });

  it('leaves Services without a selector alone', async () => {
    await createService('external', { ports: [{ name: 'db', port: 5432 }] });
    const manual = await t.clients.endpointSlices.create(NS, {
      metadata: { name: 'external-1', labels: { [SERVICE_NAME_LABEL]: 'external' } },
      addressType: 'IPv4',
      endpoints: [{ addresses: ['192.0.2.10'] }],
      ports: [{ name: 'db', port: 5432 }],
    });
    await createService('marker', { selector: { app: 'marker' }, ports: [{ name: 'p', port: 1 }] });
    await slicesWhere('marker', 'placeholder', (s) => s.length === 1);
    assert.deepEqual(await slicesOf('external'), []);
    const still = await t.clients.endpointSlices.get(NS, 'external-1');
    assert.equal(still.metadata.resourceVersion, manual.metadata.resourceVersion);
  });

  it('writes nothing when nothing changed, and repairs slices others changed or deleted', async () => {
    await createService('steady', { selector: { app: 'steady' }, ports: [{ name: 'p', port: 80 }] });
    await createPod('steady-1', { labels: { app: 'steady' }, ip: '10.7.0.1' });
    const [first] = await slicesWhere('steady', 'one endpoint', (s) => addressesOf(s).length === 1);

    await t.clients.pods.patch(NS, 'steady-1', 'merge', { metadata: { annotations: { note: 'x' } } });
    await t.clients.services.patch(NS, 'steady', 'merge', { metadata: { annotations: { note: 'x' } } });
    await createService('marker2', { selector: { app: 'marker2' }, ports: [{ name: 'p', port: 1 }] });
    await slicesWhere('marker2', 'placeholder', (s) => s.length === 1);
    const [same] = await slicesOf('steady');
    assert.equal(same?.metadata.resourceVersion, first?.metadata.resourceVersion);

    // Someone rewrites our slice: the controller puts the endpoint back.
    await t.clients.endpointSlices.patch(NS, first?.metadata.name ?? '', 'merge', {
      endpoints: [{ addresses: ['203.0.113.1'] }],
    });
    await slicesWhere('steady', 'repaired', (s) => addressesOf(s).join() === '10.7.0.1');

    // Someone deletes it: a new one appears.
    await t.clients.endpointSlices.delete(NS, first?.metadata.name ?? '');
    await slicesWhere(
      'steady',
      'recreated',
      (s) => s.length === 1 && s[0]?.metadata.uid !== first?.metadata.uid,
    );
  });

  it('leaves out pods on unknown nodes until the node exists', async () => {
    await createService('late', { selector: { app: 'late' }, ports: [{ name: 'p', port: 80 }] });
    await createPod('late-1', { labels: { app: 'late' }, ip: '10.8.0.1' });
    await createPod('late-2', { labels: { app: 'late' }, ip: '10.8.0.2', nodeName: 'node-late' });
    await slicesWhere('late', 'only the pod on a known node', (s) => addressesOf(s).join() === '10.8.0.1');
    await t.clients.nodes.create(undefined, { metadata: { name: 'node-late' } });
    await slicesWhere('late', 'both pods', (s) => addressesOf(s).join() === '10.8.0.1,10.8.0.2', 30_000);
  });
});
