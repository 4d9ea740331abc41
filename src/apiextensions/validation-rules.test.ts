// x-kubernetes-validations: CEL rules walked with the schema, their paths,
// messages and causes as upstream's, transition rules only on update, and a
// rule that does not compile refused in the CRD; then once through the API
// server.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { KubeObject } from '../api/meta.ts';
import { startTestServer, type TestServer } from '../apiserver/testing.ts';
import { defaultCRD, validateCRD } from './crd-validation.ts';
import { widgetCRD } from './testing.ts';
import type { JSONSchemaProps } from './types.ts';
import { celValidationRules, type ValidationRule } from './validation-rules.ts';

const obj = (spec: unknown): KubeObject =>
  ({ apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w' }, spec }) as KubeObject;

/** A root schema with `specSchema` as its spec. */
function schemaWith(specSchema: JSONSchemaProps): JSONSchemaProps {
  return { type: 'object', properties: { spec: specSchema } };
}

const withRules = (s: JSONSchemaProps, ...rules: ValidationRule[]): JSONSchemaProps => ({
  ...s,
  'x-kubernetes-validations': rules,
});

const specObject: JSONSchemaProps = {
  type: 'object',
  properties: {
    min: { type: 'integer' },
    max: { type: 'integer' },
    name: { type: 'string' },
    inner: { type: 'object', properties: { size: { type: 'integer' } } },
    items: { type: 'array', items: { type: 'object', properties: { n: { type: 'integer' } } } },
    labels: { type: 'object', additionalProperties: { type: 'string' } },
  },
};

interface Case {
  name: string;
  schema: JSONSchemaProps;
  spec: unknown;
  old?: unknown;
  /** The errors' messages as `field: message`. */
  want: string[];
}

const nested = (rules: ValidationRule[]): JSONSchemaProps =>
  schemaWith({
    ...specObject,
    properties: { ...specObject.properties, inner: withRules(specObject.properties!.inner!, ...rules) },
  });

const itemRules = (rules: ValidationRule[]): JSONSchemaProps =>
  schemaWith({
    ...specObject,
    properties: {
      ...specObject.properties,
      items: { type: 'array', items: withRules(specObject.properties!.items!.items!, ...rules) },
    },
  });

const immutableName = schemaWith({
  ...specObject,
  properties: {
    ...specObject.properties,
    name: withRules({ type: 'string' }, { rule: 'self == oldSelf', message: 'name is immutable' }),
  },
});

const cases: Case[] = [
  {
    name: 'a rule on the root sees the whole object, metadata.name included',
    schema: withRules(schemaWith(specObject), {
      rule: "self.metadata.name.startsWith('w') && self.spec.min >= 0",
    }),
    spec: { min: -1 },
    want: [
      `: Invalid value: "object": failed rule: self.metadata.name.startsWith('w') && self.spec.min >= 0`,
    ],
  },
  {
    name: 'a rule that holds gives nothing',
    schema: schemaWith(withRules(specObject, { rule: 'self.min <= self.max' })),
    spec: { min: 1, max: 2 },
    want: [],
  },
  {
    name: 'a rule on spec fails at spec with the default message',
    schema: schemaWith(withRules(specObject, { rule: ' self.min <= self.max ' })),
    spec: { min: 3, max: 2 },
    want: ['spec: Invalid value: "object": failed rule: self.min <= self.max'],
  },
  {
    name: 'a rule on a nested object fails at its path with its message',
    schema: nested([{ rule: 'self.size < 10', message: 'too big' }]),
    spec: { inner: { size: 12 } },
    want: ['spec.inner: Invalid value: "object": too big'],
  },
  {
    name: 'a rule on list items fails at each item that breaks it',
    schema: itemRules([{ rule: 'self.n % 2 == 0' }]),
    spec: { items: [{ n: 2 }, { n: 3 }, { n: 5 }] },
    want: [
      'spec.items[1]: Invalid value: "object": failed rule: self.n % 2 == 0',
      'spec.items[2]: Invalid value: "object": failed rule: self.n % 2 == 0',
    ],
  },
  {
    name: 'a rule on additionalProperties values names the key',
    schema: schemaWith({
      ...specObject,
      properties: {
        ...specObject.properties,
        labels: {
          type: 'object',
          additionalProperties: withRules({ type: 'string' }, { rule: 'self != ""' }),
        },
      },
    }),
    spec: { labels: { a: 'x', b: '' } },
    want: ['spec.labels[b]: Invalid value: "string": failed rule: self != ""'],
  },
  {
    name: 'a transition rule is skipped on create',
    schema: immutableName,
    spec: { name: 'a' },
    want: [],
  },
  {
    name: 'a transition rule fails on an update that changes the value',
    schema: immutableName,
    spec: { name: 'b' },
    old: { name: 'a' },
    want: ['spec.name: Invalid value: "string": name is immutable'],
  },
  {
    name: 'a transition rule passes on an update that keeps the value',
    schema: immutableName,
    spec: { name: 'a' },
    old: { name: 'a' },
    want: [],
  },
  {
    name: 'a transition rule is skipped where the old object had no value',
    schema: immutableName,
    spec: { name: 'a' },
    old: { min: 1 },
    want: [],
  },
  {
    name: 'messageExpression is evaluated with self',
    schema: schemaWith(
      withRules(specObject, {
        rule: 'self.min <= self.max',
        messageExpression: "'min ' + string(self.min) + ' exceeds max ' + string(self.max)",
      }),
    ),
    spec: { min: 3, max: 2 },
    want: ['spec: Invalid value: "object": min 3 exceeds max 2'],
  },
  {
    name: 'a messageExpression that gives an empty string falls back to the message',
    schema: schemaWith(
      withRules(specObject, { rule: 'self.min <= self.max', messageExpression: "''", message: 'bad range' }),
    ),
    spec: { min: 3, max: 2 },
    want: ['spec: Invalid value: "object": bad range'],
  },
  {
    name: 'fieldPath moves the error below the rule',
    schema: schemaWith(withRules(specObject, { rule: 'self.min <= self.max', fieldPath: '.max' })),
    spec: { min: 3, max: 2 },
    want: ['spec.max: Invalid value: "object": failed rule: self.min <= self.max'],
  },
  {
    name: "fieldPath with a ['key'] names a map key",
    schema: schemaWith(withRules(specObject, { rule: "'a' in self.labels", fieldPath: ".labels['a.b']" })),
    spec: { labels: {} },
    want: ['spec.labels[a.b]: Invalid value: "object": failed rule: \'a\' in self.labels'],
  },
  {
    name: 'reason FieldValueForbidden and FieldValueRequired pick the cause type',
    schema: schemaWith(
      withRules(
        specObject,
        {
          rule: '!has(self.name)',
          message: 'name may not be set',
          reason: 'FieldValueForbidden',
          fieldPath: '.name',
        },
        {
          rule: 'has(self.min)',
          message: 'min is required',
          reason: 'FieldValueRequired',
          fieldPath: '.min',
        },
      ),
    ),
    spec: { name: 'x' },
    want: ['spec.name: Forbidden: name may not be set', 'spec.min: Required value: min is required'],
  },
  {
    name: 'reason FieldValueDuplicate gives a duplicate value',
    schema: schemaWith(withRules(specObject, { rule: 'false', reason: 'FieldValueDuplicate' })),
    spec: {},
    want: ['spec: Duplicate value: "object"'],
  },
  {
    name: 'an evaluation error (no such key) is reported with the rule',
    schema: schemaWith(withRules(specObject, { rule: 'self.min > 0' })),
    spec: { max: 1 },
    want: [/^spec: Invalid value: "object": no such key: min evaluating rule: self\.min > 0$/.source],
  },
  {
    name: 'running out of cost is reported with the rule',
    schema: schemaWith(
      withRules(specObject, {
        rule: 'self.items.all(a, self.items.all(b, self.items.all(c, self.items.all(d, true))))',
      }),
    ),
    spec: { items: Array.from({ length: 40 }, () => ({ n: 1 })) },
    want: [/^spec: Invalid value: "object": .*call cost exceeds limit for rule: self\.items\.all/.source],
  },
];

describe('x-kubernetes-validations', () => {
  for (const c of cases) {
    it(c.name, () => {
      const errs = celValidationRules(c.schema, obj(c.spec), c.old === undefined ? undefined : obj(c.old));
      const got = errs.map((e) => `${e.field}: ${e.message}`);
      assert.equal(got.length, c.want.length, got.join('\n'));
      c.want.forEach((w, i) => {
        if (w.startsWith('^')) assert.match(got[i]!, new RegExp(w));
        else assert.equal(got[i], w);
      });
    });
  }

  it('compiles each schema node once: later objects reuse its programs', () => {
    const spec = withRules(specObject, { rule: 'self.min <= self.max' });
    const schema = schemaWith(spec);
    assert.equal(celValidationRules(schema, obj({ min: 3, max: 2 })).length, 1);
    // The programs are keyed by the schema object, so an edit in place is
    // not seen: a CRD update brings new schema objects.
    spec['x-kubernetes-validations']![0]!.rule = 'true';
    assert.equal(celValidationRules(schema, obj({ min: 3, max: 2 })).length, 1);
    assert.equal(celValidationRules(structuredClone(schema), obj({ min: 3, max: 2 })).length, 0);
  });

  it('refuses a CRD whose rule or messageExpression does not compile', () => {
    const crd = widgetCRD();
    const spec = crd.spec.versions[0]!.schema!.openAPIV3Schema!.properties!.spec!;
    spec['x-kubernetes-validations'] = [
      { rule: 'self.replicas <' },
      { rule: 'true', messageExpression: "'a' +" },
    ];
    defaultCRD(crd);
    const msgs = validateCRD(crd).map((e) => `${e.field}: ${e.message}`);
    const base = 'spec.versions[0].schema.openAPIV3Schema.properties[spec].x-kubernetes-validations';
    assert.equal(msgs.length, 2, msgs.join('\n'));
    const value = (rule: string, messageExpression: string) =>
      `apiextensions.ValidationRule{Rule:${JSON.stringify(rule)}, Message:"", MessageExpression:${JSON.stringify(messageExpression)}, ` +
      'Reason:(*apiextensions.FieldValueErrorReason)(nil), FieldPath:"", OptionalOldSelf:(*bool)(nil)}';
    assert.ok(
      msgs[0]!.startsWith(
        `${base}[0].rule: Invalid value: ${value('self.replicas <', '')}: compilation failed: ERROR: `,
      ),
      msgs[0],
    );
    assert.ok(
      msgs[1]!.startsWith(
        `${base}[1].messageExpression: Invalid value: ${value('true', "'a' +")}: messageExpression compilation failed: ERROR: `,
      ),
      msgs[1],
    );
  });
});

describe('x-kubernetes-validations through the API server', () => {
  let s: TestServer;
  const CRDS = '/apis/apiextensions.k8s.io/v1/customresourcedefinitions';
  const WIDGETS = '/apis/example.com/v1/namespaces/default/widgets';
  const widget = (spec: Record<string, unknown>, resourceVersion?: string) => ({
    apiVersion: 'example.com/v1',
    kind: 'Widget',
    metadata: { name: 'w1', ...(resourceVersion ? { resourceVersion } : {}) },
    spec,
  });

  before(async () => {
    s = await startTestServer();
    const crd = widgetCRD();
    const spec = crd.spec.versions[0]!.schema!.openAPIV3Schema!.properties!.spec!;
    spec['x-kubernetes-validations'] = [{ rule: 'self.replicas <= 5', message: 'at most 5 replicas' }];
    spec.properties!.color!['x-kubernetes-validations'] = [
      { rule: 'self == oldSelf', message: 'color is immutable' },
    ];
    const created = await s.request('POST', CRDS, crd);
    assert.equal(created.status, 201, created.text);
    await s.api.crds.idle();
  });
  after(() => s.close());

  it('refuses a create that breaks a rule with 422 and the cause; an update that breaks a transition rule too', async () => {
    const bad = await s.request('POST', WIDGETS, widget({ color: 'red', replicas: 7 }));
    assert.equal(bad.status, 422, bad.text);
    assert.deepEqual(bad.body.details.causes, [
      { reason: 'FieldValueInvalid', message: 'Invalid value: "object": at most 5 replicas', field: 'spec' },
    ]);
    const ok = await s.request('POST', WIDGETS, widget({ color: 'red', replicas: 2 }));
    assert.equal(ok.status, 201, ok.text);
    const changed = await s.request(
      'PUT',
      `${WIDGETS}/w1`,
      widget({ color: 'blue', replicas: 2 }, ok.body.metadata.resourceVersion),
    );
    assert.equal(changed.status, 422, changed.text);
    assert.match(changed.body.message, /spec\.color: Invalid value: "string": color is immutable/);
    const same = await s.request(
      'PUT',
      `${WIDGETS}/w1`,
      widget({ color: 'red', replicas: 3 }, ok.body.metadata.resourceVersion),
    );
    assert.equal(same.status, 200, same.text);
  });
});
