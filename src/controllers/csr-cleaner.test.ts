import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { isApiError } from '../api/errors.ts';
import type { CertificateSigningRequest } from '../api/types/certificates-v1.ts';
import { issueCertificate, parseCertificateRequest } from '../pki/csr.ts';
import { ensureCA } from '../pki/pki.ts';
import { makeTestCSR, requestField } from '../pki/testing.ts';
import type { QueueController } from './controller.ts';
import { cleanupReason, csrCleanerController } from './csr-cleaner.ts';
import { startControllerTest } from './testing.ts';

const HOUR = 3600_000;
const now = new Date('2030-06-01T12:00:00Z');
const ago = (ms: number) => new Date(now.getTime() - ms).toISOString();
const csr = (
  created: string,
  conditions: { type: string; at: string }[],
  certificate?: string,
): CertificateSigningRequest => ({
  metadata: { name: 'x', creationTimestamp: created },
  status: {
    conditions: conditions.map((c) => ({ type: c.type, status: 'True', lastUpdateTime: c.at })),
    ...(certificate ? { certificate } : {}),
  },
});

const { csr: PEM } = makeTestCSR('/CN=old');
const ca = ensureCA(mkdtempSync(join(tmpdir(), 'skiff-csrcleaner-')));
const certificate = (notAfter: Date) =>
  Buffer.from(
    issueCertificate(ca, parseCertificateRequest(PEM), {
      usages: ['client auth'],
      notBefore: new Date(notAfter.getTime() - HOUR),
      notAfter,
    }),
  ).toString('base64');

describe('csrcleaner rules', () => {
  it('deletes issued, denied and failed requests after an hour, pending ones after a day', () => {
    const valid = certificate(new Date(now.getTime() + 100 * HOUR));
    assert.equal(
      cleanupReason(csr(ago(2 * HOUR), [{ type: 'Approved', at: ago(2 * HOUR) }], valid), now),
      'approved and issued more than 1h ago',
    );
    assert.equal(
      cleanupReason(csr(ago(2 * HOUR), [{ type: 'Approved', at: ago(30 * 60_000) }], valid), now),
      undefined,
    );
    // Approved but not issued yet: kept, the signer may still be at it.
    assert.equal(
      cleanupReason(csr(ago(2 * HOUR), [{ type: 'Approved', at: ago(2 * HOUR) }]), now),
      undefined,
    );
    assert.equal(
      cleanupReason(csr(ago(2 * HOUR), [{ type: 'Denied', at: ago(61 * 60_000) }]), now),
      'denied more than 1h ago',
    );
    assert.equal(
      cleanupReason(csr(ago(2 * HOUR), [{ type: 'Failed', at: ago(61 * 60_000) }]), now),
      'failed more than 1h ago',
    );
    assert.equal(cleanupReason(csr(ago(23 * HOUR), []), now), undefined);
    assert.equal(cleanupReason(csr(ago(25 * HOUR), []), now), 'pending for more than 24h');
  });

  it('deletes a request whose certificate has expired', () => {
    const expired = certificate(new Date(now.getTime() - 60_000));
    assert.equal(
      cleanupReason(csr(ago(10 * 60_000), [{ type: 'Approved', at: ago(10 * 60_000) }], expired), now),
      'its certificate has expired',
    );
  });
});

describe('csrcleaner', () => {
  it('deletes what is due on its pass and keeps the rest', async () => {
    // The controller's clock is a day ahead: the pending CSR is due, the fresh denial is not.
    const later = () => new Date(Date.now() + 25 * HOUR);
    const t = await startControllerTest({ csrcleaner: csrCleanerController }, { now: later });
    try {
      const make = (name: string) =>
        t.clients.certificateSigningRequests.create(undefined, {
          metadata: { name },
          spec: { request: requestField(PEM), signerName: 'example.com/s', usages: ['client auth'] },
        });
      await make('stale-pending');
      const kept = await make('kept');
      kept.status = {
        conditions: [{ type: 'Denied', status: 'True', reason: 'No', lastUpdateTime: later().toISOString() }],
      };
      await t.clients.certificateSigningRequests.updateSubresource(kept, 'approval');
      const cleaner = t.manager.controllers[0] as QueueController;
      await t.until('stale-pending deleted', async () => {
        // The next hourly pass, now.
        cleaner.queue.add('clean');
        return t.clients.certificateSigningRequests.get(undefined, 'stale-pending').then(
          () => undefined,
          (err) => isApiError(err, 'NotFound'),
        );
      });
      assert.equal((await t.clients.certificateSigningRequests.get(undefined, 'kept')).metadata.name, 'kept');
    } finally {
      await t.close();
    }
  });
});
