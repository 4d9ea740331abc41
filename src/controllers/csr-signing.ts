// The CSR signing controller (upstream's csrsigning, pkg/controller/
// certificates/signer): the cluster CA signs approved requests for the
// kubernetes.io signers it implements, each with upstream's rules:
//   - kube-apiserver-client: any subject, usages client auth (plus,
//     optionally, digital signature and key encipherment);
//   - kube-apiserver-client-kubelet: O=system:nodes, CN=system:node:<name>,
//     no SANs, usages exactly the kubelet client set;
//   - kubelet-serving: O=system:nodes, CN=system:node:<name>, DNS or IP
//     SANs but no emails or URIs, usages exactly the serving set.
// A request that breaks its signer's rules gets a Failed condition and is
// never signed. Only requests that are Approved, not Denied, not Failed
// and have no certificate yet are looked at. The certificate lasts
// spec.expirationSeconds, capped by the cluster signing duration.

import { rfc3339 } from '../api/meta.ts';
import {
  APPROVED,
  apiServerClientUsagesProblem,
  FAILED,
  hasTrueCondition,
  isApproved,
  KUBE_APISERVER_CLIENT_KUBELET_SIGNER,
  KUBE_APISERVER_CLIENT_SIGNER,
  KUBELET_SERVING_SIGNER,
  kubeletClientProblem,
  kubeletServingProblem,
} from '../api/resources/certificates.ts';
import type { CertificateSigningRequest } from '../api/types/certificates-v1.ts';
import {
  type CertificateAuthority,
  type CertificateRequest,
  caNotAfter,
  issueCertificate,
  parseCertificateRequest,
} from '../pki/csr.ts';
import type { ControllerFactory } from './context.ts';
import { queueController } from './controller.ts';

const MINUTE = 60_000;
/** NotBefore is set this far back, for clocks that run a little behind (upstream's Backdate). */
const BACKDATE_MS = 5 * MINUTE;
/** Below this lifetime a certificate is short-lived: its end is not moved back by the backdate. */
const SHORT_MS = 8 * 60 * MINUTE;
/** The shortest certificate signed, whatever was asked (twice the backdate). */
const MIN_DURATION_MS = 10 * MINUTE;

/** The signer's rules for a request; undefined when they hold (upstream's isRequestForSignerFn). */
export function signerProblem(
  signerName: string,
  req: CertificateRequest,
  usages: readonly string[],
): string | undefined {
  switch (signerName) {
    case KUBELET_SERVING_SIGNER:
      return kubeletServingProblem(req, usages);
    case KUBE_APISERVER_CLIENT_KUBELET_SIGNER:
      return kubeletClientProblem(req, usages);
    case KUBE_APISERVER_CLIENT_SIGNER:
      return apiServerClientUsagesProblem(usages);
    default:
      return undefined;
  }
}

export const SIGNERS = [
  KUBE_APISERVER_CLIENT_SIGNER,
  KUBE_APISERVER_CLIENT_KUBELET_SIGNER,
  KUBELET_SERVING_SIGNER,
];

/** The certificate's lifetime: what was asked, within [10 minutes, the cluster maximum]. */
export function signingDuration(expirationSeconds: number | undefined, maxMs: number): number {
  if (expirationSeconds === undefined) return maxMs;
  const asked = expirationSeconds * 1000;
  return asked > maxMs ? maxMs : Math.max(asked, MIN_DURATION_MS);
}

/** Upstream's PermissiveSigningPolicy validity, truncated to the CA's own expiry. */
export function validity(now: Date, ttlMs: number, caExpiry: Date): { notBefore: Date; notAfter: Date } {
  const notBefore = new Date(now.getTime() - BACKDATE_MS);
  let notAfter = new Date(now.getTime() + (ttlMs < SHORT_MS ? ttlMs : ttlMs - BACKDATE_MS));
  if (notAfter >= caExpiry) notAfter = caExpiry;
  if (notBefore >= caExpiry || now >= caExpiry)
    throw new Error(`the signer has expired: NotAfter=${caExpiry.toISOString()}`);
  return { notBefore, notAfter };
}

export const csrSigningController: ControllerFactory = (ctx) => {
  const csrs = ctx.informers.informer('certificateSigningRequests');
  const ca: CertificateAuthority | undefined = ctx.options.clusterSigningCA;
  const recorder = ctx.recorder('certificatesigningrequest-signing-controller');

  const c = queueController(ctx, {
    name: 'csrsigning',
    async sync(name) {
      const cached = csrs.indexer.get(name);
      if (!ca || !cached || cached.status?.certificate) return;
      if (!isApproved(cached) || hasTrueCondition(cached, FAILED)) return;
      const signerName = cached.spec?.signerName ?? '';
      if (!SIGNERS.includes(signerName)) return;
      const csr: CertificateSigningRequest = structuredClone(cached);
      const req = parseCertificateRequest(Buffer.from(csr.spec?.request ?? '', 'base64'));
      const usages = csr.spec?.usages ?? [];
      const now = ctx.now();
      const problem = signerProblem(signerName, req, usages);
      if (problem) {
        csr.status = {
          ...csr.status,
          conditions: [
            ...(csr.status?.conditions ?? []),
            {
              type: FAILED,
              status: 'True',
              reason: 'SignerValidationFailure',
              message: problem,
              lastUpdateTime: rfc3339(now),
            },
          ],
        };
        await ctx.clients.certificateSigningRequests.updateStatus(csr);
        recorder.event(csr, 'Warning', 'SignerValidationFailure', problem);
        return;
      }
      const ttl = signingDuration(csr.spec?.expirationSeconds, ctx.options.clusterSigningDurationMs);
      const certificate = issueCertificate(ca, req, { usages, ...validity(now, ttl, caNotAfter(ca)) });
      csr.status = { ...csr.status, certificate: Buffer.from(certificate).toString('base64') };
      await ctx.clients.certificateSigningRequests.updateStatus(csr);
    },
  });

  const enqueue = (csr: CertificateSigningRequest) => {
    if (csr.status?.conditions?.some((cond) => cond.type === APPROVED)) c.queue.add(csr.metadata.name ?? '');
  };
  csrs.on({ add: enqueue, update: (_old, csr) => enqueue(csr) });
  return c;
};
