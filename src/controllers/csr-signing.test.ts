import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { CertificateSigningRequest } from '../api/types/certificates-v1.ts';
import { ensureCA } from '../pki/pki.ts';
import { makeTestCSR, requestField } from '../pki/testing.ts';
import { defaultControllerOptions } from './context.ts';
import { csrSigningController, signingDuration, validity } from './csr-signing.ts';
import { type ControllerTest, startControllerTest } from './testing.ts';

const ca = ensureCA(mkdtempSync(join(tmpdir(), 'skiff-csrsigning-')));
const HOUR = 3600_000;
let t: ControllerTest;
before(async () => {
  t = await startControllerTest(
    { csrsigning: csrSigningController },
    {
      options: {
        ...defaultControllerOptions,
        clusterSigningCA: { cert: ca.cert, key: ca.key },
        clusterSigningDurationMs: 2 * HOUR,
      },
    },
  );
});
after(() => t.close());

async function submit(
  name: string,
  subject: string,
  spec: Partial<NonNullable<CertificateSigningRequest['spec']>>,
  opts: { ext?: string[]; condition?: 'Approved' | 'Denied' } = { condition: 'Approved' },
): Promise<CertificateSigningRequest> {
  const { csr } = makeTestCSR(subject, opts.ext ? { ext: opts.ext } : {});
  const created = await t.clients.certificateSigningRequests.create(undefined, {
    metadata: { name },
    spec: { request: requestField(csr), usages: ['client auth'], ...spec },
  });
  if (!opts.condition) return created;
  created.status = { conditions: [{ type: opts.condition, status: 'True', reason: 'Test' }] };
  return t.clients.certificateSigningRequests.updateSubresource(created, 'approval');
}

const get = (name: string) => t.clients.certificateSigningRequests.get(undefined, name);
const certOf = (csr: CertificateSigningRequest) =>
  csr.status?.certificate ? new X509Certificate(Buffer.from(csr.status.certificate, 'base64')) : undefined;

describe('csrsigning', () => {
  it('signs an approved kube-apiserver-client request for what it asked', async () => {
    await submit('bob', '/O=dev/CN=bob', {
      signerName: 'kubernetes.io/kube-apiserver-client',
      expirationSeconds: 600,
    });
    const csr = await t.until('bob signed', async () =>
      (await get('bob')).status?.certificate ? get('bob') : undefined,
    );
    const cert = certOf(csr)!;
    assert.equal(cert.subject, 'O=dev\nCN=bob');
    assert.ok(cert.checkIssued(new X509Certificate(ca.cert)));
    assert.ok(cert.verify(new X509Certificate(ca.cert).publicKey));
    // Short-lived: the full 10 minutes from now, backdated 5 minutes.
    const lifetime = Date.parse(cert.validTo) - Date.parse(cert.validFrom);
    assert.ok(Math.abs(lifetime - 15 * 60_000) <= 2000, `lifetime ${lifetime}`);
  });

  it('caps the duration at the cluster signing duration', async () => {
    await submit('long', '/CN=long', {
      signerName: 'kubernetes.io/kube-apiserver-client',
      expirationSeconds: 86_400,
    });
    const csr = await t.until('long signed', async () =>
      (await get('long')).status?.certificate ? get('long') : undefined,
    );
    const cert = certOf(csr)!;
    const lifetime = Date.parse(cert.validTo) - Date.parse(cert.validFrom);
    // Short-lived (under 8h), so not moved back: 2h from now plus the 5 minutes of backdate.
    assert.ok(Math.abs(lifetime - (2 * HOUR + 5 * 60_000)) <= 2000, `lifetime ${lifetime}`);
  });

  it('fails a kubelet client request that is not from system:nodes', async () => {
    await submit('not-node', '/O=dev/CN=system:node:x', {
      signerName: 'kubernetes.io/kube-apiserver-client-kubelet',
      usages: ['digital signature', 'client auth'],
    });
    const csr = await t.until('failed', async () => {
      const c = await get('not-node');
      return c.status?.conditions?.some((x) => x.type === 'Failed') ? c : undefined;
    });
    const failed = csr.status!.conditions!.find((x) => x.type === 'Failed')!;
    assert.equal(failed.reason, 'SignerValidationFailure');
    assert.equal(failed.message, 'subject organization is not system:nodes');
    assert.equal(csr.status?.certificate, undefined);
  });

  it('signs kubelet-serving requests with SANs and fails them without', async () => {
    const usages = ['digital signature', 'key encipherment', 'server auth'];
    await submit(
      'serving',
      '/O=system:nodes/CN=system:node:n1',
      { signerName: 'kubernetes.io/kubelet-serving', usages },
      { ext: ['subjectAltName=DNS:n1,IP:192.0.2.5'], condition: 'Approved' },
    );
    await submit('serving-nosan', '/O=system:nodes/CN=system:node:n1', {
      signerName: 'kubernetes.io/kubelet-serving',
      usages,
    });
    await submit(
      'serving-email',
      '/O=system:nodes/CN=system:node:n1',
      { signerName: 'kubernetes.io/kubelet-serving', usages },
      { ext: ['subjectAltName=DNS:n1,email:a@b.c'], condition: 'Approved' },
    );
    const csr = await t.until('serving signed', async () =>
      (await get('serving')).status?.certificate ? get('serving') : undefined,
    );
    assert.equal(certOf(csr)!.subjectAltName, 'DNS:n1, IP Address:192.0.2.5');
    for (const [name, message] of [
      ['serving-nosan', 'DNS or IP subjectAltName is required'],
      ['serving-email', 'Email subjectAltNames are not allowed'],
    ] as const) {
      const c = await t.until(`${name} failed`, async () => {
        const x = await get(name);
        return x.status?.conditions?.find((y) => y.type === 'Failed');
      });
      assert.equal(c.message, message);
    }
  });

  it('leaves pending, denied and other signers alone', async () => {
    await submit('pending', '/CN=p', { signerName: 'kubernetes.io/kube-apiserver-client' }, {});
    await submit(
      'denied',
      '/CN=d',
      { signerName: 'kubernetes.io/kube-apiserver-client' },
      { condition: 'Denied' },
    );
    await submit('other', '/CN=o', { signerName: 'example.com/mine' });
    await submit('marker', '/CN=m', { signerName: 'kubernetes.io/kube-apiserver-client' });
    await t.until('marker signed', async () => (await get('marker')).status?.certificate);
    for (const name of ['pending', 'denied', 'other']) {
      const csr = await get(name);
      assert.equal(csr.status?.certificate, undefined, name);
      assert.ok(!csr.status?.conditions?.some((c) => c.type === 'Failed'), name);
    }
  });
});

describe('signing policy', () => {
  it('honours expirationSeconds between 10 minutes and the maximum', () => {
    assert.equal(signingDuration(undefined, HOUR), HOUR);
    assert.equal(signingDuration(1800, HOUR), 1800_000);
    assert.equal(signingDuration(7200, HOUR), HOUR);
    assert.equal(signingDuration(60, HOUR), 600_000);
  });

  it('backdates five minutes, and ends long-lived certificates five minutes early', () => {
    const now = new Date('2030-01-01T00:00:00Z');
    const far = new Date('2040-01-01T00:00:00Z');
    assert.deepEqual(validity(now, 10 * 60_000, far), {
      notBefore: new Date('2029-12-31T23:55:00Z'),
      notAfter: new Date('2030-01-01T00:10:00Z'),
    });
    assert.deepEqual(validity(now, 24 * HOUR, far).notAfter, new Date('2030-01-01T23:55:00Z'));
    // Never past the CA's own expiry.
    assert.deepEqual(
      validity(now, 24 * HOUR, new Date('2030-01-01T12:00:00Z')).notAfter,
      new Date('2030-01-01T12:00:00Z'),
    );
    assert.throws(() => validity(far, HOUR, now), /the signer has expired/);
  });
});
