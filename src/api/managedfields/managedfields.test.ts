import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isApiError } from '../errors.ts';
import { kubernetesPatchSchema } from '../patch/index.ts';
import { builtinTypeModel } from '../schema/index.ts';
import { FieldSet } from './fieldpath.ts';
import {
  ApplyConflictError,
  type ApplyOptions,
  apply,
  fieldSetOf,
  formatApplyConflicts,
  type ManagedFieldsEntry,
  update,
} from './index.ts';
import { TypeResolver } from './schema.ts';
import { changedFields, compare, zeroValue } from './typed.ts';

const CONFIGMAP = 'k8s.io.api.core.v1.ConfigMap';
const DEPLOYMENT = 'k8s.io.api.apps.v1.Deployment';
const SERVICE = 'k8s.io.api.core.v1.Service';
const T0 = '2024-01-01T00:00:00Z';
const T1 = '2024-01-01T00:01:00Z';
const T2 = '2024-01-01T00:02:00Z';

type Obj = Record<string, any>;
type Result = { object: Obj; managedFields: ManagedFieldsEntry[] };

const configMap = (data: Record<string, string>, extra: Obj = {}): Obj => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name: 'cm', namespace: 'default', ...extra },
  data,
});

function applyCM(
  live: Obj | undefined,
  applied: Obj,
  manager: string,
  more: Partial<ApplyOptions> = {},
): Result {
  return apply({
    live,
    applied,
    manager,
    force: false,
    apiVersion: 'v1',
    now: T1,
    rootMessage: CONFIGMAP,
    ...more,
  });
}

/** The stored object after a write: what the next request sees as live. */
const stored = (obj: Obj, managedFields: ManagedFieldsEntry[]): Obj => ({
  ...obj,
  metadata: { ...obj.metadata, managedFields },
});

const entry = (entries: ManagedFieldsEntry[], manager: string, operation = 'Apply') =>
  entries.find((e) => e.manager === manager && e.operation === operation);

function conflictOf(fn: () => unknown): ApplyConflictError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ApplyConflictError, `expected a conflict, got ${err}`);
    return err;
  }
  assert.fail('expected an ApplyConflictError');
}

describe('apply: ConfigMap', () => {
  it('creates the object and records exactly the applied fields', () => {
    const applied = configMap({ a: '1' }, { labels: { app: 'x' } });
    const { object, managedFields } = applyCM(undefined, applied, 'kubectl');
    assert.deepEqual(
      { ...object, metadata: { ...object.metadata, managedFields: undefined } },
      {
        ...applied,
        metadata: { ...applied.metadata, managedFields: undefined },
      },
    );
    // Upstream records an Apply of data.a as the key only: data is a struct
    // field, tracked through its entries (no "." for it).
    assert.deepEqual(managedFields, [
      {
        manager: 'kubectl',
        operation: 'Apply',
        apiVersion: 'v1',
        time: T1,
        fieldsType: 'FieldsV1',
        fieldsV1: { 'f:data': { 'f:a': {} }, 'f:metadata': { 'f:labels': { 'f:app': {} } } },
      },
    ]);
    assert.deepEqual((object.metadata as Obj).managedFields, managedFields);
  });

  it('the Apply entry is fieldSetOf(applied)', () => {
    const applied = configMap({ a: '1', b: '2' });
    const { managedFields } = applyCM(undefined, applied, 'kubectl');
    assert.deepEqual(managedFields[0]?.fieldsV1, fieldSetOf(applied, CONFIGMAP).toFieldsV1());
  });

  it('re-applying without a key deletes it', () => {
    const first = applyCM(undefined, configMap({ a: '1', b: '2' }), 'kubectl');
    const second = applyCM(first.object, configMap({ a: '1' }), 'kubectl', { now: T2 });
    assert.deepEqual(second.object.data, { a: '1' });
    assert.deepEqual(second.managedFields[0]?.fieldsV1, { 'f:data': { 'f:a': {} } });
    assert.equal(second.managedFields[0]?.time, T2);
  });

  it('removing the last key drops the emptied map', () => {
    const first = applyCM(undefined, configMap({ a: '1' }), 'kubectl');
    const second = applyCM(
      first.object,
      { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cm' } },
      'kubectl',
    );
    assert.equal('data' in second.object, false);
    // Nothing left to own: the applier's entry goes (upstream's stripped fields only).
    assert.deepEqual(second.managedFields, []);
    assert.equal('managedFields' in (second.object.metadata as Obj), false);
  });

  it('a different value for a field another applier owns conflicts', () => {
    const first = applyCM(undefined, configMap({ a: '1' }), 'alice');
    const err = conflictOf(() => applyCM(first.object, configMap({ a: '2' }), 'bob'));
    assert.equal(err.message, 'Apply failed with 1 conflict: conflict with "alice": .data.a');
    assert.equal(err.code, 409);
    assert.equal(err.reason, 'Conflict');
    assert.deepEqual(err.status.details?.causes, [
      { reason: 'FieldManagerConflict', message: 'conflict with "alice"', field: '.data.a' },
    ]);
    assert.deepEqual(err.conflicts, [
      { manager: 'alice', operation: 'Apply', apiVersion: 'v1', field: '.data.a' },
    ]);
  });

  it('the same value is shared ownership, not a conflict', () => {
    const first = applyCM(undefined, configMap({ a: '1' }), 'alice');
    const second = applyCM(first.object, configMap({ a: '1', b: '2' }), 'bob', { now: T2 });
    assert.deepEqual(entry(second.managedFields, 'alice')?.fieldsV1, { 'f:data': { 'f:a': {} } });
    assert.deepEqual(entry(second.managedFields, 'bob')?.fieldsV1, { 'f:data': { 'f:a': {}, 'f:b': {} } });
    // alice keeps its time; the entries stay in upstream's order (oldest first).
    assert.deepEqual(
      second.managedFields.map((e) => [e.manager, e.time]),
      [
        ['alice', T1],
        ['bob', T2],
      ],
    );
    // A shared field stays when one of its owners stops applying it.
    const third = applyCM(second.object, configMap({ b: '2' }), 'bob');
    assert.deepEqual(third.object.data, { a: '1', b: '2' });
  });

  it('force takes conflicting fields over', () => {
    const first = applyCM(undefined, configMap({ a: '1', c: '3' }), 'alice');
    const second = applyCM(first.object, configMap({ a: '2' }), 'bob', { force: true });
    assert.deepEqual(second.object.data, { a: '2', c: '3' });
    assert.deepEqual(entry(second.managedFields, 'alice')?.fieldsV1, { 'f:data': { 'f:c': {} } });
    assert.deepEqual(entry(second.managedFields, 'bob')?.fieldsV1, { 'f:data': { 'f:a': {} } });
    // alice no longer owns a: applying without it leaves bob's value alone.
    const third = applyCM(second.object, configMap({ c: '3' }), 'alice');
    assert.deepEqual(third.object.data, { a: '2', c: '3' });
  });

  it('lists every conflict, grouped by manager, like upstream', () => {
    let live = applyCM(undefined, configMap({ a: '1', b: '1' }), 'alice').object;
    live = stored(
      live,
      update({
        live,
        updated: { ...live, data: { a: '1', b: '1', c: '1' } },
        manager: 'kubectl-edit',
        apiVersion: 'v1',
        now: T2,
        rootMessage: CONFIGMAP,
      }),
    );
    live = { ...live, data: { a: '1', b: '1', c: '1' } };
    const err = conflictOf(() => applyCM(live, configMap({ a: '2', b: '2', c: '2' }), 'bob'));
    assert.equal(
      err.message,
      'Apply failed with 3 conflicts: conflicts with "alice":\n- .data.a\n- .data.b\n' +
        'conflicts with "kubectl-edit" using v1:\n- .data.c',
    );
    assert.deepEqual(
      err.status.details?.causes?.map((c) => [c.message, c.field]),
      [
        ['conflict with "alice"', '.data.a'],
        ['conflict with "alice"', '.data.b'],
        ['conflict with "kubectl-edit" using v1', '.data.c'],
      ],
    );
  });

  it('rejects managedFields in the applied configuration', () => {
    const applied = configMap({ a: '1' }, { managedFields: [] });
    assert.throws(
      () => applyCM(undefined, applied, 'kubectl'),
      (err) => isApiError(err, 'BadRequest') && err.message === 'metadata.managedFields must be nil',
    );
  });

  it('a new applier whose apply changes nothing gets no time, as upstream', () => {
    const first = applyCM(undefined, configMap({ a: '1' }), 'alice');
    const second = applyCM(first.object, configMap({ a: '1' }), 'bob', { now: T2 });
    const bob = entry(second.managedFields, 'bob');
    assert.deepEqual(bob?.fieldsV1, { 'f:data': { 'f:a': {} } });
    assert.equal(bob && 'time' in bob, false);
  });

  it('an apply that changes nothing keeps the applier time', () => {
    const first = applyCM(undefined, configMap({ a: '1' }), 'kubectl');
    const second = applyCM(first.object, configMap({ a: '1' }), 'kubectl', { now: T2 });
    assert.equal(second.managedFields[0]?.time, T1);
  });
});

describe('update', () => {
  const base = { rootMessage: CONFIGMAP, apiVersion: 'v1' };

  it('on create owns every field it sets, maps themselves included', () => {
    const created = configMap({ a: '1' }, { labels: { app: 'x' } });
    const entries = update({
      ...base,
      live: undefined,
      updated: created,
      manager: 'kubectl-create',
      now: T0,
    });
    assert.deepEqual(entries, [
      {
        manager: 'kubectl-create',
        operation: 'Update',
        apiVersion: 'v1',
        time: T0,
        fieldsType: 'FieldsV1',
        fieldsV1: {
          'f:data': { '.': {}, 'f:a': {} },
          'f:metadata': { 'f:labels': { '.': {}, 'f:app': {} } },
        },
      },
    ]);
  });

  it('gives identical creates the same fields, each its own copy, and a create that differs its own', () => {
    const create = (name: string, labels: Record<string, string>) =>
      update({
        ...base,
        live: undefined,
        updated: configMap({ a: '1' }, { name, uid: `uid-${name}`, labels }),
        manager: 'm',
        now: T0,
      });
    const one = create('one', { app: 'x' });
    const two = create('two', { app: 'x' });
    assert.deepEqual(one, two);
    assert.notEqual(one[0]!.fieldsV1, two[0]!.fieldsV1);
    // Changing one copy changes nothing for the next create.
    (one[0]!.fieldsV1 as Record<string, unknown>)['f:data'] = {};
    assert.deepEqual(create('three', { app: 'x' }), two);
    // A label key is a field: another key, other fields.
    const other = create('four', { tier: 'y' });
    assert.deepEqual(other[0]!.fieldsV1, {
      'f:data': { '.': {}, 'f:a': {} },
      'f:metadata': { 'f:labels': { '.': {}, 'f:tier': {} } },
    });
  });

  it('a changed field moves to the updater, and a later apply of another value conflicts with it', () => {
    const first = applyCM(undefined, configMap({ a: '1', b: '2' }), 'kubectl');
    const edited = { ...first.object, data: { a: 'edited', b: '2' } };
    const entries = update({
      ...base,
      live: first.object,
      updated: edited,
      manager: 'kubectl-edit',
      now: T2,
    });
    assert.deepEqual(entry(entries, 'kubectl')?.fieldsV1, { 'f:data': { 'f:b': {} } });
    assert.deepEqual(entry(entries, 'kubectl-edit', 'Update'), {
      manager: 'kubectl-edit',
      operation: 'Update',
      apiVersion: 'v1',
      time: T2,
      fieldsType: 'FieldsV1',
      fieldsV1: { 'f:data': { 'f:a': {} } },
    });
    // Apply entries come first.
    assert.deepEqual(
      entries.map((e) => e.operation),
      ['Apply', 'Update'],
    );
    const err = conflictOf(() => applyCM(stored(edited, entries), configMap({ a: '3', b: '2' }), 'kubectl'));
    assert.equal(err.message, 'Apply failed with 1 conflict: conflict with "kubectl-edit" using v1: .data.a');
    // Applying the value it now has is fine, and shares it.
    const ok = applyCM(stored(edited, entries), configMap({ a: 'edited', b: '2' }), 'kubectl');
    assert.deepEqual(entry(ok.managedFields, 'kubectl')?.fieldsV1, { 'f:data': { 'f:a': {}, 'f:b': {} } });
    assert.deepEqual(entry(ok.managedFields, 'kubectl-edit', 'Update')?.fieldsV1, {
      'f:data': { 'f:a': {} },
    });
  });

  it("keeps an untouched manager's stored encoding, and writes a client's rewritten entry out anew", () => {
    const first = applyCM(undefined, configMap({ a: '1', b: '2' }), 'kubectl');
    const live = first.object;
    const kubectlFields = entry(
      (live.metadata as Obj).managedFields as ManagedFieldsEntry[],
      'kubectl',
    )!.fieldsV1;
    assert.ok(kubectlFields);
    // A read-modify-write of another field: kubectl's entry is the stored one, as it was.
    const entries = update({
      ...base,
      live,
      updated: { ...live, metadata: { ...(live.metadata as Obj) }, data: { a: '1', b: '2', c: '3' } },
      manager: 'editor',
      now: T2,
    });
    assert.equal(entry(entries, 'kubectl')?.fieldsV1, kubectlFields);
    // The same fields, spelled in another key order by the client: upstream
    // decodes and re-encodes, so the entry comes back in canonical order.
    const meta = live.metadata as Obj;
    const reordered = (meta.managedFields as ManagedFieldsEntry[]).map((e) => ({
      ...e,
      fieldsV1: { 'f:data': { 'f:b': {}, 'f:a': {}, '.': {} } },
    }));
    const rewritten = update({
      ...base,
      live,
      updated: { ...live, metadata: { ...meta, managedFields: reordered }, data: { a: '1', b: '2', c: '3' } },
      manager: 'editor',
      now: T2,
    });
    const fields = entry(rewritten, 'kubectl')!.fieldsV1;
    assert.deepEqual(Object.keys(fields['f:data'] as Obj), ['.', 'f:a', 'f:b']);
  });

  it('removed fields lose every owner, and empty managers are dropped', () => {
    const first = applyCM(undefined, configMap({ a: '1' }), 'alice');
    const entries = update({
      ...base,
      live: first.object,
      updated: { ...first.object, data: {} },
      manager: 'editor',
      now: T2,
    });
    assert.deepEqual(entries, []);
  });

  it('an update that changes nothing keeps the entries and their times', () => {
    const first = applyCM(undefined, configMap({ a: '1' }), 'alice');
    const entries = update({
      ...base,
      live: first.object,
      updated: first.object,
      manager: 'editor',
      now: T2,
    });
    assert.deepEqual(entries, first.managedFields);
  });

  it('takes managedFields from the new object when it has some, and resets on []', () => {
    const first = applyCM(undefined, configMap({ a: '1' }), 'alice');
    const reset = update({
      ...base,
      live: first.object,
      updated: { ...first.object, metadata: { ...first.object.metadata, managedFields: [] } },
      manager: 'editor',
      now: T2,
    });
    assert.deepEqual(reset, []);
    const given: ManagedFieldsEntry[] = [
      {
        manager: 'x',
        operation: 'Update',
        apiVersion: 'v1',
        fieldsType: 'FieldsV1',
        fieldsV1: { 'f:data': {} },
      },
    ];
    const replaced = update({
      ...base,
      live: first.object,
      updated: { ...first.object, metadata: { ...first.object.metadata, managedFields: given } },
      manager: 'editor',
      now: T2,
    });
    assert.deepEqual(replaced, given);
  });

  it('a subresource write keeps the live entries and records its subresource', () => {
    const first = applyCM(undefined, configMap({ a: '1' }), 'alice');
    const entries = update({
      ...base,
      live: first.object,
      updated: {
        ...first.object,
        metadata: { ...first.object.metadata, managedFields: [] },
        data: { a: '1', s: 'x' },
      },
      manager: 'ctrl',
      subresource: 'status',
      now: T2,
    });
    assert.deepEqual(entry(entries, 'ctrl', 'Update'), {
      manager: 'ctrl',
      operation: 'Update',
      apiVersion: 'v1',
      time: T2,
      fieldsType: 'FieldsV1',
      fieldsV1: { 'f:data': { 'f:s': {} } },
      subresource: 'status',
    });
    assert.ok(entry(entries, 'alice'));
  });

  it('folds the oldest of more than 10 update managers into ancient-changes', () => {
    let live: Obj = configMap({});
    let entries: ManagedFieldsEntry[] = [];
    for (let i = 0; i < 12; i++) {
      const updated = { ...live, data: { ...live.data, [`k${i}`]: 'v' } };
      const now = `2024-01-01T00:00:${String(i).padStart(2, '0')}Z`;
      entries = update({ ...base, live: stored(live, entries), updated, manager: `m${i}`, now });
      live = updated;
    }
    assert.equal(entries.length, 10);
    const ancient = entry(entries, 'ancient-changes', 'Update');
    assert.deepEqual(ancient?.fieldsV1, { 'f:data': { 'f:k0': {}, 'f:k1': {}, 'f:k2': {} } });
    assert.equal(ancient?.time, '2024-01-01T00:00:02Z');
    assert.equal(
      entries.some((e) => e.manager === 'm0' || e.manager === 'm2'),
      false,
    );
  });
});

describe('apply: Deployment containers', () => {
  const deployment = (containers: Obj[], extra: Obj = {}): Obj => ({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'd' },
    spec: {
      selector: { matchLabels: { app: 'd' } },
      template: { metadata: { labels: { app: 'd' } }, spec: { containers } },
      ...extra,
    },
  });
  const applyD = (live: Obj | undefined, applied: Obj, manager: string, force = false): Result =>
    apply({ live, applied, manager, force, apiVersion: 'apps/v1', now: T1, rootMessage: DEPLOYMENT });
  const containersOf = (obj: Obj): Obj[] => obj.spec.template.spec.containers;

  it('records containers by name, ports by containerPort and protocol, the selector as a whole', () => {
    const applied = deployment([{ name: 'app', image: 'nginx', ports: [{ containerPort: 80 }] }], {
      replicas: 2,
    });
    const { managedFields } = applyD(undefined, applied, 'kubectl');
    assert.deepEqual(managedFields[0]?.fieldsV1, {
      'f:spec': {
        'f:replicas': {},
        'f:selector': {},
        'f:template': {
          'f:metadata': { 'f:labels': { 'f:app': {} } },
          'f:spec': {
            'f:containers': {
              'k:{"name":"app"}': {
                '.': {},
                'f:image': {},
                'f:name': {},
                'f:ports': { 'k:{"containerPort":80,"protocol":"TCP"}': { '.': {}, 'f:containerPort': {} } },
              },
            },
          },
        },
      },
    });
  });

  it('merges containers by name across managers and keeps their order', () => {
    const first = applyD(undefined, deployment([{ name: 'app', image: 'nginx:1' }]), 'alice');
    const second = applyD(first.object, deployment([{ name: 'sidecar', image: 'envoy' }]), 'bob');
    assert.deepEqual(containersOf(second.object), [
      { name: 'app', image: 'nginx:1' },
      { name: 'sidecar', image: 'envoy' },
    ]);
    // alice changes its container; bob's is untouched.
    const third = applyD(second.object, deployment([{ name: 'app', image: 'nginx:2' }]), 'alice');
    assert.deepEqual(containersOf(third.object), [
      { name: 'app', image: 'nginx:2' },
      { name: 'sidecar', image: 'envoy' },
    ]);
    // bob changing alice's image conflicts on that field only.
    const err = conflictOf(() => applyD(third.object, deployment([{ name: 'app', image: 'other' }]), 'bob'));
    assert.equal(
      err.message,
      'Apply failed with 1 conflict: conflict with "alice": .spec.template.spec.containers[name="app"].image',
    );
  });

  it('follows the applied order for items both lists have', () => {
    const c = (name: string) => ({ name, image: name });
    const first = applyD(undefined, deployment([c('a'), c('b'), c('c')]), 'alice');
    const mine = stored(first.object, []);
    const second = applyD(mine, deployment([c('c'), c('a')]), 'bob');
    assert.deepEqual(
      containersOf(second.object).map((x) => x.name),
      ['b', 'c', 'a'],
    );
  });

  it('removes a container only its applier owned', () => {
    const first = applyD(
      undefined,
      deployment([
        { name: 'app', image: 'nginx' },
        { name: 'old', image: 'busybox' },
      ]),
      'alice',
    );
    const second = applyD(first.object, deployment([{ name: 'app', image: 'nginx' }]), 'alice');
    assert.deepEqual(containersOf(second.object), [{ name: 'app', image: 'nginx' }]);
    assert.deepEqual(
      Object.keys(
        (second.managedFields[0]!.fieldsV1 as Obj)['f:spec']['f:template']['f:spec']['f:containers'],
      ),
      ['k:{"name":"app"}'],
    );
  });

  it('keeps a container another applier also applies', () => {
    const both = deployment([
      { name: 'app', image: 'nginx' },
      { name: 'shared', image: 'busybox' },
    ]);
    const first = applyD(undefined, both, 'alice');
    const second = applyD(first.object, deployment([{ name: 'shared', image: 'busybox' }]), 'bob');
    const third = applyD(second.object, deployment([{ name: 'app', image: 'nginx' }]), 'alice');
    assert.deepEqual(
      containersOf(third.object).map((x) => x.name),
      ['app', 'shared'],
    );
  });

  it('keeps fields an updater took over when the applier drops them', () => {
    const first = applyD(undefined, deployment([{ name: 'app', image: 'nginx' }], { replicas: 1 }), 'alice');
    const scaled = { ...first.object, spec: { ...first.object.spec, replicas: 5 } };
    const entries = update({
      live: first.object,
      updated: scaled,
      manager: 'hpa',
      apiVersion: 'apps/v1',
      now: T2,
      rootMessage: DEPLOYMENT,
    });
    const second = applyD(stored(scaled, entries), deployment([{ name: 'app', image: 'nginx' }]), 'alice');
    assert.equal(second.object.spec.replicas, 5);
  });

  it('records a create through update like upstream: non-pointer structs are not owned themselves', () => {
    const created = deployment([{ name: 'app', image: 'nginx', ports: [{ containerPort: 80 }] }]);
    const [e] = update({
      live: undefined,
      updated: created,
      manager: 'kubectl-create',
      apiVersion: 'apps/v1',
      now: T0,
      rootMessage: DEPLOYMENT,
    });
    assert.deepEqual(e?.fieldsV1, {
      'f:spec': {
        'f:selector': {},
        'f:template': {
          'f:metadata': { 'f:labels': { '.': {}, 'f:app': {} } },
          'f:spec': {
            'f:containers': {
              'k:{"name":"app"}': {
                '.': {},
                'f:image': {},
                'f:name': {},
                'f:ports': {
                  '.': {},
                  'k:{"containerPort":80,"protocol":"TCP"}': { '.': {}, 'f:containerPort': {} },
                },
              },
            },
          },
        },
      },
    });
  });

  it('rejects duplicate keys in the applied configuration', () => {
    const applied = deployment([
      { name: 'app', image: 'a' },
      { name: 'app', image: 'b' },
    ]);
    assert.throws(
      () => applyD(undefined, applied, 'kubectl'),
      (err) =>
        isApiError(err) && err.code === 500 && /duplicate entries for key \[name="app"\]/.test(err.message),
    );
  });

  it('leaves reset fields out of ownership and conflicts', () => {
    const withStatus = { ...deployment([{ name: 'app', image: 'x' }]), status: { replicas: 3 } };
    const opts = { apiVersion: 'apps/v1', now: T1, rootMessage: DEPLOYMENT, resetFields: [['status']] };
    const first: Result = apply({
      ...opts,
      live: undefined,
      applied: withStatus,
      manager: 'alice',
      force: false,
    });
    assert.equal('f:status' in first.managedFields[0]!.fieldsV1, false);
    const other = { ...deployment([{ name: 'app', image: 'x' }]), status: { replicas: 4 } };
    const second = apply({ ...opts, live: first.object, applied: other, manager: 'bob', force: false });
    assert.equal(second.managedFields.length, 2);
  });
});

describe('apply: Service ports', () => {
  const service = (ports: Obj[]): Obj => ({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 's' },
    spec: { selector: { app: 's' }, ports },
  });
  const applyS = (live: Obj | undefined, applied: Obj, manager: string): Result =>
    apply({ live, applied, manager, force: false, apiVersion: 'v1', now: T1, rootMessage: SERVICE });

  it('keys ports by port and protocol, defaulting the protocol to TCP', () => {
    const first = applyS(undefined, service([{ port: 80, targetPort: 8080 }]), 'alice');
    assert.deepEqual(first.managedFields[0]?.fieldsV1, {
      'f:spec': {
        'f:ports': { 'k:{"port":80,"protocol":"TCP"}': { '.': {}, 'f:port': {}, 'f:targetPort': {} } },
        // The selector of a Service is an atomic map upstream.
        'f:selector': {},
      },
    });
    const second = applyS(
      first.object,
      service([
        { port: 53, protocol: 'UDP' },
        { port: 80, protocol: 'TCP', targetPort: 8080 },
      ]),
      'bob',
    );
    assert.deepEqual(second.object.spec.ports, [
      { port: 53, protocol: 'UDP' },
      { port: 80, targetPort: 8080, protocol: 'TCP' },
    ]);
    const err = conflictOf(() => applyS(second.object, service([{ port: 80, targetPort: 9090 }]), 'carol'));
    assert.deepEqual(
      err.conflicts.map((c) => [c.manager, c.field]),
      [
        ['alice', '.spec.ports[port=80,protocol="TCP"].targetPort'],
        ['bob', '.spec.ports[port=80,protocol="TCP"].targetPort'],
      ],
    );
  });
});

describe('formatApplyConflicts', () => {
  it('names updaters with their version and subresource', () => {
    const { message } = formatApplyConflicts([
      {
        manager: 'ctrl',
        operation: 'Update',
        apiVersion: 'apps/v1',
        subresource: 'status',
        field: '.status.x',
      },
    ]);
    assert.equal(
      message,
      'Apply failed with 1 conflict: conflict with "ctrl" with subresource "status" using apps/v1: .status.x',
    );
  });
});

describe('apply: kubectl after client-side apply', () => {
  const LAST = 'kubectl.kubernetes.io/last-applied-configuration';
  /** A ConfigMap as `kubectl apply` (client-side) leaves it. */
  function clientSideApplied(data: Record<string, string>): Obj {
    const config = configMap(data);
    const obj = configMap(data, { annotations: { [LAST]: `${JSON.stringify(config)}\n` } });
    const entries = update({
      live: undefined,
      updated: obj,
      manager: 'kubectl-client-side-apply',
      apiVersion: 'v1',
      now: T0,
      rootMessage: CONFIGMAP,
    });
    return stored(obj, entries);
  }

  it('takes over the fields the annotation still matches, and rewrites the annotation', () => {
    const live = clientSideApplied({ a: '1' });
    const { object, managedFields } = applyCM(live, configMap({ a: '2' }), 'kubectl');
    assert.deepEqual(object.data, { a: '2' });
    assert.deepEqual(entry(managedFields, 'kubectl')?.fieldsV1, { 'f:data': { 'f:a': {} } });
    assert.equal(
      object.metadata.annotations[LAST],
      '{"apiVersion":"v1","data":{"a":"2"},"kind":"ConfigMap","metadata":{"name":"cm","namespace":"default"}}\n',
    );
    // Another manager name gets the plain conflict.
    const err = conflictOf(() => applyCM(live, configMap({ a: '2' }), 'other'));
    assert.equal(
      err.message,
      'Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using v1: .data.a',
    );
  });

  it('still conflicts on fields changed since the last client-side apply', () => {
    const live = clientSideApplied({ a: '1' });
    const edited = { ...live, data: { a: 'edited' } };
    const entries = update({
      live,
      updated: edited,
      manager: 'kubectl-client-side-apply',
      apiVersion: 'v1',
      now: T1,
      rootMessage: CONFIGMAP,
    });
    const err = conflictOf(() => applyCM(stored(edited, entries), configMap({ a: '2' }), 'kubectl'));
    assert.equal(
      err.message,
      'Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using v1: .data.a',
    );
  });
});

describe('apply: other list and struct semantics', () => {
  const applyAny = (live: Obj | undefined, applied: Obj, manager: string, rootMessage?: string): Result =>
    apply({
      live,
      applied,
      manager,
      force: false,
      apiVersion: applied.apiVersion,
      now: T1,
      ...(rootMessage ? { rootMessage } : {}),
    });

  it('merges sets as unions and prunes an applier’s own items', () => {
    const cm = (finalizers: string[]) => ({ ...configMap({}), metadata: { name: 'cm', finalizers } });
    const first = applyAny(undefined, cm(['a']), 'alice', CONFIGMAP);
    const second = applyAny(first.object, cm(['b']), 'bob', CONFIGMAP);
    assert.deepEqual(second.object.metadata.finalizers, ['a', 'b']);
    assert.deepEqual(entry(second.managedFields, 'bob')?.fieldsV1, {
      'f:metadata': { 'f:finalizers': { 'v:"b"': {} } },
    });
    const third = applyAny(second.object, cm([]), 'alice', CONFIGMAP);
    assert.deepEqual(third.object.metadata.finalizers, ['b']);
  });

  it('removes a struct the applier stopped setting, defaulted contents included', () => {
    const d = (spec: Obj) => ({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'd' }, spec });
    const first = applyAny(undefined, d({ strategy: { type: 'RollingUpdate' } }), 'alice', DEPLOYMENT);
    // Defaulting filled in a field nobody owns.
    first.object.spec.strategy.rollingUpdate = { maxSurge: '25%' };
    const second = applyAny(first.object, d({ replicas: 2 }), 'alice', DEPLOYMENT);
    assert.deepEqual(second.object.spec, { replicas: 2 });
  });

  it('removes a container whose only other owner is an updater of one of its fields', () => {
    const d = (containers: Obj[]) => ({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'd' },
      spec: { template: { spec: { containers } } },
    });
    const first = applyAny(
      undefined,
      d([
        { name: 'a', image: 'x' },
        { name: 'b', image: 'y' },
      ]),
      'alice',
      DEPLOYMENT,
    );
    const edited = structuredClone(first.object);
    edited.spec.template.spec.containers[0].image = 'z';
    const entries = update({
      live: first.object,
      updated: edited,
      manager: 'editor',
      apiVersion: 'apps/v1',
      now: T2,
      rootMessage: DEPLOYMENT,
    });
    const second = applyAny(stored(edited, entries), d([{ name: 'b', image: 'y' }]), 'alice', DEPLOYMENT);
    assert.deepEqual(second.object.spec.template.spec.containers, [{ name: 'b', image: 'y' }]);
    assert.equal(entry(second.managedFields, 'editor', 'Update'), undefined);
  });

  it('tracks schemaless objects key by key', () => {
    const cr = {
      apiVersion: 'example.com/v1',
      kind: 'Widget',
      metadata: { name: 'w', labels: { a: 'b' } },
      spec: { size: { value: 1 }, tags: ['x'] },
    };
    const { managedFields } = applyAny(undefined, cr, 'm');
    assert.deepEqual(managedFields[0]?.fieldsV1, {
      'f:metadata': { 'f:labels': { 'f:a': {} } },
      'f:spec': { '.': {}, 'f:size': { '.': {}, 'f:value': {} }, 'f:tags': {} },
    });
  });
});

describe('changedFields', () => {
  const r = new TypeResolver(builtinTypeModel(), kubernetesPatchSchema);
  const pod = r.root('k8s.io.api.core.v1.Pod');
  const reset = FieldSet.of([{ field: 'status' }]);
  const strip = FieldSet.of(
    [{ field: 'apiVersion' }],
    [{ field: 'metadata' }],
    [{ field: 'metadata' }, { field: 'name' }],
  );
  const created: Obj = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'p', namespace: 'default', labels: { app: 'a' }, annotations: {} },
    spec: {
      containers: [
        {
          name: 'app',
          image: 'busybox',
          command: ['sleep', '1'],
          env: [{ name: 'A', value: '1' }],
          ports: [{ containerPort: 80 }, { containerPort: 80, protocol: 'UDP' }],
          resources: { requests: { cpu: '10m' } },
        },
        { name: 'side', image: 'x', ports: [] },
      ],
      tolerations: [{ key: 'k', operator: 'Exists' }],
      nodeSelector: { disk: 'ssd' },
      volumes: [{ name: 'v', emptyDir: {} }],
      securityContext: {},
    },
    status: { phase: 'Pending' },
  };
  const live: Obj = {
    ...created,
    metadata: { ...created.metadata, labels: { app: 'b', gone: 'x' } },
    spec: {
      ...created.spec,
      containers: [
        { ...created.spec.containers[1], image: 'y' },
        { ...created.spec.containers[0], env: [], command: ['sleep', '2'] },
        { name: 'old', image: 'z' },
      ],
      volumes: null,
    },
    status: { phase: 'Running' },
  };
  // What update() took before changedFields: the whole comparison, then the set operations.
  const viaCompare = (lhs: unknown, rhs: unknown) => {
    const c = compare(r, pod, lhs, rhs);
    return c.modified.union(c.added).recursiveDifference(reset).difference(strip);
  };
  for (const [name, lhs, rhs] of [
    ['a create, against the zero object', zeroValue(r, pod), created],
    ['an update', live, created],
    ['the update the other way', created, live],
    ['no change', created, created],
  ] as const) {
    it(`is the comparison's modified and added fields: ${name}`, () => {
      const got = changedFields(r, pod, lhs, rhs, reset, strip);
      assert.deepEqual(got.toFieldsV1(), viaCompare(lhs, rhs).toFieldsV1());
      assert.ok(got.equals(viaCompare(lhs, rhs)));
    });
  }
});
