// Cluster DNS: queries/s and latency for a service name (answered from the
// node's in-memory zone, the cached-answer path) against names forwarded to
// an upstream resolver (a fake one on loopback, answering at once), in the
// same run, over UDP on loopback. Also what one node's DNS costs: the heap
// of its informer caches and the time to list them, for SERVICES services
// with a two-endpoint EndpointSlice each (the figures behind where DNS runs,
// docs/architecture-notes.md).
//
//   npm run bench -- dns [--quick]
//
// Client and server share one process and event loop, so the figures are
// the server's throughput with a client's cost on top: a floor, not a ceiling.
//
// Headline: service-name queries/s (UDP, 64 in flight).

import { createSocket } from 'node:dgram';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { createInProcessTransport } from '../src/apiserver/in-process.ts';
import { startTestServer } from '../src/apiserver/testing.ts';
import { createClientset } from '../src/client/clientset.ts';
import { queryMessage } from '../src/dns/client.ts';
import { decodeMessage, encodeMessage, newMessage, TYPE } from '../src/dns/message.ts';
import { informerClusterState, startClusterDNS } from '../src/dns/node.ts';
import { listenDns } from '../src/dns/server.ts';
import { load, percentile, ratio, round, writeResult } from './lib.ts';

const quick = process.argv.includes('--quick');
const QUERIES = quick ? 20_000 : 100_000;
const CONCURRENCY = 64;
const SERVICES = quick ? 1000 : 5000;

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const heapMB = () => {
  gc();
  gc();
  return process.memoryUsage().heapUsed / 1024 / 1024;
};

const server = await startTestServer();
const clients = createClientset(
  createInProcessTransport(server.api, { name: 'bench', groups: ['system:masters'] }),
);

console.log(`creating ${SERVICES} services with a two-endpoint EndpointSlice each ...`);
for (let i = 0; i < SERVICES; i += 50) {
  await Promise.all(
    Array.from({ length: Math.min(50, SERVICES - i) }, async (_, j) => {
      const n = i + j;
      await clients.services.create('default', {
        metadata: { name: `svc-${n}` },
        spec: { ports: [{ name: 'http', port: 80, protocol: 'TCP' }] },
      });
      await clients.endpointSlices.create('default', {
        metadata: { name: `svc-${n}-1`, labels: { 'kubernetes.io/service-name': `svc-${n}` } },
        addressType: 'IPv4',
        endpoints: [1, 2].map((k) => ({
          addresses: [`10.42.${(n >> 7) & 0xff}.${((n & 0x7f) << 1) + k - 1}`],
          conditions: { ready: true },
        })),
        ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
      });
    }),
  );
}

// What one node pays to hold the zone: its informer caches.
const before = heapMB();
let t = performance.now();
const state = informerClusterState(clients);
await state.start();
const listMs = performance.now() - t;
const cacheMB = heapMB() - before;
state.stop();
console.log(`zone caches: ${round(cacheMB)} MB heap, listed in ${round(listMs)} ms`);

// The fake upstream: every question gets one A record at once.
const upstream = await listenDns(
  {
    async handle(raw) {
      const q = decodeMessage(raw);
      const question = q.questions[0]!;
      return encodeMessage(
        newMessage({
          id: q.id,
          response: true,
          recursionAvailable: true,
          questions: [question],
          answers: [{ name: question.name, ttl: 300, type: TYPE.A, address: '192.0.2.1' }],
        }),
      );
    },
  },
  { address: '127.0.0.1', port: 0 },
);
const dns = await startClusterDNS({
  clients,
  address: '127.0.0.1',
  port: 0,
  upstreams: [{ host: '127.0.0.1', port: upstream.port }],
});

/** One UDP socket, queries told apart by id: the client side costs little per query. */
function udpClient(port: number) {
  const sock = createSocket('udp4');
  const pending = new Map<number, () => void>();
  let nextId = 0;
  sock.on('message', (msg) => {
    const done = pending.get(msg.readUInt16BE(0));
    pending.delete(msg.readUInt16BE(0));
    done?.();
  });
  return {
    ask(name: string) {
      const id = nextId++ & 0xffff;
      const msg = queryMessage(name, TYPE.A, { id });
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          pending.delete(id);
          reject(new Error(`no answer for ${name}`));
        }, 5000);
        pending.set(id, () => {
          clearTimeout(timer);
          resolve();
        });
        sock.send(msg, port, '127.0.0.1');
      });
    },
    close: () => sock.close(),
  };
}

const client = udpClient(dns.port);
const run = async (what: string, name: (i: number) => string, n = QUERIES, concurrency = CONCURRENCY) => {
  await load(Math.min(2000, n), concurrency, (i) => client.ask(name(i))); // warm-up
  const r = await load(n, concurrency, (i) => client.ask(name(i)));
  const figures = {
    queriesPerSec: r.opsPerSec,
    p50Ms: percentile(r.latencies, 50),
    p99Ms: percentile(r.latencies, 99),
  };
  console.log(`${what}: ${r.opsPerSec} queries/s, p50 ${figures.p50Ms} ms, p99 ${figures.p99Ms} ms`);
  return figures;
};

const service = await run('service name (cached answer)', () => 'svc-7.default.svc.cluster.local');
const spread = await run(
  `service names across ${SERVICES} services`,
  (i) => `svc-${i % SERVICES}.default.svc.cluster.local`,
);
const forwarded = await run('forwarded to the upstream', (i) => `host-${i % 1000}.example.org`);
// One query at a time: the round trip a pod's lookup waits for, without queueing.
const serviceAlone = await run(
  'service name, one at a time',
  () => 'svc-7.default.svc.cluster.local',
  5000,
  1,
);
const forwardedAlone = await run('forwarded, one at a time', (i) => `host-${i % 1000}.example.org`, 5000, 1);
// The raw path: the same client straight to the fake upstream on loopback, a
// resolver that answers every question at once with no zone or cache behind it.
const rawClient = udpClient(upstream.port);
const raw = await (async () => {
  await load(2000, CONCURRENCY, (i) => rawClient.ask(`host-${i % 1000}.example.org`));
  const r = await load(QUERIES, CONCURRENCY, (i) => rawClient.ask(`host-${i % 1000}.example.org`));
  return {
    queriesPerSec: r.opsPerSec,
    p50Ms: percentile(r.latencies, 50),
    p99Ms: percentile(r.latencies, 99),
  };
})();
rawClient.close();
console.log(`raw: the fake upstream asked directly: ${raw.queriesPerSec} queries/s, p50 ${raw.p50Ms} ms`);

// The zone lookup itself, without sockets: where the time goes.
t = performance.now();
const lookups = quick ? 50_000 : 200_000;
for (let i = 0; i < lookups; i++) {
  dns.zone.lookup({ name: `svc-${i % SERVICES}.default.svc.cluster.local`, type: TYPE.A, class: 1 });
}
const zoneLookupsPerSec = Math.round(lookups / ((performance.now() - t) / 1000));
console.log(`zone lookups without sockets or cache: ${zoneLookupsPerSec}/s`);

client.close();
await dns.stop();
await upstream.close();
await server.close();

writeResult(
  'dns',
  { metric: 'service-name queries/s (UDP, cached answer)', value: service.queriesPerSec, unit: 'queries/s' },
  {
    concurrency: CONCURRENCY,
    queries: QUERIES,
    services: SERVICES,
    serviceName: service,
    serviceNamesSpread: spread,
    forwarded,
    serviceOneAtATime: serviceAlone,
    forwardedOneAtATime: forwardedAlone,
    serviceVsForwarded: ratio(service.queriesPerSec, forwarded.queriesPerSec),
    rawPath: 'the fake upstream resolver on loopback asked directly by the same UDP client (64 in flight)',
    raw,
    ratio: ratio(service.queriesPerSec, raw.queriesPerSec),
    zoneLookupsPerSec,
    zoneCaches: { heapMB: round(cacheMB), listMs: round(listMs) },
  },
);
