// The HAProxy configuration: endpoint changes keep the structure (so they
// go through the runtime API, not a reload), slots keep their endpoints,
// and what is rendered is a configuration Debian's HAProxy accepts.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { ensureCA, ensureLeaf } from '../pki/pki.ts';
import { assignSlots, DEFAULT_CERT, fresh, renderConfig, runtimeCommands } from './haproxy-config.ts';
import type { Endpoint, IngressModel } from './model.ts';

const model = (endpoints: Endpoint[], extra: Partial<IngressModel> = {}): IngressModel => ({
  routes: [{ host: 'a.test', path: '/', pathType: 'Prefix', backend: 'web_app_80', ingress: 'web/a' }],
  backends: [{ name: 'web_app_80', namespace: 'web', service: 'app', port: '80', endpoints }],
  certificates: [],
  redirectHosts: [],
  problems: [],
  ingresses: ['web/a'],
  ...extra,
});
const ep = (last: number): Endpoint => ({ ip: `10.42.0.${last}`, port: 8080 });
const opts = { dir: '/run/ingress', httpPort: 80, httpsPort: 443 };

describe('server slots', () => {
  it('keep an endpoint that stays in its slot, retire a left one, and give a new one a free slot', () => {
    const a = assignSlots(model([ep(1), ep(2), ep(3)]), new Map());
    assert.equal(a.reload, true, 'a new backend is a reload');
    assert.deepEqual(a.slots.get('web_app_80'), [ep(1), ep(2), ep(3), 'free']);
    const b = assignSlots(model([ep(3), ep(4)]), a.slots);
    assert.equal(b.reload, false);
    assert.deepEqual(b.slots.get('web_app_80'), ['retired', 'retired', ep(3), ep(4)]);
    assert.deepEqual(runtimeCommands(a.slots, b.slots), [
      'set server web_app_80/s1 state maint',
      'set server web_app_80/s2 state maint',
      'set server web_app_80/s4 addr 10.42.0.4 port 8080',
      'set server web_app_80/s4 state ready',
    ]);
  });

  it('never give a retired slot another address before a reload; a reload frees them', () => {
    const a = assignSlots(model([ep(1), ep(2), ep(3), ep(4)]), new Map());
    const b = assignSlots(model([ep(2), ep(3), ep(4)]), a.slots);
    assert.deepEqual(b.slots.get('web_app_80'), ['retired', ep(2), ep(3), ep(4)]);
    // A new endpoint has no free slot: a reload, laid out afresh (same size: room enough).
    const c = assignSlots(model([ep(2), ep(3), ep(4), ep(5)]), b.slots);
    assert.equal(c.reload, true);
    assert.deepEqual(c.slots.get('web_app_80'), [ep(5), ep(2), ep(3), ep(4)]);
    assert.deepEqual(fresh(b.slots).get('web_app_80'), ['free', ep(2), ep(3), ep(4)]);
  });

  it('grow to the next power of two when they run out, and never shrink under a running proxy', () => {
    const a = assignSlots(model([ep(1)]), new Map());
    assert.equal(a.slots.get('web_app_80')?.length, 4);
    const b = assignSlots(model([1, 2, 3, 4, 5].map(ep)), a.slots);
    assert.equal(b.reload, true);
    assert.equal(b.slots.get('web_app_80')?.length, 8);
    const c = assignSlots(model([ep(1)]), b.slots);
    assert.equal(c.slots.get('web_app_80')?.length, 8);
  });
});

describe('renderConfig', () => {
  it('keeps the structure when only endpoints change, and changes it for a route or more slots', () => {
    const a = model([ep(1)]);
    const sa = assignSlots(a, new Map()).slots;
    const b = model([ep(2), ep(3)]);
    const sb = assignSlots(b, sa);
    assert.equal(sb.reload, false);
    const ra = renderConfig(a, sa, opts);
    const rb = renderConfig(b, sb.slots, opts);
    assert.equal(ra.structure, rb.structure);
    assert.notEqual(ra.config, rb.config);
    assert.match(
      rb.config,
      /server s1 127\.0\.0\.1:1 disabled\n {2}server s2 10\.42\.0\.2:8080\n {2}server s3 10\.42\.0\.3:8080\n/,
    );
    const c = model([ep(1)], {
      routes: [{ host: 'b.test', path: '/', pathType: 'Prefix', backend: 'web_app_80', ingress: 'web/a' }],
    });
    assert.notEqual(renderConfig(c, sa, opts).structure, ra.structure);
    const d = model([1, 2, 3, 4, 5].map(ep));
    assert.notEqual(renderConfig(d, assignSlots(d, sa).slots, opts).structure, ra.structure);
  });

  it('is a configuration HAProxy accepts (haproxy -c)', (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'skiff-haproxy-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const ca = ensureCA(join(dir, 'ca'));
    const leaf = ensureLeaf(ca, join(dir, 'ca'), 'leaf', {
      commonName: 'a.test',
      dnsNames: ['a.test'],
      usage: 'server',
    });
    const pem = `${leaf.cert}${leaf.key}`;
    const m = model([ep(1)], {
      certificates: [{ secret: 'web/tls', pem, hosts: ['a.test', '*.b.test'] }],
      redirectHosts: ['a.test'],
      defaultBackend: 'web_app_80',
    });
    const r = renderConfig(m, assignSlots(m, new Map()).slots, { dir, httpPort: 18080, httpsPort: 18443 });
    mkdirSync(join(dir, 'certs'));
    writeFileSync(join(dir, DEFAULT_CERT), pem);
    for (const [f, content] of r.files) {
      mkdirSync(dirname(join(dir, f)), { recursive: true });
      writeFileSync(join(dir, f), content);
    }
    writeFileSync(join(dir, 'haproxy.cfg'), r.config);
    const out = execFileSync('/usr/sbin/haproxy', ['-c', '-f', join(dir, 'haproxy.cfg')], {
      encoding: 'utf8',
    });
    assert.match(out, /Configuration file is valid/);
  });
});
