// The type model of the built-in API: every message (Pod, PodSpec,
// Container, ObjectMeta, ...) with its fields and their types. It comes from
// the protobuf descriptors of k8s.io/api (see src/api/protobuf/), whose field
// names are the JSON names, so one model serves protobuf decoding, OpenAPI
// and unknown-field detection.

export type ScalarType =
  | 'string'
  | 'int32'
  | 'int64'
  | 'uint32'
  | 'uint64'
  | 'bool'
  | 'bytes'
  | 'double'
  | 'float';

export interface ModelField {
  name: string;
  /** A scalar, or 'message' with `message` naming it. */
  type: ScalarType | 'message';
  /** Full proto name of the message type (k8s.io.api.core.v1.PodSpec). */
  message?: string;
  repeated: boolean;
  /** For map fields: the value type (keys are strings in the Kubernetes API). */
  map?: { type: ScalarType | 'message'; message?: string };
}

export interface ModelMessage {
  /** Full proto name: k8s.io.api.core.v1.Pod */
  name: string;
  fields: ModelField[];
}

// Keyed by the fields array itself: a model may replace a message's fields
// while it is built (inline structs are spliced in), never after.
const fieldIndexes = new WeakMap<readonly ModelField[], Map<string, ModelField>>();

/**
 * A message's field by JSON name. The body walks (type check, unknown
 * fields) ask this for every key of every request body; a linear search
 * over PodSpec's forty-odd fields showed in profiles.
 */
export function fieldNamed(message: ModelMessage, name: string): ModelField | undefined {
  let index = fieldIndexes.get(message.fields);
  if (!index) {
    index = new Map();
    // The first field of a name wins, as Array.prototype.find would have it.
    for (const f of message.fields) if (!index.has(f.name)) index.set(f.name, f);
    fieldIndexes.set(message.fields, index);
  }
  return index.get(name);
}

export interface TypeModel {
  message(name: string): ModelMessage | undefined;
  messages(): Iterable<ModelMessage>;
}

/**
 * Messages that do not serialize as objects in JSON: their Go types have
 * custom JSON marshallers (Time is a string, IntOrString is a number or a
 * string, RawExtension is any JSON value...).
 */
export const SPECIAL_MESSAGES: Record<
  string,
  'time' | 'microtime' | 'quantity' | 'int-or-string' | 'raw' | 'duration' | 'fields' | 'string-list'
> = {
  'k8s.io.apimachinery.pkg.apis.meta.v1.Time': 'time',
  'k8s.io.apimachinery.pkg.apis.meta.v1.MicroTime': 'microtime',
  'k8s.io.apimachinery.pkg.api.resource.Quantity': 'quantity',
  'k8s.io.apimachinery.pkg.util.intstr.IntOrString': 'int-or-string',
  'k8s.io.apimachinery.pkg.runtime.RawExtension': 'raw',
  'k8s.io.apimachinery.pkg.apis.meta.v1.Duration': 'duration',
  'k8s.io.apimachinery.pkg.apis.meta.v1.FieldsV1': 'fields',
  // A named []string (CSR spec.extra values) that go-to-protobuf wraps in a message.
  'k8s.io.api.certificates.v1.ExtraValue': 'string-list',
};

/** The proto package of an API group version: apps/v1 → k8s.io.api.apps.v1. */
export function protoPackage(group: string, version: string): string {
  if (group === '') return `k8s.io.api.core.${version}`;
  if (group === 'meta.k8s.io') return `k8s.io.apimachinery.pkg.apis.meta.${version}`;
  if (group === 'apiextensions.k8s.io')
    return `k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.${version}`;
  const first = group.split('.')[0]!;
  // rbac.authorization.k8s.io → rbac, networking.k8s.io → networking,
  // events.k8s.io → events, admissionregistration.k8s.io → admissionregistration.
  return `k8s.io.api.${first}.${version}`;
}

/** OpenAPI definition names reverse the domain: k8s.io.api.core.v1.Pod → io.k8s.api.core.v1.Pod. */
export const definitionName = (protoName: string): string =>
  protoName.startsWith('k8s.io.') ? `io.k8s.${protoName.slice('k8s.io.'.length)}` : protoName;
