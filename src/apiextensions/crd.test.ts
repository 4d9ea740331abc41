// CustomResourceDefinitions served by the API server: the CRD's conditions,
// discovery, the verbs on custom resources with their schema's pruning,
// defaulting and validation, the subresources, tables, and deletion.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer } from '../apiserver/testing.ts';
import { widgetCRD } from './testing.ts';

let s: TestServer;
const CRDS = '/apis/apiextensions.k8s.io/v1/customresourcedefinitions';
const WIDGETS = '/apis/example.com/v1/namespaces/default/widgets';

const widget = (name: string, spec: Record<string, unknown>, labels?: Record<string, string>) => ({
  apiVersion: 'example.com/v1',
  kind: 'Widget',
  metadata: { name, ...(labels ? { labels } : {}) },
  spec,
});

before(async () => {
  s = await startTestServer();
  const created = await s.request('POST', CRDS, widgetCRD());
  assert.equal(created.status, 201, created.text);
  await s.api.crds.idle();
});
after(() => s.close());

describe('a CustomResourceDefinition', () => {
  it('is Established with its names accepted, its storage version stored', async () => {
    const crd = (await s.request('GET', `${CRDS}/widgets.example.com`)).body;
    const cond = (t: string) => crd.status.conditions.find((c: { type: string }) => c.type === t);
    assert.equal(cond('NamesAccepted').status, 'True');
    assert.equal(cond('NamesAccepted').reason, 'NoConflicts');
    assert.equal(cond('Established').status, 'True');
    assert.equal(cond('Established').reason, 'InitialNamesAccepted');
    assert.deepEqual(crd.status.storedVersions, ['v1']);
    assert.equal(crd.status.acceptedNames.kind, 'Widget');
    assert.equal(crd.spec.names.listKind, 'WidgetList');
  });

  it('is in discovery, legacy and aggregated, with its short names, categories and subresources', async () => {
    const list = (await s.request('GET', '/apis/example.com/v1')).body;
    const r = list.resources.find((x: { name: string }) => x.name === 'widgets');
    assert.deepEqual(r.shortNames, ['wd']);
    assert.deepEqual(r.categories, ['all']);
    assert.equal(r.singularName, 'widget');
    assert.ok(list.resources.some((x: { name: string }) => x.name === 'widgets/status'));
    assert.ok(list.resources.some((x: { name: string }) => x.name === 'widgets/scale'));
    const agg = await s.request('GET', '/apis', undefined, {
      accept: 'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList',
    });
    const group = agg.body.items.find(
      (g: { metadata: { name: string } }) => g.metadata.name === 'example.com',
    );
    assert.equal(group.versions[0].resources[0].resource, 'widgets');
  });

  it('refuses a name that does not match plural.group and a non-structural schema, with upstream messages', async () => {
    const bad = widgetCRD();
    bad.metadata.name = 'gadgets.example.com';
    const r1 = await s.request('POST', CRDS, bad);
    assert.equal(r1.status, 422);
    assert.match(
      r1.body.message,
      /metadata\.name: Invalid value: "gadgets\.example\.com": must be spec\.names\.plural\+"\."\+spec\.group/,
    );
    const nonStructural = widgetCRD({ group: 'other.example.com' });
    nonStructural.metadata.name = 'widgets.other.example.com';
    nonStructural.spec.versions[0]!.schema!.openAPIV3Schema!.properties!.spec!.properties!.color = {
      enum: ['red'],
    };
    const r2 = await s.request('POST', CRDS, nonStructural);
    assert.equal(r2.status, 422);
    assert.match(
      r2.body.message,
      /spec\.versions\[0\]\.schema\.openAPIV3Schema\.properties\[spec\]\.properties\[color\]\.type: Required value: must not be empty for specified object fields/,
    );
    const twoStorage = widgetCRD({ group: 'third.example.com' });
    twoStorage.metadata.name = 'widgets.third.example.com';
    twoStorage.spec.versions.push({ ...twoStorage.spec.versions[0]!, name: 'v2' });
    const r3 = await s.request('POST', CRDS, twoStorage);
    assert.equal(r3.status, 422);
    assert.match(
      r3.body.message,
      /spec\.versions: Invalid value: .*must have exactly one version marked as storage version/,
    );
  });
});

describe('custom resources', () => {
  it('are pruned, defaulted and validated by the schema', async () => {
    const created = await s.request('POST', WIDGETS, {
      ...widget('w1', { color: 'red', unknown: 1, extra: { anything: { goes: true } }, port: 'http' }),
      status: { phase: 'ignored on create' },
    });
    assert.equal(created.status, 201, created.text);
    assert.equal(created.body.spec.replicas, 1);
    assert.equal(created.body.spec.unknown, undefined);
    assert.deepEqual(created.body.spec.extra, { anything: { goes: true } });
    assert.equal(created.body.status, undefined);
    assert.equal(created.body.metadata.generation, 1);
    assert.match(created.headers.get('warning') ?? '', /unknown field \\"spec.unknown\\"/);

    const strict = await s.request(
      'POST',
      `${WIDGETS}?fieldValidation=Strict`,
      widget('w2', { color: 'red', nope: 1 }),
    );
    assert.equal(strict.status, 400);
    assert.equal(strict.body.message, 'strict decoding error: unknown field "spec.nope"');

    const invalid = await s.request(
      'POST',
      WIDGETS,
      widget('w3', { color: 'pink', replicas: -1, port: 1.5 }),
    );
    assert.equal(invalid.status, 422, invalid.text);
    assert.equal(invalid.body.reason, 'Invalid');
    assert.equal(
      invalid.body.message,
      'Widget.example.com "w3" is invalid: [spec.color: Unsupported value: "pink": supported values: "red", "blue", spec.replicas: Invalid value: -1: spec.replicas in body should be greater than or equal to 0, spec.port: Invalid value: "number": spec.port in body must be of type integer,string: "number"]',
    );
    assert.deepEqual(
      invalid.body.details.causes.map((c: { field: string }) => c.field),
      ['spec.color', 'spec.replicas', 'spec.port'],
    );
    const missing = await s.request('POST', WIDGETS, widget('w4', {}));
    assert.equal(missing.status, 422);
    assert.match(missing.body.message, /spec\.color: Required value/);
  });

  it('take JSON, merge and apply patches; strategic merge is 415', async () => {
    const merge = await s.request(
      'PATCH',
      `${WIDGETS}/w1`,
      { spec: { color: 'blue' } },
      {
        'content-type': 'application/merge-patch+json',
      },
    );
    assert.equal(merge.status, 200, merge.text);
    assert.equal(merge.body.spec.color, 'blue');
    assert.equal(merge.body.metadata.generation, 2);
    const json = await s.request(
      'PATCH',
      `${WIDGETS}/w1`,
      [{ op: 'replace', path: '/spec/replicas', value: 3 }],
      {
        'content-type': 'application/json-patch+json',
      },
    );
    assert.equal(json.body.spec.replicas, 3);
    const smp = await s.request(
      'PATCH',
      `${WIDGETS}/w1`,
      { spec: { color: 'red' } },
      {
        'content-type': 'application/strategic-merge-patch+json',
      },
    );
    assert.equal(smp.status, 415);
    assert.equal(
      smp.body.message,
      'the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml',
    );
    const applied = await s.request(
      'PATCH',
      `${WIDGETS}/applied?fieldManager=me`,
      widget('applied', { color: 'red', tags: ['a', 'b'] }),
      { 'content-type': 'application/apply-patch+yaml' },
    );
    assert.equal(applied.status, 201, applied.text);
    const entry = applied.body.metadata.managedFields.find((m: { manager: string }) => m.manager === 'me');
    assert.equal(entry.operation, 'Apply');
    assert.ok(entry.fieldsV1['f:spec']['f:color']);
  });

  it('keep spec and status apart, and bump generation only on spec changes', async () => {
    const cur = (await s.request('GET', `${WIDGETS}/w1`)).body;
    const status = await s.request('PUT', `${WIDGETS}/w1/status`, {
      ...cur,
      spec: { color: 'red' },
      status: { phase: 'Ready', replicas: 2, selector: 'app=w' },
    });
    assert.equal(status.status, 200, status.text);
    assert.equal(status.body.status.phase, 'Ready');
    assert.equal(status.body.spec.color, 'blue');
    assert.equal(status.body.metadata.generation, cur.metadata.generation);
    const main = await s.request('PUT', `${WIDGETS}/w1`, { ...status.body, status: { phase: 'Nope' } });
    assert.equal(main.body.status.phase, 'Ready');
  });

  it('scale through /scale at the CRD paths', async () => {
    const scale = (await s.request('GET', `${WIDGETS}/w1/scale`)).body;
    assert.equal(scale.kind, 'Scale');
    assert.deepEqual(scale.spec, { replicas: 3 });
    assert.deepEqual(scale.status, { replicas: 2, selector: 'app=w' });
    const patched = await s.request(
      'PATCH',
      `${WIDGETS}/w1/scale`,
      { spec: { replicas: 5 } },
      {
        'content-type': 'application/merge-patch+json',
      },
    );
    assert.equal(patched.status, 200, patched.text);
    assert.equal((await s.request('GET', `${WIDGETS}/w1`)).body.spec.replicas, 5);
  });

  it('list with label and selectable-field selectors, and print their columns', async () => {
    await s.request('POST', WIDGETS, widget('labelled', { color: 'red' }, { team: 'a' }));
    const byLabel = (await s.request('GET', `${WIDGETS}?labelSelector=team%3Da`)).body;
    assert.deepEqual(
      byLabel.items.map((i: { metadata: { name: string } }) => i.metadata.name),
      ['labelled'],
    );
    const byField = (await s.request('GET', `${WIDGETS}?fieldSelector=spec.color%3Dblue`)).body;
    assert.deepEqual(
      byField.items.map((i: { metadata: { name: string } }) => i.metadata.name),
      ['w1'],
    );
    const bad = await s.request('GET', `${WIDGETS}?fieldSelector=spec.size%3D1`);
    assert.equal(bad.status, 400);
    assert.equal(bad.body.message, 'field label not supported: spec.size');
    const table = (
      await s.request('GET', `${WIDGETS}/w1`, undefined, {
        accept: 'application/json;as=Table;v=v1;g=meta.k8s.io',
      })
    ).body;
    assert.deepEqual(
      table.columnDefinitions.map((c: { name: string; priority: number }) => [c.name, c.priority]),
      [
        ['Name', 0],
        ['Color', 0],
        ['Replicas', 0],
        ['Phase', 1],
        ['Age', 0],
      ],
    );
    assert.deepEqual(table.rows[0].cells.slice(0, 4), ['w1', 'blue', 5, 'Ready']);
  });

  it('are in the OpenAPI documents with their schema', async () => {
    const v3 = (await s.request('GET', '/openapi/v3/apis/example.com/v1')).body;
    const def = v3.components.schemas['com.example.v1.Widget'];
    assert.equal(def.properties.spec.properties.color.description, 'The colour of the widget.');
    assert.deepEqual(def['x-kubernetes-group-version-kind'], [
      { group: 'example.com', version: 'v1', kind: 'Widget' },
    ]);
    assert.ok(v3.paths['/apis/example.com/v1/namespaces/{namespace}/widgets/{name}']);
    const v2 = (await s.request('GET', '/openapi/v2')).body;
    assert.ok(v2.definitions['com.example.v1.Widget']);
  });
});

describe('deleting a CustomResourceDefinition', () => {
  it('waits for objects that have finalizers, and refuses new objects meanwhile', async () => {
    const held = await s.request('POST', WIDGETS, {
      ...widget('held', { color: 'red' }),
      metadata: { name: 'held', finalizers: ['example.com/hold'] },
    });
    assert.equal(held.status, 201, held.text);
    assert.equal((await s.request('DELETE', `${CRDS}/widgets.example.com`)).status, 202);
    await s.api.crds.idle();
    const crd = (await s.request('GET', `${CRDS}/widgets.example.com`)).body;
    const terminating = crd.status.conditions.find((c: { type: string }) => c.type === 'Terminating');
    assert.equal(terminating.reason, 'InstanceDeletionInProgress');
    const refused = await s.request('POST', WIDGETS, widget('late', { color: 'red' }));
    assert.equal(refused.status, 405);
    assert.equal(refused.body.message, 'create not allowed while custom resource definition is terminating');
    const release = await s.request(
      'PATCH',
      `${WIDGETS}/held`,
      { metadata: { finalizers: null } },
      {
        'content-type': 'application/merge-patch+json',
      },
    );
    assert.equal(release.status, 200, release.text);
  });

  it('deletes its objects, then itself, and the kind leaves discovery', async () => {
    for (let i = 0; i < 50; i++) {
      await s.api.crds.idle();
      if ((await s.request('GET', `${CRDS}/widgets.example.com`)).status === 404) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal((await s.request('GET', `${CRDS}/widgets.example.com`)).status, 404);
    assert.equal((await s.request('GET', WIDGETS)).status, 404);
    const groups = (await s.request('GET', '/apis')).body.groups.map((g: { name: string }) => g.name);
    assert.ok(!groups.includes('example.com'));
    assert.equal(await s.store.count('/registry/example.com/widgets/'), 0);
  });
});
