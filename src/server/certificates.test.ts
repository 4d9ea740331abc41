import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parse } from 'yaml';
import { kubeconfigYaml } from '../pki/kubeconfig.ts';
import { ensureCA, ensureLeaf } from '../pki/pki.ts';
import {
  certificateExpiryEvent,
  checkCertificates,
  leafOptionsOf,
  rotateCertificates,
} from './certificates.ts';

const dataDir = mkdtempSync(join(tmpdir(), 'skiff-certs-'));
after(() => rmSync(dataDir, { recursive: true, force: true }));
const tls = join(dataDir, 'server', 'tls');
const ca = ensureCA(tls);
const serving = ensureLeaf(ca, tls, 'serving-kube-apiserver', {
  commonName: 'kube-apiserver',
  usage: 'server',
  dnsNames: ['localhost', 'kubernetes.default.svc'],
  ips: ['127.0.0.1', '10.43.0.1'],
});
const admin = ensureLeaf(ca, tls, 'client-admin', {
  commonName: 'system:admin',
  organizations: ['system:masters'],
  usage: 'client',
});
writeFileSync(
  join(dataDir, 'kubeconfig.yaml'),
  kubeconfigYaml('https://127.0.0.1:6443', ca.cert, admin.cert, admin.key),
);

describe('skiff certificate (as k3s certificate)', () => {
  it('check lists every certificate with its expiry; 90 days before it, a WARNING and a Warning Event', () => {
    const certs = checkCertificates(dataDir);
    assert.deepEqual(
      certs.map((c) => [c.file.slice(tls.length + 1), c.status]),
      [
        ['ca.crt', 'OK'],
        ['client-admin.crt', 'OK'],
        ['serving-kube-apiserver.crt', 'OK'],
      ],
    );
    assert.ok(certs[0]!.isCA);
    assert.deepEqual(certs[2]!.usages, ['ServerAuth']);
    assert.equal(certificateExpiryEvent(certs, 'node-1'), undefined);
    // Eleven months on, the one-year leaves are within 90 days; two years on, expired.
    const later = new Date(Date.now() + 335 * 24 * 3600 * 1000);
    const soon = checkCertificates(dataDir, later);
    assert.deepEqual(
      soon.map((c) => c.status),
      ['OK', 'WARNING', 'WARNING'],
    );
    const event = certificateExpiryEvent(soon, 'node-1', later) as Record<string, any>;
    assert.equal(event.type, 'Warning');
    assert.equal(event.reason, 'CertificateExpirationWarning');
    assert.deepEqual(event.involvedObject, { apiVersion: 'v1', kind: 'Node', name: 'node-1' });
    assert.match(event.message, /client-admin\.crt: expires/);
    assert.equal(
      checkCertificates(dataDir, new Date(Date.now() + 800 * 24 * 3600 * 1000))[1]!.status,
      'EXPIRED',
    );
  });

  it('rotate reissues the leaves from the same CA with the same names, rewrites the kubeconfig, keeps the old', () => {
    const before = new X509Certificate(serving.cert);
    const { rotated, backup } = rotateCertificates(dataDir, ['api-server', 'admin']);
    assert.equal(rotated.length, 2);
    const now = readFileSync(serving.certFile, 'utf8');
    const after = new X509Certificate(now);
    assert.notEqual(after.serialNumber, before.serialNumber);
    assert.ok(after.verify(new X509Certificate(ca.cert).publicKey), 'signed by the same CA');
    assert.equal(after.subject, before.subject);
    assert.equal(after.subjectAltName, before.subjectAltName);
    assert.notEqual(readFileSync(serving.keyFile, 'utf8'), serving.key, 'a new key too');
    assert.equal(readFileSync(join(backup, 'serving-kube-apiserver.crt'), 'utf8'), serving.cert);
    assert.ok(!existsSync(join(backup, 'new')));
    // The admin kubeconfig carries the new admin certificate.
    const kc = parse(readFileSync(join(dataDir, 'kubeconfig.yaml'), 'utf8'));
    const embedded = Buffer.from(kc.users[0].user['client-certificate-data'], 'base64').toString();
    assert.equal(embedded, readFileSync(admin.certFile, 'utf8'));
    assert.notEqual(embedded, admin.cert);
    assert.equal(kc.clusters[0].cluster.server, 'https://127.0.0.1:6443');
    assert.deepEqual(leafOptionsOf(embedded), {
      commonName: 'system:admin',
      organizations: ['system:masters'],
      dnsNames: [],
      ips: [],
      usage: 'client',
    });
    assert.throws(() => rotateCertificates(dataDir, ['etcd-peer']), /unknown service "etcd-peer"/);
  });
});
