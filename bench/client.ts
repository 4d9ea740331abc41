// The client's two transports against one `skiff server` (sqlite store):
// in-process (the handler chain, no socket) versus HTTPS with client
// certificates over loopback, as an agent on another machine would use.
// Same server, same run, so the ratio is the price of the wire.
//
//   npm run bench -- client [--quick]
//
// Headline: in-process creates/s as a multiple of HTTPS creates/s (32 in flight).

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { createInProcessTransport } from '../src/apiserver/in-process.ts';
import { createClientset } from '../src/client/clientset.ts';
import { createHttpTransport } from '../src/client/http-transport.ts';
import { createInformer } from '../src/client/informer.ts';
import type { Transport } from '../src/client/transport.ts';
import { load, percentile, ratio, startBenchServer, writeResult } from './lib.ts';

const quick = process.argv.includes('--quick');
const N = quick ? 1000 : 5000;
const LIST_OBJECTS = quick ? 1000 : 5000;

const dataDir = mkdtempSync(join(tmpdir(), 'skiff-bench-client-'));
const server = await startBenchServer(dataDir, { controllers: false, scheduler: false });

const kc = parse(readFileSync(server.kubeconfig, 'utf8'));
const b64 = (s: string) => Buffer.from(s, 'base64');
const https = createHttpTransport({
  server: server.url,
  ca: b64(kc.clusters[0].cluster['certificate-authority-data']),
  cert: b64(kc.users[0].user['client-certificate-data']),
  key: b64(kc.users[0].user['client-key-data']),
});
const inProcess = createInProcessTransport(server.api, { name: 'bench', groups: ['system:masters'] });

async function measure(name: string, transport: Transport) {
  const clients = createClientset(transport);
  const ns = `bench-${name}`;
  await clients.namespaces.create(undefined, { metadata: { name: ns } });
  const data = { payload: 'x'.repeat(512) };
  const creates = await load(N, 32, (i) =>
    clients.configMaps.create(ns, { metadata: { name: `cm-${i}` }, data }),
  );
  const gets = await load(N, 32, (i) => clients.configMaps.get(ns, `cm-${i % N}`));
  const updates = await load(N, 32, (i) =>
    clients.configMaps.patch(ns, `cm-${i}`, 'merge', { data: { n: String(i) } }),
  );
  const listMs: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t = performance.now();
    const list = await clients.configMaps.list(ns);
    listMs.push(performance.now() - t);
    if (list.items.length < Math.min(N, LIST_OBJECTS)) throw new Error('short list');
  }
  // Watch latency: an informer following the namespace sees each write.
  const informer = createInformer(clients.configMaps, { namespace: ns });
  const seen = new Map<string, number>();
  informer.on({ update: (_a, b) => seen.set(b.metadata.name ?? '', performance.now()) });
  await informer.start();
  const sent = new Map<string, number>();
  for (let i = 0; i < 200; i++) {
    sent.set(`cm-${i}`, performance.now());
    await clients.configMaps.patch(ns, `cm-${i}`, 'merge', { data: { w: String(i) } });
  }
  while (seen.size < 200) await new Promise((r) => setTimeout(r, 5));
  informer.stop();
  const watchLatency = [...sent].map(([k, t]) => (seen.get(k) ?? t) - t);
  const result = {
    createsPerSec: creates.opsPerSec,
    createP99Ms: percentile(creates.latencies, 99),
    getsPerSec: gets.opsPerSec,
    getP99Ms: percentile(gets.latencies, 99),
    patchesPerSec: updates.opsPerSec,
    listMs: { p50: percentile(listMs, 50), objects: N },
    writeToInformerMs: { p50: percentile(watchLatency, 50), p99: percentile(watchLatency, 99) },
  };
  console.log(name, JSON.stringify(result));
  return result;
}

/**
 * The raw path: the same creates as plain node:https requests (keep-alive,
 * the same client certificate, 32 in flight), with no clientset, transport
 * or decoding on top: what the wire and the server cost on their own.
 */
async function rawHttpsCreates(): Promise<{ createsPerSec: number; createP99Ms: number }> {
  const agent = new HttpsAgent({
    keepAlive: true,
    ca: b64(kc.clusters[0].cluster['certificate-authority-data']),
    cert: b64(kc.users[0].user['client-certificate-data']),
    key: b64(kc.users[0].user['client-key-data']),
  });
  const post = (path: string, body: unknown) =>
    new Promise<void>((resolve, reject) => {
      const req = httpsRequest(
        new URL(path, server.url),
        { method: 'POST', agent, headers: { 'content-type': 'application/json' } },
        (res) => {
          res.resume();
          res.on('end', () =>
            res.statusCode === 201 ? resolve() : reject(new Error(`HTTP ${res.statusCode}`)),
          );
        },
      );
      req.on('error', reject);
      req.end(JSON.stringify(body));
    });
  await post('/api/v1/namespaces', { metadata: { name: 'bench-raw' } });
  const data = { payload: 'x'.repeat(512) };
  const r = await load(N, 32, (i) =>
    post('/api/v1/namespaces/bench-raw/configmaps', { metadata: { name: `cm-${i}` }, data }),
  );
  agent.destroy();
  return { createsPerSec: r.opsPerSec, createP99Ms: percentile(r.latencies, 99) };
}

const raw = await rawHttpsCreates();
console.log('raw https', JSON.stringify(raw));
const viaHttps = await measure('https', https);
const viaInProcess = await measure('in-process', inProcess);
https.close();
await server.stop();
rmSync(dataDir, { recursive: true, force: true });

const ratios = {
  creates: ratio(viaInProcess.createsPerSec, viaHttps.createsPerSec),
  gets: ratio(viaInProcess.getsPerSec, viaHttps.getsPerSec),
  patches: ratio(viaInProcess.patchesPerSec, viaHttps.patchesPerSec),
  list: ratio(viaHttps.listMs.p50, viaInProcess.listMs.p50),
};
console.log('in-process / https', JSON.stringify(ratios));
writeResult(
  'client',
  {
    metric: 'in-process creates/s as a multiple of HTTPS creates/s (32 in flight)',
    value: ratios.creates,
    unit: 'x',
  },
  {
    quick,
    objects: N,
    https: viaHttps,
    inProcess: viaInProcess,
    inProcessOverHttps: ratios,
    rawPath: 'the same creates as plain node:https POSTs (keep-alive, 32 in flight) to the same server',
    rawHttps: raw,
    // The clientset over HTTPS against the raw requests: what the client adds.
    ratio: ratio(viaHttps.createsPerSec, raw.createsPerSec),
    store: 'sqlite',
  },
);
