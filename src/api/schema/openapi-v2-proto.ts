// GET /openapi/v2 as the gnostic protobuf message openapi.v2.Document.
//
// client-go's discovery client (kubectl 1.27 through 1.33 for client-side
// apply, diff and the v2 explain) asks for /openapi/v2 with only
// `Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf` and
// unmarshals the body as protobuf whatever the Content-Type says, so a JSON
// answer fails with "proto: cannot parse invalid wire-format data".
//
// The Swagger JSON document is first reshaped into gnostic's message
// structure (maps become repeated Named* pairs, `type` a TypeItem, `$ref` a
// `_ref` field, vendor extensions NamedAny values carrying YAML text), and
// then written by a small encoder driven by the field table below. Parts of
// Swagger 2.0 that Skiff never emits (security definitions, response headers
// and examples, xml, file schemas) are left out of the table and dropped.

import { createHash } from 'node:crypto';

/** The media type client-go puts in Accept. */
export const OPENAPI_V2_PROTOBUF_ACCEPT = 'application/com.github.proto-openapi.spec.v2@v1.0+protobuf';

/**
 * The media type we answer with, as kube-apiserver does: `@` is not a token
 * character, so client-go's mime.ParseMediaType rejects the requested
 * spelling in a Content-Type ("mime: unexpected content after media
 * subtype") and the request fails. Also accepted in Accept.
 */
export const OPENAPI_V2_PROTOBUF_CONTENT_TYPE = 'application/com.github.proto-openapi.spec.v2.v1.0+protobuf';

type Scalar = 'string' | 'bool' | 'double' | 'int64';
/** [field number, scalar type or openapi.v2 message name, whether repeated]. */
export type FieldSpec = readonly [number: number, type: Scalar | (string & {}), repeated?: 'repeated'];

const R = 'repeated';

/**
 * Field numbers and types of the openapi.v2 messages we write, from
 * github.com/google/gnostic-models openapiv2/OpenAPIv2.proto (the same
 * numbering as the older github.com/google/gnostic). They were read from the
 * FileDescriptorProto that kubectl 1.27-1.33 embed, and
 * openapi-v2-proto.test.ts checks them against that descriptor again.
 * Only the fields we write are listed, in field-number order.
 */
export const OPENAPI_V2_FIELDS = {
  Document: {
    swagger: [1, 'string'],
    info: [2, 'Info'],
    host: [3, 'string'],
    base_path: [4, 'string'],
    schemes: [5, 'string', R],
    consumes: [6, 'string', R],
    produces: [7, 'string', R],
    paths: [8, 'Paths'],
    definitions: [9, 'Definitions'],
    parameters: [10, 'ParameterDefinitions'],
    responses: [11, 'ResponseDefinitions'],
    security: [12, 'SecurityRequirement', R],
    tags: [14, 'Tag', R],
    external_docs: [15, 'ExternalDocs'],
    vendor_extension: [16, 'NamedAny', R],
  },
  Info: {
    title: [1, 'string'],
    version: [2, 'string'],
    description: [3, 'string'],
    terms_of_service: [4, 'string'],
    contact: [5, 'Contact'],
    license: [6, 'License'],
    vendor_extension: [7, 'NamedAny', R],
  },
  Contact: {
    name: [1, 'string'],
    url: [2, 'string'],
    email: [3, 'string'],
    vendor_extension: [4, 'NamedAny', R],
  },
  License: { name: [1, 'string'], url: [2, 'string'], vendor_extension: [3, 'NamedAny', R] },
  ExternalDocs: { description: [1, 'string'], url: [2, 'string'], vendor_extension: [3, 'NamedAny', R] },
  Tag: {
    name: [1, 'string'],
    description: [2, 'string'],
    external_docs: [3, 'ExternalDocs'],
    vendor_extension: [4, 'NamedAny', R],
  },
  SecurityRequirement: { additional_properties: [1, 'NamedStringArray', R] },
  NamedStringArray: { name: [1, 'string'], value: [2, 'StringArray'] },
  StringArray: { value: [1, 'string', R] },
  Paths: { vendor_extension: [1, 'NamedAny', R], path: [2, 'NamedPathItem', R] },
  NamedPathItem: { name: [1, 'string'], value: [2, 'PathItem'] },
  PathItem: {
    _ref: [1, 'string'],
    get: [2, 'Operation'],
    put: [3, 'Operation'],
    post: [4, 'Operation'],
    delete: [5, 'Operation'],
    options: [6, 'Operation'],
    head: [7, 'Operation'],
    patch: [8, 'Operation'],
    parameters: [9, 'ParametersItem', R],
    vendor_extension: [10, 'NamedAny', R],
  },
  Operation: {
    tags: [1, 'string', R],
    summary: [2, 'string'],
    description: [3, 'string'],
    external_docs: [4, 'ExternalDocs'],
    operation_id: [5, 'string'],
    produces: [6, 'string', R],
    consumes: [7, 'string', R],
    parameters: [8, 'ParametersItem', R],
    responses: [9, 'Responses'],
    schemes: [10, 'string', R],
    deprecated: [11, 'bool'],
    security: [12, 'SecurityRequirement', R],
    vendor_extension: [13, 'NamedAny', R],
  },
  ParametersItem: { parameter: [1, 'Parameter'], json_reference: [2, 'JsonReference'] },
  JsonReference: { _ref: [1, 'string'], description: [2, 'string'] },
  Parameter: { body_parameter: [1, 'BodyParameter'], non_body_parameter: [2, 'NonBodyParameter'] },
  BodyParameter: {
    description: [1, 'string'],
    name: [2, 'string'],
    in: [3, 'string'],
    required: [4, 'bool'],
    schema: [5, 'Schema'],
    vendor_extension: [6, 'NamedAny', R],
  },
  NonBodyParameter: {
    header_parameter_sub_schema: [1, 'HeaderParameterSubSchema'],
    form_data_parameter_sub_schema: [2, 'FormDataParameterSubSchema'],
    query_parameter_sub_schema: [3, 'QueryParameterSubSchema'],
    path_parameter_sub_schema: [4, 'PathParameterSubSchema'],
  },
  // The four sub-schemas share field names but not numbers: only query and
  // formData have allow_empty_value, which shifts everything after `name`.
  QueryParameterSubSchema: {
    required: [1, 'bool'],
    in: [2, 'string'],
    description: [3, 'string'],
    name: [4, 'string'],
    allow_empty_value: [5, 'bool'],
    type: [6, 'string'],
    format: [7, 'string'],
    items: [8, 'PrimitivesItems'],
    collection_format: [9, 'string'],
    default: [10, 'Any'],
    maximum: [11, 'double'],
    exclusive_maximum: [12, 'bool'],
    minimum: [13, 'double'],
    exclusive_minimum: [14, 'bool'],
    max_length: [15, 'int64'],
    min_length: [16, 'int64'],
    pattern: [17, 'string'],
    max_items: [18, 'int64'],
    min_items: [19, 'int64'],
    unique_items: [20, 'bool'],
    enum: [21, 'Any', R],
    multiple_of: [22, 'double'],
    vendor_extension: [23, 'NamedAny', R],
  },
  FormDataParameterSubSchema: {
    required: [1, 'bool'],
    in: [2, 'string'],
    description: [3, 'string'],
    name: [4, 'string'],
    allow_empty_value: [5, 'bool'],
    type: [6, 'string'],
    format: [7, 'string'],
    items: [8, 'PrimitivesItems'],
    collection_format: [9, 'string'],
    default: [10, 'Any'],
    maximum: [11, 'double'],
    exclusive_maximum: [12, 'bool'],
    minimum: [13, 'double'],
    exclusive_minimum: [14, 'bool'],
    max_length: [15, 'int64'],
    min_length: [16, 'int64'],
    pattern: [17, 'string'],
    max_items: [18, 'int64'],
    min_items: [19, 'int64'],
    unique_items: [20, 'bool'],
    enum: [21, 'Any', R],
    multiple_of: [22, 'double'],
    vendor_extension: [23, 'NamedAny', R],
  },
  HeaderParameterSubSchema: {
    required: [1, 'bool'],
    in: [2, 'string'],
    description: [3, 'string'],
    name: [4, 'string'],
    type: [5, 'string'],
    format: [6, 'string'],
    items: [7, 'PrimitivesItems'],
    collection_format: [8, 'string'],
    default: [9, 'Any'],
    maximum: [10, 'double'],
    exclusive_maximum: [11, 'bool'],
    minimum: [12, 'double'],
    exclusive_minimum: [13, 'bool'],
    max_length: [14, 'int64'],
    min_length: [15, 'int64'],
    pattern: [16, 'string'],
    max_items: [17, 'int64'],
    min_items: [18, 'int64'],
    unique_items: [19, 'bool'],
    enum: [20, 'Any', R],
    multiple_of: [21, 'double'],
    vendor_extension: [22, 'NamedAny', R],
  },
  PathParameterSubSchema: {
    required: [1, 'bool'],
    in: [2, 'string'],
    description: [3, 'string'],
    name: [4, 'string'],
    type: [5, 'string'],
    format: [6, 'string'],
    items: [7, 'PrimitivesItems'],
    collection_format: [8, 'string'],
    default: [9, 'Any'],
    maximum: [10, 'double'],
    exclusive_maximum: [11, 'bool'],
    minimum: [12, 'double'],
    exclusive_minimum: [13, 'bool'],
    max_length: [14, 'int64'],
    min_length: [15, 'int64'],
    pattern: [16, 'string'],
    max_items: [17, 'int64'],
    min_items: [18, 'int64'],
    unique_items: [19, 'bool'],
    enum: [20, 'Any', R],
    multiple_of: [21, 'double'],
    vendor_extension: [22, 'NamedAny', R],
  },
  PrimitivesItems: {
    type: [1, 'string'],
    format: [2, 'string'],
    items: [3, 'PrimitivesItems'],
    collection_format: [4, 'string'],
    default: [5, 'Any'],
    maximum: [6, 'double'],
    exclusive_maximum: [7, 'bool'],
    minimum: [8, 'double'],
    exclusive_minimum: [9, 'bool'],
    max_length: [10, 'int64'],
    min_length: [11, 'int64'],
    pattern: [12, 'string'],
    max_items: [13, 'int64'],
    min_items: [14, 'int64'],
    unique_items: [15, 'bool'],
    enum: [16, 'Any', R],
    multiple_of: [17, 'double'],
    vendor_extension: [18, 'NamedAny', R],
  },
  Responses: { response_code: [1, 'NamedResponseValue', R], vendor_extension: [2, 'NamedAny', R] },
  NamedResponseValue: { name: [1, 'string'], value: [2, 'ResponseValue'] },
  ResponseValue: { response: [1, 'Response'], json_reference: [2, 'JsonReference'] },
  Response: {
    description: [1, 'string'],
    schema: [2, 'SchemaItem'],
    vendor_extension: [5, 'NamedAny', R],
  },
  SchemaItem: { schema: [1, 'Schema'] },
  Schema: {
    _ref: [1, 'string'],
    format: [2, 'string'],
    title: [3, 'string'],
    description: [4, 'string'],
    default: [5, 'Any'],
    multiple_of: [6, 'double'],
    maximum: [7, 'double'],
    exclusive_maximum: [8, 'bool'],
    minimum: [9, 'double'],
    exclusive_minimum: [10, 'bool'],
    max_length: [11, 'int64'],
    min_length: [12, 'int64'],
    pattern: [13, 'string'],
    max_items: [14, 'int64'],
    min_items: [15, 'int64'],
    unique_items: [16, 'bool'],
    max_properties: [17, 'int64'],
    min_properties: [18, 'int64'],
    required: [19, 'string', R],
    enum: [20, 'Any', R],
    additional_properties: [21, 'AdditionalPropertiesItem'],
    type: [22, 'TypeItem'],
    items: [23, 'ItemsItem'],
    all_of: [24, 'Schema', R],
    properties: [25, 'Properties'],
    discriminator: [26, 'string'],
    read_only: [27, 'bool'],
    external_docs: [29, 'ExternalDocs'],
    example: [30, 'Any'],
    vendor_extension: [31, 'NamedAny', R],
  },
  TypeItem: { value: [1, 'string', R] },
  ItemsItem: { schema: [1, 'Schema', R] },
  Properties: { additional_properties: [1, 'NamedSchema', R] },
  AdditionalPropertiesItem: { schema: [1, 'Schema'], boolean: [2, 'bool'] },
  Definitions: { additional_properties: [1, 'NamedSchema', R] },
  NamedSchema: { name: [1, 'string'], value: [2, 'Schema'] },
  ParameterDefinitions: { additional_properties: [1, 'NamedParameter', R] },
  NamedParameter: { name: [1, 'string'], value: [2, 'Parameter'] },
  ResponseDefinitions: { additional_properties: [1, 'NamedResponse', R] },
  NamedResponse: { name: [1, 'string'], value: [2, 'Response'] },
  NamedAny: { name: [1, 'string'], value: [2, 'Any'] },
  // Any.value (1) is a google.protobuf.Any that kube-openapi never reads.
  Any: { yaml: [2, 'string'] },
} as const satisfies Record<string, Record<string, FieldSpec>>;

export type OpenAPIV2MessageName = keyof typeof OPENAPI_V2_FIELDS;

/** A message in gnostic's shape: proto field names, nested messages as objects, repeated as arrays. */
export type GnosticValue = string | number | boolean | GnosticMessage | GnosticValue[];
export interface GnosticMessage {
  [field: string]: GnosticValue | undefined;
}

// ---------------------------------------------------------------------------
// Swagger JSON -> gnostic shape
// ---------------------------------------------------------------------------

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const bool = (v: unknown): boolean | undefined => (typeof v === 'boolean' ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const int = (v: unknown): number | undefined => (Number.isSafeInteger(v) ? (v as number) : undefined);
const strings = (v: unknown): string[] | undefined =>
  Array.isArray(v) ? v.filter((s): s is string => typeof s === 'string') : undefined;
const list = <T>(v: unknown, f: (item: unknown) => T): T[] | undefined =>
  Array.isArray(v) ? v.map(f) : undefined;
const isExtension = (key: string) => key.startsWith('x-');

/**
 * gnostic keeps every non-string value (vendor extensions, defaults, enums,
 * examples) as YAML text that readers unmarshal with a YAML library. JSON is
 * valid YAML, so the JSON text of the value is stored; kube-openapi and
 * client-go read it back as the same lists, maps and scalars.
 */
const any = (v: unknown): GnosticMessage => ({ yaml: JSON.stringify(v) ?? 'null' });

function extensions(obj: Json): GnosticMessage[] | undefined {
  const out: GnosticMessage[] = [];
  for (const [name, value] of Object.entries(obj)) {
    if (isExtension(name) && value !== undefined) out.push({ name, value: any(value) });
  }
  return out.length > 0 ? out : undefined;
}

/** A JSON map as gnostic's repeated {name, value} pairs, in the map's order. */
function named(
  v: unknown,
  value: (item: unknown) => GnosticMessage,
  skipExtensions = false,
): GnosticMessage[] {
  if (!isObject(v)) return [];
  const out: GnosticMessage[] = [];
  for (const [name, item] of Object.entries(v)) {
    if (!(skipExtensions && isExtension(name))) out.push({ name, value: value(item) });
  }
  return out;
}

const maybe = <T>(v: unknown, f: (item: unknown) => T): T | undefined => (v === undefined ? undefined : f(v));

function externalDocs(v: unknown): GnosticMessage {
  const d = isObject(v) ? v : {};
  return { description: str(d.description), url: str(d.url), vendor_extension: extensions(d) };
}

function schema(v: unknown): GnosticMessage {
  // A non-object schema is invalid Swagger; an empty schema is the closest
  // thing that still lets the rest of the document through.
  const s = isObject(v) ? v : {};
  const ap = s.additionalProperties;
  return {
    _ref: str(s.$ref),
    format: str(s.format),
    title: str(s.title),
    description: str(s.description),
    default: maybe(s.default, any),
    multiple_of: num(s.multipleOf),
    maximum: num(s.maximum),
    exclusive_maximum: bool(s.exclusiveMaximum),
    minimum: num(s.minimum),
    exclusive_minimum: bool(s.exclusiveMinimum),
    max_length: int(s.maxLength),
    min_length: int(s.minLength),
    pattern: str(s.pattern),
    max_items: int(s.maxItems),
    min_items: int(s.minItems),
    unique_items: bool(s.uniqueItems),
    max_properties: int(s.maxProperties),
    min_properties: int(s.minProperties),
    required: strings(s.required),
    enum: list(s.enum, any),
    additional_properties:
      ap === undefined ? undefined : typeof ap === 'boolean' ? { boolean: ap } : { schema: schema(ap) },
    type:
      typeof s.type === 'string'
        ? { value: [s.type] }
        : maybe(strings(s.type), (t) => ({ value: t as string[] })),
    items: maybe(s.items, (i) => ({ schema: Array.isArray(i) ? i.map(schema) : [schema(i)] })),
    all_of: list(s.allOf, schema),
    // Kept even when empty: kube-openapi tells a struct ("kind") from a map
    // by whether `properties` is present at all.
    properties: maybe(s.properties, (p) => ({ additional_properties: named(p, schema) })),
    discriminator: str(s.discriminator),
    read_only: bool(s.readOnly),
    external_docs: maybe(s.externalDocs, externalDocs),
    example: maybe(s.example, any),
    vendor_extension: extensions(s),
  };
}

/** The validation keywords shared by non-body parameters and their `items`. */
function primitiveFields(p: Json): GnosticMessage {
  return {
    type: str(p.type),
    format: str(p.format),
    items: maybe(p.items, primitivesItems),
    collection_format: str(p.collectionFormat),
    default: maybe(p.default, any),
    maximum: num(p.maximum),
    exclusive_maximum: bool(p.exclusiveMaximum),
    minimum: num(p.minimum),
    exclusive_minimum: bool(p.exclusiveMinimum),
    max_length: int(p.maxLength),
    min_length: int(p.minLength),
    pattern: str(p.pattern),
    max_items: int(p.maxItems),
    min_items: int(p.minItems),
    unique_items: bool(p.uniqueItems),
    enum: list(p.enum, any),
    multiple_of: num(p.multipleOf),
    vendor_extension: extensions(p),
  };
}

function primitivesItems(v: unknown): GnosticMessage {
  return primitiveFields(isObject(v) ? v : {});
}

function parameter(v: unknown): GnosticMessage {
  const p = isObject(v) ? v : {};
  if (p.in === 'body') {
    return {
      body_parameter: {
        description: str(p.description),
        name: str(p.name),
        in: 'body',
        required: bool(p.required),
        schema: maybe(p.schema, schema),
        vendor_extension: extensions(p),
      },
    };
  }
  const sub: GnosticMessage = {
    required: bool(p.required),
    in: str(p.in),
    description: str(p.description),
    name: str(p.name),
    ...primitiveFields(p),
  };
  switch (p.in) {
    case 'header':
      return { non_body_parameter: { header_parameter_sub_schema: sub } };
    case 'path':
      return { non_body_parameter: { path_parameter_sub_schema: sub } };
    case 'formData':
      return {
        non_body_parameter: {
          form_data_parameter_sub_schema: { ...sub, allow_empty_value: bool(p.allowEmptyValue) },
        },
      };
    default:
      return {
        non_body_parameter: {
          query_parameter_sub_schema: { ...sub, allow_empty_value: bool(p.allowEmptyValue) },
        },
      };
  }
}

function jsonReference(p: Json): GnosticMessage {
  return { _ref: str(p.$ref), description: str(p.description) };
}

function parametersItem(v: unknown): GnosticMessage {
  const p = isObject(v) ? v : {};
  return typeof p.$ref === 'string' ? { json_reference: jsonReference(p) } : { parameter: parameter(p) };
}

function response(v: unknown): GnosticMessage {
  const r = isObject(v) ? v : {};
  return {
    description: str(r.description),
    schema: maybe(r.schema, (s) => ({ schema: schema(s) })),
    vendor_extension: extensions(r),
  };
}

function responses(v: unknown): GnosticMessage {
  const r = isObject(v) ? v : {};
  return {
    response_code: named(
      r,
      (item) => {
        const x = isObject(item) ? item : {};
        return typeof x.$ref === 'string' ? { json_reference: jsonReference(x) } : { response: response(x) };
      },
      true,
    ),
    vendor_extension: extensions(r),
  };
}

function security(v: unknown): GnosticMessage[] | undefined {
  return list(v, (req) => ({
    additional_properties: named(req, (scopes) => ({ value: strings(scopes) ?? [] })),
  }));
}

function operation(v: unknown): GnosticMessage {
  const o = isObject(v) ? v : {};
  return {
    tags: strings(o.tags),
    summary: str(o.summary),
    description: str(o.description),
    external_docs: maybe(o.externalDocs, externalDocs),
    operation_id: str(o.operationId),
    produces: strings(o.produces),
    consumes: strings(o.consumes),
    parameters: list(o.parameters, parametersItem),
    responses: maybe(o.responses, responses),
    schemes: strings(o.schemes),
    deprecated: bool(o.deprecated),
    security: security(o.security),
    vendor_extension: extensions(o),
  };
}

function pathItem(v: unknown): GnosticMessage {
  const p = isObject(v) ? v : {};
  return {
    _ref: str(p.$ref),
    get: maybe(p.get, operation),
    put: maybe(p.put, operation),
    post: maybe(p.post, operation),
    delete: maybe(p.delete, operation),
    options: maybe(p.options, operation),
    head: maybe(p.head, operation),
    patch: maybe(p.patch, operation),
    parameters: list(p.parameters, parametersItem),
    vendor_extension: extensions(p),
  };
}

function info(v: unknown): GnosticMessage {
  const i = isObject(v) ? v : {};
  const contact = (c: unknown): GnosticMessage => {
    const x = isObject(c) ? c : {};
    return { name: str(x.name), url: str(x.url), email: str(x.email), vendor_extension: extensions(x) };
  };
  const license = (l: unknown): GnosticMessage => {
    const x = isObject(l) ? l : {};
    return { name: str(x.name), url: str(x.url), vendor_extension: extensions(x) };
  };
  return {
    title: str(i.title),
    version: str(i.version),
    description: str(i.description),
    terms_of_service: str(i.termsOfService),
    contact: maybe(i.contact, contact),
    license: maybe(i.license, license),
    vendor_extension: extensions(i),
  };
}

/** Reshapes a Swagger 2.0 JSON document into gnostic's openapi.v2.Document structure. */
export function toGnosticDocument(doc: Record<string, unknown>): GnosticMessage {
  return {
    swagger: str(doc.swagger),
    info: maybe(doc.info, info),
    host: str(doc.host),
    base_path: str(doc.basePath),
    schemes: strings(doc.schemes),
    consumes: strings(doc.consumes),
    produces: strings(doc.produces),
    paths: maybe(doc.paths, (p) => ({
      vendor_extension: extensions(isObject(p) ? p : {}),
      path: named(p, pathItem, true),
    })),
    definitions: maybe(doc.definitions, (d) => ({ additional_properties: named(d, schema) })),
    parameters: maybe(doc.parameters, (p) => ({ additional_properties: named(p, parameter) })),
    responses: maybe(doc.responses, (r) => ({ additional_properties: named(r, response) })),
    security: security(doc.security),
    tags: list(doc.tags, (t) => {
      const x = isObject(t) ? t : {};
      return {
        name: str(x.name),
        description: str(x.description),
        external_docs: maybe(x.externalDocs, externalDocs),
        vendor_extension: extensions(x),
      };
    }),
    external_docs: maybe(doc.externalDocs, externalDocs),
    vendor_extension: extensions(doc),
  };
}

// ---------------------------------------------------------------------------
// gnostic shape -> protobuf wire format
// ---------------------------------------------------------------------------

const textEncoder = new TextEncoder();

/** A growable byte buffer with the few wire-format writes the table needs. */
class Writer {
  buf = new Uint8Array(64);
  len = 0;

  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  varint(value: number): void {
    this.reserve(10);
    let v = value;
    while (v >= 0x80) {
      this.buf[this.len++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.len++] = v;
  }

  /** int64 as protobuf does it: negative values are ten-byte two's complement varints. */
  int64(value: number): void {
    if (value >= 0) {
      this.varint(value);
      return;
    }
    this.reserve(10);
    let v = BigInt.asUintN(64, BigInt(value));
    while (v >= 0x80n) {
      this.buf[this.len++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.buf[this.len++] = Number(v);
  }

  double(value: number): void {
    this.reserve(8);
    new DataView(this.buf.buffer, this.buf.byteOffset + this.len, 8).setFloat64(0, value, true);
    this.len += 8;
  }

  bytes(payload: Uint8Array): void {
    this.varint(payload.length);
    this.reserve(payload.length);
    this.buf.set(payload, this.len);
    this.len += payload.length;
  }

  finish(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }
}

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LEN = 2;

const fieldTable: Record<string, Record<string, FieldSpec>> = OPENAPI_V2_FIELDS;

function writeValue(w: Writer, no: number, type: string, value: GnosticValue, where: string): void {
  switch (type) {
    case 'string':
      if (typeof value !== 'string') throw new TypeError(`${where}: expected a string`);
      w.varint(no * 8 + WIRE_LEN);
      w.bytes(textEncoder.encode(value));
      return;
    case 'bool':
      if (typeof value !== 'boolean') throw new TypeError(`${where}: expected a boolean`);
      w.varint(no * 8 + WIRE_VARINT);
      w.varint(value ? 1 : 0);
      return;
    case 'int64':
      if (!Number.isSafeInteger(value)) throw new TypeError(`${where}: expected an integer`);
      w.varint(no * 8 + WIRE_VARINT);
      w.int64(value as number);
      return;
    case 'double':
      if (typeof value !== 'number') throw new TypeError(`${where}: expected a number`);
      w.varint(no * 8 + WIRE_FIXED64);
      w.double(value);
      return;
    default: {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        throw new TypeError(`${where}: expected a ${type} message`);
      }
      const inner = new Writer();
      writeMessage(inner, type, value, where);
      w.varint(no * 8 + WIRE_LEN);
      w.bytes(inner.finish());
    }
  }
}

/**
 * Writes the fields that are set (not undefined), in field-number order.
 * Set scalars are written even when they hold the proto3 default, which
 * decoders accept, and which the oneof in AdditionalPropertiesItem needs
 * (`additionalProperties: false` must stay distinguishable from absent).
 */
function writeMessage(w: Writer, message: string, value: GnosticMessage, where: string): void {
  const fields = fieldTable[message];
  if (!fields) throw new TypeError(`${where}: unknown message openapi.v2.${message}`);
  for (const key of Object.keys(value)) {
    if (!(key in fields) && value[key] !== undefined) {
      throw new TypeError(`${where}: openapi.v2.${message} has no field ${key}`);
    }
  }
  for (const [name, [no, type, repeated]] of Object.entries(fields)) {
    const v = value[name];
    if (v === undefined) continue;
    if (repeated) {
      if (!Array.isArray(v)) throw new TypeError(`${where}.${name}: expected a list`);
      for (const item of v) writeValue(w, no, type, item, `${where}.${name}`);
    } else writeValue(w, no, type, v, `${where}.${name}`);
  }
}

/** Encodes a message given in gnostic's shape (exported for tests). */
export function encodeGnosticMessage(message: OpenAPIV2MessageName, value: GnosticMessage): Uint8Array {
  const w = new Writer();
  writeMessage(w, message, value, message);
  return w.finish();
}

/** Encodes a Swagger 2.0 JSON document as a serialized openapi.v2.Document. */
export function encodeOpenAPIV2Protobuf(doc: Record<string, unknown>): Uint8Array {
  return encodeGnosticMessage('Document', toGnosticDocument(doc));
}

// ---------------------------------------------------------------------------
// Serving
// ---------------------------------------------------------------------------

/**
 * Whether the client prefers the protobuf encoding to JSON: the protobuf
 * type is listed with q > 0, and no JSON-compatible type (application/json,
 * application/*, * / *) has a higher q or the same q earlier in the list.
 */
export function prefersOpenAPIV2Protobuf(accept: string | undefined): boolean {
  if (!accept) return false;
  let best: { proto: boolean; q: number } | undefined;
  for (const clause of accept.split(',')) {
    const [type = '', ...params] = clause.split(';').map((s) => s.trim());
    const mediaType = type.toLowerCase();
    let q = 1;
    for (const p of params) {
      const [k, v] = p.split('=').map((s) => s.trim());
      if (k?.toLowerCase() === 'q' && v !== undefined) q = Number.isNaN(Number(v)) ? 0 : Number(v);
    }
    const proto = mediaType === OPENAPI_V2_PROTOBUF_ACCEPT || mediaType === OPENAPI_V2_PROTOBUF_CONTENT_TYPE;
    const json = mediaType === 'application/json' || mediaType === 'application/*' || mediaType === '*/*';
    if (q <= 0 || !(proto || json)) continue;
    if (!best || q > best.q) best = { proto, q };
  }
  return best?.proto ?? false;
}

const encodedDocs = new WeakMap<object, { body: Uint8Array; hash: string }>();

/**
 * The protobuf form of a cached JSON document, encoded once per cache entry:
 * keyed by the entry object, so it is dropped together with the JSON when
 * the server rebuilds its documents.
 */
export function openAPIV2ProtobufFor(entry: { body: string }): { body: Uint8Array; hash: string } {
  let out = encodedDocs.get(entry);
  if (!out) {
    const body = encodeOpenAPIV2Protobuf(JSON.parse(entry.body) as Record<string, unknown>);
    // Same shape as the JSON ETag, but over these bytes: the two
    // representations must not share a validator.
    const hash = createHash('sha512').update(body).digest('hex').slice(0, 128).toUpperCase();
    out = { body, hash };
    encodedDocs.set(entry, out);
  }
  return out;
}
