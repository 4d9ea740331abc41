// Reads google.protobuf.FileDescriptorProto / FileDescriptorSet bytes into a
// message index the Kubernetes decoder walks. Only the parts of
// descriptor.proto that affect decoding are read (names, field numbers,
// types, labels, map-entry flags); options such as the gogoproto extensions
// Kubernetes embeds are skipped like any unknown field.

import { ProtobufDecodeError, ProtoReader, utf8, WireType } from './wire.ts';

/** google.protobuf.FieldDescriptorProto.Type values. */
export const FieldType = {
  Double: 1,
  Float: 2,
  Int64: 3,
  Uint64: 4,
  Int32: 5,
  Fixed64: 6,
  Fixed32: 7,
  Bool: 8,
  String: 9,
  Group: 10,
  Message: 11,
  Bytes: 12,
  Uint32: 13,
  Enum: 14,
  Sfixed32: 15,
  Sfixed64: 16,
  Sint32: 17,
  Sint64: 18,
} as const;

const LABEL_REPEATED = 3;

export interface FieldInfo {
  name: string;
  number: number;
  type: number;
  repeated: boolean;
  /** Fully qualified type name without the leading dot, for message and enum fields. */
  typeName: string;
}

export interface MessageInfo {
  /** Fully qualified name without the leading dot, e.g. `k8s.io.api.core.v1.Pod`. */
  fullName: string;
  fields: FieldInfo[];
  mapEntry: boolean;
}

export interface FileInfo {
  name: string;
  package: string;
  dependencies: string[];
  messages: MessageInfo[];
}

function wrongType(what: string): ProtobufDecodeError {
  return new ProtobufDecodeError('Malformed', `descriptor: unexpected wire type for ${what}`);
}

function readField(bytes: Uint8Array): FieldInfo {
  const r = new ProtoReader(bytes);
  const f: FieldInfo = { name: '', number: 0, type: 0, repeated: false, typeName: '' };
  while (!r.done) {
    const key = r.tag();
    const wt = key & 7;
    switch (key >>> 3) {
      case 1:
        if (wt !== WireType.LengthDelimited) throw wrongType('field name');
        f.name = utf8(r.bytes());
        break;
      case 3:
        if (wt !== WireType.Varint) throw wrongType('field number');
        f.number = r.uint32();
        break;
      case 4:
        if (wt !== WireType.Varint) throw wrongType('field label');
        f.repeated = r.uint32() === LABEL_REPEATED;
        break;
      case 5:
        if (wt !== WireType.Varint) throw wrongType('field type');
        f.type = r.uint32();
        break;
      case 6: {
        if (wt !== WireType.LengthDelimited) throw wrongType('field type_name');
        const t = utf8(r.bytes());
        f.typeName = t.startsWith('.') ? t.slice(1) : t;
        break;
      }
      default:
        r.skip(wt, key >>> 3);
    }
  }
  return f;
}

function readMessageOptionsMapEntry(bytes: Uint8Array): boolean {
  const r = new ProtoReader(bytes);
  let mapEntry = false;
  while (!r.done) {
    const key = r.tag();
    if (key >>> 3 === 7 && (key & 7) === WireType.Varint) mapEntry = r.uint32() !== 0;
    else r.skip(key & 7, key >>> 3);
  }
  return mapEntry;
}

/** Reads a DescriptorProto and its nested types into `out`, depth first. */
function readMessage(bytes: Uint8Array, scope: string, out: MessageInfo[], depth: number): void {
  if (depth > 32) throw new ProtobufDecodeError('Malformed', 'descriptor: messages nested too deeply');
  const r = new ProtoReader(bytes);
  const msg: MessageInfo = { fullName: '', fields: [], mapEntry: false };
  const nested: Uint8Array[] = [];
  while (!r.done) {
    const key = r.tag();
    const wt = key & 7;
    const no = key >>> 3;
    if (wt !== WireType.LengthDelimited || (no !== 1 && no !== 2 && no !== 3 && no !== 7)) {
      r.skip(wt, no);
      continue;
    }
    const payload = r.bytes();
    if (no === 1) msg.fullName = scope ? `${scope}.${utf8(payload)}` : utf8(payload);
    else if (no === 2) msg.fields.push(readField(payload));
    else if (no === 3) nested.push(payload);
    else msg.mapEntry = readMessageOptionsMapEntry(payload);
  }
  out.push(msg);
  // Nested names need the parent's full name, which may appear after them.
  for (const n of nested) readMessage(n, msg.fullName, out, depth + 1);
}

/** Parses one serialized FileDescriptorProto. */
export function parseFileDescriptor(bytes: Uint8Array): FileInfo {
  const r = new ProtoReader(bytes);
  const file: FileInfo = { name: '', package: '', dependencies: [], messages: [] };
  const messages: Uint8Array[] = [];
  while (!r.done) {
    const key = r.tag();
    const wt = key & 7;
    const no = key >>> 3;
    if (wt !== WireType.LengthDelimited || no < 1 || no > 4) {
      r.skip(wt, no);
      continue;
    }
    const payload = r.bytes();
    if (no === 1) file.name = utf8(payload);
    else if (no === 2) file.package = utf8(payload);
    else if (no === 3) file.dependencies.push(utf8(payload));
    else messages.push(payload);
  }
  for (const m of messages) readMessage(m, file.package, file.messages, 0);
  return file;
}

/** Splits a serialized FileDescriptorSet (field 1: repeated FileDescriptorProto). */
export function splitFileDescriptorSet(bytes: Uint8Array): Uint8Array[] {
  const r = new ProtoReader(bytes);
  const files: Uint8Array[] = [];
  while (!r.done) {
    const key = r.tag();
    if (key >>> 3 === 1 && (key & 7) === WireType.LengthDelimited) files.push(r.bytes());
    else r.skip(key & 7, key >>> 3);
  }
  return files;
}
