import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { issueCertificate, parseCertificateRequest } from './csr.ts';
import { ensureCA } from './pki.ts';
import { makeTestCSR } from './testing.ts';

const dir = mkdtempSync(join(tmpdir(), 'skiff-csr-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const openssl = (args: string[], input?: string) =>
  execFileSync('openssl', args, { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });

/** A key and CSR made by the openssl CLI, as a user would. */
const makeCSR = makeTestCSR;

describe('parseCertificateRequest', () => {
  it('reads the subject and subjectAltNames of an EC request', () => {
    const { csr } = makeCSR('/O=system:nodes/O=second/CN=system:node:worker-1', {
      ext: [
        'subjectAltName=DNS:worker-1,DNS:w1.example.com,IP:10.0.0.7,IP:fd00::1,email:a@b.c,URI:spiffe://x/y',
      ],
    });
    const r = parseCertificateRequest(csr);
    assert.equal(r.commonName, 'system:node:worker-1');
    assert.deepEqual(r.organizations, ['system:nodes', 'second']);
    assert.deepEqual(r.dnsNames, ['worker-1', 'w1.example.com']);
    assert.deepEqual(r.ipAddresses, ['10.0.0.7', 'fd00:0:0:0:0:0:0:1']);
    assert.deepEqual(r.emailAddresses, ['a@b.c']);
    assert.deepEqual(r.uris, ['spiffe://x/y']);
  });

  it('verifies RSA and Ed25519 self-signatures', () => {
    const rsa = parseCertificateRequest(makeCSR('/CN=rsa-user', { key: ['-newkey', 'rsa:2048'] }).csr);
    assert.equal(rsa.commonName, 'rsa-user');
    const ed = parseCertificateRequest(makeCSR('/CN=ed-user', { key: ['-newkey', 'ed25519'] }).csr);
    assert.equal(ed.commonName, 'ed-user');
  });

  it('refuses a request whose signature does not match', () => {
    const { csr } = makeCSR('/CN=alice');
    const der = Buffer.from(csr.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64');
    der[der.length - 5]! ^= 0x01; // inside the signature
    const bad = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
    assert.throws(() => parseCertificateRequest(bad), /signature|malformed/);
  });

  it('refuses other PEM blocks and garbage, with upstream message', () => {
    const ca = ensureCA(join(dir, 'ca0'));
    assert.throws(
      () => parseCertificateRequest(ca.cert),
      /^Error: PEM block type must be CERTIFICATE REQUEST$/,
    );
    assert.throws(() => parseCertificateRequest('hello'), /PEM block type must be CERTIFICATE REQUEST/);
    const junk = '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n';
    assert.throws(() => parseCertificateRequest(junk), /malformed/);
  });
});

describe('issueCertificate', () => {
  const ca = ensureCA(join(dir, 'ca'));

  it('issues a certificate openssl verifies, with the requested usages, SANs and validity', () => {
    const { csr, key } = makeCSR('/O=system:nodes/CN=system:node:n1', {
      ext: ['subjectAltName=DNS:n1,IP:192.0.2.10'],
    });
    const notBefore = new Date('2030-01-01T00:00:00Z');
    const notAfter = new Date('2030-01-01T00:10:00Z');
    const pem = issueCertificate(ca, parseCertificateRequest(csr), {
      usages: ['digital signature', 'key encipherment', 'server auth'],
      notBefore,
      notAfter,
    });
    const certFile = join(dir, 'issued.crt');
    writeFileSync(certFile, pem);
    const verified = openssl([
      'verify',
      '-CAfile',
      ca.certFile,
      '-attime',
      String(Date.parse('2030-01-01T00:05:00Z') / 1000),
      certFile,
    ]);
    assert.match(verified, /OK/);
    const cert = new X509Certificate(pem);
    assert.equal(cert.subject, 'O=system:nodes\nCN=system:node:n1');
    assert.equal(cert.subjectAltName, 'DNS:n1, IP Address:192.0.2.10');
    assert.equal(new Date(cert.validFrom).toISOString(), notBefore.toISOString());
    assert.equal(new Date(cert.validTo).toISOString(), notAfter.toISOString());
    assert.equal(cert.ca, false);
    assert.ok(cert.checkPrivateKey(createPrivateKey(key)));
    const text = openssl(['x509', '-noout', '-text'], pem);
    assert.match(text, /X509v3 Key Usage: critical\s+Digital Signature, Key Encipherment/);
    assert.match(text, /X509v3 Extended Key Usage:\s+TLS Web Server Authentication/);
    assert.match(text, /X509v3 Basic Constraints: critical\s+CA:FALSE/);
    assert.match(text, /X509v3 Authority Key Identifier/);
  });

  it('issues client certificates for RSA keys and sorts extended usages as upstream', () => {
    const { csr } = makeCSR('/O=dev/CN=bob', { key: ['-newkey', 'rsa:2048'] });
    const pem = issueCertificate(ca, parseCertificateRequest(csr), {
      usages: ['client auth', 'server auth', 'digital signature'],
      notBefore: new Date(Date.now() - 60_000),
      notAfter: new Date(Date.now() + 3600_000),
    });
    const text = openssl(['x509', '-noout', '-text'], pem);
    assert.match(text, /TLS Web Server Authentication, TLS Web Client Authentication/);
    assert.match(text, /X509v3 Key Usage: critical\s+Digital Signature\n/);
  });
});
