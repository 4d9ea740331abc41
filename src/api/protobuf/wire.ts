// Protocol Buffers wire-format primitives: a bounds-checked reader for
// decoding and a tiny writer the descriptor generator uses to re-frame
// FileDescriptorProtos. Every read checks the remaining length first, so
// hostile or truncated input ends in a ProtobufDecodeError rather than an
// out-of-range read, and every loop consumes at least one byte per step, so
// decoding cannot spin forever.

/** Why a body could not be decoded; lets callers pick 400 versus 415. */
export type ProtobufDecodeErrorReason =
  /** The body does not start with the `k8s\0` magic. */
  | 'NotProtobuf'
  /** The bytes are not valid protobuf for the schema (truncated, bad tags, bad lengths, too deep). */
  | 'Malformed'
  /** The apiVersion/kind in the envelope has no known protobuf schema. */
  | 'UnknownType'
  /** A valid envelope we deliberately do not handle (content encodings, foreign content types). */
  | 'Unsupported';

export class ProtobufDecodeError extends Error {
  readonly reason: ProtobufDecodeErrorReason;

  constructor(reason: ProtobufDecodeErrorReason, message: string) {
    super(message);
    this.name = 'ProtobufDecodeError';
    this.reason = reason;
  }
}

export const WireType = {
  Varint: 0,
  Fixed64: 1,
  LengthDelimited: 2,
  StartGroup: 3,
  EndGroup: 4,
  Fixed32: 5,
} as const;

const TWO_32 = 4294967296;

function malformed(message: string): ProtobufDecodeError {
  return new ProtobufDecodeError('Malformed', message);
}

/**
 * Sequential reader over one message's bytes. Nested messages get their own
 * reader over a subarray (no copy), so `end` is always the buffer length.
 */
export class ProtoReader {
  readonly buf: Uint8Array;
  pos = 0;
  /** High 32 bits of the last varint/fixed64 read; the low bits are returned. */
  hi = 0;

  constructor(buf: Uint8Array) {
    this.buf = buf;
  }

  get done(): boolean {
    return this.pos >= this.buf.length;
  }

  /**
   * Reads a varint of up to 10 bytes, returning its low 32 bits (unsigned)
   * and leaving the high 32 bits in `hi`. Splitting the value this way keeps
   * the common case on plain numbers instead of BigInt.
   */
  varint(): number {
    const buf = this.buf;
    let lo = 0;
    let hi = 0;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= buf.length) throw malformed('truncated varint');
      const b = buf[this.pos++]!;
      if (i < 4) lo |= (b & 0x7f) << (7 * i);
      else if (i === 4) {
        lo |= (b & 0x0f) << 28;
        hi |= (b & 0x7f) >> 4;
      } else hi |= (b & 0x7f) << (7 * i - 32);
      if ((b & 0x80) === 0) {
        this.hi = hi >>> 0;
        return lo >>> 0;
      }
    }
    throw malformed('varint longer than 10 bytes');
  }

  /** A varint that must fit in 32 bits unsigned (tags, lengths). */
  uint32(): number {
    const lo = this.varint();
    if (this.hi !== 0) throw malformed('varint does not fit in 32 bits');
    return lo;
  }

  fixed32(): number {
    if (this.buf.length - this.pos < 4) throw malformed('truncated fixed32');
    const b = this.buf;
    const p = this.pos;
    this.pos += 4;
    return (b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16) | (b[p + 3]! << 24)) >>> 0;
  }

  /** Reads 8 bytes little-endian: returns the low word, leaves the high word in `hi`. */
  fixed64(): number {
    const lo = this.fixed32();
    this.hi = this.fixed32();
    return lo;
  }

  float(): number {
    if (this.buf.length - this.pos < 4) throw malformed('truncated float');
    const v = new DataView(this.buf.buffer, this.buf.byteOffset + this.pos, 4).getFloat32(0, true);
    this.pos += 4;
    return v;
  }

  double(): number {
    if (this.buf.length - this.pos < 8) throw malformed('truncated double');
    const v = new DataView(this.buf.buffer, this.buf.byteOffset + this.pos, 8).getFloat64(0, true);
    this.pos += 8;
    return v;
  }

  /** The payload of a length-delimited field, as a view into the buffer. */
  bytes(): Uint8Array {
    const len = this.uint32();
    if (len > this.buf.length - this.pos)
      throw malformed('length-delimited field runs past the end of its message');
    const out = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return out;
  }

  /** Reads a field key; returns field number and wire type packed as `number * 8 + wireType`. */
  tag(): number {
    const key = this.uint32();
    if (key >>> 3 === 0) throw malformed('field number 0');
    return key;
  }

  /** Skips a field value of the given wire type, including nested groups. */
  skip(wireType: number, fieldNumber: number, depth = 0): void {
    switch (wireType) {
      case WireType.Varint:
        this.varint();
        return;
      case WireType.Fixed64:
        if (this.buf.length - this.pos < 8) throw malformed('truncated fixed64');
        this.pos += 8;
        return;
      case WireType.LengthDelimited:
        this.bytes();
        return;
      case WireType.Fixed32:
        if (this.buf.length - this.pos < 4) throw malformed('truncated fixed32');
        this.pos += 4;
        return;
      case WireType.StartGroup: {
        // Groups are obsolete and never used by Kubernetes, but skipping them
        // properly keeps unknown-field handling conformant.
        if (depth > 32) throw malformed('groups nested too deeply');
        for (;;) {
          if (this.done) throw malformed('unterminated group');
          const key = this.tag();
          const wt = key & 7;
          if (wt === WireType.EndGroup) {
            if (key >>> 3 !== fieldNumber) throw malformed('mismatched end-group');
            return;
          }
          this.skip(wt, key >>> 3, depth + 1);
        }
      }
      default:
        throw malformed(`invalid wire type ${wireType}`);
    }
  }
}

/** Decodes UTF-8 without copying; invalid sequences become U+FFFD, as Go's JSON encoder does. */
export function utf8(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
}

export function base64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

/** Combines a split 64-bit value into a number, signed (two's complement) or unsigned. */
export function int64ToNumber(lo: number, hi: number, signed: boolean): number {
  if (signed && hi & 0x80000000) {
    // Negate in two 32-bit halves to stay exact for small magnitudes.
    const nlo = (~lo + 1) >>> 0;
    const nhi = (~hi + (nlo === 0 ? 1 : 0)) >>> 0;
    return -(nhi * TWO_32 + nlo);
  }
  return hi * TWO_32 + lo;
}

export function int64ToBigInt(lo: number, hi: number, signed: boolean): bigint {
  const v = (BigInt(hi) << 32n) | BigInt(lo);
  return signed ? BigInt.asIntN(64, v) : v;
}

/** Appends protobuf fields to a growing buffer; only what the generator needs. */
export class ProtoWriter {
  private chunks: Uint8Array[] = [];
  private scratch: number[] = [];

  private flushScratch(): void {
    if (this.scratch.length > 0) {
      this.chunks.push(Uint8Array.from(this.scratch));
      this.scratch = [];
    }
  }

  varint(value: number): this {
    if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`cannot encode varint ${value}`);
    let v = value;
    while (v >= 0x80) {
      this.scratch.push((v % 0x80) | 0x80);
      v = Math.floor(v / 0x80);
    }
    this.scratch.push(v);
    return this;
  }

  /** Writes a length-delimited field (wire type 2). */
  bytesField(fieldNumber: number, payload: Uint8Array): this {
    this.varint(fieldNumber * 8 + WireType.LengthDelimited);
    this.varint(payload.length);
    this.flushScratch();
    this.chunks.push(payload);
    return this;
  }

  finish(): Uint8Array {
    this.flushScratch();
    let len = 0;
    for (const c of this.chunks) len += c.length;
    const out = new Uint8Array(len);
    let off = 0;
    for (const c of this.chunks) {
      out.set(c, off);
      off += c.length;
    }
    return out;
  }
}
