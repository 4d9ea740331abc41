// The structural schema, table-driven with upstream's messages: validation
// of values, pruning, defaulting, and the structural checks of a CRD's schema.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { applyDefaults, prune } from './pruning.ts';
import { validateValue } from './schema-validation.ts';
import { validateStructural } from './structural.ts';
import type { JSONSchemaProps } from './types.ts';

const messages = (schema: JSONSchemaProps, value: unknown) =>
  validateValue(schema, value, 'spec.f').map((e) => `${e.field}: ${e.message}`);

describe('validateValue', () => {
  const cases: Array<[string, JSONSchemaProps, unknown, string[]]> = [
    [
      'type',
      { type: 'integer' },
      'x',
      ['spec.f: Invalid value: "string": spec.f in body must be of type integer: "string"'],
    ],
    [
      'a float is no integer',
      { type: 'integer' },
      1.5,
      ['spec.f: Invalid value: "number": spec.f in body must be of type integer: "number"'],
    ],
    [
      'null where not nullable',
      { type: 'string' },
      null,
      ['spec.f: Invalid value: "null": spec.f in body must be of type string: "null"'],
    ],
    ['null where nullable', { type: 'string', nullable: true }, null, []],
    [
      'enum',
      { type: 'string', enum: ['a', 'b'] },
      'c',
      ['spec.f: Unsupported value: "c": supported values: "a", "b"'],
    ],
    [
      'minimum',
      { type: 'integer', minimum: 1 },
      0,
      ['spec.f: Invalid value: 0: spec.f in body should be greater than or equal to 1'],
    ],
    [
      'exclusive maximum',
      { type: 'number', maximum: 1, exclusiveMaximum: true },
      1,
      ['spec.f: Invalid value: 1: spec.f in body should be less than 1'],
    ],
    [
      'multipleOf',
      { type: 'integer', multipleOf: 3 },
      4,
      ['spec.f: Invalid value: 4: spec.f in body should be a multiple of 3'],
    ],
    [
      'maxLength',
      { type: 'string', maxLength: 2 },
      'abc',
      ['spec.f: Too long: may not be more than 2 bytes'],
    ],
    [
      'minLength',
      { type: 'string', minLength: 2 },
      'a',
      ['spec.f: Invalid value: "a": spec.f in body should be at least 2 chars long'],
    ],
    [
      'pattern',
      { type: 'string', pattern: '^a+$' },
      'b',
      ['spec.f: Invalid value: "b": spec.f in body should match \'^a+$\''],
    ],
    [
      'format',
      { type: 'string', format: 'date-time' },
      'soon',
      ['spec.f: Invalid value: "soon": spec.f in body must be of type date-time: "soon"'],
    ],
    [
      'maxItems',
      { type: 'array', items: { type: 'string' }, maxItems: 1 },
      ['a', 'b'],
      ['spec.f: Too many: 2: must have at most 1 item'],
    ],
    [
      'minItems',
      { type: 'array', items: { type: 'string' }, minItems: 2 },
      ['a'],
      ['spec.f: Invalid value: 1: spec.f in body should have at least 2 items'],
    ],
    [
      'items',
      { type: 'array', items: { type: 'integer' } },
      [1, 'x'],
      ['spec.f[1]: Invalid value: "string": spec.f[1] in body must be of type integer: "string"'],
    ],
    [
      'required',
      { type: 'object', required: ['a'], properties: { a: { type: 'string' } } },
      {},
      ['spec.f.a: Required value'],
    ],
    [
      'additionalProperties',
      { type: 'object', additionalProperties: { type: 'integer' } },
      { k: 'v' },
      ['spec.f[k]: Invalid value: "string": spec.f[k] in body must be of type integer: "string"'],
    ],
    ['int-or-string takes both', { 'x-kubernetes-int-or-string': true }, 'http', []],
    [
      'int-or-string takes no bool',
      { 'x-kubernetes-int-or-string': true },
      true,
      ['spec.f: Invalid value: "boolean": spec.f in body must be of type integer,string: "boolean"'],
    ],
    [
      'list-type set',
      { type: 'array', items: { type: 'string' }, 'x-kubernetes-list-type': 'set' },
      ['a', 'a'],
      ['spec.f[1]: Duplicate value: "a"'],
    ],
    [
      'list-type map',
      {
        type: 'array',
        'x-kubernetes-list-type': 'map',
        'x-kubernetes-list-map-keys': ['name'],
        items: { type: 'object', properties: { name: { type: 'string' } } },
      },
      [{ name: 'x' }, { name: 'x' }],
      ['spec.f[1]: Duplicate value: {"name":"x"}'],
    ],
    [
      'embedded resource',
      {
        type: 'object',
        'x-kubernetes-embedded-resource': true,
        'x-kubernetes-preserve-unknown-fields': true,
      },
      { metadata: {} },
      [
        'spec.f.apiVersion: Required value: must not be empty',
        'spec.f.kind: Required value: must not be empty',
      ],
    ],
  ];
  for (const [name, schema, value, want] of cases) {
    it(name, () => assert.deepEqual(messages(schema, value), want));
  }
});

describe('prune', () => {
  const schema: JSONSchemaProps = {
    type: 'object',
    properties: {
      spec: {
        type: 'object',
        properties: {
          known: { type: 'string' },
          free: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
          list: { type: 'array', items: { type: 'object', properties: { a: { type: 'string' } } } },
          labels: { type: 'object', additionalProperties: { type: 'string' } },
          template: {
            type: 'object',
            'x-kubernetes-embedded-resource': true,
            properties: { spec: { type: 'object' } },
          },
        },
      },
    },
  };
  it('drops what the schema does not specify, and says where', () => {
    const obj = {
      apiVersion: 'x/v1',
      kind: 'X',
      metadata: { name: 'n' },
      spec: {
        known: 'k',
        unknown: 1,
        free: { any: { thing: 1 } },
        list: [{ a: 'x', b: 'y' }],
        labels: { any: 'v' },
        template: { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec: {}, extra: 1 },
      },
      top: true,
    };
    const pruned = prune(schema, obj);
    assert.deepEqual(pruned, ['spec.unknown', 'spec.list[0].b', 'spec.template.extra', 'top']);
    assert.deepEqual(obj.spec, {
      known: 'k',
      free: { any: { thing: 1 } },
      list: [{ a: 'x' }],
      labels: { any: 'v' },
      template: { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec: {} },
    });
    assert.equal(obj.apiVersion, 'x/v1');
  });
});

describe('applyDefaults', () => {
  it('fills missing fields (and null ones that are not nullable), deep, in arrays too', () => {
    const schema: JSONSchemaProps = {
      type: 'object',
      properties: {
        spec: {
          type: 'object',
          default: {},
          properties: {
            replicas: { type: 'integer', default: 1 },
            mode: { type: 'string', default: 'auto' },
            maybe: { type: 'string', nullable: true, default: 'x' },
            ports: {
              type: 'array',
              items: { type: 'object', properties: { protocol: { type: 'string', default: 'TCP' } } },
            },
          },
        },
      },
    };
    const obj: Record<string, unknown> = {
      spec: { mode: null, maybe: null, ports: [{}, { protocol: 'UDP' }] },
    };
    applyDefaults(schema, obj);
    assert.deepEqual(obj.spec, {
      replicas: 1,
      mode: 'auto',
      maybe: null,
      ports: [{ protocol: 'TCP' }, { protocol: 'UDP' }],
    });
    const empty: Record<string, unknown> = {};
    applyDefaults(schema, empty);
    assert.deepEqual(empty, { spec: { replicas: 1, mode: 'auto', maybe: 'x' } });
  });
});

describe('validateStructural', () => {
  const at = (schema: JSONSchemaProps) =>
    validateStructural(schema, 'schema').map((e) => `${e.field}: ${e.message}`);
  const cases: Array<[string, JSONSchemaProps, string[]]> = [
    [
      'a structural schema',
      { type: 'object', properties: { spec: { type: 'object', properties: { a: { type: 'string' } } } } },
      [],
    ],
    [
      'no type at the root',
      { properties: {} },
      ['schema.type: Required value: must not be empty at the root'],
    ],
    [
      'not an object at the root',
      { type: 'string' },
      ['schema.type: Invalid value: "string": must be object at the root'],
    ],
    [
      'a field without type',
      { type: 'object', properties: { a: {} } },
      ['schema.properties[a].type: Required value: must not be empty for specified object fields'],
    ],
    [
      'items without type',
      { type: 'object', properties: { a: { type: 'array', items: {} } } },
      ['schema.properties[a].items.type: Required value: must not be empty for specified array items'],
    ],
    [
      'an array without items',
      { type: 'object', properties: { a: { type: 'array' } } },
      ['schema.properties[a].items: Required value: must be specified'],
    ],
    [
      'preserve-unknown-fields instead of a type',
      { type: 'object', properties: { a: { 'x-kubernetes-preserve-unknown-fields': true } } },
      [],
    ],
    [
      'preserve-unknown-fields false',
      { type: 'object', 'x-kubernetes-preserve-unknown-fields': false },
      ['schema.x-kubernetes-preserve-unknown-fields: Invalid value: false: must be true or undefined'],
    ],
    [
      'int-or-string with a type',
      { type: 'object', properties: { a: { type: 'string', 'x-kubernetes-int-or-string': true } } },
      [
        'schema.properties[a].type: Invalid value: "string": must be empty if x-kubernetes-int-or-string is true',
      ],
    ],
    [
      'an unknown type',
      { type: 'object', properties: { a: { type: 'float' } } },
      [
        'schema.properties[a].type: Unsupported value: "float": supported values: "array", "boolean", "integer", "number", "object", "string"',
      ],
    ],
    [
      'properties with additionalProperties',
      { type: 'object', properties: { a: { type: 'string' } }, additionalProperties: { type: 'string' } },
      ['schema.additionalProperties: Forbidden: additionalProperties and properties are mutual exclusive'],
    ],
    [
      'int-or-string as controller-gen writes it',
      {
        type: 'object',
        properties: {
          port: {
            'x-kubernetes-int-or-string': true,
            anyOf: [{ type: 'integer' }, { type: 'string' }],
            format: 'int-or-string',
          },
        },
      },
      [],
    ],
    [
      'a type in a junctor',
      { type: 'object', anyOf: [{ type: 'string' }] },
      ['schema.anyOf[0].type: Forbidden: must be empty to be structural'],
    ],
    [
      'uniqueItems',
      { type: 'object', properties: { a: { type: 'array', items: { type: 'string' }, uniqueItems: true } } },
      [
        'schema.properties[a].uniqueItems: Forbidden: uniqueItems cannot be set to true since the runtime complexity becomes quadratic',
      ],
    ],
    [
      '$ref',
      { type: 'object', properties: { a: { $ref: '#/x' } } },
      [
        'schema.properties[a].type: Required value: must not be empty for specified object fields',
        'schema.properties[a].$ref: Forbidden: $ref is not supported',
      ],
    ],
    [
      'a list map without keys',
      {
        type: 'object',
        properties: { a: { type: 'array', items: { type: 'object' }, 'x-kubernetes-list-type': 'map' } },
      },
      [
        'schema.properties[a].x-kubernetes-list-map-keys: Required value: must not be empty if x-kubernetes-list-type is map',
      ],
    ],
    [
      'a bad map type',
      { type: 'object', 'x-kubernetes-map-type': 'merge' },
      ['schema.x-kubernetes-map-type: Unsupported value: "merge": supported values: "atomic", "granular"'],
    ],
    [
      'an embedded resource that is not an object',
      { type: 'object', properties: { a: { type: 'string', 'x-kubernetes-embedded-resource': true } } },
      [
        'schema.properties[a].type: Invalid value: "string": must be object if x-kubernetes-embedded-resource is true',
        'schema.properties[a].properties: Required value: must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields',
      ],
    ],
    [
      'metadata beyond name',
      {
        type: 'object',
        properties: { metadata: { type: 'object', properties: { labels: { type: 'object' } } } },
      },
      [
        'schema.properties[metadata]: Forbidden: must not specify anything other than name and generateName, but metadata is implicitly specified',
      ],
    ],
    [
      'a default that does not validate',
      { type: 'object', properties: { a: { type: 'integer', default: 'x' } } },
      ['schema.properties[a].default: Invalid value: "string": a in body must be of type integer: "string"'],
    ],
  ];
  for (const [name, schema, want] of cases) {
    it(name, () => assert.deepEqual(at(schema), want));
  }
});
