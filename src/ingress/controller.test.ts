// The ingress controller against a test API server and Debian's real
// HAProxy on free loopback ports, with plain HTTP servers in this process
// as the "pods" (selector-less Services, EndpointSlices written by hand):
// an Ingress is served, an endpoint change goes through the runtime API
// (no reload), a new route is a reload, a broken Ingress is an Event, and
// status carries the Ready node's address.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Event } from '../api/types/core-v1.ts';
import { createInProcessTransport } from '../apiserver/in-process.ts';
import { startTestServer, type TestServer } from '../apiserver/testing.ts';
import { type Clientset, createClientset } from '../client/clientset.ts';
import { createIngressController, type IngressController } from './controller.ts';

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as AddressInfo).port;
      s.close(() => resolve(p));
    });
  });

/** A "pod": answers its name. */
async function pod(name: string): Promise<{ server: Server; port: number }> {
  const server = createServer((_req, res) => res.end(name));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as AddressInfo).port };
}

let t: TestServer;
let clients: Clientset;
let controller: IngressController;
let dir: string;
let httpPort: number;
const pods: { server: Server; port: number }[] = [];

const get = (host: string, path = '/'): Promise<{ status: number; body: string }> =>
  new Promise((resolve) => {
    const req = request(
      { host: '127.0.0.1', port: httpPort, path, headers: { host }, agent: false },
      (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', (e) => resolve({ status: 0, body: String(e) }));
    req.end();
  });

async function until<T>(what: string, f: () => Promise<T | undefined | false>, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const slice = (service: string, ports: number[]) => ({
  metadata: { name: service, namespace: 'default', labels: { 'kubernetes.io/service-name': service } },
  addressType: 'IPv4',
  ports: [{ name: 'http', port: ports[0] ?? 1, protocol: 'TCP' }],
  endpoints: [{ addresses: ['127.0.0.1'], conditions: { ready: ports.length > 0 } }],
});

before(async () => {
  t = await startTestServer();
  clients = createClientset(createInProcessTransport(t.api, { name: 'admin', groups: ['system:masters'] }));
  dir = mkdtempSync(join(tmpdir(), 'skiff-ingress-'));
  httpPort = await freePort();
  for (const n of ['one', 'two']) pods.push(await pod(n));
  await clients.ingressClasses.create(undefined, {
    metadata: { name: 'skiff', annotations: { 'ingressclass.kubernetes.io/is-default-class': 'true' } },
    spec: { controller: 'skiff.io/ingress' },
  });
  await clients.nodes.create(undefined, {
    metadata: { name: 'n1' },
    status: {
      conditions: [{ type: 'Ready', status: 'True' }],
      addresses: [{ type: 'InternalIP', address: '198.18.7.1' }],
    },
  });
  await clients.services.create('default', {
    metadata: { name: 'app' },
    spec: { ports: [{ name: 'http', port: 80, protocol: 'TCP' }] },
  });
  await clients.endpointSlices.create('default', slice('app', [pods[0]!.port]) as never);
  await clients.ingresses.create('default', {
    metadata: { name: 'web' },
    spec: {
      ingressClassName: 'skiff',
      rules: [
        {
          host: 'a.test',
          http: {
            paths: [
              { path: '/', pathType: 'Prefix', backend: { service: { name: 'app', port: { number: 80 } } } },
            ],
          },
        },
      ],
    },
  });
  controller = createIngressController({
    clients,
    dir,
    httpPort,
    httpsPort: await freePort(),
    bindAddress: '127.0.0.1',
  });
  await controller.start();
});

after(async () => {
  await controller?.stop();
  for (const p of pods) p.server.close();
  await t?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('ingress controller', () => {
  it('serves an Ingress and writes the Ready node’s address into its status', async () => {
    assert.deepEqual(await get('a.test'), { status: 200, body: 'one' });
    assert.equal((await get('b.test')).status, 404);
    await until('status', async () => {
      const ing = await clients.ingresses.get('default', 'web');
      return ing.status?.loadBalancer?.ingress?.[0]?.ip === '198.18.7.1';
    });
  });

  it('moves an endpoint through the runtime API, without a reload, and answers 503 with none', async () => {
    const before = { ...controller.syncs };
    const s = await clients.endpointSlices.get('default', 'app');
    s.ports = [{ name: 'http', port: pods[1]!.port, protocol: 'TCP' }];
    await clients.endpointSlices.update(s);
    let last: unknown;
    await until('the new endpoint served', async () => {
      last = await get('a.test');
      return (last as { body: string }).body === 'two';
    }).catch((err) => {
      throw new Error(`${err}; the last answer: ${JSON.stringify(last)}`);
    });
    assert.equal(controller.syncs.reloads, before.reloads, 'no reload');
    assert.ok(controller.syncs.runtimeUpdates > before.runtimeUpdates);
    const none = await clients.endpointSlices.get('default', 'app');
    none.endpoints = [{ addresses: ['127.0.0.1'], conditions: { ready: false, serving: false } }];
    await clients.endpointSlices.update(none);
    await until('503 with no ready endpoint', async () => (await get('a.test')).status === 503);
    assert.equal(controller.syncs.reloads, before.reloads, 'still no reload');
  });

  it('reloads for a new route, and reports an Ingress whose Service is missing', async () => {
    const before = controller.syncs.reloads;
    await clients.ingresses.create('default', {
      metadata: { name: 'more' },
      spec: {
        rules: [
          {
            host: 'c.test',
            http: {
              paths: [
                {
                  path: '/x',
                  pathType: 'Exact',
                  backend: { service: { name: 'app', port: { name: 'http' } } },
                },
              ],
            },
          },
          {
            host: 'gone.test',
            http: {
              paths: [
                {
                  path: '/',
                  pathType: 'Prefix',
                  backend: { service: { name: 'missing', port: { number: 80 } } },
                },
              ],
            },
          },
        ],
      },
    });
    await until(
      'c.test routed (503: no endpoint yet)',
      async () => (await get('c.test', '/x')).status === 503,
    );
    // The counter goes up once the new worker answers, which a request may see a moment before.
    await until('a reload counted', async () => controller.syncs.reloads > before);
    assert.equal((await get('c.test', '/y')).status, 404);
    const events = await until('a Warning event', async () => {
      const list = (await clients.events.list('default')).items as Event[];
      return list.find((e) => e.involvedObject?.name === 'more' && e.reason === 'ServiceNotFound');
    });
    assert.equal(events.type, 'Warning');
    assert.match(events.message ?? '', /service "default\/missing" not found/);
  });
});
