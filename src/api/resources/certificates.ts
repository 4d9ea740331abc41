// certificates.k8s.io/v1 CertificateSigningRequest: the registry strategy
// (pkg/registry/certificates/certificates/strategy.go) and validation
// (pkg/apis/certificates/validation) of upstream.
//
// A CSR's spec is fixed at create, with the requester's identity filled in
// by the server. After that three endpoints each change their own part:
// the main resource only metadata, /approval the Approved and Denied
// conditions, /status the certificate and every other condition (what a
// signer writes). Approved, Denied and Failed can never be removed, and
// Approved and Denied exclude each other. Who may approve or sign is
// admission's business (src/apiserver/admission/certificates.ts).

import { X509Certificate } from 'node:crypto';
import { decodePem, parseCertificateRequest } from '../../pki/csr.ts';
import type { KubeObject } from '../meta.ts';
import { rfc3339 } from '../meta.ts';
import type { FieldErrorLike, RequestUser, ResourceType, SubresourceStrategy } from '../registry.ts';
import type {
  CertificateSigningRequest,
  CertificateSigningRequestCondition,
} from '../types/certificates-v1.ts';
import {
  duplicate,
  forbidden,
  invalid,
  isDNS1123Label,
  isDNS1123Subdomain,
  notSupported,
  required,
  tooLong,
} from '../validation.ts';
import { invalidShown, semanticEqual } from './checks.ts';
import { kind, validateMeta } from './common.ts';
import { arr, col, get, humanDuration, NONE } from './printers.ts';

export const CERTIFICATES_GROUP = 'certificates.k8s.io';

/** The signers Kubernetes defines (certificates/v1 constants). */
export const KUBE_APISERVER_CLIENT_SIGNER = 'kubernetes.io/kube-apiserver-client';
export const KUBE_APISERVER_CLIENT_KUBELET_SIGNER = 'kubernetes.io/kube-apiserver-client-kubelet';
export const KUBELET_SERVING_SIGNER = 'kubernetes.io/kubelet-serving';
/** Only through v1beta1, which Skiff does not serve; refused in v1. */
export const LEGACY_UNKNOWN_SIGNER = 'kubernetes.io/legacy-unknown';

export const APPROVED = 'Approved';
export const DENIED = 'Denied';
export const FAILED = 'Failed';

/** Every usage certificates/v1 knows (KeyUsage constants), sorted as upstream lists them. */
export const KEY_USAGES = [
  'any',
  'cert sign',
  'client auth',
  'code signing',
  'content commitment',
  'crl sign',
  'data encipherment',
  'decipher only',
  'digital signature',
  'email protection',
  'encipher only',
  'ipsec end system',
  'ipsec tunnel',
  'ipsec user',
  'key agreement',
  'key encipherment',
  'microsoft sgc',
  'netscape sgc',
  'ocsp signing',
  's/mime',
  'server auth',
  'signing',
  'timestamping',
];

type Conditions = CertificateSigningRequestCondition[];
const conditionsOf = (csr: KubeObject): Conditions =>
  arr<CertificateSigningRequestCondition>(get(csr, 'status', 'conditions'));
const ofType = (csr: KubeObject, type: string) => conditionsOf(csr).filter((c) => c.type === type);
const certificateOf = (csr: KubeObject): string => {
  const c = get(csr, 'status', 'certificate');
  return typeof c === 'string' ? c : '';
};
const bytesOf = (b64: unknown): Buffer => Buffer.from(typeof b64 === 'string' ? b64 : '', 'base64');

/** Whether the CSR has a condition of this type with status True (upstream HasTrueCondition). */
export const hasTrueCondition = (csr: KubeObject, type: string): boolean =>
  conditionsOf(csr).some((c) => c.type === type && c.status === 'True');

/** How `kubectl get csr` shows the state (upstream's extractCSRStatus). */
export function csrCondition(csr: KubeObject): string {
  const types = new Set(conditionsOf(csr).map((c) => c.type));
  let s = types.has(DENIED) ? 'Denied' : types.has(APPROVED) ? 'Approved' : 'Pending';
  if (types.has(FAILED)) s += ',Failed';
  if (certificateOf(csr)) s += ',Issued';
  return s;
}

/** apimachinery ValidateSignerName: `<dns subdomain with a dot>/<path>`. */
export function validateSignerName(field: string, signerName: string): FieldErrorLike[] {
  if (!signerName) return [required(field, '')];
  const segments = signerName.split('/');
  if (segments.length !== 2) {
    return [
      invalid(
        field,
        signerName,
        "must be a fully qualified domain and path of the form 'example.com/signer-name'",
      ),
    ];
  }
  const [domain = '', path = ''] = segments;
  const errs: FieldErrorLike[] = [];
  if (domain.length > 253) errs.push(tooLong(field, '', 253));
  const labels = domain.split('.');
  for (const l of labels) {
    const bad = isDNS1123Label(l);
    if (bad.length === 0) continue;
    for (const m of bad) errs.push(invalid(field, domain, `validating label "${l}": ${m}`));
    break;
  }
  if (labels.length < 2)
    errs.push(invalid(field, domain, 'should be a domain with at least two segments separated by dots'));
  for (const l of path.split('.')) {
    const bad = isDNS1123Subdomain(l);
    if (bad.length === 0) continue;
    for (const m of bad) errs.push(invalid(field, path, `validating label "${l}": ${m}`));
    break;
  }
  const maxLength = 253 + (253 + 63 + 1) + 1;
  if (signerName.length > maxLength) errs.push(tooLong(field, '', maxLength));
  return errs;
}

/** upstream's validateCertificate: status.certificate holds only CERTIFICATE blocks, at least one. */
function certificateProblem(pem: Buffer): string | undefined {
  if (pem.length === 0) return undefined;
  const blocks =
    pem.toString('latin1').match(/-----BEGIN [A-Z0-9 ]+-----[\s\S]*?-----END [A-Z0-9 ]+-----/g) ?? [];
  let count = 0;
  for (const text of blocks) {
    const block = decodePem(text);
    if (!block) break;
    if (block.type !== 'CERTIFICATE') return `only CERTIFICATE PEM blocks are allowed, found "${block.type}"`;
    if (/^[^\n]*:/m.test(text.split('\n').slice(1, -1).join('\n')))
      return 'no PEM block headers are permitted';
    try {
      new X509Certificate(block.der);
    } catch (err) {
      return `x509: malformed certificate: ${(err as Error).message}`;
    }
    count++;
  }
  return count === 0 ? 'must contain at least one CERTIFICATE PEM block' : undefined;
}

/** Go's %#v of a []byte, as field.Invalid prints spec.request. */
const goBytes = (b: Buffer): string => `[]byte{${[...b].map((x) => `0x${x.toString(16)}`).join(', ')}}`;

interface ValidationOptions {
  allowSettingApprovalConditions?: boolean;
  allowSettingCertificate?: boolean;
}

/**
 * validateCertificateSigningRequest(+Update): what the request, usages,
 * signer and conditions must be. Problems already in the stored object
 * (old) are tolerated, as upstream's getValidationOptions does for data
 * written by older servers.
 */
function validateCSR(
  csr: KubeObject,
  old: KubeObject | undefined,
  opts: ValidationOptions,
): FieldErrorLike[] {
  const errs: FieldErrorLike[] = [];
  const spec = (csr.spec ?? {}) as NonNullable<CertificateSigningRequest['spec']>;
  const oldSpec = (old?.spec ?? {}) as NonNullable<CertificateSigningRequest['spec']>;
  const request = bytesOf(spec.request);
  try {
    parseCertificateRequest(request);
  } catch (err) {
    errs.push(invalidShown('spec.request', goBytes(request), (err as Error).message));
  }
  const usages = Array.isArray(spec.usages) ? spec.usages : [];
  if (usages.length === 0) errs.push(required('spec.usages', ''));
  const oldUsages = old && Array.isArray(oldSpec.usages) ? oldSpec.usages : [];
  if (!oldUsages.some((u) => !KEY_USAGES.includes(u))) {
    usages.forEach((u, i) => {
      if (!KEY_USAGES.includes(u)) errs.push(notSupported(`spec.usages[${i}]`, u, KEY_USAGES));
    });
  }
  if (new Set(oldUsages).size === oldUsages.length) {
    usages.forEach((u, i) => {
      if (usages.indexOf(u) < i) errs.push(duplicate(`spec.usages[${i}]`, u));
    });
  }
  const signerName = typeof spec.signerName === 'string' ? spec.signerName : '';
  if (signerName === LEGACY_UNKNOWN_SIGNER && oldSpec.signerName !== LEGACY_UNKNOWN_SIGNER) {
    errs.push(
      invalid('spec.signerName', signerName, 'the legacy signerName is not allowed via this API version'),
    );
  } else if (signerName !== LEGACY_UNKNOWN_SIGNER) {
    errs.push(...validateSignerName('spec.signerName', signerName));
  }
  if (typeof spec.expirationSeconds === 'number' && spec.expirationSeconds < 600) {
    errs.push(
      invalid(
        'spec.expirationSeconds',
        spec.expirationSeconds,
        'may not specify a duration less than 600 seconds (10 minutes)',
      ),
    );
  }
  errs.push(...validateConditions(csr, old));
  const cert = bytesOf(get(csr, 'status', 'certificate'));
  const oldCert = bytesOf(old ? get(old, 'status', 'certificate') : undefined);
  const arbitraryAllowed =
    old !== undefined && (cert.equals(oldCert) || certificateProblem(oldCert) !== undefined);
  if (!arbitraryAllowed) {
    const problem = certificateProblem(cert);
    if (problem) errs.push(invalidShown('status.certificate', '"<certificate data>"', problem));
  }
  if (!old) return errs;

  for (const t of [APPROVED, DENIED, FAILED]) {
    if (ofType(csr, t).length < ofType(old, t).length) {
      errs.push(forbidden('status.conditions', `updates may not remove a condition of type "${t}"`));
    }
  }
  if (!opts.allowSettingApprovalConditions) {
    for (const t of [APPROVED, DENIED]) {
      const now = ofType(csr, t);
      const before = ofType(old, t);
      if (now.length > before.length) {
        errs.push(forbidden('status.conditions', `updates may not add a condition of type "${t}"`));
      } else if (now.length === before.length && !semanticEqual(now, before)) {
        errs.push(forbidden('status.conditions', `updates may not modify a condition of type "${t}"`));
      }
    }
  }
  if (!cert.equals(oldCert)) {
    if (!opts.allowSettingCertificate) {
      errs.push(forbidden('status.certificate', 'updates may not set certificate content'));
    } else if (oldCert.length > 0) {
      errs.push(forbidden('status.certificate', 'updates may not modify existing certificate content'));
    }
  }
  return errs;
}

function validateConditions(csr: KubeObject, old: KubeObject | undefined): FieldErrorLike[] {
  const errs: FieldErrorLike[] = [];
  const oldConditions = old ? conditionsOf(old) : [];
  const oldTypes = oldConditions.map((c) => c.type ?? '');
  const allowBoth = oldTypes.includes(APPROVED) && oldTypes.includes(DENIED);
  const allowDuplicates = new Set(oldTypes).size !== oldTypes.length;
  const allowEmptyType = oldTypes.includes('');
  const seen = new Set<string>();
  let approved = false;
  let denied = false;
  conditionsOf(csr).forEach((c, i) => {
    const field = `status.conditions[${i}]`;
    const type = c.type ?? '';
    if (!allowEmptyType && type === '') errs.push(required(`${field}.type`, ''));
    const allowed = [APPROVED, DENIED, FAILED].includes(type) ? ['True'] : ['False', 'True', 'Unknown'];
    if (!c.status) errs.push(required(`${field}.status`, ''));
    else if (!allowed.includes(c.status)) errs.push(notSupported(`${field}.status`, c.status, allowed));
    if (!allowBoth) {
      if (type === APPROVED) {
        approved = true;
        if (denied)
          errs.push(invalid(`${field}.type`, type, 'Approved and Denied conditions are mutually exclusive'));
      } else if (type === DENIED) {
        denied = true;
        if (approved)
          errs.push(invalid(`${field}.type`, type, 'Approved and Denied conditions are mutually exclusive'));
      }
    }
    if (!allowDuplicates && seen.has(type)) errs.push(duplicate(`${field}.type`, type));
    seen.add(type);
  });
  return errs;
}

/** Fills lastUpdateTime and lastTransitionTime where a writer left them out (populateConditionTimestamps). */
function populateConditionTimestamps(csr: KubeObject, old: KubeObject, now: string): void {
  for (const c of conditionsOf(csr)) {
    if (!c.lastUpdateTime) c.lastUpdateTime = now;
    if (!c.lastTransitionTime) {
      const same = conditionsOf(old).find(
        (o) => o.type === c.type && o.status === c.status && o.lastTransitionTime,
      );
      c.lastTransitionTime = same?.lastTransitionTime ?? now;
    }
  }
}

const withStatus = (csr: KubeObject, status: Record<string, unknown>): KubeObject => {
  const out: KubeObject = { ...csr };
  const clean = Object.fromEntries(Object.entries(status).filter(([, v]) => v !== undefined));
  out.status = clean;
  return out;
};

/** Sets the requester's identity on a new CSR, whatever the client sent (csrStrategy.PrepareForCreate). */
function prepareCreate(csr: KubeObject, user: RequestUser | undefined): void {
  const spec = (csr.spec && typeof csr.spec === 'object' ? csr.spec : {}) as Record<string, unknown>;
  delete spec.username;
  delete spec.uid;
  delete spec.groups;
  delete spec.extra;
  if (user) {
    if (user.name) spec.username = user.name;
    if (user.uid) spec.uid = user.uid;
    if (user.groups.length > 0) spec.groups = [...user.groups];
    if (user.extra && Object.keys(user.extra).length > 0) spec.extra = structuredClone(user.extra);
  }
  csr.spec = spec;
  // Nobody creates a request that is already approved or signed.
  csr.status = {};
}

/** /status: the certificate and the signer's conditions; Approved and Denied stay as stored. */
const statusStrategy: SubresourceStrategy = {
  prepareForUpdate(next, current) {
    const conditions = structuredClone(conditionsOf(next));
    for (const t of [APPROVED, DENIED]) {
      const had = ofType(current, t);
      const at = conditions.flatMap((c, i) => (c.type === t ? [i] : []));
      // Only when the count matches: an addition or removal is left for validation to refuse.
      if (had.length === at.length) {
        at.forEach((i, k) => {
          conditions[i] = structuredClone(had[k]!);
        });
      }
    }
    const out = withStatus(
      { ...next, spec: current.spec },
      {
        ...(next.status as Record<string, unknown> | undefined),
        conditions: conditions.length > 0 ? conditions : undefined,
      },
    );
    populateConditionTimestamps(out, current, rfc3339(new Date()));
    return out;
  },
  validateUpdate: (next, current) => [
    ...validateMeta(next, false, 'path'),
    ...validateCSR(next, current, { allowSettingCertificate: true }),
  ],
  resetFields: [['spec'], ['status', 'conditions']],
};

/** /approval: only the conditions change (csrApprovalStrategy). */
const approvalStrategy: SubresourceStrategy = {
  prepareForUpdate(next, current) {
    const conditions = structuredClone(conditionsOf(next));
    const out = withStatus(
      { ...next, spec: current.spec },
      {
        ...(current.status as Record<string, unknown> | undefined),
        conditions: conditions.length > 0 ? conditions : undefined,
      },
    );
    populateConditionTimestamps(out, current, rfc3339(new Date()));
    return out;
  },
  validateUpdate: (next, current) => [
    ...validateMeta(next, false, 'path'),
    ...validateCSR(next, current, { allowSettingApprovalConditions: true }),
  ],
  resetFields: [['spec'], ['status', 'certificate']],
};

export const certificateSigningRequests: ResourceType = kind({
  group: CERTIFICATES_GROUP,
  version: 'v1',
  kind: 'CertificateSigningRequest',
  plural: 'certificatesigningrequests',
  singular: 'certificatesigningrequest',
  shortNames: ['csr'],
  namespaced: false,
  // upstream: "We don't care what you call your certificate requests"; only what a URL path cannot hold.
  nameRule: 'path',
  status: true,
  subresources: ['approval'],
  createOnUpdate: false,
  updateStrategies: { status: statusStrategy, approval: approvalStrategy },
  columns: [
    col('SignerName', 'string', 'signerName indicates the requested signer, and is a qualified name.'),
    col(
      'Requestor',
      'string',
      'username contains the name of the user that created the CertificateSigningRequest.',
    ),
    col(
      'RequestedDuration',
      'string',
      'expirationSeconds is the requested duration of validity of the issued certificate.',
    ),
    col(
      'Condition',
      'string',
      'conditions applied to the request. Known conditions are "Approved", "Denied", and "Failed".',
    ),
  ],
  ageIndex: 0,
  cells: (csr) => {
    const seconds = get(csr, 'spec', 'expirationSeconds');
    return [
      String(get(csr, 'spec', 'signerName') || NONE),
      String(get(csr, 'spec', 'username') ?? ''),
      typeof seconds === 'number' ? humanDuration(seconds * 1000) : NONE,
      csrCondition(csr),
    ];
  },
  fields: (csr) => ({ 'spec.signerName': String(get(csr, 'spec', 'signerName') ?? '') }),
  prepareCreate,
  // The spec is immutable: the main resource writes metadata only (status is kept by the registry).
  prepareUpdate: (next, current) => {
    next.spec = current.spec;
  },
  validateSpec: (csr, old) => validateCSR(csr, old, {}),
});

export const certificatesResources: ResourceType[] = [certificateSigningRequests];

// ---- helpers of upstream's pkg/apis/certificates/helpers.go ----------------

/** Approved and not Denied (upstream IsCertificateRequestApproved). */
export const isApproved = (csr: KubeObject): boolean =>
  conditionsOf(csr).some((c) => c.type === APPROVED) && !conditionsOf(csr).some((c) => c.type === DENIED);

const sameSet = (a: readonly string[], b: readonly string[]) => {
  const x = new Set(a);
  const y = new Set(b);
  return x.size === y.size && [...x].every((v) => y.has(v));
};

interface ParsedSubject {
  commonName: string;
  organizations: string[];
  dnsNames: string[];
  emailAddresses: string[];
  ipAddresses: string[];
  uris: string[];
}

const isSystemNodes = (req: ParsedSubject) =>
  req.organizations.length === 1 && req.organizations[0] === 'system:nodes';

/** What a kubelet client certificate request must be; undefined when it is one (ValidateKubeletClientCSR). */
export function kubeletClientProblem(req: ParsedSubject, usages: readonly string[]): string | undefined {
  if (!isSystemNodes(req)) return 'subject organization is not system:nodes';
  if (req.dnsNames.length > 0) return 'DNS subjectAltNames are not allowed';
  if (req.emailAddresses.length > 0) return 'Email subjectAltNames are not allowed';
  if (req.ipAddresses.length > 0) return 'IP subjectAltNames are not allowed';
  if (req.uris.length > 0) return 'URI subjectAltNames are not allowed';
  if (!req.commonName.startsWith('system:node:'))
    return 'subject common name does not begin with system:node:';
  if (
    !sameSet(usages, ['digital signature', 'key encipherment', 'client auth']) &&
    !sameSet(usages, ['digital signature', 'client auth'])
  ) {
    return 'usages did not match [client auth digital signature key encipherment]';
  }
  return undefined;
}

/** What a kubelet serving certificate request must be (ValidateKubeletServingCSR). */
export function kubeletServingProblem(req: ParsedSubject, usages: readonly string[]): string | undefined {
  if (!isSystemNodes(req)) return 'subject organization is not system:nodes';
  if (req.dnsNames.length === 0 && req.ipAddresses.length === 0)
    return 'DNS or IP subjectAltName is required';
  if (req.emailAddresses.length > 0) return 'Email subjectAltNames are not allowed';
  if (req.uris.length > 0) return 'URI subjectAltNames are not allowed';
  if (
    !sameSet(usages, ['digital signature', 'key encipherment', 'server auth']) &&
    !sameSet(usages, ['digital signature', 'server auth'])
  ) {
    return 'usages did not match [digital signature key encipherment server auth]';
  }
  if (!req.commonName.startsWith('system:node:'))
    return 'subject common name does not begin with system:node:';
  return undefined;
}

/** The kube-apiserver-client signer's usages: client auth, optionally digital signature and key encipherment. */
export function apiServerClientUsagesProblem(usages: readonly string[]): string | undefined {
  for (const u of usages) {
    if (!['digital signature', 'key encipherment', 'client auth'].includes(u)) {
      return `invalid usage for client certificate: ${u}`;
    }
  }
  return usages.includes('client auth')
    ? undefined
    : 'missing required usage for client certificate: client auth';
}
