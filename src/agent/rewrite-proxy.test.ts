// The rewrite proxy: k3s's rewrite rules on repository names, and requests
// forwarded to an HTTPS endpoint with its CA and client certificate, the
// registry's answers (challenge, status, body) passed back unchanged.

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { TLSSocket } from 'node:tls';
import { ensureCA, ensureLeaf, type KeyPair } from '../pki/pki.ts';
import type { Registries } from './registries.ts';
import { rewriteRepository, startRewriteProxy, withRewriteProxies } from './rewrite-proxy.ts';

describe('rewriteRepository', () => {
  it("renames by the first pattern that changes the name, with Go's $1 and its braced form", () => {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: Go's braced group, as registries.yaml writes it
    const rewrites = { '^rancher/(.*)': 'mirror/rancher-images/$1', '^library/(.*)': 'hub/${1}' };
    assert.equal(
      rewriteRepository('rancher/coredns-coredns', rewrites),
      'mirror/rancher-images/coredns-coredns',
    );
    assert.equal(rewriteRepository('library/busybox', rewrites), 'hub/busybox');
    assert.equal(rewriteRepository('other/thing', rewrites), 'other/thing');
    // biome-ignore lint/suspicious/noTemplateCurlyInString: Go's named group
    assert.equal(rewriteRepository('a/b', { '^(?<org>[^/]+)/(.*)$': '${org}-x/$2' }), 'a-x/b');
  });
});

describe('startRewriteProxy', () => {
  let dir: string;
  let ca: KeyPair;
  let client: KeyPair;
  let upstream: Server;
  let port = 0;
  const seen: { path: string; auth?: string; clientCert: boolean }[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'skiff-rewrite-proxy-'));
    ca = ensureCA(join(dir, 'pki'), 'skiff-test-registry-ca');
    const server = ensureLeaf(ca, join(dir, 'pki'), 'server', {
      commonName: 'registry',
      ips: ['127.0.0.1'],
      usage: 'server',
    });
    client = ensureLeaf(ca, join(dir, 'pki'), 'client', { commonName: 'node', usage: 'client' });
    // A registry that wants basic auth and a client certificate.
    upstream = createServer(
      { cert: server.cert, key: server.key, ca: ca.cert, requestCert: true, rejectUnauthorized: true },
      (req, res) => {
        seen.push({
          path: req.url ?? '',
          ...(req.headers.authorization ? { auth: req.headers.authorization } : {}),
          clientCert: (req.socket as TLSSocket).authorized,
        });
        if (!req.headers.authorization) {
          res.writeHead(401, {
            'WWW-Authenticate': 'Basic realm="test"',
            'Content-Type': 'application/json',
          });
          return res.end('{"errors":[{"code":"UNAUTHORIZED"}]}');
        }
        res.writeHead(200, {
          'Content-Type': 'application/vnd.oci.image.manifest.v1+json',
          'Docker-Content-Digest': 'sha256:x',
        });
        res.end(req.method === 'HEAD' ? undefined : 'manifest');
      },
    );
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    port = (upstream.address() as AddressInfo).port;
  });
  after(async () => {
    upstream.closeAllConnections();
    await new Promise((r) => upstream.close(r));
    await rm(dir, { recursive: true, force: true });
  });

  it('forwards with the rewritten name over TLS, and passes the challenge and the answer back', async () => {
    const proxy = await startRewriteProxy({
      upstream: {
        url: `https://127.0.0.1:${port}/v2`,
        tls: { ca_file: ca.certFile, cert_file: client.certFile, key_file: client.keyFile },
      },
      rewrites: { '^library/(.*)': 'mirrored/$1' },
    });
    try {
      const challenge = await fetch(`${proxy.endpoint}/v2/library/busybox/manifests/latest?ns=docker.io`);
      assert.equal(challenge.status, 401);
      assert.equal(challenge.headers.get('www-authenticate'), 'Basic realm="test"');

      const res = await fetch(`${proxy.endpoint}/v2/library/busybox/manifests/latest?ns=docker.io`, {
        headers: { Authorization: 'Basic dTpw' },
      });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('docker-content-digest'), 'sha256:x');
      assert.equal(await res.text(), 'manifest');
      assert.deepEqual(seen.slice(-2), [
        { path: '/v2/mirrored/busybox/manifests/latest?ns=docker.io', clientCert: true },
        { path: '/v2/mirrored/busybox/manifests/latest?ns=docker.io', auth: 'Basic dTpw', clientCert: true },
      ]);

      // /v2/ itself (containerd's ping) goes through as it is.
      await fetch(`${proxy.endpoint}/v2/`, { headers: { Authorization: 'Basic dTpw' } });
      assert.equal(seen.at(-1)?.path, '/v2/');
    } finally {
      await proxy.close();
    }
  });

  it('answers 502 with a registry error when the endpoint does not answer', async () => {
    // TLS to a server whose CA the proxy does not trust.
    const proxy = await startRewriteProxy({
      upstream: { url: `https://127.0.0.1:${port}/v2` },
      rewrites: { a: 'b' },
    });
    try {
      const res = await fetch(`${proxy.endpoint}/v2/a/manifests/1`);
      assert.equal(res.status, 502);
      assert.match(await res.text(), /"code":"UNAVAILABLE"/);
    } finally {
      await proxy.close();
    }
  });

  it("puts a proxy in front of each endpoint of a mirror with rewrites, with the endpoint's credentials", async () => {
    const registries: Registries = {
      mirrors: {
        'docker.io': { endpoint: [`https://127.0.0.1:${port}`], rewrite: { '^library/(.*)': 'mirrored/$1' } },
        'plain.example': { endpoint: ['https://plain.example:5000'] },
      },
      configs: {
        [`127.0.0.1:${port}`]: {
          auth: { username: 'u', password: 'p' },
          tls: { ca_file: ca.certFile, cert_file: client.certFile, key_file: client.keyFile },
        },
      },
    };
    const { registries: out, proxies } = await withRewriteProxies(registries);
    try {
      assert.equal(proxies.length, 1);
      const proxyHost = new URL(proxies[0]!.endpoint).host;
      assert.deepEqual(out.mirrors['docker.io'], { endpoint: [proxies[0]!.endpoint] });
      assert.deepEqual(out.mirrors['plain.example'], registries.mirrors['plain.example']);
      assert.deepEqual(out.configs[proxyHost], { auth: { username: 'u', password: 'p' } });
      assert.deepEqual(out.configs[`127.0.0.1:${port}`], registries.configs[`127.0.0.1:${port}`]);
      const res = await fetch(`${proxies[0]!.endpoint}/v2/library/x/manifests/1`, {
        headers: { Authorization: 'Basic dTpw' },
      });
      assert.equal(res.status, 200);
      assert.equal(seen.at(-1)?.path, '/v2/mirrored/x/manifests/1');
    } finally {
      await Promise.all(proxies.map((p) => p.close()));
    }
  });
});
