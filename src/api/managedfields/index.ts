// Server-side apply's field management, as upstream's field manager
// (k8s.io/apimachinery/pkg/util/managedfields, on top of
// sigs.k8s.io/structured-merge-diff) does it, for JSON objects.
//
// - apply(): merges an applied configuration (PATCH application/apply-patch+yaml)
//   into the live object, removes what the applier stopped applying, detects
//   conflicts with other managers and records the applier's fields.
// - update(): the bookkeeping for create, update and the other patch types:
//   the writer takes ownership of every field whose value it added or
//   changed; removed fields lose their owners.
// Both return metadata.managedFields entries in upstream's FieldsV1 format.
//
// The module is pure: it takes the live and new objects, the time, and the
// type model, and returns new values. What upstream does around it is the
// caller's: defaulting the merged object, resetting fields the subresource
// may not change (status on the main resource...), validation.
//
// Where it knowingly differs from upstream:
// - one API version per kind: entries written under another version are
//   compared as if they were this one (upstream converts the objects);
// - custom resources are schemaless (every object key tracked, lists atomic)
//   rather than typed by their CRD schema;
// - upstream compares Go-decoded objects, where unset non-pointer structs
//   and required lists are present as {} and null; here only the object
//   compared against on create mimics that (see zeroValue in typed.ts), and
//   values are stored as given: nulls in an applied configuration stay, maps
//   and lists emptied by pruning are dropped (upstream nulls them and Go's
//   omitempty drops them);
// - unknown fields and values of the wrong JSON type are tracked as leaves
//   rather than rejected; typing errors (duplicate keys, keyless items) are
//   500s with reason InternalError (upstream: reason Unknown).

import { ApiError, type StatusCause } from '../errors.ts';
import { kubernetesPatchSchema, type PatchSchema } from '../patch/index.ts';
import { cloneJson, isObject, type JsonObject, jsonEqual } from '../patch/json.ts';
import { builtinTypeModel, type TypeModel } from '../schema/index.ts';
import { comparePaths, FieldSet, goJSON, type Path, pathString } from './fieldpath.ts';
import {
  capUpdateManagers,
  DEFAULT_MAX_UPDATE_MANAGERS,
  decodeManagedFields,
  describeManager,
  encodeManagedFields,
  ManagedFieldsDecodeError,
  type ManagedFieldsEntry,
  type Manager,
  managerId,
  sameJSON,
} from './managers.ts';
import { type TypeRef, TypeResolver } from './schema.ts';
import {
  changedFields,
  compare,
  merge,
  removeItems,
  TypedValueError,
  toFieldSet,
  withNamedFields,
  zeroValue,
} from './typed.ts';

export { FieldSet, type Path, type PathElement, pathString } from './fieldpath.ts';
export { DEFAULT_MAX_UPDATE_MANAGERS, type ManagedFieldsEntry } from './managers.ts';
export { type TypeRef, TypeResolver } from './schema.ts';

export interface FieldManagementOptions {
  /** The API version the request uses ("v1", "apps/v1"): recorded on Update entries. */
  apiVersion: string;
  /** The time recorded on entries that change, RFC 3339 ("2024-01-02T03:04:05Z"). */
  now: string;
  /**
   * The full proto name of the kind's message (kindMessage() in
   * src/api/schema/openapi.ts). Without one the object is schemaless, as a
   * custom resource without a schema: every object key is tracked, lists are
   * atomic.
   */
  rootMessage?: string;
  model?: TypeModel;
  patchSchema?: PatchSchema;
  /**
   * Paths nobody owns through this endpoint, upstream's reset fields: the
   * strategy resets them (e.g. [['status']] on a main resource that has a
   * status subresource, [['spec'], ['metadata']]-like sets on /status). They
   * and everything below them are left out of ownership and conflicts.
   */
  resetFields?: ReadonlyArray<readonly string[]>;
  /** The subresource written through ("status", "scale"), if any. */
  subresource?: string;
  /** How many Update entries to keep before folding the oldest into "ancient-changes". */
  maxUpdateManagers?: number;
}

export interface ApplyOptions extends FieldManagementOptions {
  /** The stored object, or undefined when the apply creates it. */
  live: object | undefined;
  /** The applied configuration (the request body). */
  applied: object;
  /** The field manager (the fieldManager query parameter). */
  manager: string;
  /** force=true: take conflicting fields over instead of failing. */
  force: boolean;
}

export interface ApplyResult {
  /** The merged object, metadata.managedFields set to `managedFields` (removed when empty). */
  object: JsonObject;
  managedFields: ManagedFieldsEntry[];
}

export interface UpdateOptions extends FieldManagementOptions {
  /** The stored object, or undefined for a create. */
  live: object | undefined;
  /** The object about to be stored. Its own managedFields, when set, replace the live ones (as upstream). */
  updated: object;
  manager: string;
  operation?: 'Update';
}

/** One field another manager owns with a different value than the applied one. */
export interface ApplyConflict {
  manager: string;
  operation: 'Apply' | 'Update';
  apiVersion: string;
  subresource?: string;
  /** The field as upstream prints it: ".data.a", ".spec.containers[name=\"c\"].image". */
  field: string;
}

/**
 * The apply conflicts, as the 409 Conflict Status upstream answers with:
 * message "Apply failed with 1 conflict: conflict with "mgr" using v1: .data.a"
 * and one FieldManagerConflict cause per field.
 */
export class ApplyConflictError extends ApiError {
  readonly conflicts: ApplyConflict[];

  constructor(conflicts: ApplyConflict[]) {
    const { message, causes } = formatApplyConflicts(conflicts);
    super(409, 'Conflict', message, { causes });
    this.name = 'ApplyConflictError';
    this.conflicts = conflicts;
  }
}

const subresourceOf = (c: ApplyConflict): string => c.subresource ?? '';
const conflictManager = (c: ApplyConflict) => ({
  manager: c.manager,
  operation: c.operation,
  apiVersion: c.apiVersion,
  subresource: subresourceOf(c),
});

/** Upstream's conflict message and Status causes (conflicts in the order apply() reports them). */
export function formatApplyConflicts(conflicts: readonly ApplyConflict[]): {
  message: string;
  causes: StatusCause[];
} {
  const causes = conflicts.map((c) => ({
    reason: 'FieldManagerConflict',
    message: `conflict with ${describeManager(conflictManager(c))}`,
    field: c.field,
  }));
  if (conflicts.length === 1) {
    const c = conflicts[0]!;
    return {
      message: `Apply failed with 1 conflict: conflict with ${describeManager(conflictManager(c))}: ${c.field}`,
      causes,
    };
  }
  const byManager = new Map<string, { who: string; fields: string[] }>();
  for (const c of conflicts) {
    const id = managerId(conflictManager(c));
    const group = byManager.get(id) ?? { who: describeManager(conflictManager(c)), fields: [] };
    group.fields.push(c.field);
    byManager.set(id, group);
  }
  const lines: string[] = [];
  for (const id of [...byManager.keys()].sort()) {
    const { who, fields } = byManager.get(id)!;
    lines.push(`conflicts with ${who}:`, ...fields.map((f) => `- ${f}`));
  }
  return { message: `Apply failed with ${conflicts.length} conflicts: ${lines.join('\n')}`, causes };
}

/**
 * Fields upstream never records as owned (its stripMetaManager): type and
 * identity metadata the server sets. Only the exact paths: labels and
 * annotations under metadata are owned as usual.
 */
const STRIPPED = FieldSet.of(
  [{ field: 'apiVersion' }],
  [{ field: 'kind' }],
  [{ field: 'metadata' }],
  ...['name', 'namespace', 'creationTimestamp', 'selfLink', 'uid', 'clusterName', 'generation'].map((f) => [
    { field: 'metadata' },
    { field: f },
  ]),
  [{ field: 'metadata' }, { field: 'managedFields' }],
  [{ field: 'metadata' }, { field: 'resourceVersion' }],
);

interface Context {
  r: TypeResolver;
  type: TypeRef;
  reset: FieldSet;
  filter: (s: FieldSet) => FieldSet;
}

// Resolvers cache the types they resolve; one per model and patch schema.
const resolvers = new WeakMap<TypeModel, WeakMap<PatchSchema, TypeResolver>>();

function resolverFor(model: TypeModel, patchSchema: PatchSchema): TypeResolver {
  let byPatch = resolvers.get(model);
  if (!byPatch) {
    byPatch = new WeakMap();
    resolvers.set(model, byPatch);
  }
  let r = byPatch.get(patchSchema);
  if (!r) {
    r = new TypeResolver(model, patchSchema);
    byPatch.set(patchSchema, r);
  }
  return r;
}

function context(opts: FieldManagementOptions): Context {
  const r = resolverFor(opts.model ?? builtinTypeModel(), opts.patchSchema ?? kubernetesPatchSchema);
  const reset = FieldSet.of(...(opts.resetFields ?? []).map((p) => p.map((field) => ({ field }))));
  return {
    r,
    type: r.root(opts.rootMessage),
    reset,
    filter: (s) => (reset.isEmpty() ? s : s.recursiveDifference(reset)),
  };
}

/**
 * The fields an object sets, as an Apply of it records them: leaves, list
 * items and map entries, without the fields upstream never tracks (apiVersion,
 * kind, metadata.name...) and without `resetFields`. The second argument is
 * the kind's root message, or options.
 */
export function fieldSetOf(
  obj: object,
  opts: string | Pick<FieldManagementOptions, 'rootMessage' | 'model' | 'patchSchema' | 'resetFields'> = {},
): FieldSet {
  const ctx = context({
    apiVersion: '',
    now: '',
    ...(typeof opts === 'string' ? { rootMessage: opts } : opts),
  });
  return ctx.filter(typed(() => toFieldSet(ctx.r, ctx.type, obj), obj)).difference(STRIPPED);
}

/** Runs a typed walk, turning typing failures into the 500 upstream answers with. */
function typed<T>(fn: () => T, obj: object): T {
  try {
    return fn();
  } catch (err) {
    if (!(err instanceof TypedValueError)) throw err;
    throw new ApiError(
      500,
      'InternalError',
      `failed to create typed patch object (${describeObject(obj)}): ${err.message}`,
    );
  }
}

/** Upstream's "namespace/name; group/version, Kind=kind" for error messages. */
function describeObject(obj: object): string {
  const o = obj as JsonObject;
  const meta = isObject(o.metadata) ? o.metadata : {};
  const str = (v: unknown): string => (typeof v === 'string' ? v : '');
  const apiVersion = str(o.apiVersion);
  const gv = apiVersion.includes('/') ? apiVersion : `/${apiVersion}`;
  return `${str(meta.namespace)}/${str(meta.name)}; ${gv}, Kind=${str(o.kind)}`;
}

// The zero object of each root type, made once: walks only read it.
const zeroValues = new WeakMap<TypeRef, JsonObject>();

function zeroValueOf(r: TypeResolver, type: TypeRef): JsonObject {
  let zero = zeroValues.get(type);
  if (!zero) {
    zero = deepFreeze(zeroValue(r, type));
    zeroValues.set(type, zero);
  }
  return zero;
}

function deepFreeze<T>(v: T): T {
  if (typeof v === 'object' && v !== null) {
    for (const child of Object.values(v)) deepFreeze(child);
    Object.freeze(v);
  }
  return v;
}

function withoutManagedFields(obj: unknown): unknown {
  if (!isObject(obj) || !isObject(obj.metadata) || !Object.hasOwn(obj.metadata, 'managedFields')) return obj;
  const { managedFields: _, ...metadata } = obj.metadata;
  return { ...obj, metadata };
}

function withManagedFields(obj: JsonObject, entries: ManagedFieldsEntry[]): JsonObject {
  const metadata: JsonObject = isObject(obj.metadata) ? { ...obj.metadata } : {};
  delete metadata.managedFields;
  if (entries.length > 0) metadata.managedFields = entries;
  return { ...obj, metadata };
}

/**
 * Server-side apply. Merges `applied` into `live`; removes the fields this
 * manager applied last time, no longer applies, and nobody else owns; fails
 * with ApplyConflictError when the result changes fields other managers own
 * (unless `force`, which takes them over); and records the applier's Apply
 * entry as exactly the fields `applied` sets.
 *
 * The manager "kubectl" also gets upstream's bridge from client-side apply:
 * conflicts on fields its last-applied-configuration annotation still
 * matches are taken over, and that annotation, when present, is rewritten to
 * the applied configuration.
 */
export function apply(opts: ApplyOptions): ApplyResult {
  const ctx = context(opts);
  const applied = opts.applied as JsonObject;
  if (!isObject(applied))
    throw new ApiError(400, 'BadRequest', 'the applied configuration must be an object');
  if (isObject(applied.metadata) && applied.metadata.managedFields != null) {
    throw new ApiError(400, 'BadRequest', 'metadata.managedFields must be nil');
  }
  let outcome = applyOnce(ctx, opts, opts.force);
  if ('conflicts' in outcome && opts.manager === KUBECTL) {
    const allowed = allowedByLastApplied(ctx, opts.live, opts.apiVersion);
    if (allowed) {
      const rest = outcome.conflicts.filter((c) => !allowed.has(c.path));
      outcome = rest.length > 0 ? { conflicts: rest } : applyOnce(ctx, opts, true);
    }
  }
  if ('conflicts' in outcome) throw conflictError(outcome.conflicts);
  if (opts.manager === KUBECTL) syncLastApplied(outcome.object, applied);
  return outcome;
}

const KUBECTL = 'kubectl';
const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

interface Conflict {
  id: string;
  m: Manager;
  path: Path;
}

function conflictError(conflicts: Conflict[]): ApplyConflictError {
  const sorted = [...conflicts].sort((a, b) =>
    a.id < b.id ? -1 : a.id > b.id ? 1 : comparePaths(a.path, b.path),
  );
  return new ApplyConflictError(
    sorted.map(({ m, path }) => ({
      manager: m.manager,
      operation: m.operation,
      apiVersion: m.apiVersion,
      ...(m.subresource !== '' ? { subresource: m.subresource } : {}),
      field: pathString(path),
    })),
  );
}

function applyOnce(
  ctx: Context,
  opts: ApplyOptions,
  force: boolean,
): ApplyResult | { conflicts: Conflict[] } {
  const { r, type } = ctx;
  const applied = opts.applied as JsonObject;
  let managers: Map<string, Manager>;
  try {
    managers = decodeManagedFields(
      isObject(opts.live) ? (opts.live.metadata as JsonObject)?.managedFields : undefined,
    );
  } catch (err) {
    if (!(err instanceof ManagedFieldsDecodeError)) throw err;
    throw new ApiError(500, 'InternalError', `failed to decode managed fields: ${err.message}`);
  }

  const self: Manager = {
    manager: opts.manager,
    operation: 'Apply',
    apiVersion: opts.apiVersion,
    subresource: opts.subresource ?? '',
    time: undefined,
    set: new FieldSet(),
  };
  const selfId = managerId(self);
  const previous = managers.get(selfId);
  self.time = previous?.time;

  // Validates the configuration too: duplicate keys, items without keys.
  self.set = ctx.filter(typed(() => toFieldSet(r, type, applied), applied));
  const live = withoutManagedFields(opts.live ?? {}) as JsonObject;
  let merged = typed(() => merge(r, type, live, applied), applied) as JsonObject;
  managers.set(selfId, self);

  if (previous && !previous.set.isEmpty()) {
    // Prune what the manager applied last time and no longer does, unless
    // someone (this apply included) still owns it.
    const owned = FieldSet.unionAll([...managers.values()].map((m) => m.set));
    const drop = withNamedFields(r, type, previous.set).difference(withNamedFields(r, type, owned));
    if (!drop.isEmpty()) merged = removeItems(r, type, merged, drop) as JsonObject;
  }

  const c = compare(r, type, live, merged);
  const changed = ctx.filter(c.modified.union(c.added));
  const removed = ctx.filter(c.removed);
  const conflicts: Conflict[] = [];
  const taken = new Map<string, FieldSet>();
  for (const [id, m] of managers) {
    if (id === selfId) continue;
    const lost = m.set.intersection(changed);
    if (lost.isEmpty()) continue;
    taken.set(id, lost);
    for (const path of lost.paths()) conflicts.push({ id, m, path });
  }
  if (conflicts.length > 0 && !force) return { conflicts };
  for (const [id, m] of managers) {
    if (id === selfId) continue;
    m.set = m.set.difference(taken.get(id) ?? new FieldSet()).difference(removed);
    if (m.set.isEmpty()) managers.delete(id);
  }
  self.set = self.set.difference(STRIPPED);
  if (self.set.isEmpty()) managers.delete(selfId);
  // Upstream stamps the applier only when the object changed.
  if (!jsonEqual(live, merged)) self.time = opts.now;

  capUpdateManagers(managers, opts.maxUpdateManagers ?? DEFAULT_MAX_UPDATE_MANAGERS);
  const managedFields = encodeManagedFields(managers);
  return { object: cloneJson(withManagedFields(merged, managedFields)), managedFields };
}

/**
 * The fields kubectl may take over when moving from client-side to
 * server-side apply (upstream's lastAppliedManager): those its
 * last-applied-configuration annotation sets to the values the live object
 * still has. undefined when there is no usable annotation.
 */
function allowedByLastApplied(
  ctx: Context,
  live: object | undefined,
  apiVersion: string,
): FieldSet | undefined {
  const meta = isObject(live) && isObject(live.metadata) ? live.metadata : undefined;
  const annotations = meta && isObject(meta.annotations) ? meta.annotations : undefined;
  const text = annotations?.[LAST_APPLIED];
  if (typeof text !== 'string' || text === '') return undefined;
  let lastApplied: unknown;
  try {
    lastApplied = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isObject(lastApplied) || lastApplied.apiVersion !== apiVersion) return undefined;
  try {
    const { r, type } = ctx;
    const current = withoutManagedFields(live);
    const c = compare(r, type, lastApplied, current);
    return toFieldSet(r, type, lastApplied).difference(c.modified).difference(c.added).difference(c.removed);
  } catch (err) {
    if (err instanceof TypedValueError) return undefined;
    throw err;
  }
}

/** Upstream's limit on the total size of an object's annotations (keys and values, in bytes). */
const ANNOTATIONS_SIZE_LIMIT = 256 * 1024;

/**
 * Keeps kubectl's client-side annotation in step with server-side applies
 * (upstream's lastAppliedUpdater): when the object has one, it becomes the
 * applied configuration (without the annotation itself) as Go's JSON encoder
 * writes it, unless that would overflow the annotation size limit, in which
 * case it is dropped.
 */
function syncLastApplied(object: JsonObject, applied: JsonObject): void {
  const meta = isObject(object.metadata) ? object.metadata : undefined;
  const annotations = meta && isObject(meta.annotations) ? meta.annotations : undefined;
  const current = annotations?.[LAST_APPLIED];
  if (!meta || !annotations || typeof current !== 'string' || current === '') return;
  const config = cloneJson(applied);
  if (isObject(config.metadata) && isObject(config.metadata.annotations)) {
    delete config.metadata.annotations[LAST_APPLIED];
  }
  const next: JsonObject = { ...annotations, [LAST_APPLIED]: `${goJSON(config)}\n` };
  let size = 0;
  for (const [k, v] of Object.entries(next)) size += Buffer.byteLength(k) + Buffer.byteLength(String(v));
  if (size > ANNOTATIONS_SIZE_LIMIT) delete next[LAST_APPLIED];
  meta.annotations = next;
}

/**
 * The managedFields entries after a create, update or non-apply patch by
 * `manager`: it takes every field whose value it added or changed (away from
 * any other manager); fields it removed lose all their owners; managers left
 * with nothing are dropped. An update that changes nothing leaves the
 * entries (and their times) as they were.
 */
export function update(opts: UpdateOptions): ManagedFieldsEntry[] {
  const ctx = context(opts);
  const { r, type } = ctx;
  const managers = managersForUpdate(opts.live, opts.updated, !!opts.subresource);
  const live = withoutManagedFields(opts.live ?? zeroValueOf(r, type));
  const updated = withoutManagedFields(opts.updated);
  if (managers.size === 0) {
    // Nobody owns anything yet (every create, unless the body brings its
    // own entries): the writer's fields are all there is to work out, and
    // they are built in one walk, without the full comparison.
    const { set: mine, fieldsV1 } = createdFields(opts, () =>
      changedFields(r, type, live, updated, ctx.reset, STRIPPED),
    );
    if (mine.isEmpty()) return [];
    const self: Manager = {
      manager: opts.manager,
      operation: opts.operation ?? 'Update',
      apiVersion: opts.apiVersion,
      subresource: opts.subresource ?? '',
      time: opts.now,
      set: mine,
      // Each object gets its own copy of the shared encoding.
      decoded: { set: mine, fieldsV1: cloneJson(fieldsV1) },
    };
    return encodeManagedFields(new Map([[managerId(self), self]]));
  }
  const c = compare(r, type, live, updated);
  const changed = ctx.filter(c.modified.union(c.added));
  const removed = ctx.filter(c.removed);
  for (const [id, m] of managers) {
    const left = m.set.difference(changed).difference(removed);
    // Nothing taken away: the set (and so its decoded encoding) stays as it was.
    if (!left.equals(m.set)) m.set = left;
    if (m.set.isEmpty()) managers.delete(id);
  }
  const mine = changed.difference(STRIPPED);
  if (!mine.isEmpty()) {
    const self: Manager = {
      manager: opts.manager,
      operation: opts.operation ?? 'Update',
      apiVersion: opts.apiVersion,
      subresource: opts.subresource ?? '',
      time: opts.now,
      set: mine,
    };
    const id = managerId(self);
    const previous = managers.get(id);
    if (previous) self.set = mine.union(previous.set);
    managers.set(id, self);
  }
  capUpdateManagers(managers, opts.maxUpdateManagers ?? DEFAULT_MAX_UPDATE_MANAGERS);
  return encodeManagedFields(managers);
}

/**
 * A create's field set depends on nothing but the kind, the reset fields
 * and the object without the fields that are never tracked (name, uid,
 * creationTimestamp...): the pods a ReplicaSet makes, or a client's run of
 * identical creates, all have the same one. The text of that object is one
 * native JSON.stringify; the walk it saves is the largest part of field
 * tracking on a create. Sets are never changed once made, so they are
 * shared; only the default model and patch schema are remembered.
 */
const createdSets = new Map<string, { set: FieldSet; fieldsV1: Record<string, unknown> }>();
const CREATED_SETS_MAX = 256;
const UNTRACKED_META = new Set([
  'name',
  'namespace',
  'creationTimestamp',
  'selfLink',
  'uid',
  'clusterName',
  'generation',
  'managedFields',
  'resourceVersion',
]);

function createdFields(
  opts: UpdateOptions,
  build: () => FieldSet,
): { set: FieldSet; fieldsV1: Record<string, unknown> } {
  const defaults =
    (opts.model === undefined || opts.model === builtinTypeModel()) &&
    (opts.patchSchema === undefined || opts.patchSchema === kubernetesPatchSchema);
  const updated = opts.updated as Record<string, unknown>;
  if (!defaults || !isObject(updated.metadata)) {
    const set = build();
    return { set, fieldsV1: set.toFieldsV1() };
  }
  const meta: Record<string, unknown> = {};
  for (const k of Object.keys(updated.metadata)) if (!UNTRACKED_META.has(k)) meta[k] = updated.metadata[k];
  const key = `${opts.rootMessage ?? ''}\n${JSON.stringify(opts.resetFields ?? [])}\n${JSON.stringify({
    ...updated,
    apiVersion: undefined,
    kind: undefined,
    metadata: meta,
  })}`;
  let hit = createdSets.get(key);
  if (!hit) {
    const set = build();
    hit = { set, fieldsV1: set.toFieldsV1() };
    if (createdSets.size >= CREATED_SETS_MAX) createdSets.delete(createdSets.keys().next().value!);
    createdSets.set(key, hit);
  }
  return hit;
}

/**
 * Where an update's starting entries come from (upstream's decodeLiveOrNew):
 * a subresource write always keeps the live ones; otherwise the new object's
 * own entries win when it has valid ones, an empty list (or one empty entry)
 * resets them, and anything else falls back to the live entries. Entries that
 * do not decode are dropped rather than failing the write.
 */
function managersForUpdate(
  live: object | undefined,
  updated: object,
  subresource: boolean,
): Map<string, Manager> {
  const entriesOf = (obj: object | undefined): unknown => {
    const meta = isObject(obj) ? obj.metadata : undefined;
    return isObject(meta) ? meta.managedFields : undefined;
  };
  const decodeOrEmpty = (entries: unknown, stored: boolean): Map<string, Manager> => {
    try {
      return decodeManagedFields(entries, stored);
    } catch {
      return new Map();
    }
  };
  if (subresource) return decodeOrEmpty(entriesOf(live), true);
  const given = entriesOf(updated);
  if (Array.isArray(given)) {
    if (given.length === 0) return new Map();
    if (given.length === 1 && isObject(given[0]) && Object.values(given[0]).every(isZero)) return new Map();
  }
  const mine = decodeOrEmpty(given, true);
  if (mine.size === 0) return decodeOrEmpty(entriesOf(live), true);
  // The client's entries keep their encoding only where they are the stored
  // ones unchanged (a read-modify-write); anything else is written out anew,
  // in canonical form, as upstream re-encodes every entry.
  const stored = new Map<string, unknown>();
  const liveEntries = entriesOf(live);
  if (Array.isArray(liveEntries)) {
    for (const e of liveEntries) {
      if (!isObject(e)) continue;
      const id = managerId({
        manager: typeof e.manager === 'string' ? e.manager : '',
        operation: e.operation === 'Apply' ? 'Apply' : 'Update',
        apiVersion: typeof e.apiVersion === 'string' ? e.apiVersion : '',
        subresource: typeof e.subresource === 'string' ? e.subresource : '',
      });
      stored.set(id, e.fieldsV1);
    }
  }
  for (const [id, m] of mine) {
    if (m.decoded && !sameJSON(m.decoded.fieldsV1, stored.get(id))) delete m.decoded;
  }
  return mine;
}

const isZero = (v: unknown): boolean =>
  v === undefined || v === null || v === '' || (isObject(v) && Object.keys(v).length === 0);
