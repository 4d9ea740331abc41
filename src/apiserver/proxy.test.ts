// pods/proxy and services/proxy through the API server, to a real HTTP
// backend on loopback standing in for a pod (the test allows 127.0.0.1,
// which upstream's address check, also tested here, refuses).

import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { isGlobalUnicast, proxyPath, splitSchemeNamePort } from './proxy.ts';
import { startTestServer, type TestServer } from './testing.ts';

let t: TestServer;
let backend: Server;
let backendPort = 0;
const seen: Array<{ method: string; url: string; body: string; auth?: string; custom?: string }> = [];

before(async () => {
  backend = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      seen.push({
        method: req.method ?? '',
        url: req.url ?? '',
        body,
        ...(req.headers.authorization ? { auth: req.headers.authorization } : {}),
        ...(req.headers['x-custom'] ? { custom: String(req.headers['x-custom']) } : {}),
      });
      if (req.url === '/go-home') {
        res.writeHead(302, { Location: '/home' });
        return res.end();
      }
      res.writeHead(req.url === '/missing' ? 404 : 200, { 'content-type': 'text/plain', 'x-backend': 'yes' });
      res.end(`hello from ${req.method} ${req.url}`);
    });
  });
  await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
  backendPort = (backend.address() as { port: number }).port;
  t = await startTestServer(undefined, { proxyAllowAddress: (ip) => ip === '127.0.0.1' });

  const ns = '/api/v1/namespaces/default';
  const pod = await t.request('POST', `${ns}/pods`, {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'web', labels: { app: 'web' } },
    spec: {
      nodeName: 'n1',
      containers: [{ name: 'c', image: 'busybox', ports: [{ containerPort: backendPort, name: 'http' }] }],
    },
  });
  assert.equal(pod.status, 201, pod.text);
  const st = await t.request(
    'PATCH',
    `${ns}/pods/web/status`,
    { status: { phase: 'Running', podIP: '127.0.0.1', podIPs: [{ ip: '127.0.0.1' }] } },
    { 'content-type': 'application/merge-patch+json' },
  );
  assert.equal(st.status, 200, st.text);
  const svc = await t.request('POST', `${ns}/services`, {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'web' },
    spec: { selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: backendPort }] },
  });
  assert.equal(svc.status, 201, svc.text);
  // What the endpoints controller would write (no controller runs here).
  const eps = await t.request('POST', `${ns}/endpoints`, {
    apiVersion: 'v1',
    kind: 'Endpoints',
    metadata: { name: 'web' },
    subsets: [
      {
        addresses: [{ ip: '127.0.0.1', targetRef: { kind: 'Pod', name: 'web', namespace: 'default' } }],
        ports: [{ name: 'http', port: backendPort }],
      },
    ],
  });
  assert.equal(eps.status, 201, eps.text);
});
after(async () => {
  await t.close();
  backend.close();
});

const ns = '/api/v1/namespaces/default';

describe('pods/proxy', () => {
  it('forwards method, path, query, body and headers, and returns the backend status and headers', async () => {
    seen.length = 0;
    const r = await t.request('POST', `${ns}/pods/web:${backendPort}/proxy/echo/a%20b?x=1&y=2`, 'payload', {
      'content-type': 'text/plain',
      'x-custom': 'kept',
      authorization: 'Bearer not-for-the-pod',
    });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.text, 'hello from POST /echo/a%20b?x=1&y=2');
    assert.equal(r.headers.get('x-backend'), 'yes');
    assert.deepEqual(seen[0], {
      method: 'POST',
      url: '/echo/a%20b?x=1&y=2',
      body: 'payload',
      custom: 'kept',
    });
    const missing = await t.request('GET', `${ns}/pods/web/proxy/missing`);
    assert.equal(missing.status, 404, 'the backend 404 passes through');
    assert.equal(missing.text, 'hello from GET /missing');
  });

  it('without a port uses the first container port; http: and the port name forms parse', async () => {
    assert.equal((await t.request('GET', `${ns}/pods/web/proxy/`)).text, 'hello from GET /');
    assert.equal(
      (await t.request('GET', `${ns}/pods/http:web:${backendPort}/proxy/x`)).text,
      'hello from GET /x',
    );
    const bad = await t.request('GET', `${ns}/pods/ftp:web:80/proxy/`);
    assert.equal(bad.status, 400);
    assert.equal(bad.body.message, 'invalid pod request "ftp:web:80"');
  });

  it('redirects .../proxy to .../proxy/, and keeps backend redirects inside the proxy', async () => {
    const r = await fetch(`${t.url}${ns}/pods/web/proxy`, { redirect: 'manual' });
    assert.equal(r.status, 301);
    assert.equal(r.headers.get('location'), `${ns}/pods/web/proxy/`);
    const home = await fetch(`${t.url}${ns}/pods/web/proxy/go-home`, { redirect: 'manual' });
    assert.equal(home.status, 302);
    assert.equal(home.headers.get('location'), `${ns}/pods/web/proxy/home`);
  });

  it('404 for a missing pod; 503 when the backend cannot be reached', async () => {
    const r = await t.request('GET', `${ns}/pods/ghost/proxy/`);
    assert.equal(r.status, 404);
    assert.equal(r.body.reason, 'NotFound');
    const closed = await t.request('GET', `${ns}/pods/web:1/proxy/`);
    assert.equal(closed.status, 503);
    assert.match(closed.body.message, /^error trying to reach service: /);
  });
});

describe('services/proxy', () => {
  it('reaches the endpoint by port name or service port number', async () => {
    assert.equal((await t.request('GET', `${ns}/services/web:http/proxy/a`)).text, 'hello from GET /a');
    assert.equal((await t.request('GET', `${ns}/services/web:80/proxy/b`)).text, 'hello from GET /b');
    const noPort = await t.request('GET', `${ns}/services/web:81/proxy/`);
    assert.equal(noPort.status, 503);
    assert.equal(noPort.body.message, 'no service port 81 found for service "web"');
  });

  it('503 with no endpoints, and refuses an endpoint address that is not its pod', async () => {
    const svc = await t.request('POST', `${ns}/services`, {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'empty' },
      spec: { ports: [{ port: 80 }] },
    });
    assert.equal(svc.status, 201, svc.text);
    await t.request('POST', `${ns}/endpoints`, {
      apiVersion: 'v1',
      kind: 'Endpoints',
      metadata: { name: 'empty' },
      subsets: [],
    });
    const none = await t.request('GET', `${ns}/services/empty/proxy/`);
    assert.equal(none.status, 503);
    assert.equal(none.body.message, 'no endpoints available for service "empty"');
    // An Endpoints object pointing at an address its pod does not have is not followed.
    await t.request('POST', `${ns}/services`, {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'forged' },
      spec: { ports: [{ port: 80 }] },
    });
    await t.request('POST', `${ns}/endpoints`, {
      apiVersion: 'v1',
      kind: 'Endpoints',
      metadata: { name: 'forged' },
      subsets: [{ addresses: [{ ip: '127.0.0.1' }], ports: [{ port: backendPort }] }],
    });
    assert.equal((await t.request('GET', `${ns}/services/forged/proxy/`)).status, 503);
  });
});

describe('proxy helpers', () => {
  it('splits scheme, name and port as upstream', () => {
    assert.deepEqual(splitSchemeNamePort('web'), { scheme: 'http', name: 'web', port: '' });
    assert.deepEqual(splitSchemeNamePort('web:8080'), { scheme: 'http', name: 'web', port: '8080' });
    assert.deepEqual(splitSchemeNamePort('https:web:443'), { scheme: 'https', name: 'web', port: '443' });
    assert.equal(splitSchemeNamePort(':80'), undefined);
    assert.equal(splitSchemeNamePort('a:b:c:d'), undefined);
  });

  it('only global unicast addresses, as upstream', () => {
    assert.equal(isGlobalUnicast('10.42.0.5'), true);
    assert.equal(isGlobalUnicast('127.0.0.1'), false);
    assert.equal(isGlobalUnicast('169.254.169.254'), false, 'no cloud metadata');
    assert.equal(isGlobalUnicast('::1'), false);
    assert.equal(isGlobalUnicast('fd00::1'), true);
  });

  it('splits the URL at the proxy segment, keeping the rest as sent', () => {
    assert.deepEqual(proxyPath('/api/v1/namespaces/d/pods/web:80/proxy/a%2Fb?q=1', 'pods', 'web:80'), {
      base: '/api/v1/namespaces/d/pods/web:80/proxy',
      path: '/a%2Fb',
    });
  });
});
