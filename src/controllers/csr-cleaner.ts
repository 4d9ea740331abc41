// The CSR cleaner (upstream's csrcleaner, pkg/controller/certificates/
// cleaner): automated requests and approvals make CSRs pile up, so once an
// hour every CSR is checked and deleted when it is
//   - approved and issued, approved more than an hour ago;
//   - denied, or failed, more than an hour ago;
//   - pending (no condition at all) and created more than 24 hours ago;
//   - issued a certificate that has expired.

import { X509Certificate } from 'node:crypto';
import { isApiError } from '../api/errors.ts';
import { APPROVED, DENIED, FAILED } from '../api/resources/certificates.ts';
import type { CertificateSigningRequest } from '../api/types/certificates-v1.ts';
import type { ControllerFactory } from './context.ts';
import { queueController } from './controller.ts';

const HOUR = 3600_000;
const POLLING_INTERVAL_MS = HOUR;
const APPROVED_EXPIRATION_MS = HOUR;
const DENIED_EXPIRATION_MS = HOUR;
const FAILED_EXPIRATION_MS = HOUR;
const PENDING_EXPIRATION_MS = 24 * HOUR;
const CLEAN_PASS = 'clean';

const olderThan = (timestamp: string | undefined, ms: number, now: Date): boolean =>
  !!timestamp && now.getTime() - Date.parse(timestamp) > ms;

function certificateExpired(csr: CertificateSigningRequest, now: Date): boolean {
  const pem = csr.status?.certificate;
  if (!pem) return false;
  try {
    return new Date(new X509Certificate(Buffer.from(pem, 'base64')).validTo) < now;
  } catch {
    return false;
  }
}

/** Why the CSR is due for deletion, or undefined (upstream's handle). */
export function cleanupReason(csr: CertificateSigningRequest, now: Date): string | undefined {
  const conditions = csr.status?.conditions ?? [];
  const issued = !!csr.status?.certificate;
  for (const c of conditions) {
    if (c.type === APPROVED && issued && olderThan(c.lastUpdateTime, APPROVED_EXPIRATION_MS, now))
      return 'approved and issued more than 1h ago';
    if (c.type === DENIED && olderThan(c.lastUpdateTime, DENIED_EXPIRATION_MS, now))
      return 'denied more than 1h ago';
    if (c.type === FAILED && olderThan(c.lastUpdateTime, FAILED_EXPIRATION_MS, now))
      return 'failed more than 1h ago';
  }
  if (
    conditions.length === 0 &&
    olderThan(csr.metadata.creationTimestamp ?? undefined, PENDING_EXPIRATION_MS, now)
  )
    return 'pending for more than 24h';
  if (conditions.some((c) => c.type === APPROVED) && certificateExpired(csr, now))
    return 'its certificate has expired';
  return undefined;
}

export const csrCleanerController: ControllerFactory = (ctx) => {
  const csrs = ctx.informers.informer('certificateSigningRequests');
  const log = ctx.log.with({ controller: 'csrcleaner' });
  let timer: unknown;
  const c = queueController(ctx, {
    name: 'csrcleaner',
    workers: 1,
    async sync() {
      const now = ctx.now();
      for (const csr of csrs.indexer.list()) {
        const why = cleanupReason(csr, now);
        if (!why) continue;
        log('cleaning CSR', { name: csr.metadata.name, why });
        await ctx.clients.certificateSigningRequests
          .delete(undefined, csr.metadata.name ?? '')
          .catch((err) => {
            if (!isApiError(err, 'NotFound')) throw err;
          });
      }
    },
    onRun() {
      const tick = () => {
        c.queue.add(CLEAN_PASS);
        timer = ctx.clock.setTimeout(tick, POLLING_INTERVAL_MS);
      };
      tick();
    },
    onStop() {
      if (timer !== undefined) ctx.clock.clearTimeout(timer);
    },
  });
  return c;
};
