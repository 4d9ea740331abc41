// Decodes Kubernetes protobuf request bodies (application/vnd.kubernetes.protobuf)
// into the JSON object a client would have sent with application/json.
//
// kubectl >= 1.32 sends the bodies of its typed create commands (create
// configmap/secret/deployment/job/ingress/token, ...) as protobuf; commands
// built on unstructured objects (apply, run, expose) still send JSON. The rest of Skiff works on JSON
// objects, so we translate at the edge and answer in JSON, which those
// clients accept as well.
//
// Why a hand-written decoder instead of protobufjs: the wire format is small
// (varints, fixed widths, length-delimited fields), while the part that needs
// care is the mapping to Kubernetes JSON (Time, Quantity, IntOrString,
// inlined embedded structs, Go field names, omitting Go's always-written
// empty strings). protobufjs would decode into its own objects (Long values,
// Buffers, default-filled fields) that we would then have to walk and
// rewrite anyway, so decoding straight from the descriptors into the final
// JSON shape is both less code and one pass instead of two.
//
// Schemas come from descriptors.gen.ts (generated from the descriptors
// embedded in kubectl) and are compiled once, on first use.

import { gunzipSync } from 'node:zlib';
import { FieldType, type MessageInfo, parseFileDescriptor, splitFileDescriptorSet } from './descriptor.ts';
import { K8S_DESCRIPTOR_SET_GZIP_BASE64 } from './descriptors.gen.ts';
import {
  base64,
  int64ToBigInt,
  int64ToNumber,
  ProtobufDecodeError,
  ProtoReader,
  utf8,
  WireType,
} from './wire.ts';

export { ProtobufDecodeError, type ProtobufDecodeErrorReason } from './wire.ts';

export const KUBERNETES_PROTOBUF_CONTENT_TYPE = 'application/vnd.kubernetes.protobuf';

/** Every Kubernetes protobuf body starts with these four bytes: "k8s\0". */
const MAGIC = [0x6b, 0x38, 0x73, 0x00] as const;

/** Nesting limit for messages; real objects stay well below 30 levels. */
const MAX_DEPTH = 100;

const META_V1 = 'k8s.io.apimachinery.pkg.apis.meta.v1';

/** API group -> proto package prefix (the version is appended). */
const GROUP_PACKAGES = new Map<string, string>([
  ['', 'k8s.io.api.core'],
  ['apps', 'k8s.io.api.apps'],
  ['batch', 'k8s.io.api.batch'],
  ['autoscaling', 'k8s.io.api.autoscaling'],
  ['policy', 'k8s.io.api.policy'],
  ['networking.k8s.io', 'k8s.io.api.networking'],
  ['discovery.k8s.io', 'k8s.io.api.discovery'],
  ['coordination.k8s.io', 'k8s.io.api.coordination'],
  ['events.k8s.io', 'k8s.io.api.events'],
  ['rbac.authorization.k8s.io', 'k8s.io.api.rbac'],
  ['storage.k8s.io', 'k8s.io.api.storage'],
  ['scheduling.k8s.io', 'k8s.io.api.scheduling'],
  ['authentication.k8s.io', 'k8s.io.api.authentication'],
  ['authorization.k8s.io', 'k8s.io.api.authorization'],
  ['admissionregistration.k8s.io', 'k8s.io.api.admissionregistration'],
  ['certificates.k8s.io', 'k8s.io.api.certificates'],
  ['apiextensions.k8s.io', 'k8s.io.apiextensions_apiserver.pkg.apis.apiextensions'],
  ['meta.k8s.io', 'k8s.io.apimachinery.pkg.apis.meta'],
]);

/**
 * Kinds from meta/v1 that the API server registers in every group version
 * (see metav1.AddToGroupVersion), so `apps/v1 DeleteOptions` is meta's.
 */
const META_KINDS_IN_EVERY_GROUP = new Set([
  'DeleteOptions',
  'CreateOptions',
  'UpdateOptions',
  'PatchOptions',
  'GetOptions',
  'ListOptions',
  'Status',
  'WatchEvent',
]);

/**
 * Go structs embedded with `json:",inline"` become ordinary message fields in
 * the .proto, but their fields belong to the parent object in JSON (for
 * example Volume.volumeSource, Probe.handler, ConfigMapKeySelector's
 * LocalObjectReference). Keyed by proto field name -> field's message name;
 * both must match. Taken from the struct tags in the kubectl 1.27-1.33
 * binaries (`json:",inline" protobuf:"...name=X"`).
 */
export const INLINE_FIELDS = new Map<string, string>([
  ['volumeSource', 'VolumeSource'],
  ['persistentVolumeSource', 'PersistentVolumeSource'],
  ['handler', 'ProbeHandler'],
  ['localObjectReference', 'LocalObjectReference'],
  ['ephemeralContainerCommon', 'EphemeralContainerCommon'],
  ['ingressRuleValue', 'IngressRuleValue'],
  ['rule', 'Rule'],
  ['ruleWithOperations', 'RuleWithOperations'],
  ['deviceConfiguration', 'DeviceConfiguration'],
  ['typeMeta', 'TypeMeta'],
]);

/**
 * The few proto field names that differ from the JSON names: go-to-protobuf
 * derived them from the Go field name instead of the json tag (e.g.
 * MutatingWebhookConfiguration.Webhooks, BoundObjectReference.uID). Found by
 * comparing json and protobuf struct tags in the kubectl binaries. Names like
 * DaemonEndpoint.Port are capitalised in JSON too, so this is no general rule.
 */
export const JSON_NAME_OVERRIDES = new Map<string, string>([
  ['Webhooks', 'webhooks'],
  ['Expression', 'expression'],
  ['Name', 'name'],
  ['uID', 'uid'],
  ['aPIGroup', 'apiGroup'],
]);

/**
 * Optional (pointer) strings where "" differs from unset; Go writes pointer
 * strings only when set, so an empty value here was sent on purpose.
 * storageClassName: "" means "no class, do not default one".
 */
const KEEP_EMPTY_STRING_FIELDS = new Set([
  'k8s.io.api.core.v1.PersistentVolumeClaimSpec.storageClassName',
  'k8s.io.api.core.v1.PersistentVolumeClaimSpec.volumeAttributesClassName',
]);

/** Messages with their own JSON representation. */
type Special =
  | 'Time'
  | 'MicroTime'
  | 'Duration'
  | 'Quantity'
  | 'IntOrString'
  | 'RawExtension'
  | 'FieldsV1'
  | 'Unknown'
  | 'StringList';

const SPECIAL_MESSAGES = new Map<string, Special>([
  [`${META_V1}.Time`, 'Time'],
  [`${META_V1}.MicroTime`, 'MicroTime'],
  [`${META_V1}.Duration`, 'Duration'],
  [`${META_V1}.FieldsV1`, 'FieldsV1'],
  // Named []string types that go-to-protobuf wraps in a message; JSON is the bare array.
  [`${META_V1}.Verbs`, 'StringList'],
  ['k8s.io.api.authentication.v1.ExtraValue', 'StringList'],
  ['k8s.io.api.authorization.v1.ExtraValue', 'StringList'],
  ['k8s.io.api.certificates.v1.ExtraValue', 'StringList'],
  ['k8s.io.apimachinery.pkg.api.resource.Quantity', 'Quantity'],
  ['k8s.io.apimachinery.pkg.api.resource.QuantityValue', 'Quantity'],
  ['k8s.io.apimachinery.pkg.util.intstr.IntOrString', 'IntOrString'],
  ['k8s.io.apimachinery.pkg.runtime.RawExtension', 'RawExtension'],
  ['k8s.io.apimachinery.pkg.runtime.Unknown', 'Unknown'],
]);

interface Field {
  protoName: string;
  json: string;
  number: number;
  type: number;
  repeated: boolean;
  inline: boolean;
  keepEmptyString: boolean;
  /** Resolved for message fields once all messages are known. */
  message: Message | undefined;
  typeName: string;
}

interface Message {
  fullName: string;
  fields: Map<number, Field>;
  mapEntry: boolean;
  special: Special | undefined;
}

interface Schema {
  messages: Map<string, Message>;
}

let schema: Schema | undefined;

function simpleName(fullName: string): string {
  return fullName.slice(fullName.lastIndexOf('.') + 1);
}

function compileSchema(): Schema {
  const set = gunzipSync(Buffer.from(K8S_DESCRIPTOR_SET_GZIP_BASE64, 'base64'));
  const infos: MessageInfo[] = [];
  for (const file of splitFileDescriptorSet(set)) infos.push(...parseFileDescriptor(file).messages);

  const messages = new Map<string, Message>();
  for (const info of infos) {
    const fields = new Map<number, Field>();
    for (const f of info.fields) {
      fields.set(f.number, {
        protoName: f.name,
        json: JSON_NAME_OVERRIDES.get(f.name) ?? f.name,
        number: f.number,
        type: f.type,
        repeated: f.repeated,
        inline:
          f.type === FieldType.Message && !f.repeated && INLINE_FIELDS.get(f.name) === simpleName(f.typeName),
        keepEmptyString: KEEP_EMPTY_STRING_FIELDS.has(`${info.fullName}.${f.name}`),
        message: undefined,
        typeName: f.typeName,
      });
    }
    messages.set(info.fullName, {
      fullName: info.fullName,
      fields,
      mapEntry: info.mapEntry,
      special: SPECIAL_MESSAGES.get(info.fullName),
    });
  }
  for (const m of messages.values()) {
    for (const f of m.fields.values()) {
      if (f.type !== FieldType.Message) continue;
      f.message = messages.get(f.typeName);
      // The generator ships every k8s.io dependency, so this is a broken descriptors.gen.ts.
      if (!f.message) throw new Error(`protobuf schema: ${m.fullName} refers to unknown ${f.typeName}`);
    }
  }
  return { messages };
}

function getSchema(): Schema {
  schema ??= compileSchema();
  return schema;
}

function malformed(message: string): ProtobufDecodeError {
  return new ProtobufDecodeError('Malformed', message);
}

/** Assigns without letting a "__proto__" map key replace the object's prototype. */
function setKey(obj: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') {
    Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
  } else obj[key] = value;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function expectedWireType(type: number): number {
  switch (type) {
    case FieldType.Double:
    case FieldType.Fixed64:
    case FieldType.Sfixed64:
      return WireType.Fixed64;
    case FieldType.Float:
    case FieldType.Fixed32:
    case FieldType.Sfixed32:
      return WireType.Fixed32;
    case FieldType.String:
    case FieldType.Bytes:
    case FieldType.Message:
      return WireType.LengthDelimited;
    case FieldType.Group:
      return WireType.StartGroup;
    default:
      return WireType.Varint;
  }
}

/** Reads one non-message scalar of the given type. */
function readScalar(type: number, r: ProtoReader): unknown {
  switch (type) {
    case FieldType.Int32:
    case FieldType.Enum:
      return r.varint() | 0;
    case FieldType.Uint32:
      return r.varint();
    case FieldType.Int64: {
      const lo = r.varint();
      return int64ToNumber(lo, r.hi, true);
    }
    case FieldType.Uint64: {
      const lo = r.varint();
      return int64ToNumber(lo, r.hi, false);
    }
    case FieldType.Sint32: {
      const lo = r.varint();
      return (lo >>> 1) ^ -(lo & 1);
    }
    case FieldType.Sint64: {
      const lo = r.varint();
      const n = int64ToBigInt(lo, r.hi, false);
      return Number((n >> 1n) ^ -(n & 1n));
    }
    case FieldType.Bool: {
      const lo = r.varint();
      return lo !== 0 || r.hi !== 0;
    }
    case FieldType.Fixed32:
      return r.fixed32();
    case FieldType.Sfixed32:
      return r.fixed32() | 0;
    case FieldType.Fixed64: {
      const lo = r.fixed64();
      return int64ToNumber(lo, r.hi, false);
    }
    case FieldType.Sfixed64: {
      const lo = r.fixed64();
      return int64ToNumber(lo, r.hi, true);
    }
    case FieldType.Float:
      return r.float();
    case FieldType.Double:
      return r.double();
    case FieldType.String:
      return utf8(r.bytes());
    case FieldType.Bytes:
      // Go's encoding/json writes []byte as standard base64 (Secret.data).
      return base64(r.bytes());
    default:
      throw malformed(`unsupported field type ${type}`);
  }
}

/** Reads one value of `field` (wire type already checked). */
function readValue(field: Field, r: ProtoReader, depth: number): unknown {
  if (field.type === FieldType.Message) return convertMessage(field.message!, r.bytes(), depth + 1);
  return readScalar(field.type, r);
}

function isPackable(type: number): boolean {
  return type !== FieldType.String && type !== FieldType.Bytes && type !== FieldType.Message;
}

/** A map<K, V> entry: key = 1, value = 2, either may be missing (= default). */
function readMapEntry(entry: Message, bytes: Uint8Array, depth: number): [string, unknown] {
  const keyField = entry.fields.get(1);
  const valueField = entry.fields.get(2);
  if (!keyField || !valueField) throw malformed(`bad map entry type ${entry.fullName}`);
  const r = new ProtoReader(bytes);
  let key: unknown;
  let value: unknown;
  while (!r.done) {
    const tag = r.tag();
    const no = tag >>> 3;
    const wt = tag & 7;
    const field = no === 1 ? keyField : no === 2 ? valueField : undefined;
    if (!field) {
      r.skip(wt, no);
      continue;
    }
    if (wt !== expectedWireType(field.type)) throw malformed(`wrong wire type in ${entry.fullName}`);
    if (no === 1) key = readValue(field, r, depth);
    else value = readValue(field, r, depth);
  }
  key ??= defaultValue(keyField, depth);
  value ??= defaultValue(valueField, depth);
  // Unlike object fields, map values keep "" (ConfigMap data "a": "").
  return [String(key), value];
}

function defaultValue(field: Field, depth: number): unknown {
  switch (field.type) {
    case FieldType.String:
    case FieldType.Bytes:
      return '';
    case FieldType.Bool:
      return false;
    case FieldType.Message:
      return convertMessage(field.message!, new Uint8Array(0), depth + 1) ?? null;
    default:
      return 0;
  }
}

/**
 * Decodes an ordinary message into `out` using JSON field names. Go writes
 * non-pointer strings even when empty, while a JSON client would have left
 * them out, so singular empty strings are dropped; numbers and booleans are
 * kept because for pointer fields (spec.replicas: 0) the zero is meaningful.
 */
function decodeObject(
  m: Message,
  bytes: Uint8Array,
  depth: number,
  out: Record<string, unknown> = {},
): Record<string, unknown> {
  if (depth > MAX_DEPTH) throw malformed('messages nested too deeply');
  const r = new ProtoReader(bytes);
  while (!r.done) {
    const tag = r.tag();
    const no = tag >>> 3;
    const wt = tag & 7;
    const field = m.fields.get(no);
    if (!field) {
      // Fields newer than our descriptors (a newer kubectl): ignore like Go does.
      r.skip(wt, no);
      continue;
    }
    const expected = expectedWireType(field.type);
    if (field.repeated) {
      if (field.message?.mapEntry) {
        if (wt !== WireType.LengthDelimited)
          throw malformed(`wrong wire type for ${m.fullName}.${field.json}`);
        const [k, v] = readMapEntry(field.message, r.bytes(), depth + 1);
        let map = out[field.json];
        if (!isPlainObject(map)) {
          map = {};
          out[field.json] = map;
        }
        setKey(map as Record<string, unknown>, k, v);
        continue;
      }
      let list = out[field.json];
      if (!Array.isArray(list)) {
        list = [];
        out[field.json] = list;
      }
      const items = list as unknown[];
      if (wt === WireType.LengthDelimited && isPackable(field.type)) {
        // Packed encoding; parsers must accept it whatever the .proto says.
        const packed = new ProtoReader(r.bytes());
        while (!packed.done) items.push(readScalar(field.type, packed));
      } else if (wt === expected) {
        items.push(readValue(field, r, depth) ?? null);
      } else throw malformed(`wrong wire type for ${m.fullName}.${field.json}`);
      continue;
    }
    if (wt !== expected) throw malformed(`wrong wire type for ${m.fullName}.${field.json}`);
    if (field.type === FieldType.Message) {
      const sub = field.message!;
      const payload = r.bytes();
      if (field.inline && sub.special === undefined) {
        decodeObject(sub, payload, depth + 1, out);
        continue;
      }
      const existing = out[field.json];
      if (sub.special === undefined && isPlainObject(existing)) {
        // A repeated occurrence of a singular message merges (protobuf semantics).
        decodeObject(sub, payload, depth + 1, existing);
        continue;
      }
      const value = convertMessage(sub, payload, depth + 1);
      if (value !== undefined) out[field.json] = value;
      continue;
    }
    const value = readScalar(field.type, r);
    if (value === '' && field.type === FieldType.String && !field.keepEmptyString) continue;
    out[field.json] = value;
  }
  return out;
}

/** Converts a message to its JSON value; undefined means "omit the field". */
function convertMessage(m: Message, bytes: Uint8Array, depth: number): unknown {
  if (depth > MAX_DEPTH) throw malformed('messages nested too deeply');
  switch (m.special) {
    case undefined:
      return decodeObject(m, bytes, depth);
    case 'Time':
    case 'MicroTime':
      return convertTime(bytes, m.special === 'MicroTime');
    case 'Duration':
      return convertDuration(bytes);
    case 'Quantity': {
      // A zero Quantity marshals as "0" in Go, so an absent string means 0.
      const s = readStringField(bytes, 1);
      return s === undefined || s === '' ? '0' : s;
    }
    case 'IntOrString':
      return convertIntOrString(bytes);
    case 'RawExtension': {
      const raw = readBytesField(bytes, 1);
      return raw === undefined || raw.length === 0 ? undefined : rawToJson(raw, depth);
    }
    case 'FieldsV1': {
      const raw = readBytesField(bytes, 1);
      return raw === undefined || raw.length === 0 ? undefined : parseJson(raw, 'FieldsV1');
    }
    case 'Unknown':
      return objectFromEnvelope(readEnvelope(bytes), depth);
    case 'StringList':
      return readStringList(bytes);
  }
}

/** Calls `each` for every field; the callback must consume the value. */
function forEachField(bytes: Uint8Array, each: (no: number, wt: number, r: ProtoReader) => void): void {
  const r = new ProtoReader(bytes);
  while (!r.done) {
    const tag = r.tag();
    const start = r.pos;
    each(tag >>> 3, tag & 7, r);
    if (r.pos === start) r.skip(tag & 7, tag >>> 3);
  }
}

function readStringField(bytes: Uint8Array, want: number): string | undefined {
  let out: string | undefined;
  forEachField(bytes, (no, wt, r) => {
    if (no === want && wt === WireType.LengthDelimited) out = utf8(r.bytes());
  });
  return out;
}

function readBytesField(bytes: Uint8Array, want: number): Uint8Array | undefined {
  let out: Uint8Array | undefined;
  forEachField(bytes, (no, wt, r) => {
    if (no === want && wt === WireType.LengthDelimited) out = r.bytes();
  });
  return out;
}

function readStringList(bytes: Uint8Array): string[] {
  const out: string[] = [];
  forEachField(bytes, (no, wt, r) => {
    if (no === 1 && wt === WireType.LengthDelimited) out.push(utf8(r.bytes()));
  });
  return out;
}

/** Seconds since 1970 of Go's zero time.Time (0001-01-01T00:00:00Z). */
const GO_ZERO_TIME_SECONDS = -62135596800;
const MIN_RFC3339_SECONDS = -62167219200; // 0000-01-01T00:00:00Z
const MAX_RFC3339_SECONDS = 253402300799; // 9999-12-31T23:59:59Z

/**
 * meta/v1 Time {seconds, nanos} -> "2006-01-02T15:04:05Z" (Time) or with six
 * fractional digits (MicroTime). Go writes a zero Time as an empty message;
 * JSON clients send null or nothing, so zero becomes "omit".
 */
function convertTime(bytes: Uint8Array, micro: boolean): string | undefined {
  let seconds = 0;
  let nanos = 0;
  forEachField(bytes, (no, wt, r) => {
    if (wt !== WireType.Varint) return;
    if (no === 1) {
      const lo = r.varint();
      seconds = int64ToNumber(lo, r.hi, true);
    } else if (no === 2) nanos = r.varint() | 0;
  });
  if ((seconds === 0 || seconds === GO_ZERO_TIME_SECONDS) && nanos === 0) return undefined;
  if (seconds < MIN_RFC3339_SECONDS || seconds > MAX_RFC3339_SECONDS || nanos < 0 || nanos > 999_999_999) {
    throw malformed(`timestamp out of range: ${seconds}s ${nanos}ns`);
  }
  const iso = new Date(seconds * 1000).toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ
  const base = iso.slice(0, 19);
  if (!micro) return `${base}Z`;
  return `${base}.${String(Math.floor(nanos / 1000)).padStart(6, '0')}Z`;
}

/** meta/v1 Duration {duration: int64 nanoseconds} -> Go's time.Duration.String(). */
function convertDuration(bytes: Uint8Array): string {
  let ns = 0n;
  forEachField(bytes, (no, wt, r) => {
    if (no === 1 && wt === WireType.Varint) {
      const lo = r.varint();
      ns = int64ToBigInt(lo, r.hi, true);
    }
  });
  return formatGoDuration(ns);
}

/** `value / unit` with the remainder as trimmed decimals: 1500n, 1000n -> "1.5". */
function fraction(value: bigint, unit: bigint): string {
  const whole = value / unit;
  const rem = value % unit;
  if (rem === 0n) return String(whole);
  const digits = String(unit).length - 1;
  return `${whole}.${String(rem).padStart(digits, '0').replace(/0+$/, '')}`;
}

/** Same output as Go's time.Duration.String: "1h0m0s", "1m30s", "1.5s", "300ms", "0s". */
export function formatGoDuration(ns: bigint): string {
  if (ns === 0n) return '0s';
  const negative = ns < 0n;
  let u = negative ? -ns : ns;
  let out: string;
  if (u < 1_000_000_000n) {
    if (u < 1_000n) out = `${u}ns`;
    else if (u < 1_000_000n) out = `${fraction(u, 1_000n)}µs`;
    else out = `${fraction(u, 1_000_000n)}ms`;
  } else {
    const hours = u / 3_600_000_000_000n;
    u %= 3_600_000_000_000n;
    const minutes = u / 60_000_000_000n;
    u %= 60_000_000_000n;
    const seconds = `${fraction(u, 1_000_000_000n)}s`;
    if (hours > 0n) out = `${hours}h${minutes}m${seconds}`;
    else if (minutes > 0n) out = `${minutes}m${seconds}`;
    else out = seconds;
  }
  return negative ? `-${out}` : out;
}

/** intstr.IntOrString {type: 0 int / 1 string, intVal, strVal} -> number or string. */
function convertIntOrString(bytes: Uint8Array): number | string {
  let type = 0;
  let intVal = 0;
  let strVal = '';
  forEachField(bytes, (no, wt, r) => {
    if (no === 1 && wt === WireType.Varint) type = r.varint() | 0;
    else if (no === 2 && wt === WireType.Varint) intVal = r.varint() | 0;
    else if (no === 3 && wt === WireType.LengthDelimited) strVal = utf8(r.bytes());
  });
  return type === 1 ? strVal : intVal;
}

function hasMagic(bytes: Uint8Array): boolean {
  return (
    bytes.length >= 4 &&
    bytes[0] === MAGIC[0] &&
    bytes[1] === MAGIC[1] &&
    bytes[2] === MAGIC[2] &&
    bytes[3] === MAGIC[3]
  );
}

function parseJson(bytes: Uint8Array, what: string): unknown {
  try {
    return JSON.parse(utf8(bytes));
  } catch {
    throw malformed(`${what} does not hold valid JSON`);
  }
}

/** runtime.RawExtension bytes are JSON, or a nested protobuf object when they carry the magic. */
function rawToJson(raw: Uint8Array, depth: number): unknown {
  if (hasMagic(raw)) return objectFromEnvelope(readEnvelope(raw.subarray(4)), depth + 1);
  return parseJson(raw, 'RawExtension');
}

interface Envelope {
  apiVersion: string;
  kind: string;
  raw: Uint8Array;
  contentEncoding: string;
  contentType: string;
}

/** runtime.Unknown: typeMeta{apiVersion=1, kind=2}=1, raw=2, contentEncoding=3, contentType=4. */
function readEnvelope(bytes: Uint8Array): Envelope {
  const env: Envelope = {
    apiVersion: '',
    kind: '',
    raw: new Uint8Array(0),
    contentEncoding: '',
    contentType: '',
  };
  forEachField(bytes, (no, wt, r) => {
    if (wt !== WireType.LengthDelimited) {
      if (no >= 1 && no <= 4) throw malformed('runtime.Unknown field with wrong wire type');
      return;
    }
    const payload = r.bytes();
    if (no === 1) {
      forEachField(payload, (tno, twt, tr) => {
        if (twt !== WireType.LengthDelimited) return;
        if (tno === 1) env.apiVersion = utf8(tr.bytes());
        else if (tno === 2) env.kind = utf8(tr.bytes());
      });
    } else if (no === 2) env.raw = payload;
    else if (no === 3) env.contentEncoding = utf8(payload);
    else if (no === 4) env.contentType = utf8(payload);
  });
  return env;
}

const NAME_PART = /^[A-Za-z][A-Za-z0-9]*$/;

function resolveKind(apiVersion: string, kind: string): Message {
  const { messages } = getSchema();
  const slash = apiVersion.indexOf('/');
  const group = slash < 0 ? '' : apiVersion.slice(0, slash);
  const version = slash < 0 ? apiVersion : apiVersion.slice(slash + 1);
  // Restrict to plain identifiers so nested or map-entry types such as
  // "ObjectMeta.LabelsEntry" are never addressable as kinds.
  if (NAME_PART.test(version) && NAME_PART.test(kind)) {
    const pkg = GROUP_PACKAGES.get(group);
    const own = pkg === undefined ? undefined : messages.get(`${pkg}.${version}.${kind}`);
    if (own) return own;
    if (pkg !== undefined && version === 'v1' && META_KINDS_IN_EVERY_GROUP.has(kind)) {
      const meta = messages.get(`${META_V1}.${kind}`);
      if (meta) return meta;
    }
  }
  throw new ProtobufDecodeError(
    'UnknownType',
    `no protobuf schema for apiVersion ${JSON.stringify(apiVersion)}, kind ${JSON.stringify(kind)}; ` +
      'send this object as application/json',
  );
}

function objectFromEnvelope(env: Envelope, depth: number): Record<string, unknown> {
  if (env.contentEncoding !== '') {
    throw new ProtobufDecodeError(
      'Unsupported',
      `unsupported protobuf content encoding "${env.contentEncoding}"`,
    );
  }
  const ct = env.contentType.split(';')[0]!.trim().toLowerCase();
  if (ct === 'application/json') {
    // Legal but unusual: an envelope around JSON bytes.
    const parsed = parseJson(env.raw, 'runtime.Unknown');
    if (!isPlainObject(parsed)) throw malformed('runtime.Unknown JSON is not an object');
    return { apiVersion: env.apiVersion, kind: env.kind, ...parsed };
  }
  if (ct !== '' && ct !== KUBERNETES_PROTOBUF_CONTENT_TYPE) {
    throw new ProtobufDecodeError(
      'Unsupported',
      `unsupported runtime.Unknown content type "${env.contentType}"`,
    );
  }
  if (env.apiVersion === '' || env.kind === '') {
    throw new ProtobufDecodeError('UnknownType', 'protobuf object has no apiVersion or kind');
  }
  const m = resolveKind(env.apiVersion, env.kind);
  const out: Record<string, unknown> = { apiVersion: env.apiVersion, kind: env.kind };
  decodeObject(m, env.raw, depth + 1, out);
  return out;
}

/** True when the body carries the Kubernetes protobuf magic prefix. */
export function isKubernetesProtobuf(body: Uint8Array): boolean {
  return hasMagic(body);
}

/**
 * Decodes a Kubernetes protobuf body (`k8s\0` + runtime.Unknown) into the
 * object the client would have sent as JSON, with apiVersion and kind set.
 * Throws ProtobufDecodeError for anything it cannot decode.
 */
export function decodeKubernetesProtobuf(body: Uint8Array): Record<string, unknown> {
  if (!hasMagic(body)) {
    throw new ProtobufDecodeError(
      'NotProtobuf',
      'body does not start with the Kubernetes protobuf magic "k8s\\0"',
    );
  }
  try {
    return objectFromEnvelope(readEnvelope(body.subarray(4)), 0);
  } catch (err) {
    if (err instanceof ProtobufDecodeError) throw err;
    // Anything else (an invalid Date, a stack overflow on hostile input, a
    // bug) must still surface as a clean decode failure, never a crash.
    const wrapped = malformed(
      `cannot decode protobuf body: ${err instanceof Error ? err.message : String(err)}`,
    );
    wrapped.cause = err;
    throw wrapped;
  }
}

/**
 * Lists the compiled messages and the fields the hand-kept tables above
 * affect, so tests notice when regenerated descriptors drift from them.
 */
export function describeSchemaForTests(): {
  messages: string[];
  inlineFields: string[];
  renamedFields: string[];
} {
  const { messages } = getSchema();
  const inlineFields: string[] = [];
  const renamedFields: string[] = [];
  for (const m of messages.values()) {
    for (const f of m.fields.values()) {
      if (f.inline) inlineFields.push(`${m.fullName}.${f.protoName}`);
      if (f.json !== f.protoName) renamedFields.push(`${m.fullName}.${f.protoName}`);
    }
  }
  return { messages: [...messages.keys()], inlineFields, renamedFields };
}
