// The CertificateSigningRequest admission plugins of upstream
// (plugin/pkg/admission/certificates):
//   - CertificateApproval: setting Approved or Denied (the /approval
//     subresource) needs the `approve` verb on the `signers` resource named
//     by the CSR's signerName;
//   - CertificateSigning: setting status.certificate (the /status
//     subresource) needs the `sign` verb on it;
//   - CertificateSubjectRestriction: nobody may ask the
//     kube-apiserver-client signer for a system:masters certificate.
// A permission on `<domain>/*` covers every signer of that domain, as
// upstream's IsAuthorizedForSignerName.

import type { KubeObject } from '../../api/meta.ts';
import { CERTIFICATES_GROUP, KUBE_APISERVER_CLIENT_SIGNER } from '../../api/resources/certificates.ts';
import { parseCertificateRequest } from '../../pki/csr.ts';
import type { UserInfo } from '../authn/user.ts';
import { SYSTEM_MASTERS } from '../authn/user.ts';
import type { Authorizer } from '../authz/authorizer.ts';
import { type AdmissionAttributes, admissionForbidden, type ValidatingPlugin } from './admission.ts';

const isCSR = (a: AdmissionAttributes) =>
  a.group === CERTIFICATES_GROUP && a.resource === 'certificatesigningrequests';

const signerNameOf = (csr: KubeObject | undefined): string => {
  const name = (csr?.spec as { signerName?: unknown } | undefined)?.signerName;
  return typeof name === 'string' ? name : '';
};

/** Whether user may `verb` (approve, sign) the signer, by its name or its domain's wildcard. */
export function isAuthorizedForSignerName(
  authorizer: Authorizer,
  user: UserInfo,
  verb: string,
  signerName: string,
): boolean {
  const allowed = (name: string) =>
    authorizer.authorize({
      user,
      verb,
      isResourceRequest: true,
      path: '',
      apiGroup: CERTIFICATES_GROUP,
      apiVersion: '*',
      namespace: '',
      resource: 'signers',
      subresource: '',
      name,
    }).decision === 'allow';
  if (allowed(signerName)) return true;
  const domain = signerName.split('/')[0] ?? '';
  return allowed(`${domain}/*`);
}

export function certificateApprovalPlugin(authorizer: Authorizer): ValidatingPlugin {
  return {
    name: 'CertificateApproval',
    handles: (a) => isCSR(a) && a.subresource === 'approval' && a.operation === 'UPDATE',
    async validate(a) {
      const signerName = signerNameOf(a.object);
      if (!isAuthorizedForSignerName(authorizer, a.user, 'approve', signerName)) {
        throw admissionForbidden(a, `user not permitted to approve requests with signerName "${signerName}"`);
      }
      return undefined;
    },
  };
}

export function certificateSigningPlugin(authorizer: Authorizer): ValidatingPlugin {
  return {
    name: 'CertificateSigning',
    handles: (a) => isCSR(a) && a.subresource === 'status' && a.operation === 'UPDATE',
    async validate(a) {
      const certificate = (o: KubeObject | undefined) =>
        (o?.status as { certificate?: unknown } | undefined)?.certificate ?? '';
      // Only a write that sets or changes the certificate signs.
      if (a.oldObject && certificate(a.oldObject) === certificate(a.object)) return undefined;
      const signerName = signerNameOf(a.oldObject ?? a.object);
      if (!isAuthorizedForSignerName(authorizer, a.user, 'sign', signerName)) {
        throw admissionForbidden(a, `user not permitted to sign requests with signerName "${signerName}"`);
      }
      return undefined;
    },
  };
}

export function certificateSubjectRestrictionPlugin(): ValidatingPlugin {
  return {
    name: 'CertificateSubjectRestriction',
    handles: (a) => isCSR(a) && a.subresource === '' && a.operation === 'CREATE',
    async validate(a) {
      if (signerNameOf(a.object) !== KUBE_APISERVER_CLIENT_SIGNER) return undefined;
      const request = (a.object?.spec as { request?: unknown } | undefined)?.request;
      let organizations: string[];
      try {
        organizations = parseCertificateRequest(
          Buffer.from(typeof request === 'string' ? request : '', 'base64'),
        ).organizations;
      } catch {
        return undefined; // validation has refused it already
      }
      if (organizations.includes(SYSTEM_MASTERS)) {
        throw admissionForbidden(
          a,
          `use of ${KUBE_APISERVER_CLIENT_SIGNER} signer with ${SYSTEM_MASTERS} group is not allowed`,
        );
      }
      return undefined;
    },
  };
}
