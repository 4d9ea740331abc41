// A running agent renews its client certificates before they expire, as
// the kubelet's certificate manager rotates its client certificate
// (upstream: at 70–90% of its lifetime; k3s agents at restart). Twice a day
// the agent looks at its kubelet certificate; within 90 days of expiry (the
// window k3s and `skiff certificate check` warn in) it joins again with its
// token, through its load balancer, and its clients take the new
// certificates for new connections; open watches carry on. A restart also
// fetches new ones, as before. k3s-io/k3s#10865 is the outage this avoids.

import { X509Certificate } from 'node:crypto';
import type { Log } from '../util/log.ts';

export const RENEW_WITHIN_DAYS = 90;
export const RENEWAL_CHECK_MS = 12 * 3600 * 1000;

/** Whether a certificate is within `days` of its expiry (or past it). */
export function needsRenewal(certPem: string | Buffer, now = new Date(), days = RENEW_WITHIN_DAYS): boolean {
  const cert = new X509Certificate(certPem);
  return new Date(cert.validTo).getTime() - now.getTime() < days * 24 * 3600 * 1000;
}

export interface CertificateRenewalOptions {
  /** The kubelet's current certificate. */
  current(): Buffer | undefined;
  /** Fetches and installs new certificates. */
  renew(): Promise<void>;
  log: Log;
  intervalMs?: number;
  now?: () => Date;
}

export function startCertificateRenewal(opts: CertificateRenewalOptions): {
  check(): Promise<boolean>;
  stop(): void;
} {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const check = async (): Promise<boolean> => {
    const cert = opts.current();
    if (!cert || !needsRenewal(cert, opts.now?.())) return false;
    try {
      await opts.renew();
      opts.log('renewed the node’s client certificates', {
        expires: new X509Certificate(opts.current() ?? cert).validTo,
      });
      return true;
    } catch (err) {
      opts.log.warn('could not renew the node’s client certificates; retrying later', {
        error: String((err as Error)?.message ?? err),
        hint: 'a restart of the agent fetches new ones too',
      });
      return false;
    }
  };
  const loop = () => {
    if (stopped) return;
    timer = setTimeout(() => void check().finally(loop), opts.intervalMs ?? RENEWAL_CHECK_MS);
    timer.unref();
  };
  loop();
  return {
    check,
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
