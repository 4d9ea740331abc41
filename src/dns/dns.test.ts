// Cluster DNS against the real API server: Services and Pods created as a
// user would, EndpointSlices written by the real EndpointSlice controller
// (or by hand for a selector-less Service), answers asked over UDP and TCP
// from the DNS server on loopback. Names outside the cluster go to a fake
// upstream resolver on loopback, never to a real one.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Pod } from '../api/types/core-v1.ts';
import { endpointSliceController } from '../controllers/endpointslice.ts';
import { type ControllerTest, startControllerTest } from '../controllers/testing.ts';
import { exchange, query, queryMessage } from './client.ts';
import { decodeMessage, encodeMessage, type Message, newMessage, RCODE, TYPE } from './message.ts';
import { type ClusterDNS, startClusterDNS } from './node.ts';
import { createDnsHandler, type DnsListener, listenDns } from './server.ts';

let t: ControllerTest;
let dns: ClusterDNS;
let upstream: DnsListener;
/** Questions the fake upstream saw (name/type), to prove what was and was not forwarded. */
const upstreamSaw: string[] = [];

/**
 * A fake upstream resolver: example.org A 192.0.2.10 (with the client's
 * EDNS options echoed back), big.example TXT too big for 512 bytes,
 * slow.example never answered, anything else NXDOMAIN.
 */
async function startFakeUpstream(): Promise<DnsListener> {
  return listenDns(
    {
      async handle(raw) {
        const q = decodeMessage(raw);
        const question = q.questions[0]!;
        upstreamSaw.push(`${question.name}/${question.type}`);
        if (question.name === 'slow.example') return undefined;
        const reply = newMessage({
          id: q.id,
          response: true,
          recursionDesired: q.recursionDesired,
          recursionAvailable: true,
          questions: q.questions,
          ...(q.edns ? { edns: { ...q.edns, udpPayloadSize: 4096 } } : {}),
        });
        if (question.name === 'example.org' || question.name === 'www.example.org') {
          reply.answers.push({ name: question.name, ttl: 300, type: TYPE.A, address: '192.0.2.10' });
        } else if (question.name === 'big.example') {
          for (let i = 0; i < 20; i++) {
            reply.answers.push({ name: 'big.example', ttl: 300, type: TYPE.TXT, texts: ['x'.repeat(100)] });
          }
        } else reply.rcode = RCODE.NXDOMAIN;
        return encodeMessage(reply);
      },
    },
    { address: '127.0.0.1', port: 0 },
  );
}

const ask = (name: string, type: number = TYPE.A, opts: Parameters<typeof query>[3] = {}) =>
  query(dns, name, type, opts);
const addresses = (m: Message) =>
  m.answers
    .map((r) => ('address' in r ? r.address : undefined))
    .filter(Boolean)
    .sort();

const podTemplate = (
  name: string,
  labels: Record<string, string>,
  extra: Partial<Pod['spec']> = {},
): Pod => ({
  metadata: { name, labels },
  spec: { nodeName: 'node-a', containers: [{ name: 'main', image: 'busybox' }], ...extra },
});

async function runningPod(ns: string, pod: Pod, ip: string, ready = true): Promise<void> {
  await t.clients.pods.create(ns, pod);
  await t.clients.pods.patch(
    ns,
    pod.metadata.name!,
    'merge',
    {
      status: {
        phase: 'Running',
        podIP: ip,
        podIPs: [{ ip }],
        conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }],
      },
    },
    { subresource: 'status' },
  );
}

before(async () => {
  t = await startControllerTest({ endpointslice: endpointSliceController });
  upstream = await startFakeUpstream();
  dns = await startClusterDNS({
    clients: t.clients,
    address: '127.0.0.1',
    port: 0,
    upstreams: [{ host: '127.0.0.1', port: upstream.port }],
    forwardTimeoutMs: 300,
  });
  await t.clients.namespaces.create(undefined, { metadata: { name: 'other' } });
  await t.clients.nodes.create(undefined, { metadata: { name: 'node-a' } });
  await t.clients.services.create('default', {
    metadata: { name: 'web' },
    spec: {
      clusterIP: '10.43.0.50',
      selector: { app: 'web' },
      ports: [
        { name: 'http', port: 80, protocol: 'TCP', targetPort: 8080 },
        { name: 'dns', port: 53, protocol: 'UDP', targetPort: 53 },
      ],
    },
  });
  await t.clients.services.create('other', {
    metadata: { name: 'db' },
    spec: { clusterIP: '10.43.0.60', ports: [{ port: 5432, protocol: 'TCP' }] },
  });
});

after(async () => {
  await dns?.stop();
  await upstream?.close();
  await t?.close();
});

describe('cluster DNS: services', () => {
  it('answers A for a ClusterIP service, in any namespace, echoing the asked spelling', async () => {
    const a = await ask('web.default.svc.cluster.local');
    assert.equal(a.rcode, RCODE.NOERROR);
    assert.equal(a.authoritative, true);
    assert.deepEqual(a.answers, [
      { name: 'web.default.svc.cluster.local', ttl: 5, class: 1, type: TYPE.A, address: '10.43.0.50' },
    ]);
    const mixed = await ask('DB.Other.SVC.cluster.local.');
    assert.equal(mixed.answers[0]?.name, 'DB.Other.SVC.cluster.local');
    assert.deepEqual(addresses(mixed), ['10.43.0.60']);
  });

  it('NODATA with the SOA for a type the name does not have; NXDOMAIN for names that do not exist', async () => {
    const aaaa = await ask('web.default.svc.cluster.local', TYPE.AAAA);
    assert.equal(aaaa.rcode, RCODE.NOERROR);
    assert.equal(aaaa.answers.length, 0);
    const soa = aaaa.authority[0];
    assert.equal(soa?.type, TYPE.SOA);
    assert.ok(soa && 'mname' in soa);
    assert.equal(soa.name, 'cluster.local');
    assert.equal(soa.mname, 'ns.dns.cluster.local');
    assert.equal(soa.rname, 'hostmaster.cluster.local');
    assert.equal(soa.minimum, 5);

    for (const name of [
      'nosuch.default.svc.cluster.local',
      'web.nosuchns.svc.cluster.local',
      'x.cluster.local',
    ]) {
      const r = await ask(name);
      assert.equal(r.rcode, RCODE.NXDOMAIN, name);
      assert.equal(r.authority[0]?.type, TYPE.SOA, name);
    }
    // Names above a service that exist in the tree: NODATA, not NXDOMAIN.
    for (const name of ['default.svc.cluster.local', 'svc.cluster.local', 'cluster.local']) {
      const r = await ask(name);
      assert.equal(r.rcode, RCODE.NOERROR, name);
      assert.equal(r.answers.length, 0, name);
    }
    assert.equal(upstreamSaw.filter((s) => s.includes('cluster.local')).length, 0);
  });

  it('serves SRV for named ports, with the target address in the additional section', async () => {
    const srv = await ask('_http._tcp.web.default.svc.cluster.local', TYPE.SRV);
    assert.equal(srv.rcode, RCODE.NOERROR);
    assert.equal(srv.answers.length, 1);
    const rec = srv.answers[0]!;
    assert.ok('port' in rec);
    assert.equal(rec.port, 80);
    assert.equal(rec.target, 'web.default.svc.cluster.local');
    assert.deepEqual(addresses({ ...srv, answers: srv.additional }), ['10.43.0.50']);
    const udp = await ask('_dns._udp.web.default.svc.cluster.local', TYPE.SRV);
    assert.ok('port' in udp.answers[0]! && udp.answers[0].port === 53);
    // No such port name, or the name on the other protocol.
    assert.equal((await ask('_http._udp.web.default.svc.cluster.local', TYPE.SRV)).rcode, RCODE.NXDOMAIN);
    // db's only port has no name: no SRV record.
    assert.equal((await ask('db.other.svc.cluster.local', TYPE.SRV)).answers.length, 0);
  });

  it('serves PTR for a ClusterIP and CNAME for an ExternalName service (its target resolved upstream)', async () => {
    const ptr = await ask('50.0.43.10.in-addr.arpa', TYPE.PTR);
    assert.equal(ptr.rcode, RCODE.NOERROR);
    assert.ok('target' in ptr.answers[0]!);
    assert.equal(ptr.answers[0].target, 'web.default.svc.cluster.local');

    await t.clients.services.create('default', {
      metadata: { name: 'ext' },
      spec: { type: 'ExternalName', externalName: 'www.example.org' },
    });
    const ext = await t.until('the ExternalName service', async () => {
      const r = await ask('ext.default.svc.cluster.local');
      return r.answers.length ? r : undefined;
    });
    assert.deepEqual(
      ext.answers.map((r) => [r.type, 'target' in r ? r.target : 'address' in r ? r.address : '']),
      [
        [TYPE.CNAME, 'www.example.org'],
        [TYPE.A, '192.0.2.10'],
      ],
    );
  });

  it('answers the schema version and pod A records', async () => {
    const v = await ask('dns-version.cluster.local', TYPE.TXT);
    assert.ok('texts' in v.answers[0]!);
    assert.deepEqual(v.answers[0].texts, ['1.1.0']);
    assert.deepEqual(addresses(await ask('10-42-0-7.default.pod.cluster.local')), ['10.42.0.7']);
    assert.equal((await ask('10-42-0-300.default.pod.cluster.local')).rcode, RCODE.NXDOMAIN);
    assert.equal((await ask('10-42-0-7.nosuchns.pod.cluster.local')).rcode, RCODE.NXDOMAIN);
  });

  it('follows changes: a deleted service is NXDOMAIN at once, despite the answer cache', async () => {
    await t.clients.services.create('default', {
      metadata: { name: 'shortlived' },
      spec: { clusterIP: '10.43.0.70', ports: [{ port: 80, protocol: 'TCP' }] },
    });
    await t.until('shortlived resolves', async () =>
      addresses(await ask('shortlived.default.svc.cluster.local')).includes('10.43.0.70'),
    );
    await ask('shortlived.default.svc.cluster.local'); // cached now
    await t.clients.services.delete('default', 'shortlived');
    await t.until(
      'shortlived gone',
      async () => (await ask('shortlived.default.svc.cluster.local')).rcode === RCODE.NXDOMAIN,
    );
  });
});

describe('cluster DNS: headless services', () => {
  before(async () => {
    await t.clients.services.create('default', {
      metadata: { name: 'db' },
      spec: {
        clusterIP: 'None',
        selector: { app: 'db' },
        ports: [{ name: 'pg', port: 5432, protocol: 'TCP' }],
      },
    });
    await runningPod(
      'default',
      podTemplate('db-0', { app: 'db' }, { hostname: 'db-0', subdomain: 'db' }),
      '10.42.0.10',
    );
    await runningPod('default', podTemplate('db-1', { app: 'db' }), '10.42.0.11');
    await runningPod('default', podTemplate('db-2', { app: 'db' }), '10.42.0.12', false);
  });

  it('answers an A record per ready endpoint, leaving out the unready one', async () => {
    const r = await t.until('both ready endpoints', async () => {
      const m = await ask('db.default.svc.cluster.local');
      return addresses(m).length === 2 ? m : undefined;
    });
    assert.deepEqual(addresses(r), ['10.42.0.10', '10.42.0.11']);
  });

  it('gives a pod with hostname and subdomain its own name; others are named by their address', async () => {
    assert.deepEqual(addresses(await ask('db-0.db.default.svc.cluster.local')), ['10.42.0.10']);
    assert.deepEqual(addresses(await ask('10-42-0-11.db.default.svc.cluster.local')), ['10.42.0.11']);
    assert.equal((await ask('db-9.db.default.svc.cluster.local')).rcode, RCODE.NXDOMAIN);
    const ptr = await ask('10.0.42.10.in-addr.arpa', TYPE.PTR);
    assert.ok('target' in ptr.answers[0]!);
    assert.equal(ptr.answers[0].target, 'db-0.db.default.svc.cluster.local');
  });

  it('serves one SRV per ready endpoint and named port', async () => {
    const srv = await ask('_pg._tcp.db.default.svc.cluster.local', TYPE.SRV);
    const targets = srv.answers
      .map((r) => ('target' in r ? `${r.target}:${'port' in r ? r.port : ''}` : ''))
      .sort();
    assert.deepEqual(targets, [
      '10-42-0-11.db.default.svc.cluster.local:5432',
      'db-0.db.default.svc.cluster.local:5432',
    ]);
    assert.deepEqual(addresses({ ...srv, answers: srv.additional }), ['10.42.0.10', '10.42.0.11']);
  });

  it('is NXDOMAIN with no ready endpoint, as the specification says', async () => {
    await t.clients.services.create('default', {
      metadata: { name: 'empty' },
      spec: { clusterIP: 'None', selector: { app: 'nothing' }, ports: [{ port: 80, protocol: 'TCP' }] },
    });
    await t.until('empty headless service known', () => t.clients.services.get('default', 'empty'));
    await t.until(
      'empty is NXDOMAIN',
      async () => (await ask('empty.default.svc.cluster.local')).rcode === RCODE.NXDOMAIN,
    );
  });

  it('truncates a big answer over UDP (TC) and gives all of it over TCP', async () => {
    // A selector-less headless service with a hand-written EndpointSlice of 60 endpoints.
    await t.clients.services.create('default', {
      metadata: { name: 'many' },
      spec: { clusterIP: 'None', ports: [{ name: 'http', port: 80, protocol: 'TCP' }] },
    });
    await t.clients.endpointSlices.create('default', {
      metadata: { name: 'many-1', labels: { 'kubernetes.io/service-name': 'many' } },
      addressType: 'IPv4',
      endpoints: Array.from({ length: 60 }, (_, i) => ({ addresses: [`10.42.1.${i + 1}`] })),
      ports: [{ name: 'http', port: 80, protocol: 'TCP' }],
    });
    const udp = await t.until('many resolves', async () => {
      const m = await ask('many.default.svc.cluster.local');
      return m.answers.length ? m : undefined;
    });
    assert.equal(udp.truncated, true);
    assert.ok(udp.answers.length < 60);
    // A bigger EDNS0 payload size fits them all.
    const edns = await ask('many.default.svc.cluster.local', TYPE.A, {
      edns: { udpPayloadSize: 4096, version: 0, dnssecOk: false, options: Buffer.alloc(0) },
    });
    assert.equal(edns.truncated, false);
    assert.equal(edns.answers.length, 60);
    assert.equal(edns.edns?.udpPayloadSize, 1232);
    const tcp = await ask('many.default.svc.cluster.local', TYPE.A, { protocol: 'tcp' });
    assert.equal(tcp.truncated, false);
    assert.equal(tcp.answers.length, 60);
  });
});

describe('cluster DNS: forwarding', () => {
  it('forwards other names upstream, passing EDNS0 options through, and restores the client id', async () => {
    const options = Buffer.from([0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8]); // a client cookie
    const r = await ask('example.org', TYPE.A, {
      id: 4242,
      edns: { udpPayloadSize: 1232, version: 0, dnssecOk: false, options },
    });
    assert.equal(r.id, 4242);
    assert.equal(r.rcode, RCODE.NOERROR);
    assert.deepEqual(addresses(r), ['192.0.2.10']);
    assert.deepEqual(r.edns?.options, options);
    assert.ok(upstreamSaw.includes(`example.org/${TYPE.A}`));
    // Upstream's NXDOMAIN comes back as it is.
    assert.equal((await ask('nosuch.example')).rcode, RCODE.NXDOMAIN);
    // An unknown reverse name is not the cluster's: forwarded.
    await ask('9.9.9.9.in-addr.arpa', TYPE.PTR);
    assert.ok(upstreamSaw.includes(`9.9.9.9.in-addr.arpa/${TYPE.PTR}`));
  });

  it('truncates a forwarded answer too big for UDP, and forwards over TCP when asked over TCP', async () => {
    const udp = await ask('big.example', TYPE.TXT);
    assert.equal(udp.truncated, true);
    assert.equal(udp.answers.length, 0);
    const tcp = await ask('big.example', TYPE.TXT, { protocol: 'tcp' });
    assert.equal(tcp.truncated, false);
    assert.equal(tcp.answers.length, 20);
  });

  it('answers SERVFAIL when the upstream does not answer in time', async () => {
    const started = Date.now();
    const r = await ask('slow.example');
    assert.equal(r.rcode, RCODE.SERVFAIL);
    assert.deepEqual(
      r.questions.map((q) => q.name),
      ['slow.example'],
    );
    assert.ok(Date.now() - started < 3000);
  });

  it('REFUSES names outside the zone without upstreams, and FORMERR for garbage with a header', async () => {
    const handler = createDnsHandler({
      zone: { domain: 'cluster.local', lookup: () => undefined, changed() {}, generation: 0 },
    });
    const refused = decodeMessage((await handler.handle(queryMessage('example.org', TYPE.A), 'udp'))!);
    assert.equal(refused.rcode, RCODE.REFUSED);
    const garbage = Buffer.from([0, 9, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 5, 0x61]);
    const formerr = await exchange(dns, garbage);
    assert.equal(formerr.readUInt16BE(0), 9);
    assert.equal(formerr.readUInt16BE(2) & 0xf, RCODE.FORMERR);
  });
});
