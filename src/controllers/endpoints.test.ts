import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { isApiError } from '../api/errors.ts';
import type { Endpoints } from '../api/types/core-v1.ts';
import { endpointFixtures } from './endpoint-fixtures.ts';
import { LAST_CHANGE_TRIGGER_TIME } from './endpoint-util.ts';
import { endpointsController, repackSubsets, truncateToCapacity } from './endpoints.ts';
import { type ControllerTest, startControllerTest } from './testing.ts';

let t: ControllerTest;
before(async () => {
  t = await startControllerTest({ endpoint: endpointsController });
});
after(() => t.close());

const NS = 'default';

const getEndpoints = (name: string, ns = NS) =>
  t.clients.endpoints.get(ns, name).catch((err) => {
    if (isApiError(err, 'NotFound')) return undefined;
    throw err;
  });

/** Waits until the Endpoints exist and `check` accepts them. */
const endpointsWhere = (name: string, what: string, check: (ep: Endpoints) => boolean) =>
  t.until(`${name}: ${what}`, async () => {
    const ep = await getEndpoints(name);
    return ep && check(ep) ? ep : undefined;
  });

const { createService, createPod, setPodStatus } = endpointFixtures(() => t.clients, {
  namespace: NS,
  nodeName: 'node-1',
  transitionTime: () => '2025-01-01T00:00:00Z',
});

const ips = (addrs: { ip?: string }[] | undefined) => (addrs ?? []).map((a) => a.ip).sort();

describe('endpoints controller', () => {
  it('lists ready pods under addresses and unready ones under notReadyAddresses, skipping pods without an IP', async () => {
    const svc = await createService(
      'web',
      { selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 8080 }] },
      { tier: 'front' },
    );
    const ready = await createPod('web-1', { labels: { app: 'web' }, ip: '10.1.0.1', nodeName: 'node-a' });
    await createPod('web-2', { labels: { app: 'web' }, ip: '10.1.0.2', ready: false });
    await createPod('web-3', { labels: { app: 'web' } }); // no IP yet
    await createPod('other', { labels: { app: 'other' }, ip: '10.1.0.9' });

    const ep = await endpointsWhere('web', 'one ready and one unready address', (e) => {
      const s = e.subsets?.[0];
      return ips(s?.addresses).join() === '10.1.0.1' && ips(s?.notReadyAddresses).join() === '10.1.0.2';
    });
    assert.equal(ep.subsets?.length, 1);
    assert.deepEqual(ep.subsets?.[0]?.ports, [{ name: 'http', port: 8080, protocol: 'TCP' }]);
    const addr = ep.subsets?.[0]?.addresses?.[0];
    assert.equal(addr?.nodeName, 'node-a');
    assert.deepEqual(addr?.targetRef, { kind: 'Pod', namespace: NS, name: 'web-1', uid: ready.metadata.uid });
    // The Service's labels are copied; the Service is not headless.
    assert.deepEqual(ep.metadata.labels, { tier: 'front' });
    // The first sync reports the Service's creation; later ones the earliest pod readiness change.
    assert.ok(
      [svc.metadata.creationTimestamp, '2025-01-01T00:00:00Z'].includes(
        ep.metadata.annotations?.[LAST_CHANGE_TRIGGER_TIME],
      ),
    );

    // Readiness flips move the address; an IP arriving adds it.
    await setPodStatus('web-2', '10.1.0.2', true);
    await setPodStatus('web-3', '10.1.0.3', true);
    await endpointsWhere(
      'web',
      'three ready addresses',
      (e) => e.subsets?.length === 1 && ips(e.subsets[0]?.addresses).join() === '10.1.0.1,10.1.0.2,10.1.0.3',
    );

    // A pod whose labels no longer match leaves; a finished pod leaves.
    await t.clients.pods.patch(NS, 'web-1', 'merge', { metadata: { labels: { app: 'gone' } } });
    await setPodStatus('web-2', '10.1.0.2', true, 'Succeeded');
    await endpointsWhere(
      'web',
      'only web-3 left',
      (e) => ips(e.subsets?.[0]?.addresses).join() === '10.1.0.3',
    );
  });

  it('resolves a named target port per pod, splitting subsets when numbers differ', async () => {
    await createService('named', {
      selector: { app: 'named' },
      ports: [{ name: 'web', port: 80, targetPort: 'http' }],
    });
    await createPod('named-1', {
      labels: { app: 'named' },
      ip: '10.2.0.1',
      ports: [{ name: 'http', containerPort: 8080 }],
    });
    await createPod('named-2', {
      labels: { app: 'named' },
      ip: '10.2.0.2',
      ports: [{ name: 'http', containerPort: 9090 }],
    });
    await createPod('named-3', {
      labels: { app: 'named' },
      ip: '10.2.0.3',
      ports: [{ name: 'http', containerPort: 8080 }],
    });
    // A pod without the named port does not serve the Service.
    await createPod('named-4', { labels: { app: 'named' }, ip: '10.2.0.4' });

    const ep = await endpointsWhere('named', 'two subsets', (e) => e.subsets?.length === 2);
    const byPort = new Map(ep.subsets?.map((s) => [s.ports?.[0]?.port, ips(s.addresses).join()]));
    assert.deepEqual(
      byPort,
      new Map([
        [8080, '10.2.0.1,10.2.0.3'],
        [9090, '10.2.0.2'],
      ]),
    );
  });

  it('publishes unready and terminating pods as ready with publishNotReadyAddresses', async () => {
    await createService('pnr', {
      selector: { app: 'pnr' },
      publishNotReadyAddresses: true,
      ports: [{ name: 'p', port: 80 }],
    });
    await createService('plain', { selector: { app: 'pnr' }, ports: [{ name: 'p', port: 80 }] });
    await createPod('pnr-1', { labels: { app: 'pnr' }, ip: '10.3.0.1', ready: false });
    await createPod('pnr-2', { labels: { app: 'pnr' }, ip: '10.3.0.2' });

    await endpointsWhere(
      'pnr',
      'both pods ready',
      (e) => ips(e.subsets?.[0]?.addresses).join() === '10.3.0.1,10.3.0.2',
    );
    await endpointsWhere(
      'plain',
      'one ready, one not',
      (e) => ips(e.subsets?.[0]?.notReadyAddresses).join() === '10.3.0.1',
    );

    // Graceful deletion: there is no kubelet, so the pod stays, terminating.
    await t.clients.pods.delete(NS, 'pnr-2');
    await endpointsWhere(
      'plain',
      'terminating pod dropped',
      (e) => !ips(e.subsets?.[0]?.addresses).includes('10.3.0.2'),
    );
    const pnr = await getEndpoints('pnr');
    assert.deepEqual(ips(pnr?.subsets?.[0]?.addresses), ['10.3.0.1', '10.3.0.2']);
  });

  it('gives headless Services the headless label, port-less addresses and pod hostnames', async () => {
    await createService('db', { clusterIP: 'None', selector: { app: 'db' } });
    await createPod('db-0', { labels: { app: 'db' }, ip: '10.4.0.1', hostname: 'db-0', subdomain: 'db' });
    await createPod('db-x', {
      labels: { app: 'db' },
      ip: '10.4.0.2',
      hostname: 'db-x',
      subdomain: 'elsewhere',
    });
    const ep = await endpointsWhere(
      'db',
      'two addresses',
      (e) => ips(e.subsets?.[0]?.addresses).length === 2,
    );
    assert.deepEqual(ep.metadata.labels, { 'service.kubernetes.io/headless': '' });
    assert.equal(ep.subsets?.[0]?.ports, undefined);
    const byIP = new Map(ep.subsets?.[0]?.addresses?.map((a) => [a.ip, a.hostname]));
    assert.equal(byIP.get('10.4.0.1'), 'db-0');
    assert.equal(byIP.get('10.4.0.2'), undefined, 'hostname only for the subdomain named by the pod');
  });

  it('leaves the Endpoints of Services without a selector alone, and deletes them with the Service', async () => {
    await createService('external', { ports: [{ name: 'db', port: 5432 }] });
    const manual = await t.clients.endpoints.create(NS, {
      metadata: { name: 'external' },
      subsets: [{ addresses: [{ ip: '192.0.2.10' }], ports: [{ name: 'db', port: 5432 }] }],
    });
    // Make sure the controller has seen everything: a Service it manages converges after this one.
    await createService('marker', { selector: { app: 'marker' }, ports: [{ name: 'p', port: 1 }] });
    await endpointsWhere('marker', 'created', () => true);
    const still = await getEndpoints('external');
    assert.equal(still?.metadata.resourceVersion, manual.metadata.resourceVersion);

    await t.clients.services.delete(NS, 'external');
    await t.until('user Endpoints deleted with their Service', async () => !(await getEndpoints('external')));
    await t.clients.services.delete(NS, 'marker');
    await t.until(
      'managed Endpoints deleted with their Service',
      async () => !(await getEndpoints('marker')),
    );
  });

  it('recreates deleted Endpoints and writes nothing when nothing changed', async () => {
    await createService('steady', { selector: { app: 'steady' }, ports: [{ name: 'p', port: 80 }] });
    await createPod('steady-1', { labels: { app: 'steady' }, ip: '10.5.0.1' });
    const first = await endpointsWhere(
      'steady',
      'one address',
      (e) => ips(e.subsets?.[0]?.addresses).length === 1,
    );

    // Changes endpoints do not show (a pod annotation, a Service annotation) cause no write.
    await t.clients.pods.patch(NS, 'steady-1', 'merge', { metadata: { annotations: { note: 'x' } } });
    await t.clients.services.patch(NS, 'steady', 'merge', { metadata: { annotations: { note: 'x' } } });
    await createService('marker2', { selector: { app: 'marker2' }, ports: [{ name: 'p', port: 1 }] });
    await endpointsWhere('marker2', 'created', () => true);
    assert.equal((await getEndpoints('steady'))?.metadata.resourceVersion, first.metadata.resourceVersion);

    // A Service label change is a change.
    await t.clients.services.patch(NS, 'steady', 'merge', { metadata: { labels: { v: '2' } } });
    await endpointsWhere('steady', 'labels follow the Service', (e) => e.metadata.labels?.v === '2');

    await t.clients.endpoints.delete(NS, 'steady');
    const again = await endpointsWhere('steady', 'recreated', (e) => e.metadata.uid !== first.metadata.uid);
    assert.deepEqual(ips(again.subsets?.[0]?.addresses), ['10.5.0.1']);
  });
});

describe('repackSubsets', () => {
  const a = (ip: string, uid = ip) => ({ ip, targetRef: { kind: 'Pod', uid } });
  const p = (port: number, name = '') => ({ name, port, protocol: 'TCP' });

  it('merges ports served by the same addresses and addresses serving the same ports', () => {
    const out = repackSubsets([
      { addresses: [a('10.0.0.2')], ports: [p(80)] },
      { addresses: [a('10.0.0.1')], ports: [p(80)] },
      { addresses: [a('10.0.0.1')], ports: [p(443)] },
      { addresses: [a('10.0.0.2')], ports: [p(443)] },
      { addresses: [a('10.0.0.3')], ports: [p(8080)] },
    ]);
    assert.deepEqual(out, [
      { addresses: [a('10.0.0.1'), a('10.0.0.2')], ports: [p(443), p(80)] },
      { addresses: [a('10.0.0.3')], ports: [p(8080)] },
    ]);
  });

  it('keeps an address not ready when any subset says so, and keeps port-less subsets', () => {
    assert.deepEqual(
      repackSubsets([
        { addresses: [a('10.0.0.1')], ports: [p(80)] },
        { notReadyAddresses: [a('10.0.0.1')], ports: [p(80)] },
      ]),
      [{ notReadyAddresses: [a('10.0.0.1')], ports: [p(80)] }],
    );
    assert.deepEqual(repackSubsets([{ addresses: [a('10.0.0.1')] }, { addresses: [a('10.0.0.2')] }]), [
      { addresses: [a('10.0.0.1'), a('10.0.0.2')] },
    ]);
    // The same IP for two pods (hostNetwork) is two addresses.
    assert.equal(
      repackSubsets([{ addresses: [a('10.0.0.1', 'x'), a('10.0.0.1', 'y')], ports: [p(1)] }])[0]?.addresses
        ?.length,
      2,
    );
  });

  it('truncates to capacity, keeping ready addresses first', () => {
    const many = (n: number, base: number) => Array.from({ length: n }, (_, i) => a(`10.${base}.0.${i}`));
    const { subsets, truncated } = truncateToCapacity(
      [
        { addresses: many(6, 1), notReadyAddresses: many(4, 2), ports: [p(80)] },
        { addresses: many(2, 3), ports: [p(81)] },
      ],
      10,
    );
    assert.equal(truncated, true);
    const ready = subsets.reduce((n, s) => n + (s.addresses?.length ?? 0), 0);
    const notReady = subsets.reduce((n, s) => n + (s.notReadyAddresses?.length ?? 0), 0);
    assert.deepEqual([ready, notReady], [8, 2]);
    assert.equal(truncateToCapacity([{ addresses: many(3, 1) }], 10).truncated, false);
  });
});
