// The little of ASN.1 DER that certificate requests and certificates need:
// read a TLV and its children, write the handful of types a TBSCertificate
// is made of. The rest of the PKI shells out to openssl (pki.ts); CSRs are
// read here because the API server validates every CSR it stores, on the
// request path and synchronously, and openssl 3.0's `x509 -req` cannot
// issue a certificate for a number of seconds (spec.expirationSeconds).

export interface Tlv {
  /** The identifier octet (class, constructed bit and tag number < 31). */
  tag: number;
  /** The whole element, header included (what a signature covers). */
  raw: Buffer;
  /** The contents octets. */
  content: Buffer;
}

export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8String: 0x0c,
  PrintableString: 0x13,
  T61String: 0x14,
  IA5String: 0x16,
  UTCTime: 0x17,
  GeneralizedTime: 0x18,
  BMPString: 0x1e,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** A context-specific tag: [n] (constructed for EXPLICIT tagging and constructed IMPLICIT types). */
export const contextTag = (n: number, constructed: boolean): number => 0x80 | (constructed ? 0x20 : 0) | n;

export class DerError extends Error {}

/** Reads the element at offset; throws DerError on anything that is not well-formed DER. */
export function readTlv(buf: Buffer, offset = 0): Tlv {
  if (offset + 2 > buf.length) throw new DerError('asn1: truncated element');
  const tag = buf[offset]!;
  if ((tag & 0x1f) === 0x1f) throw new DerError('asn1: high-tag-number form is not supported');
  let len = buf[offset + 1]!;
  let header = 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4) throw new DerError('asn1: indefinite or oversized length');
    if (offset + 2 + n > buf.length) throw new DerError('asn1: truncated length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[offset + 2 + i]!;
    if (len < 0x80 || (n > 1 && buf[offset + 2] === 0)) throw new DerError('asn1: non-minimal length');
    header += n;
  }
  const end = offset + header + len;
  if (end > buf.length) throw new DerError('asn1: truncated element');
  return { tag, raw: buf.subarray(offset, end), content: buf.subarray(offset + header, end) };
}

/** Reads exactly one element filling buf. */
export function readOne(buf: Buffer): Tlv {
  const t = readTlv(buf);
  if (t.raw.length !== buf.length) throw new DerError('asn1: trailing data');
  return t;
}

/** The elements of a constructed value (SEQUENCE, SET, explicit tags). */
export function children(t: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let off = 0; off < t.content.length; ) {
    const c = readTlv(t.content, off);
    out.push(c);
    off += c.raw.length;
  }
  return out;
}

export function expect(t: Tlv | undefined, tag: number, what: string): Tlv {
  if (!t || t.tag !== tag) throw new DerError(`asn1: structure error: ${what}`);
  return t;
}

export function decodeOid(content: Buffer): string {
  if (content.length === 0) throw new DerError('asn1: empty object identifier');
  const parts: number[] = [];
  let v = 0;
  for (const b of content) {
    v = v * 128 + (b & 0x7f);
    if (!(b & 0x80)) {
      parts.push(v);
      v = 0;
    }
  }
  const first = parts.shift() ?? 0;
  const head = first < 80 ? [Math.floor(first / 40), first % 40] : [2, first - 80];
  return [...head, ...parts].join('.');
}

/** The text of a directory string (PrintableString, UTF8String, IA5String, ...). */
export function decodeString(t: Tlv): string {
  if (t.tag === TAG.BMPString) {
    let s = '';
    for (let i = 0; i + 1 < t.content.length; i += 2) s += String.fromCharCode(t.content.readUInt16BE(i));
    return s;
  }
  return t.content.toString(t.tag === TAG.UTF8String ? 'utf8' : 'latin1');
}

// ---- writing ----------------------------------------------------------

function lengthOctets(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

export const tlv = (tag: number, content: Buffer): Buffer =>
  Buffer.concat([Buffer.from([tag]), lengthOctets(content.length), content]);

export const sequence = (...items: Buffer[]): Buffer => tlv(TAG.SEQUENCE, Buffer.concat(items));
export const explicit = (n: number, inner: Buffer): Buffer => tlv(contextTag(n, true), inner);
export const octetString = (b: Buffer): Buffer => tlv(TAG.OCTET_STRING, b);
export const boolean = (v: boolean): Buffer => tlv(TAG.BOOLEAN, Buffer.from([v ? 0xff : 0]));
export const nullValue = (): Buffer => tlv(TAG.NULL, Buffer.alloc(0));

/** A non-negative INTEGER from its big-endian magnitude. */
export function unsignedInteger(magnitude: Buffer): Buffer {
  let i = 0;
  while (i < magnitude.length - 1 && magnitude[i] === 0) i++;
  const m = magnitude.subarray(i);
  return tlv(TAG.INTEGER, m[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), m]) : m);
}

export const smallInteger = (n: number): Buffer => unsignedInteger(Buffer.from([n]));

export function oid(dotted: string): Buffer {
  const [a = 0, b = 0, ...rest] = dotted.split('.').map(Number);
  const out: number[] = [];
  for (const n of [a * 40 + b, ...rest]) {
    const chunk: number[] = [n & 0x7f];
    for (let v = Math.floor(n / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift((v & 0x7f) | 0x80);
    out.push(...chunk);
  }
  return tlv(TAG.OID, Buffer.from(out));
}

export const bitString = (bytes: Buffer, unusedBits = 0): Buffer =>
  tlv(TAG.BIT_STRING, Buffer.concat([Buffer.from([unusedBits]), bytes]));

/** RFC 5280 Time: UTCTime through 2049, GeneralizedTime after; whole seconds, UTC. */
export function time(d: Date): Buffer {
  const iso = d.toISOString(); // 2025-01-02T03:04:05.678Z
  const digits = `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
  return d.getUTCFullYear() < 2050
    ? tlv(TAG.UTCTime, Buffer.from(digits.slice(2), 'latin1'))
    : tlv(TAG.GeneralizedTime, Buffer.from(digits, 'latin1'));
}
