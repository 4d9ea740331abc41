import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { refuse } from './local.ts';
import { dashboardHandler } from './serve.ts';

describe('the dashboard static handler', () => {
  let dir: string;
  let server: Server;
  let base: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'skiff-dashboard-'));
    writeFileSync(join(dir, 'index.html'), '<!doctype html><title>x</title>');
    writeFileSync(join(dir, 'app.js'), 'console.log(1)');
    writeFileSync(join(dir, '.key'), 'secret-ish');
    const serve = dashboardHandler(dir);
    server = createServer((req, res) => {
      if (!serve(req, res)) res.writeHead(418).end('api');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  after(() => {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves the index and assets with their types and a strict CSP', async () => {
    const index = await fetch(`${base}/dashboard/`);
    assert.equal(index.status, 200);
    assert.equal(index.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.match(index.headers.get('content-security-policy') ?? '', /script-src 'self'/);
    const js = await fetch(`${base}/dashboard/app.js`);
    assert.equal(js.headers.get('content-type'), 'text/javascript; charset=utf-8');
    assert.equal(await js.text(), 'console.log(1)');
    const bare = await fetch(`${base}/dashboard`, { redirect: 'manual' });
    assert.equal(bare.status, 301);
    assert.equal(bare.headers.get('location'), '/dashboard/');
  });

  it('serves nothing outside its directory, no dot file, and only reads', async () => {
    assert.equal((await fetch(`${base}/dashboard/..%2fetc%2fpasswd`)).status, 404);
    assert.equal((await fetch(`${base}/dashboard/.key`)).status, 404);
    assert.equal((await fetch(`${base}/dashboard/missing.js`)).status, 404);
    assert.equal((await fetch(`${base}/dashboard/app.js`, { method: 'POST' })).status, 405);
  });

  it('leaves every other path to the API', async () => {
    const api = await fetch(`${base}/api/v1/pods`);
    assert.equal(api.status, 418);
    assert.equal((await fetch(`${base}/dashboardx`)).status, 418);
  });

  it('says how to build a missing bundle', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'skiff-dashboard-'));
    const serve = dashboardHandler(empty);
    const s = createServer((req, res) => void serve(req, res));
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const res = await fetch(`http://127.0.0.1:${(s.address() as { port: number }).port}/dashboard/`);
    assert.equal(res.status, 503);
    assert.match(await res.text(), /scripts\/setup\.sh/);
    s.close();
    rmSync(empty, { recursive: true, force: true });
  });
});

describe("skiff dashboard's loopback proxy", () => {
  const req = (headers: Record<string, string>) => ({ headers }) as never;
  it('serves only requests addressed to itself, from its own pages', () => {
    assert.equal(refuse(req({ host: '127.0.0.1:9090' }), 9090), undefined);
    assert.equal(refuse(req({ host: 'localhost:9090', origin: 'http://localhost:9090' }), 9090), undefined);
    // DNS rebinding: a page at evil.example resolved to 127.0.0.1.
    assert.match(refuse(req({ host: 'evil.example:9090' }), 9090)!, /not this proxy/);
    // Another site's page posting to the proxy.
    assert.match(
      refuse(req({ host: '127.0.0.1:9090', origin: 'https://evil.example' }), 9090)!,
      /may not use/,
    );
  });
});
