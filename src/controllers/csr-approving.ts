// The CSR approving controller (upstream's csrapproving, pkg/controller/
// certificates/approver/sarapprove.go): approves kubelet client
// certificate requests on behalf of whoever may make them. A request to
// the kube-apiserver-client-kubelet signer that is a node client request
// (O=system:nodes, CN=system:node:<name>, no SANs, the kubelet client
// usages) is approved when a SubjectAccessReview for its requester allows
// `create` on
//   - certificatesigningrequests/selfnodeclient, when the requester is
//     that node renewing its own certificate (username = CN), or
//   - certificatesigningrequests/nodeclient, for any node (a bootstrap
//     token joining one).
// The review goes through the API, as upstream's does, so it is decided by
// the same authorizers as every request.

import { type KubeObject, rfc3339 } from '../api/meta.ts';
import {
  APPROVED,
  DENIED,
  KUBE_APISERVER_CLIENT_KUBELET_SIGNER,
  kubeletClientProblem,
} from '../api/resources/certificates.ts';
import type { CertificateSigningRequest } from '../api/types/certificates-v1.ts';
import { type CertificateRequest, parseCertificateRequest } from '../pki/csr.ts';
import type { ControllerFactory } from './context.ts';
import { queueController } from './controller.ts';

interface Recognizer {
  recognize(csr: CertificateSigningRequest, req: CertificateRequest): boolean;
  subresource: string;
  message: string;
}

const isNodeClientCert = (csr: CertificateSigningRequest, req: CertificateRequest) =>
  csr.spec?.signerName === KUBE_APISERVER_CLIENT_KUBELET_SIGNER &&
  kubeletClientProblem(req, csr.spec.usages ?? []) === undefined;

export const RECOGNIZERS: Recognizer[] = [
  {
    recognize: (csr, req) => isNodeClientCert(csr, req) && csr.spec?.username === req.commonName,
    subresource: 'selfnodeclient',
    message: 'Auto approving self kubelet client certificate after SubjectAccessReview.',
  },
  {
    recognize: isNodeClientCert,
    subresource: 'nodeclient',
    message: 'Auto approving kubelet client certificate after SubjectAccessReview.',
  },
];

type SubjectAccessReview = KubeObject & { status?: { allowed?: boolean } };

export const csrApprovingController: ControllerFactory = (ctx) => {
  const csrs = ctx.informers.informer('certificateSigningRequests');
  const reviews = ctx.clients.forResource<SubjectAccessReview>({
    group: 'authorization.k8s.io',
    version: 'v1',
    plural: 'subjectaccessreviews',
    namespaced: false,
  });

  const authorized = async (csr: CertificateSigningRequest, subresource: string): Promise<boolean> => {
    const answer = await reviews.create(undefined, {
      apiVersion: 'authorization.k8s.io/v1',
      kind: 'SubjectAccessReview',
      metadata: {},
      spec: {
        user: csr.spec?.username ?? '',
        ...(csr.spec?.uid ? { uid: csr.spec.uid } : {}),
        groups: csr.spec?.groups ?? [],
        ...(csr.spec?.extra ? { extra: csr.spec.extra } : {}),
        resourceAttributes: {
          group: 'certificates.k8s.io',
          resource: 'certificatesigningrequests',
          verb: 'create',
          subresource,
        },
      },
    });
    return answer.status?.allowed === true;
  };

  const c = queueController(ctx, {
    name: 'csrapproving',
    async sync(name) {
      const cached = csrs.indexer.get(name);
      if (!cached || cached.status?.certificate) return;
      if (cached.status?.conditions?.some((cond) => cond.type === APPROVED || cond.type === DENIED)) return;
      const req = parseCertificateRequest(Buffer.from(cached.spec?.request ?? '', 'base64'));
      const tried: string[] = [];
      for (const r of RECOGNIZERS) {
        if (!r.recognize(cached, req)) continue;
        tried.push(r.subresource);
        if (!(await authorized(cached, r.subresource))) continue;
        const csr: CertificateSigningRequest = structuredClone(cached);
        const now = rfc3339(ctx.now());
        csr.status = {
          ...csr.status,
          conditions: [
            ...(csr.status?.conditions ?? []),
            {
              type: APPROVED,
              status: 'True',
              reason: 'AutoApproved',
              message: r.message,
              lastUpdateTime: now,
            },
          ],
        };
        await ctx.clients.certificateSigningRequests.updateSubresource(csr, 'approval');
        return;
      }
      // Permission may be granted later: retried with backoff, as upstream's IgnorableError.
      if (tried.length > 0) {
        throw new Error(
          `recognized csr "${name}" as [${tried.join(' ')}] but subject access review was not approved`,
        );
      }
    },
  });

  csrs.on({
    add: (csr) => c.queue.add(csr.metadata.name ?? ''),
    update: (_old, csr) => c.queue.add(csr.metadata.name ?? ''),
  });
  return c;
};
