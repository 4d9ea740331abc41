// The DNS wire format (RFC 1035 §4), enough for a cluster DNS server: the
// header, questions, the record types Kubernetes' DNS schema uses (A, AAAA,
// CNAME, PTR, NS, SRV, SOA, TXT), any other type kept as opaque bytes, and
// EDNS0's OPT pseudo-record (RFC 6891) for the client's UDP payload size.
//
// Encoding compresses names (RFC 1035 §4.1.4) and truncates to a size limit
// the way a UDP answer must (RFC 2181 §9): records that do not fit are left
// out, and TC is set when part of the answer or authority section had to go,
// so the client asks again over TCP. The additional section may be cut
// without TC. The OPT record always stays.

export const TYPE = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  PTR: 12,
  MX: 15,
  TXT: 16,
  AAAA: 28,
  SRV: 33,
  OPT: 41,
  ANY: 255,
} as const;

export const CLASS_IN = 1;

export const RCODE = {
  NOERROR: 0,
  FORMERR: 1,
  SERVFAIL: 2,
  NXDOMAIN: 3,
  NOTIMP: 4,
  REFUSED: 5,
  /** Extended (EDNS0): the client's EDNS version is not supported. */
  BADVERS: 16,
} as const;

export const OPCODE_QUERY = 0;

/** The smallest UDP payload every client accepts (RFC 1035 §4.2.1). */
export const MIN_UDP_SIZE = 512;

export interface Question {
  name: string;
  type: number;
  class: number;
}

interface RecordHeader {
  name: string;
  ttl: number;
  /** CLASS_IN unless said otherwise. */
  class?: number;
}

export type ResourceRecord = RecordHeader &
  (
    | { type: typeof TYPE.A | typeof TYPE.AAAA; address: string }
    | { type: typeof TYPE.CNAME | typeof TYPE.PTR | typeof TYPE.NS; target: string }
    | { type: typeof TYPE.SRV; priority: number; weight: number; port: number; target: string }
    | {
        type: typeof TYPE.SOA;
        mname: string;
        rname: string;
        serial: number;
        refresh: number;
        retry: number;
        expire: number;
        minimum: number;
      }
    | { type: typeof TYPE.TXT; texts: string[] }
    /** Any other type: its RDATA as received. */
    | { type: number; data: Buffer }
  );

/** EDNS0, carried in the OPT pseudo-record of the additional section. */
export interface Edns {
  udpPayloadSize: number;
  version: number;
  /** The DO bit (DNSSEC OK). */
  dnssecOk: boolean;
  /** The OPT record's options (RDATA), passed through untouched. */
  options: Buffer;
}

export interface Message {
  id: number;
  /** A response (QR), rather than a query. */
  response: boolean;
  opcode: number;
  authoritative: boolean;
  truncated: boolean;
  recursionDesired: boolean;
  recursionAvailable: boolean;
  /** The full response code: the header's 4 bits plus EDNS0's upper 8. */
  rcode: number;
  questions: Question[];
  answers: ResourceRecord[];
  authority: ResourceRecord[];
  /** The additional section without the OPT record (that is `edns`). */
  additional: ResourceRecord[];
  edns?: Edns;
}

export class DnsFormatError extends Error {}

/** A message with every field at its zero value, for building answers. */
export function newMessage(fields: Partial<Message> = {}): Message {
  return {
    id: 0,
    response: false,
    opcode: OPCODE_QUERY,
    authoritative: false,
    truncated: false,
    recursionDesired: false,
    recursionAvailable: false,
    rcode: RCODE.NOERROR,
    questions: [],
    answers: [],
    authority: [],
    additional: [],
    ...fields,
  };
}

// ---------------------------------------------------------------------------
// Names. Internally a name is its labels joined by dots, without the root's
// trailing dot; a dot or backslash inside a label is escaped with a backslash
// (as in zone files), so every label survives a round trip.

/** Splits a name into its labels, honouring `\.` escapes. */
export function labelsOf(name: string): string[] {
  if (name === '' || name === '.') return [];
  const labels: string[] = [];
  let cur = '';
  for (let i = 0; i < name.length; i++) {
    const ch = name[i]!;
    if (ch === '\\' && i + 1 < name.length) cur += name[++i];
    else if (ch === '.') {
      labels.push(cur);
      cur = '';
    } else cur += ch;
  }
  if (cur !== '' || !name.endsWith('.')) labels.push(cur);
  return labels;
}

const escapeLabel = (label: string) => label.replace(/[.\\]/g, (c) => `\\${c}`);

/** The canonical form used for comparisons and cache keys: lower case, no trailing dot. */
export function canonicalName(name: string): string {
  const n = name.endsWith('.') && !name.endsWith('\\.') ? name.slice(0, -1) : name;
  return n.toLowerCase();
}

// ---------------------------------------------------------------------------
// Decoding

class Reader {
  readonly buf: Buffer;
  offset: number;
  constructor(buf: Buffer, offset = 0) {
    this.buf = buf;
    this.offset = offset;
  }
  need(n: number): void {
    if (this.offset + n > this.buf.length) throw new DnsFormatError('message truncated');
  }
  u8(): number {
    this.need(1);
    return this.buf[this.offset++]!;
  }
  u16(): number {
    this.need(2);
    const v = this.buf.readUInt16BE(this.offset);
    this.offset += 2;
    return v;
  }
  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32BE(this.offset);
    this.offset += 4;
    return v;
  }
  bytes(n: number): Buffer {
    this.need(n);
    const b = this.buf.subarray(this.offset, this.offset + n);
    this.offset += n;
    return b;
  }
  /**
   * A possibly compressed name. A pointer must point strictly before the
   * label that holds it, which makes loops impossible.
   */
  name(): string {
    const labels: string[] = [];
    let pos = this.offset;
    let end = -1; // where reading continues after the first pointer
    let length = 0;
    for (;;) {
      if (pos >= this.buf.length) throw new DnsFormatError('name runs past the message');
      const len = this.buf[pos]!;
      if (len === 0) {
        pos++;
        break;
      }
      if ((len & 0xc0) === 0xc0) {
        if (pos + 1 >= this.buf.length) throw new DnsFormatError('name runs past the message');
        const target = ((len & 0x3f) << 8) | this.buf[pos + 1]!;
        if (target >= pos) throw new DnsFormatError('compression pointer does not point backwards');
        if (end < 0) end = pos + 2;
        pos = target;
        continue;
      }
      if ((len & 0xc0) !== 0) throw new DnsFormatError(`unsupported label type 0x${len.toString(16)}`);
      if (pos + 1 + len > this.buf.length) throw new DnsFormatError('label runs past the message');
      length += len + 1;
      if (length > 255) throw new DnsFormatError('name longer than 255 octets');
      labels.push(escapeLabel(this.buf.toString('latin1', pos + 1, pos + 1 + len)));
      pos += 1 + len;
    }
    this.offset = end >= 0 ? end : pos;
    return labels.join('.');
  }
}

function readRecord(r: Reader): ResourceRecord | { opt: Edns; extendedRcode: number } {
  const name = r.name();
  const type = r.u16();
  const cls = r.u16();
  const ttl = r.u32();
  const rdlength = r.u16();
  r.need(rdlength);
  const end = r.offset + rdlength;
  const rd = new Reader(r.buf, r.offset);
  let rec: ResourceRecord | { opt: Edns; extendedRcode: number };
  switch (type) {
    case TYPE.OPT:
      // CLASS is the UDP payload size; TTL holds the extended RCODE, version and flags.
      rec = {
        opt: {
          udpPayloadSize: cls,
          version: (ttl >>> 16) & 0xff,
          dnssecOk: (ttl & 0x8000) !== 0,
          options: Buffer.from(rd.bytes(rdlength)),
        },
        extendedRcode: ttl >>> 24,
      };
      break;
    case TYPE.A:
      if (rdlength !== 4) throw new DnsFormatError('A record of the wrong length');
      rec = { name, ttl, class: cls, type, address: [...rd.bytes(4)].join('.') };
      break;
    case TYPE.AAAA:
      if (rdlength !== 16) throw new DnsFormatError('AAAA record of the wrong length');
      rec = { name, ttl, class: cls, type, address: formatIPv6(rd.bytes(16)) };
      break;
    case TYPE.CNAME:
    case TYPE.PTR:
    case TYPE.NS:
      rec = { name, ttl, class: cls, type, target: rd.name() };
      break;
    case TYPE.SRV:
      rec = {
        name,
        ttl,
        class: cls,
        type,
        priority: rd.u16(),
        weight: rd.u16(),
        port: rd.u16(),
        target: rd.name(),
      };
      break;
    case TYPE.SOA:
      rec = {
        name,
        ttl,
        class: cls,
        type,
        mname: rd.name(),
        rname: rd.name(),
        serial: rd.u32(),
        refresh: rd.u32(),
        retry: rd.u32(),
        expire: rd.u32(),
        minimum: rd.u32(),
      };
      break;
    case TYPE.TXT: {
      const texts: string[] = [];
      while (rd.offset < end) texts.push(rd.bytes(rd.u8()).toString('utf8'));
      rec = { name, ttl, class: cls, type, texts };
      break;
    }
    default:
      rec = { name, ttl, class: cls, type, data: Buffer.from(rd.bytes(rdlength)) };
  }
  if (rd.offset > end) throw new DnsFormatError('record data longer than its RDLENGTH');
  r.offset = end;
  return rec;
}

/** Parses a whole message; throws DnsFormatError on anything malformed. */
export function decodeMessage(buf: Buffer): Message {
  const r = new Reader(buf);
  if (buf.length < 12) throw new DnsFormatError('shorter than a DNS header');
  const id = r.u16();
  const flags = r.u16();
  const counts = [r.u16(), r.u16(), r.u16(), r.u16()] as const;
  const msg = newMessage({
    id,
    response: (flags & 0x8000) !== 0,
    opcode: (flags >> 11) & 0xf,
    authoritative: (flags & 0x0400) !== 0,
    truncated: (flags & 0x0200) !== 0,
    recursionDesired: (flags & 0x0100) !== 0,
    recursionAvailable: (flags & 0x0080) !== 0,
    rcode: flags & 0xf,
  });
  for (let i = 0; i < counts[0]; i++) msg.questions.push({ name: r.name(), type: r.u16(), class: r.u16() });
  const sections = [msg.answers, msg.authority, msg.additional];
  for (let s = 0; s < 3; s++) {
    for (let i = 0; i < counts[s + 1]!; i++) {
      const rec = readRecord(r);
      if ('opt' in rec) {
        if (s !== 2 || msg.edns) throw new DnsFormatError('misplaced or repeated OPT record');
        msg.edns = rec.opt;
        msg.rcode |= rec.extendedRcode << 4;
      } else sections[s]!.push(rec);
    }
  }
  return msg;
}

// ---------------------------------------------------------------------------
// Encoding

class Writer {
  buf = Buffer.alloc(512);
  length = 0;
  /** Lower-cased name suffix → where it was written, for compression pointers. */
  readonly names = new Map<string, number>();

  ensure(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const next = Buffer.alloc(Math.max(this.buf.length * 2, this.length + n));
    this.buf.copy(next, 0, 0, this.length);
    this.buf = next;
  }
  u8(v: number): void {
    this.ensure(1);
    this.buf[this.length++] = v;
  }
  u16(v: number): void {
    this.ensure(2);
    this.buf.writeUInt16BE(v & 0xffff, this.length);
    this.length += 2;
  }
  u32(v: number): void {
    this.ensure(4);
    this.buf.writeUInt32BE(v >>> 0, this.length);
    this.length += 4;
  }
  bytes(b: Buffer): void {
    this.ensure(b.length);
    b.copy(this.buf, this.length);
    this.length += b.length;
  }
  name(name: string, compress: boolean): void {
    const labels = labelsOf(name);
    for (let i = 0; i < labels.length; i++) {
      const suffix = labels
        .slice(i)
        .map((l) => escapeLabel(l).toLowerCase())
        .join('.');
      const at = this.names.get(suffix);
      if (compress && at !== undefined) {
        this.u16(0xc000 | at);
        return;
      }
      // Pointers have 14 bits: names written past 16 KiB cannot be pointed at.
      if (this.length < 0x4000 && at === undefined) this.names.set(suffix, this.length);
      const bytes = Buffer.from(labels[i]!, 'latin1');
      if (bytes.length === 0 || bytes.length > 63) throw new RangeError(`invalid label in ${name}`);
      this.u8(bytes.length);
      this.bytes(bytes);
    }
    this.u8(0);
  }
  /** Forgets compression targets at or past `length` (after a rollback). */
  truncateTo(length: number): void {
    this.length = length;
    for (const [k, at] of this.names) if (at >= length) this.names.delete(k);
  }
}

function writeRecord(w: Writer, rec: ResourceRecord): void {
  w.name(rec.name, true);
  w.u16(rec.type);
  w.u16(rec.class ?? CLASS_IN);
  w.u32(rec.ttl);
  const lengthAt = w.length;
  w.u16(0);
  const start = w.length;
  if ('address' in rec) {
    if (rec.type === TYPE.A) w.bytes(Buffer.from(rec.address.split('.').map(Number)));
    else w.bytes(parseIPv6(rec.address));
  } else if ('priority' in rec) {
    w.u16(rec.priority);
    w.u16(rec.weight);
    w.u16(rec.port);
    // RFC 2782: "name compression is not to be used for this field".
    w.name(rec.target, false);
  } else if ('target' in rec) w.name(rec.target, true);
  else if ('mname' in rec) {
    w.name(rec.mname, true);
    w.name(rec.rname, true);
    for (const v of [rec.serial, rec.refresh, rec.retry, rec.expire, rec.minimum]) w.u32(v);
  } else if ('texts' in rec) {
    for (const t of rec.texts) {
      const b = Buffer.from(t, 'utf8');
      if (b.length > 255) throw new RangeError('TXT string longer than 255 octets');
      w.u8(b.length);
      w.bytes(b);
    }
  } else w.bytes(rec.data);
  w.buf.writeUInt16BE(w.length - start, lengthAt);
}

/** The OPT record's size on the wire: root name, type, class, ttl, rdlength, options. */
const optSize = (edns: Edns) => 11 + edns.options.length;

/**
 * Encodes a message. With `maxSize` (a UDP answer), records that do not fit
 * are left out, from the end: TC is set if any answer or authority record
 * had to go (RFC 2181 §9), not for additional records alone.
 */
export function encodeMessage(msg: Message, maxSize = 65_535): Buffer {
  const w = new Writer();
  w.u16(msg.id);
  w.u16(0); // flags, written last (TC may change)
  for (let i = 0; i < 4; i++) w.u16(0);
  for (const q of msg.questions) {
    w.name(q.name, true);
    w.u16(q.type);
    w.u16(q.class);
  }
  const limit = maxSize - (msg.edns ? optSize(msg.edns) : 0);
  if (w.length > limit) throw new RangeError('the question alone does not fit');
  let truncated = msg.truncated;
  const counts = [0, 0, 0];
  const sections = [msg.answers, msg.authority, msg.additional];
  outer: for (let s = 0; s < 3; s++) {
    for (const rec of sections[s]!) {
      const before = w.length;
      writeRecord(w, rec);
      if (w.length > limit) {
        w.truncateTo(before);
        if (s < 2) truncated = true;
        break outer;
      }
      counts[s]!++;
    }
  }
  if (msg.edns) {
    const e = msg.edns;
    w.u8(0);
    w.u16(TYPE.OPT);
    w.u16(e.udpPayloadSize);
    w.u32((((msg.rcode >> 4) & 0xff) << 24) | ((e.version & 0xff) << 16) | (e.dnssecOk ? 0x8000 : 0));
    w.u16(e.options.length);
    w.bytes(e.options);
    counts[2]!++;
  }
  const flags =
    (msg.response ? 0x8000 : 0) |
    ((msg.opcode & 0xf) << 11) |
    (msg.authoritative ? 0x0400 : 0) |
    (truncated ? 0x0200 : 0) |
    (msg.recursionDesired ? 0x0100 : 0) |
    (msg.recursionAvailable ? 0x0080 : 0) |
    (msg.rcode & 0xf);
  w.buf.writeUInt16BE(flags, 2);
  w.buf.writeUInt16BE(msg.questions.length, 4);
  w.buf.writeUInt16BE(counts[0]!, 6);
  w.buf.writeUInt16BE(counts[1]!, 8);
  w.buf.writeUInt16BE(counts[2]!, 10);
  return Buffer.from(w.buf.subarray(0, w.length));
}

/**
 * A message cut down to its header and question with TC set: how a
 * forwarded answer too big for the client's UDP size is passed on, without
 * decoding its records.
 */
export function truncatedCopy(response: Buffer): Buffer {
  const r = new Reader(response, 12);
  const qdcount = response.readUInt16BE(4);
  for (let i = 0; i < qdcount; i++) {
    r.name();
    r.need(4);
    r.offset += 4;
  }
  const out = Buffer.from(response.subarray(0, r.offset));
  out.writeUInt16BE(out.readUInt16BE(2) | 0x0200, 2);
  out.writeUInt16BE(0, 6);
  out.writeUInt16BE(0, 8);
  out.writeUInt16BE(0, 10);
  return out;
}

// ---------------------------------------------------------------------------
// Addresses

function formatIPv6(b: Buffer): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i));
  // Collapse the longest run of zero groups (RFC 5952).
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

/** The 16 bytes of an IPv6 address (with `::` and an optional dotted IPv4 tail). */
export function parseIPv6(address: string): Buffer {
  let s = address;
  // A dotted IPv4 tail (::ffff:10.0.0.1) is two more hex groups.
  const v4 = s.match(/^(.*:)(\d+)\.(\d+)\.(\d+)\.(\d+)$/);
  if (v4) {
    const [a, b, c, d] = v4.slice(2).map(Number) as [number, number, number, number];
    s = `${v4[1]}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const halves = s.split('::');
  if (halves.length > 2) throw new RangeError(`invalid IPv6 address ${address}`);
  const parse = (part: string) =>
    part ? part.split(':').map((h) => (/^[0-9a-f]{1,4}$/i.test(h) ? Number.parseInt(h, 16) : -1)) : [];
  const head = parse(halves[0] ?? '');
  const groups =
    halves.length === 2
      ? [
          ...head,
          ...new Array(Math.max(0, 8 - head.length - parse(halves[1]!).length)).fill(0),
          ...parse(halves[1]!),
        ]
      : head;
  if (groups.length !== 8 || groups.some((g) => g < 0))
    throw new RangeError(`invalid IPv6 address ${address}`);
  const out = Buffer.alloc(16);
  for (const [i, g] of groups.entries()) out.writeUInt16BE(g, i * 2);
  return out;
}
