import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { startTestServer } from '../../apiserver/testing.ts';
import { kubernetesPatchSchema } from '../patch/index.ts';
import { FieldType, type MessageInfo, parseFileDescriptor } from '../protobuf/descriptor.ts';
import { int64ToNumber, ProtoReader, utf8, WireType } from '../protobuf/wire.ts';
import { builtinRegistry } from '../resources/index.ts';
import { builtinTypeModel } from './index.ts';
import { openAPIV2Document } from './openapi.ts';
import {
  encodeGnosticMessage,
  encodeOpenAPIV2Protobuf,
  type GnosticMessage,
  type GnosticValue,
  OPENAPI_V2_FIELDS,
  OPENAPI_V2_PROTOBUF_ACCEPT,
  OPENAPI_V2_PROTOBUF_CONTENT_TYPE,
  prefersOpenAPIV2Protobuf,
} from './openapi-v2-proto.ts';

// ---------------------------------------------------------------------------
// The openapi.v2 descriptor, straight from a kubectl binary. protoc-gen-go
// embeds each .proto as a raw (not gzipped) serialized FileDescriptorProto,
// which starts with field 1 (name): 0x0a, the name length, the name.
// ---------------------------------------------------------------------------

const KUBECTL_BINARIES = ['/usr/lib/google-cloud-sdk/bin/kubectl.1.27', '/usr/bin/kubectl'].filter((p) =>
  existsSync(p),
);

const PROTO_NAME = 'openapiv2/OpenAPIv2.proto';

/** FileDescriptorProto's top-level fields and their wire types, to find where the embedded one ends. */
const FILE_FIELDS: Record<number, number> = {
  1: WireType.LengthDelimited, // name
  2: WireType.LengthDelimited, // package
  3: WireType.LengthDelimited, // dependency
  4: WireType.LengthDelimited, // message_type
  5: WireType.LengthDelimited, // enum_type
  6: WireType.LengthDelimited, // service
  7: WireType.LengthDelimited, // extension
  8: WireType.LengthDelimited, // options
  9: WireType.LengthDelimited, // source_code_info
  10: WireType.Varint, // public_dependency
  11: WireType.Varint, // weak_dependency
  12: WireType.LengthDelimited, // syntax
  14: WireType.Varint, // edition
};

/**
 * The descriptor bytes embedded in `binary`. Nothing marks where they end,
 * so fields are read while they are FileDescriptorProto fields in protoc's
 * ascending order; whatever follows in the binary breaks that quickly (in
 * practice Go's zero padding right after `syntax = "proto3"`).
 */
function extractDescriptor(binary: Buffer): Uint8Array | undefined {
  const marker = Buffer.concat([Buffer.from([0x0a, PROTO_NAME.length]), Buffer.from(PROTO_NAME)]);
  for (let at = binary.indexOf(marker); at >= 0; at = binary.indexOf(marker, at + 1)) {
    const r = new ProtoReader(binary.subarray(at, Math.min(binary.length, at + (1 << 20))));
    let last = 0;
    let end = 0;
    let sawSyntax = false;
    for (;;) {
      const start = r.pos;
      try {
        const key = r.tag();
        const no = key >>> 3;
        if (no < last || FILE_FIELDS[no] !== (key & 7)) break;
        r.skip(key & 7, no);
        last = no;
        end = r.pos;
        sawSyntax ||= no === 12;
      } catch {
        r.pos = start;
        break;
      }
    }
    const bytes = binary.subarray(at, at + end);
    try {
      const file = parseFileDescriptor(bytes);
      if (sawSyntax && file.name === PROTO_NAME && file.package === 'openapi.v2') return bytes;
    } catch {
      // not it; keep looking
    }
  }
  return undefined;
}

/** Field layouts by short message name ('Schema'), as the test decoder uses them. */
type Layout = Map<string, Map<number, { name: string; type: string; repeated: boolean }>>;

const scalarName: Record<number, string> = {
  [FieldType.String]: 'string',
  [FieldType.Bool]: 'bool',
  [FieldType.Double]: 'double',
  [FieldType.Int64]: 'int64',
};

function layoutFromDescriptor(messages: MessageInfo[]): Layout {
  const layout: Layout = new Map();
  for (const m of messages) {
    const fields = new Map<number, { name: string; type: string; repeated: boolean }>();
    for (const f of m.fields) {
      const type =
        f.type === FieldType.Message
          ? f.typeName.replace(/^openapi\.v2\./, '')
          : (scalarName[f.type] ?? `type ${f.type}`);
      fields.set(f.number, { name: f.name, type, repeated: f.repeated });
    }
    layout.set(m.fullName.replace(/^openapi\.v2\./, ''), fields);
  }
  return layout;
}

function layoutFromTable(): Layout {
  const layout: Layout = new Map();
  for (const [message, fields] of Object.entries(OPENAPI_V2_FIELDS)) {
    const byNumber = new Map<number, { name: string; type: string; repeated: boolean }>();
    for (const [name, spec] of Object.entries(fields)) {
      byNumber.set(spec[0], { name, type: spec[1], repeated: spec[2] === 'repeated' });
    }
    layout.set(message, byNumber);
  }
  return layout;
}

const descriptors = KUBECTL_BINARIES.map((path) => ({ path, bytes: extractDescriptor(readFileSync(path)) }));
const firstDescriptor = descriptors.find((d) => d.bytes)?.bytes;
/** Decoding prefers kubectl's own descriptor; without kubectl, our table stands in. */
const layout = firstDescriptor
  ? layoutFromDescriptor(parseFileDescriptor(firstDescriptor).messages)
  : layoutFromTable();

// ---------------------------------------------------------------------------
// A generic decoder (wire bytes -> gnostic shape), and the inverse of the
// encoder's reshaping (gnostic shape -> Swagger JSON), both written
// independently of the code under test.
// ---------------------------------------------------------------------------

function decode(message: string, bytes: Uint8Array): GnosticMessage {
  const fields = layout.get(message);
  assert.ok(fields, `no layout for ${message}`);
  const out: GnosticMessage = {};
  const r = new ProtoReader(bytes);
  while (!r.done) {
    const key = r.tag();
    const f = fields.get(key >>> 3);
    assert.ok(f, `${message}: unexpected field ${key >>> 3}`);
    let value: GnosticValue;
    switch (f.type) {
      case 'string':
        assert.equal(key & 7, WireType.LengthDelimited);
        value = utf8(r.bytes());
        break;
      case 'bool':
        assert.equal(key & 7, WireType.Varint);
        value = r.varint() !== 0;
        break;
      case 'int64': {
        assert.equal(key & 7, WireType.Varint);
        const lo = r.varint();
        value = int64ToNumber(lo, r.hi, true);
        break;
      }
      case 'double':
        assert.equal(key & 7, WireType.Fixed64);
        value = r.double();
        break;
      default:
        assert.equal(key & 7, WireType.LengthDelimited);
        value = decode(f.type, r.bytes());
    }
    if (!f.repeated) out[f.name] = value;
    else if (Array.isArray(out[f.name])) (out[f.name] as GnosticValue[]).push(value);
    else out[f.name] = [value];
  }
  return out;
}

type Json = Record<string, unknown>;
const msg = (v: GnosticValue | undefined): GnosticMessage => (v ?? {}) as GnosticMessage;
const msgs = (v: GnosticValue | undefined): GnosticMessage[] => (v ?? []) as GnosticMessage[];
const camel = (name: string) =>
  name === '_ref' ? '$ref' : name.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

/** Generic inverse for plain messages: camelCase keys, vendor extensions merged in. */
function plain(message: string, m: GnosticMessage): Json {
  const out: Json = {};
  const fields = [...layout.get(message)!.values()];
  for (const [name, value] of Object.entries(m)) {
    if (value === undefined) continue;
    if (name === 'vendor_extension') {
      for (const ext of msgs(value)) out[ext.name as string] = anyValue(ext.value);
      continue;
    }
    const f = fields.find((x) => x.name === name)!;
    if (!layout.has(f.type)) out[camel(name)] = value;
    else if (f.repeated) out[camel(name)] = msgs(value).map((v) => fromG(f.type, v));
    else out[camel(name)] = fromG(f.type, msg(value));
  }
  return out;
}

const anyValue = (v: GnosticValue | undefined): unknown => parseYaml(msg(v).yaml as string);
const namedMap = (list: GnosticValue | undefined, value: (v: GnosticValue | undefined) => unknown): Json =>
  Object.fromEntries(msgs(list).map((p) => [p.name as string, value(p.value)]));

function fromG(message: string, m: GnosticMessage): unknown {
  switch (message) {
    case 'Any':
      return parseYaml(m.yaml as string);
    case 'TypeItem': {
      const v = m.value as string[];
      return v.length === 1 ? v[0] : v;
    }
    case 'ItemsItem': {
      const v = msgs(m.schema).map((s) => fromG('Schema', s));
      return v.length === 1 ? v[0] : v;
    }
    case 'AdditionalPropertiesItem':
      return m.boolean !== undefined ? m.boolean : fromG('Schema', msg(m.schema));
    case 'Properties':
    case 'Definitions':
      return namedMap(m.additional_properties, (v) => fromG('Schema', msg(v)));
    case 'ParameterDefinitions':
      return namedMap(m.additional_properties, (v) => fromG('Parameter', msg(v)));
    case 'ResponseDefinitions':
      return namedMap(m.additional_properties, (v) => fromG('Response', msg(v)));
    case 'SecurityRequirement':
      return namedMap(m.additional_properties, (v) => msg(v).value ?? []);
    case 'Paths':
      return {
        ...namedMap(m.path, (v) => fromG('PathItem', msg(v))),
        ...plain('Paths', { vendor_extension: m.vendor_extension }),
      };
    case 'Responses':
      return {
        ...namedMap(m.response_code, (v) => fromG('ResponseValue', msg(v))),
        ...plain('Responses', { vendor_extension: m.vendor_extension }),
      };
    case 'ParametersItem':
    case 'ResponseValue':
    case 'SchemaItem':
    case 'Parameter':
    case 'NonBodyParameter': {
      // oneofs: exactly one member is set, and it stands for the whole value
      const entries = Object.entries(m);
      assert.equal(entries.length, 1, `${message} must have exactly one member set`);
      const [name, value] = entries[0]!;
      const f = [...layout.get(message)!.values()].find((x) => x.name === name)!;
      return fromG(f.type, msg(value));
    }
    default:
      return plain(message, m);
  }
}

const swaggerOf = (bytes: Uint8Array) => fromG('Document', decode('Document', bytes)) as Json;

/**
 * What survives protobuf: an empty repeated field is indistinguishable from
 * an absent one (values inside vendor extensions are YAML text, so they keep
 * theirs).
 */
function withoutEmptyLists(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(withoutEmptyLists);
  if (typeof v !== 'object' || v === null) return v;
  const out: Json = {};
  for (const [k, x] of Object.entries(v)) {
    if (k.startsWith('x-')) out[k] = x;
    else if (!(Array.isArray(x) && x.length === 0)) out[k] = withoutEmptyLists(x);
  }
  return out;
}

function builtinDocument() {
  return openAPIV2Document({
    model: builtinTypeModel(),
    registry: builtinRegistry(),
    patchSchema: kubernetesPatchSchema,
    version: 'v1.33.0',
  });
}

// ---------------------------------------------------------------------------

describe('field numbers', () => {
  it('match the openapiv2/OpenAPIv2.proto descriptor embedded in kubectl', (t) => {
    if (KUBECTL_BINARIES.length === 0) {
      t.skip('no kubectl binary (looked for /usr/lib/google-cloud-sdk/bin/kubectl.1.27, /usr/bin/kubectl)');
      return;
    }
    for (const { path, bytes } of descriptors) {
      assert.ok(bytes, `${path}: no ${PROTO_NAME} descriptor found`);
      const fromKubectl = layoutFromDescriptor(parseFileDescriptor(bytes).messages);
      for (const [message, fields] of Object.entries(OPENAPI_V2_FIELDS)) {
        const actual = fromKubectl.get(message);
        assert.ok(actual, `${path}: no message openapi.v2.${message}`);
        const byName = new Map([...actual.entries()].map(([no, f]) => [f.name, { no, ...f }]));
        for (const [name, [no, type, repeated]] of Object.entries(fields)) {
          assert.deepEqual(
            { field: `${message}.${name}`, ...byName.get(name) },
            { field: `${message}.${name}`, no, name, type, repeated: repeated === 'repeated' },
            `${path}: openapi.v2.${message}.${name}`,
          );
        }
      }
    }
  });

  it('name only messages the table defines', () => {
    for (const [message, fields] of Object.entries(OPENAPI_V2_FIELDS)) {
      for (const [name, [, type]] of Object.entries(fields)) {
        if (!['string', 'bool', 'int64', 'double'].includes(type)) {
          assert.ok(
            type in OPENAPI_V2_FIELDS,
            `${message}.${name} refers to ${type}, which has no table entry`,
          );
        }
      }
    }
  });
});

describe('encodeOpenAPIV2Protobuf', () => {
  const doc = builtinDocument();
  const bytes = encodeOpenAPIV2Protobuf(doc);

  it('round-trips the whole built-in document', () => {
    assert.deepEqual(swaggerOf(bytes), withoutEmptyLists(doc));
  });

  it('carries what kubectl reads: definitions, GVKs, patch metadata, PATCH query parameters', () => {
    const decoded = decode('Document', bytes);
    assert.equal(decoded.swagger, '2.0');
    const defs = msgs(msg(decoded.definitions).additional_properties);
    const deployment = defs.find((d) => d.name === 'io.k8s.api.apps.v1.Deployment');
    assert.ok(deployment, 'Deployment definition');
    const gvk = msgs(msg(deployment.value).vendor_extension).find(
      (e) => e.name === 'x-kubernetes-group-version-kind',
    );
    assert.deepEqual(parseYaml(msg(gvk?.value).yaml as string), [
      { group: 'apps', version: 'v1', kind: 'Deployment' },
    ]);

    const podSpec = defs.find((d) => d.name === 'io.k8s.api.core.v1.PodSpec');
    const containers = msgs(msg(msg(podSpec?.value).properties).additional_properties).find(
      (p) => p.name === 'containers',
    );
    const ext = Object.fromEntries(
      msgs(msg(containers?.value).vendor_extension).map((e) => [
        e.name,
        parseYaml(msg(e.value).yaml as string),
      ]),
    );
    assert.equal(ext['x-kubernetes-patch-merge-key'], 'name');
    assert.equal(ext['x-kubernetes-patch-strategy'], 'merge');
    assert.deepEqual(ext['x-kubernetes-list-map-keys'], ['name']);

    // client-go's query-parameter check: the first PATCH tagged with the
    // kind's GVK (a map here) must list fieldValidation as a query parameter.
    const patch = msgs(msg(decoded.paths).path)
      .map((p) => msg(msg(p.value).patch))
      .find((op) =>
        msgs(op.vendor_extension).some(
          (e) =>
            e.name === 'x-kubernetes-group-version-kind' &&
            (parseYaml(msg(e.value).yaml as string) as Json).kind === 'Deployment',
        ),
      );
    assert.ok(patch, 'a PATCH operation for Deployment');
    const names = msgs(patch.parameters).map(
      (p) => msg(msg(msg(p.parameter).non_body_parameter).query_parameter_sub_schema).name,
    );
    assert.ok(names.includes('fieldValidation'), `PATCH parameters: ${names.join(', ')}`);
  });

  it('encodes the Swagger features Skiff does not use today', () => {
    const synthetic = {
      swagger: '2.0',
      info: { title: 't', version: '1', contact: { name: 'n' }, 'x-info': true },
      basePath: '/',
      schemes: ['https'],
      consumes: ['application/json'],
      security: [{ BearerToken: [] }],
      'x-top': { a: [1, 'two', null] },
      paths: {
        '/p/{name}': {
          parameters: [{ $ref: '#/parameters/pretty' }],
          post: {
            tags: ['t'],
            deprecated: false,
            parameters: [
              { name: 'body', in: 'body', required: true, schema: { $ref: '#/definitions/D' } },
              { name: 'name', in: 'path', required: true, type: 'string' },
              { name: 'h', in: 'header', type: 'integer', minimum: -5, maximum: 2.5 },
              { name: 'q', in: 'query', type: 'array', items: { type: 'string', enum: ['a', 'b'] } },
            ],
            responses: { '201': { $ref: '#/responses/Created' }, 'x-r': 'y' },
          },
        },
        'x-paths': 1,
      },
      parameters: { pretty: { name: 'pretty', in: 'query', type: 'string', allowEmptyValue: true } },
      responses: { Created: { description: 'created', schema: { type: 'object' } } },
      definitions: {
        D: {
          type: 'object',
          required: ['a'],
          properties: {
            a: { type: 'integer', format: 'int64', minimum: -9007199254740991, maxLength: 0 },
            b: { type: 'object', additionalProperties: false },
            c: { type: ['string', 'null'], items: [{ type: 'string' }, { type: 'number' }] },
            d: {
              allOf: [{ $ref: '#/definitions/E' }],
              default: { k: 'v: w' },
              example: 'multi\nline "quoted"',
            },
          },
        },
        E: { type: 'object', properties: {} },
        F: { type: 'string', enum: ['x', 'y'], 'x-kubernetes-int-or-string': true },
      },
    };
    assert.deepEqual(swaggerOf(encodeOpenAPIV2Protobuf(synthetic)), synthetic);
  });

  it('keeps an empty `properties` present, which kube-openapi reads as a struct rather than a map', () => {
    const bytes = encodeOpenAPIV2Protobuf({ definitions: { E: { type: 'object', properties: {} } } });
    const e = msg(msgs(msg(decode('Document', bytes).definitions).additional_properties)[0]?.value);
    assert.deepEqual(e.properties, {});
  });

  it('writes fields in field-number order with plain wire encodings', () => {
    // NamedAny{name: "x", value: Any{yaml: "1"}}
    assert.deepEqual(
      [...encodeGnosticMessage('NamedAny', { name: 'x', value: { yaml: '1' } })],
      [0x0a, 1, 0x78, 0x12, 3, 0x12, 1, 0x31],
    );
    // Schema.max_length (11) = -1 is a ten-byte varint; Schema.maximum (7) a fixed64.
    assert.deepEqual(
      [...encodeGnosticMessage('Schema', { max_length: -1, maximum: 1 })],
      [0x39, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0x58, ...Array(9).fill(0xff), 0x01],
    );
    assert.throws(() => encodeGnosticMessage('Schema', { nope: 'x' }), /no field nope/);
  });
});

describe('prefersOpenAPIV2Protobuf', () => {
  const cases: Array<[string | undefined, boolean]> = [
    [undefined, false],
    ['application/json', false],
    [OPENAPI_V2_PROTOBUF_ACCEPT, true],
    [OPENAPI_V2_PROTOBUF_CONTENT_TYPE, true],
    [`${OPENAPI_V2_PROTOBUF_ACCEPT}, application/json`, true],
    [`application/json, ${OPENAPI_V2_PROTOBUF_ACCEPT}`, false],
    [`application/json;q=0.5, ${OPENAPI_V2_PROTOBUF_ACCEPT}`, true],
    [`${OPENAPI_V2_PROTOBUF_ACCEPT};q=0.5, */*`, false],
    [`${OPENAPI_V2_PROTOBUF_ACCEPT};q=0`, false],
    ['application/vnd.kubernetes.protobuf, */*', false],
  ];
  for (const [accept, want] of cases) {
    it(`${accept ?? '(no Accept)'} -> ${want ? 'protobuf' : 'JSON'}`, () => {
      assert.equal(prefersOpenAPIV2Protobuf(accept), want);
    });
  }
});

describe('GET /openapi/v2', () => {
  it('answers protobuf when client-go asks for it, JSON otherwise, with distinct ETags', async () => {
    const s = await startTestServer();
    try {
      const get = async (accept?: string) => {
        const res = await fetch(`${s.url}/openapi/v2`, { headers: accept ? { accept } : {} });
        assert.equal(res.status, 200);
        return { res, body: new Uint8Array(await res.arrayBuffer()) };
      };
      const pb = await get(OPENAPI_V2_PROTOBUF_ACCEPT);
      // The dotted spelling: Go's mime parser rejects the `@` one client-go asks with.
      assert.equal(pb.res.headers.get('content-type'), OPENAPI_V2_PROTOBUF_CONTENT_TYPE);
      const json = await get('application/json');
      assert.equal(json.res.headers.get('content-type'), 'application/json');
      const doc = JSON.parse(Buffer.from(json.body).toString('utf8')) as Json;
      assert.deepEqual(swaggerOf(pb.body), withoutEmptyLists(doc));
      assert.notEqual(pb.res.headers.get('etag'), json.res.headers.get('etag'));
      assert.equal(pb.res.headers.get('vary'), 'Accept');
      const again = await get(OPENAPI_V2_PROTOBUF_ACCEPT);
      assert.deepEqual(again.body, pb.body);
      assert.equal(again.res.headers.get('etag'), pb.res.headers.get('etag'));
      assert.equal((await get()).res.headers.get('content-type'), 'application/json');
    } finally {
      await s.close();
    }
  });
});
