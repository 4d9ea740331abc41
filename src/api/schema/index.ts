// The built-in API's type model, built once from the protobuf descriptors
// that src/api/protobuf/descriptors.gen.ts carries (extracted from kubectl).

import { gunzipSync } from 'node:zlib';
import { INLINE_FIELDS, JSON_NAME_OVERRIDES } from '../protobuf/decode.ts';
import {
  FieldType,
  type MessageInfo,
  parseFileDescriptor,
  splitFileDescriptorSet,
} from '../protobuf/descriptor.ts';
import { K8S_DESCRIPTOR_SET_GZIP_BASE64 } from '../protobuf/descriptors.gen.ts';
import type { ModelField, ModelMessage, ScalarType, TypeModel } from './model.ts';

export * from './model.ts';

const scalarNames: Record<number, ScalarType> = {
  [FieldType.Double]: 'double',
  [FieldType.Float]: 'float',
  [FieldType.Int64]: 'int64',
  [FieldType.Uint64]: 'uint64',
  [FieldType.Int32]: 'int32',
  [FieldType.Fixed64]: 'uint64',
  [FieldType.Fixed32]: 'uint32',
  [FieldType.Bool]: 'bool',
  [FieldType.String]: 'string',
  [FieldType.Bytes]: 'bytes',
  [FieldType.Uint32]: 'uint32',
  [FieldType.Enum]: 'int32',
  [FieldType.Sfixed32]: 'int32',
  [FieldType.Sfixed64]: 'int64',
  [FieldType.Sint32]: 'int32',
  [FieldType.Sint64]: 'int64',
};

let cached: TypeModel | undefined;

export function builtinTypeModel(): TypeModel {
  cached ??= buildModel();
  return cached;
}

function buildModel(): TypeModel {
  const raw = new Map<string, MessageInfo>();
  const set = gunzipSync(Buffer.from(K8S_DESCRIPTOR_SET_GZIP_BASE64, 'base64'));
  for (const file of splitFileDescriptorSet(set)) {
    for (const m of parseFileDescriptor(file).messages) raw.set(m.fullName, m);
  }
  const typeOf = (type: number, typeName: string): { type: ScalarType | 'message'; message?: string } =>
    type === FieldType.Message
      ? { type: 'message', message: typeName }
      : { type: scalarNames[type] ?? 'string' };
  const messages = new Map<string, ModelMessage>();
  for (const m of raw.values()) {
    if (m.mapEntry) continue;
    const fields: ModelField[] = m.fields.map((f) => {
      const entry = f.type === FieldType.Message ? raw.get(f.typeName) : undefined;
      if (entry?.mapEntry && f.repeated) {
        const value = entry.fields.find((x) => x.number === 2);
        return {
          name: f.name,
          type: 'message',
          repeated: false,
          map: value ? typeOf(value.type, value.typeName) : { type: 'string' },
        };
      }
      const t = typeOf(f.type, f.typeName);
      return {
        name: f.name,
        type: t.type,
        ...(t.message ? { message: t.message } : {}),
        repeated: f.repeated,
      };
    });
    messages.set(m.fullName, { name: m.fullName, fields });
  }
  // Go structs embedded with `json:",inline"` (Volume's VolumeSource,
  // Probe's ProbeHandler, HTTPIngressRuleValue...) are one field in the
  // .proto but their fields belong to the parent in JSON: splice them in.
  const simpleName = (full: string) => full.slice(full.lastIndexOf('.') + 1);
  const flattened = new Set<string>();
  const flatten = (msg: ModelMessage): void => {
    if (flattened.has(msg.name)) return;
    flattened.add(msg.name);
    const out: ModelField[] = [];
    for (const f of msg.fields) {
      const inline =
        f.type === 'message' &&
        f.message &&
        !f.repeated &&
        INLINE_FIELDS.get(f.name) === simpleName(f.message);
      const inner = inline ? messages.get(f.message!) : undefined;
      if (inner) {
        flatten(inner);
        out.push(...inner.fields);
      } else out.push({ ...f, name: JSON_NAME_OVERRIDES.get(f.name) ?? f.name });
    }
    msg.fields = out;
  };
  for (const m of messages.values()) flatten(m);
  return {
    message: (name) => messages.get(name),
    messages: () => messages.values(),
  };
}
