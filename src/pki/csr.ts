// PKCS#10 certificate signing requests (RFC 2986): parsed and their
// self-signature checked as upstream's certificates.ParseCSR and
// CheckSignature do, and certificates issued from them as upstream's
// CertificateAuthority.Sign (pkg/controller/certificates/authority): the
// request's subject, public key and subjectAltNames, the key usages the
// CertificateSigningRequest asks for, CA:FALSE, and the validity the
// signing policy computes. Keys stay in node:crypto; der.ts does the ASN.1.

import {
  createPrivateKey,
  createPublicKey,
  type KeyObject,
  randomBytes,
  sign,
  verify,
  X509Certificate,
} from 'node:crypto';
import {
  bitString,
  boolean,
  children,
  contextTag,
  DerError,
  decodeOid,
  decodeString,
  expect,
  explicit,
  nullValue,
  octetString,
  oid,
  readOne,
  sequence,
  smallInteger,
  TAG,
  type Tlv,
  time,
  tlv,
  unsignedInteger,
} from './der.ts';

export interface CertificateRequest {
  /** Subject commonName ('' when there is none). */
  commonName: string;
  /** Subject organization values, in order. */
  organizations: string[];
  dnsNames: string[];
  emailAddresses: string[];
  /** IP SANs in text form (IPv4 dotted, IPv6 as node prints it). */
  ipAddresses: string[];
  uris: string[];
  /** The DER of the subject Name, copied into the certificate unchanged. */
  subjectDer: Buffer;
  /** The DER of SubjectPublicKeyInfo. */
  publicKeyDer: Buffer;
  /** The value (extnValue) of the requested subjectAltName extension, if any. */
  subjectAltNameDer?: Buffer;
}

const OID = {
  commonName: '2.5.4.3',
  organization: '2.5.4.10',
  extensionRequest: '1.2.840.113549.1.9.14',
  subjectAltName: '2.5.29.17',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  basicConstraints: '2.5.29.19',
  extKeyUsage: '2.5.29.37',
  authorityKeyIdentifier: '2.5.29.35',
  ecdsaWithSHA256: '1.2.840.10045.4.3.2',
  sha256WithRSA: '1.2.840.113549.1.1.11',
} as const;

// Signature algorithms a request may be signed with, and the digest each
// uses (null: the key type decides, as Ed25519).
const SIGNATURE_ALGORITHMS: Record<string, string | null> = {
  '1.2.840.113549.1.1.5': 'sha1',
  '1.2.840.113549.1.1.11': 'sha256',
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
  '1.2.840.10045.4.1': 'sha1',
  '1.2.840.10045.4.3.2': 'sha256',
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
  '1.3.101.112': null,
};

/** The first PEM block's type and bytes, as Go's pem.Decode (undefined when there is none). */
export function decodePem(text: string): { type: string; der: Buffer } | undefined {
  const m = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END \1-----/.exec(text);
  if (!m) return undefined;
  const body = m[2]!.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(body)) return undefined;
  return { type: m[1]!, der: Buffer.from(body, 'base64') };
}

export function encodePem(type: string, der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${type}-----\n${lines.join('\n')}\n-----END ${type}-----\n`;
}

/**
 * Parses a PEM "CERTIFICATE REQUEST" and checks its self-signature. Throws
 * an Error whose message is what validation reports for spec.request.
 */
export function parseCertificateRequest(pem: string | Buffer): CertificateRequest {
  const block = decodePem(typeof pem === 'string' ? pem : pem.toString('latin1'));
  if (block?.type !== 'CERTIFICATE REQUEST') {
    throw new Error('PEM block type must be CERTIFICATE REQUEST');
  }
  try {
    return parseDer(block.der);
  } catch (err) {
    if (err instanceof DerError) throw new Error(`x509: malformed certificate request: ${err.message}`);
    throw err;
  }
}

function parseDer(der: Buffer): CertificateRequest {
  const top = children(expect(readOne(der), TAG.SEQUENCE, 'certificate request'));
  const info = expect(top[0], TAG.SEQUENCE, 'certificationRequestInfo');
  const algorithm = children(expect(top[1], TAG.SEQUENCE, 'signatureAlgorithm'));
  const signature = expect(top[2], TAG.BIT_STRING, 'signature');
  const fields = children(info);
  const version = expect(fields[0], TAG.INTEGER, 'version');
  if (version.content.length !== 1 || version.content[0] !== 0) {
    throw new DerError('unsupported certificate request version');
  }
  const subject = expect(fields[1], TAG.SEQUENCE, 'subject');
  const spki = expect(fields[2], TAG.SEQUENCE, 'subjectPKInfo');
  const attributes = fields[3];
  if (attributes && attributes.tag !== contextTag(0, true))
    throw new DerError('asn1: structure error: attributes');

  const out: CertificateRequest = {
    commonName: '',
    organizations: [],
    dnsNames: [],
    emailAddresses: [],
    ipAddresses: [],
    uris: [],
    subjectDer: subject.raw,
    publicKeyDer: spki.raw,
  };
  for (const rdn of children(subject)) {
    for (const atv of children(expect(rdn, TAG.SET, 'relative distinguished name'))) {
      const [type, value] = children(expect(atv, TAG.SEQUENCE, 'attribute type and value'));
      const id = decodeOid(expect(type, TAG.OID, 'attribute type').content);
      if (!value) throw new DerError('asn1: structure error: attribute value');
      if (id === OID.commonName && !out.commonName) out.commonName = decodeString(value);
      if (id === OID.organization) out.organizations.push(decodeString(value));
    }
  }
  for (const attr of attributes ? children(attributes) : []) {
    const [type, values] = children(expect(attr, TAG.SEQUENCE, 'attribute'));
    if (decodeOid(expect(type, TAG.OID, 'attribute type').content) !== OID.extensionRequest) continue;
    for (const exts of children(expect(values, TAG.SET, 'attribute values'))) {
      for (const ext of children(expect(exts, TAG.SEQUENCE, 'extensions'))) {
        const parts = children(expect(ext, TAG.SEQUENCE, 'extension'));
        const id = decodeOid(expect(parts[0], TAG.OID, 'extension id').content);
        const value = expect(parts[parts.length - 1], TAG.OCTET_STRING, 'extension value');
        if (id === OID.subjectAltName) {
          out.subjectAltNameDer = value.content;
          readSubjectAltNames(readOne(value.content), out);
        }
      }
    }
  }

  // The self-signature covers the DER of certificationRequestInfo.
  const algorithmId = decodeOid(expect(algorithm[0], TAG.OID, 'signature algorithm').content);
  if (!(algorithmId in SIGNATURE_ALGORITHMS)) {
    throw new Error(`x509: cannot verify signature: algorithm unimplemented (${algorithmId})`);
  }
  let key: KeyObject;
  try {
    key = createPublicKey({ key: spki.raw, format: 'der', type: 'spki' });
  } catch {
    throw new Error('x509: unsupported public key');
  }
  if (signature.content[0] !== 0) throw new DerError('invalid signature bit string');
  const ok = (() => {
    try {
      return verify(SIGNATURE_ALGORITHMS[algorithmId] ?? null, info.raw, key, signature.content.subarray(1));
    } catch {
      return false;
    }
  })();
  if (!ok) throw new Error('x509: signature verification failure');
  return out;
}

function readSubjectAltNames(names: Tlv, out: CertificateRequest): void {
  for (const name of children(expect(names, TAG.SEQUENCE, 'subjectAltName'))) {
    const text = name.content.toString('latin1');
    switch (name.tag) {
      case contextTag(1, false):
        out.emailAddresses.push(text);
        break;
      case contextTag(2, false):
        out.dnsNames.push(text);
        break;
      case contextTag(6, false):
        out.uris.push(text);
        break;
      case contextTag(7, false):
        out.ipAddresses.push(ipText(name.content));
        break;
    }
  }
}

function ipText(b: Buffer): string {
  if (b.length === 4) return [...b].join('.');
  if (b.length === 16) {
    const groups: string[] = [];
    for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16));
    return groups.join(':');
  }
  throw new DerError('invalid IP address SAN');
}

// ---- issuing ------------------------------------------------------------

export interface CertificateAuthority {
  /** The CA certificate (PEM). */
  cert: string;
  /** The CA private key (PEM). */
  key: string;
}

const KEY_USAGE_BITS: Record<string, number> = {
  signing: 0,
  'digital signature': 0,
  'content commitment': 1,
  'key encipherment': 2,
  'data encipherment': 3,
  'key agreement': 4,
  'cert sign': 5,
  'crl sign': 6,
  'encipher only': 7,
  'decipher only': 8,
};

// In the order of Go's x509.ExtKeyUsage constants, which upstream sorts by.
const EXT_KEY_USAGES: [string[], string][] = [
  [['any'], '2.5.29.37.0'],
  [['server auth'], '1.3.6.1.5.5.7.3.1'],
  [['client auth'], '1.3.6.1.5.5.7.3.2'],
  [['code signing'], '1.3.6.1.5.5.7.3.3'],
  [['email protection', 's/mime'], '1.3.6.1.5.5.7.3.4'],
  [['ipsec end system'], '1.3.6.1.5.5.7.3.5'],
  [['ipsec tunnel'], '1.3.6.1.5.5.7.3.6'],
  [['ipsec user'], '1.3.6.1.5.5.7.3.7'],
  [['timestamping'], '1.3.6.1.5.5.7.3.8'],
  [['ocsp signing'], '1.3.6.1.5.5.7.3.9'],
  [['microsoft sgc'], '1.3.6.1.4.1.311.10.3.3'],
  [['netscape sgc'], '2.16.840.1.113730.4.1'],
];

export interface IssueOptions {
  /** spec.usages. */
  usages: readonly string[];
  notBefore: Date;
  notAfter: Date;
}

function keyUsageExtension(usages: readonly string[]): Buffer | undefined {
  let bits = 0;
  for (const u of usages) if (u in KEY_USAGE_BITS) bits |= 1 << KEY_USAGE_BITS[u]!;
  if (bits === 0) return undefined;
  // A named BIT STRING: bit 0 is the most significant bit of the first octet; trailing zeros trimmed.
  const length = 32 - Math.clz32(bits);
  const bytes = Buffer.alloc(Math.ceil(length / 8));
  for (let i = 0; i < length; i++) if (bits & (1 << i)) bytes[i >> 3]! |= 0x80 >> (i & 7);
  return bitString(bytes, bytes.length * 8 - length);
}

const extension = (id: string, critical: boolean, value: Buffer): Buffer =>
  sequence(oid(id), ...(critical ? [boolean(true)] : []), octetString(value));

interface CaParts {
  subjectDer: Buffer;
  subjectKeyId?: Buffer;
  key: KeyObject;
}

function caParts(ca: CertificateAuthority): CaParts {
  const block = decodePem(ca.cert);
  if (block?.type !== 'CERTIFICATE') throw new Error('the CA certificate is not PEM');
  const tbs = children(expect(children(readOne(block.der))[0], TAG.SEQUENCE, 'tbsCertificate'));
  // version [0] is present in v3 certificates; everything after it has a fixed position.
  const at = tbs[0]?.tag === contextTag(0, true) ? 1 : 0;
  const subject = expect(tbs[at + 4], TAG.SEQUENCE, 'subject');
  let subjectKeyId: Buffer | undefined;
  const exts = tbs.find((t) => t.tag === contextTag(3, true));
  for (const ext of exts ? children(expect(children(exts)[0], TAG.SEQUENCE, 'extensions')) : []) {
    const parts = children(ext);
    if (decodeOid(parts[0]!.content) === OID.subjectKeyIdentifier) {
      subjectKeyId = readOne(parts[parts.length - 1]!.content).content;
    }
  }
  return {
    subjectDer: subject.raw,
    ...(subjectKeyId ? { subjectKeyId } : {}),
    key: createPrivateKey(ca.key),
  };
}

/** Issues a certificate for the request, signed by the CA; returns it as PEM. */
export function issueCertificate(
  ca: CertificateAuthority,
  req: CertificateRequest,
  opts: IssueOptions,
): string {
  const parts = caParts(ca);
  const ecdsa = parts.key.asymmetricKeyType === 'ec';
  if (!ecdsa && parts.key.asymmetricKeyType !== 'rsa') {
    throw new Error(`unsupported CA key type ${parts.key.asymmetricKeyType}`);
  }
  const algorithm = ecdsa
    ? sequence(oid(OID.ecdsaWithSHA256))
    : sequence(oid(OID.sha256WithRSA), nullValue());
  const serial = randomBytes(16);
  serial[0]! &= 0x7f;
  const extKeyUsages = EXT_KEY_USAGES.filter(([names]) => names.some((n) => opts.usages.includes(n))).map(
    ([, id]) => oid(id),
  );
  const keyUsage = keyUsageExtension(opts.usages);
  // An empty subject makes the SANs critical (RFC 5280 4.2.1.6), as Go does.
  const emptySubject = readOne(req.subjectDer).content.length === 0;
  const extensions = [
    ...(keyUsage ? [extension(OID.keyUsage, true, keyUsage)] : []),
    ...(extKeyUsages.length ? [extension(OID.extKeyUsage, false, sequence(...extKeyUsages))] : []),
    extension(OID.basicConstraints, true, sequence()),
    ...(parts.subjectKeyId
      ? [extension(OID.authorityKeyIdentifier, false, sequence(tlvImplicit0(parts.subjectKeyId)))]
      : []),
    ...(req.subjectAltNameDer ? [extension(OID.subjectAltName, emptySubject, req.subjectAltNameDer)] : []),
  ];
  const tbs = sequence(
    explicit(0, smallInteger(2)),
    unsignedInteger(serial),
    algorithm,
    parts.subjectDer,
    sequence(time(opts.notBefore), time(opts.notAfter)),
    req.subjectDer,
    req.publicKeyDer,
    explicit(3, sequence(...extensions)),
  );
  const signature = sign('sha256', tbs, parts.key);
  return encodePem('CERTIFICATE', sequence(tbs, algorithm, bitString(signature)));
}

// AuthorityKeyIdentifier's keyIdentifier is [0] IMPLICIT OCTET STRING.
const tlvImplicit0 = (keyId: Buffer): Buffer => tlv(contextTag(0, false), keyId);

/** The CA certificate's notAfter (the signing policy never issues past it). */
export function caNotAfter(ca: CertificateAuthority): Date {
  return new Date(new X509Certificate(ca.cert).validTo);
}
