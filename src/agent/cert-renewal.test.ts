import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { TLSSocket } from 'node:tls';
import { createHttpTransport } from '../client/http-transport.ts';
import { ensureCA, issueLeaf } from '../pki/pki.ts';
import { createLog } from '../util/log.ts';
import { needsRenewal, startCertificateRenewal } from './cert-renewal.ts';

const dir = mkdtempSync(join(tmpdir(), 'skiff-renewal-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const ca = ensureCA(dir);
const log = createLog({ component: 'test' }, () => {});

describe('agent client certificate renewal', () => {
  it('renews within 90 days of expiry, not before', async () => {
    const short = issueLeaf(ca, { commonName: 'system:node:n', usage: 'client', days: 30 });
    const long = issueLeaf(ca, { commonName: 'system:node:n', usage: 'client', days: 365 });
    assert.equal(needsRenewal(short.cert), true);
    assert.equal(needsRenewal(long.cert), false);
    assert.equal(needsRenewal(long.cert, new Date(Date.now() + 300 * 24 * 3600 * 1000)), true);
    let current = Buffer.from(short.cert);
    let renewals = 0;
    const r = startCertificateRenewal({
      current: () => current,
      renew: async () => {
        renewals++;
        current = Buffer.from(long.cert);
      },
      log,
    });
    assert.equal(await r.check(), true);
    assert.equal(await r.check(), false, 'the renewed certificate is good for a while');
    assert.equal(renewals, 1);
    r.stop();
  });

  it('the HTTPS transport takes a renewed client certificate for new connections', async () => {
    const serving = issueLeaf(ca, { commonName: 'server', usage: 'server', ips: ['127.0.0.1'] });
    const server = createServer(
      { key: serving.key, cert: serving.cert, ca: ca.cert, requestCert: true, rejectUnauthorized: true },
      (req, res) => {
        const cn = (req.socket as TLSSocket).getPeerCertificate().subject?.CN;
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ cn }));
      },
    );
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as { port: number }).port;
    const first = issueLeaf(ca, { commonName: 'first', usage: 'client' });
    const second = issueLeaf(ca, { commonName: 'second', usage: 'client' });
    const t = createHttpTransport({ server: `https://127.0.0.1:${port}`, ca: ca.cert, ...first });
    try {
      const ask = async () => ((await t.request({ method: 'GET', path: '/' })).body as { cn: string }).cn;
      assert.equal(await ask(), 'first');
      t.setClientCertificate(second.cert, second.key);
      assert.equal(await ask(), 'second');
    } finally {
      t.close();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});
