// Kubernetes strategic merge patch (application/strategic-merge-patch+json),
// following k8s.io/apimachinery/pkg/util/strategicpatch as the apiserver
// runs it (StrategicMergeMapPatch: parallel lists merged, unmatched nulls
// ignored).
//
// It is a JSON merge patch in which some lists merge instead of being
// replaced. Which ones is per-field metadata (the patchStrategy and
// patchMergeKey struct tags upstream), supplied here by a PatchSchema:
//
// - maps merge recursively and null deletes a key, as in a merge patch;
// - a list with strategy "merge" and a merge key merges items by that key;
//   one with "merge" and no key is a set of primitives (e.g. finalizers);
// - any other list is replaced wholesale;
// - "$patch": "replace" | "delete" | "merge", "$retainKeys",
//   "$setElementOrder/<list>" and "$deleteFromPrimitiveList/<list>" are
//   directives, never stored.
//
// Where upstream leaves directives or nulls inside values it copies from the
// patch (a new key, a replaced list), it relies on decoding into Go structs
// to drop them. Skiff stores JSON as-is, so such values are cleaned here the
// way they are for a new key upstream: null members dropped, "$patch":
// "delete" items dropped, other directives stripped.
//
// Deliberate differences from upstream:
// - "$patch": "merge" is accepted (it means the default, merging) where
//   upstream rejects it;
// - other keys beginning with "$" are ordinary data, as upstream: the CRD
//   schema type has "$ref" and "$schema" fields.

import { PatchError } from './errors.ts';
import {
  cloneJson,
  describe,
  hasOwn,
  isObject,
  type JsonObject,
  jsonEqual,
  jsonKind,
  setOwn,
} from './json.ts';

export { kubernetesPatchSchema } from './kubernetes-schema.ts';

export interface PatchFieldMeta {
  /** 'merge' | 'replace' | 'retainKeys' | 'merge,retainKeys'; absent means the default (maps merge, lists replace). */
  strategy?: string;
  /** For a merge list of objects: the field that identifies an item. */
  mergeKey?: string;
}

export interface PatchSchema {
  /**
   * Metadata for the field named `field` inside the object at `path`
   * (path = field names from the root, list items transparent: e.g.
   * ['spec','containers'] for containers, ['spec','containers','ports'] for a
   * container's ports).
   */
  fieldMeta(path: readonly string[]): PatchFieldMeta | undefined;
}

const PATCH = '$patch';
const RETAIN_KEYS = '$retainKeys';
const SET_ORDER = '$setElementOrder';
const DELETE_PRIMITIVES = '$deleteFromPrimitiveList';

/** What freshValue returns for a value that must not be stored at all. */
const DROP: unique symbol = Symbol('drop');

interface FieldStrategy {
  strategy: '' | 'merge' | 'replace';
  retainKeys: boolean;
  mergeKey: string;
}

/**
 * Applies a strategic merge patch (already parsed from JSON) to a document.
 * Neither argument is modified, and the result shares no objects with them.
 */
export function applyStrategicMergePatch(doc: unknown, patch: unknown, schema: PatchSchema): unknown {
  if (!isObject(patch)) throw new PatchError('a strategic merge patch must be a JSON object');
  if (doc !== undefined && doc !== null && !isObject(doc)) {
    throw new PatchError('a strategic merge patch applies only to a JSON object');
  }
  // The clone is ours to edit in place; everything taken from the patch is
  // rebuilt by freshValue, so the result aliases neither input.
  const work: JsonObject = isObject(doc) ? cloneJson(doc) : {};
  return mergeMap(work, patch, [], schema);
}

function lookup(schema: PatchSchema, path: readonly string[]): FieldStrategy {
  const meta = schema.fieldMeta(path);
  const out: FieldStrategy = { strategy: '', retainKeys: false, mergeKey: meta?.mergeKey ?? '' };
  const parts = (meta?.strategy ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  for (const part of parts) {
    if (part === 'retainKeys' && !out.retainKeys) {
      out.retainKeys = true;
    } else if ((part === 'merge' || part === 'replace') && out.strategy === '') {
      out.strategy = part;
    } else {
      throw new PatchError(`unsupported patch strategy ${describe(meta?.strategy)} for ${path.join('.')}`);
    }
  }
  return out;
}

/**
 * The list field named by a "$setElementOrder/<field>" style key, or
 * undefined when `key` does not start with `prefix`.
 */
function directiveField(key: string, prefix: string): string | undefined {
  if (!key.startsWith(prefix)) return undefined;
  const field = key.slice(prefix.length + 1);
  if (key[prefix.length] !== '/' || field === '') {
    throw new PatchError(`malformed directive ${describe(key)}: expected ${prefix}/<field>`);
  }
  return field;
}

function withoutKey(obj: JsonObject, key: string): JsonObject {
  const out: JsonObject = {};
  for (const [k, v] of Object.entries(obj)) if (k !== key) setOwn(out, k, v);
  return out;
}

function unknownDirective(value: unknown): PatchError {
  return new PatchError(`unknown patch directive ${PATCH}: ${describe(value)}`);
}

/** Merges `patch` into `original`, which is modified and returned. */
function mergeMap(original: JsonObject, patch: JsonObject, path: string[], schema: PatchSchema): JsonObject {
  if (hasOwn(patch, PATCH)) {
    const directive = patch[PATCH];
    const rest = withoutKey(patch, PATCH);
    // Upstream turns a deleted map into an empty one, not a missing key.
    if (directive === 'delete') return {};
    if (directive === 'replace') return mergeMap({}, rest, path, schema);
    if (directive !== 'merge') throw unknownDirective(directive);
    patch = rest;
  }

  if (hasOwn(patch, RETAIN_KEYS)) applyRetainKeys(original, patch);

  // Lists named by $setElementOrder are merged and ordered up front; the
  // main loop below must then leave them alone.
  const ordered = new Set<string>();
  for (const [key, order] of Object.entries(patch)) {
    const field = directiveField(key, SET_ORDER);
    if (field === undefined) continue;
    ordered.add(field);
    mergeOrderedList(original, patch, field, order, [...path, field], schema);
  }

  // Deletions from primitive lists run after the additions, so a value both
  // added and deleted ends up deleted; upstream's order is Go map order.
  const deletions: [string, unknown][] = [];
  for (const [key, value] of Object.entries(patch)) {
    if (key === PATCH || key === RETAIN_KEYS || directiveField(key, SET_ORDER) !== undefined) continue;
    const deleteFrom = directiveField(key, DELETE_PRIMITIVES);
    if (deleteFrom !== undefined) {
      deletions.push([deleteFrom, value]);
      continue;
    }
    if (ordered.has(key)) continue;
    const childPath = [...path, key];
    if (value === null) {
      delete original[key];
      continue;
    }
    const current = hasOwn(original, key) ? original[key] : undefined;
    let next: unknown;
    if (isObject(current) && isObject(value)) {
      next =
        lookup(schema, childPath).strategy === 'replace'
          ? freshValue(value, childPath, schema)
          : mergeMap(current, value, childPath, schema);
    } else if (Array.isArray(current) && Array.isArray(value)) {
      next = mergeList(current, value, childPath, lookup(schema, childPath), false, schema);
    } else {
      next = freshValue(value, childPath, schema);
    }
    if (next === DROP) delete original[key];
    else setOwn(original, key, next);
  }

  for (const [field, values] of deletions) {
    if (!Array.isArray(values)) throw new PatchError(`${DELETE_PRIMITIVES}/${field} must be a list`);
    const current = hasOwn(original, field) ? original[field] : undefined;
    if (!Array.isArray(current)) continue;
    const childPath = [...path, field];
    setOwn(original, field, mergeList(current, values, childPath, lookup(schema, childPath), true, schema));
  }
  return original;
}

/**
 * "$retainKeys": after the merge the map keeps only the listed keys. Every
 * key the patch sets must be listed, or the patch contradicts itself.
 */
function applyRetainKeys(original: JsonObject, patch: JsonObject): void {
  const list = patch[RETAIN_KEYS];
  if (!Array.isArray(list)) throw new PatchError(`${RETAIN_KEYS} must be a list of field names`);
  const keep = new Set<unknown>(list);
  for (const [key, value] of Object.entries(patch)) {
    if (
      value === null ||
      key === RETAIN_KEYS ||
      key.startsWith(SET_ORDER) ||
      key.startsWith(DELETE_PRIMITIVES)
    ) {
      continue;
    }
    if (!keep.has(key))
      throw new PatchError(`the patch sets ${describe(key)}, which ${RETAIN_KEYS} does not list`);
  }
  for (const key of Object.keys(original)) if (!keep.has(key)) delete original[key];
}

/** Handles one "$setElementOrder/<field>" directive and the list it orders. */
function mergeOrderedList(
  original: JsonObject,
  patch: JsonObject,
  field: string,
  order: unknown,
  path: string[],
  schema: PatchSchema,
): void {
  if (!Array.isArray(order)) throw new PatchError(`${SET_ORDER}/${field} must be a list`);
  const current = hasOwn(original, field) ? original[field] : undefined;
  if (current !== undefined && current !== null && !Array.isArray(current)) {
    throw new PatchError(`${SET_ORDER}/${field} names ${describe(field)}, which is not a list`);
  }
  const fromPatch = hasOwn(patch, field) ? patch[field] : undefined;
  if (fromPatch !== undefined && !Array.isArray(fromPatch)) {
    throw new PatchError(`${SET_ORDER}/${field} comes with a ${describe(field)} that is not a list`);
  }
  const meta = lookup(schema, path);
  validateAgainstOrder(fromPatch ?? [], order, meta.mergeKey);

  const base = Array.isArray(current) ? current : undefined;
  let merged: unknown[];
  if (base && fromPatch) merged = mergeList(base, fromPatch, path, meta, false, schema);
  else if (fromPatch) merged = freshValue(fromPatch, path, schema) as unknown[];
  else if (base) merged = base;
  else return;

  const id = itemIdentity(meta.mergeKey, merged, order);
  setOwn(original, field, normalizeOrder(merged, order, base ?? [], id));
}

/**
 * The patch list must be a subsequence of the $setElementOrder list (items
 * that are directives aside), or the two disagree about the order.
 */
function validateAgainstOrder(list: unknown[], order: unknown[], mergeKey: string): void {
  const isDirective = (item: unknown) => isObject(item) && hasOwn(item, PATCH);
  const items = list.filter((item) => !isDirective(item));
  let i = 0;
  for (const wanted of order) {
    if (i >= items.length) break;
    const item = items[i];
    const same =
      mergeKey === '' ? item === wanted : mergeKeyValue(item, mergeKey) === mergeKeyValue(wanted, mergeKey);
    if (same) i++;
  }
  if (i < items.length) {
    throw new PatchError(`the order of the patch list does not match ${SET_ORDER}: ${describe(list)}`);
  }
}

function mergeKeyValue(item: unknown, mergeKey: string): unknown {
  if (!isObject(item) || !hasOwn(item, mergeKey)) {
    throw new PatchError(`list item ${describe(item)} has no merge key ${describe(mergeKey)}`);
  }
  return item[mergeKey];
}

/** How list items are told apart: by merge key for objects, by value for primitives. */
function itemIdentity(mergeKey: string, ...lists: unknown[][]): (item: unknown) => unknown {
  if (mergeKey !== '') {
    for (const list of lists) for (const item of list) mergeKeyValue(item, mergeKey);
    return (item) => (item as JsonObject)[mergeKey];
  }
  for (const list of lists) {
    if (list.some(isObject)) throw new PatchError('cannot order a list of objects that has no merge key');
  }
  return (item) => item;
}

/**
 * Upstream's ordering of a merged list: items named in `patchOrder` follow
 * it, the others keep their order in `serverOrder`, and the two runs are
 * interleaved so that each server-only item stays ahead of the patch items
 * it preceded on the server. A patch item the server did not have goes
 * before the server-only items that remain, so a new container added by a
 * plain patch lands first (as `kubectl patch` documents).
 */
function normalizeOrder(
  merged: unknown[],
  patchOrder: unknown[],
  serverOrder: unknown[],
  id: (item: unknown) => unknown,
): unknown[] {
  const indexIn = (list: unknown[], item: unknown) => {
    const key = id(item);
    return list.findIndex((other) => id(other) === key);
  };
  const byIndexIn = (list: unknown[]) => (a: unknown, b: unknown) => {
    const ia = indexIn(list, a);
    const ib = indexIn(list, b);
    return (ia < 0 ? Number.MAX_SAFE_INTEGER : ia) - (ib < 0 ? Number.MAX_SAFE_INTEGER : ib);
  };
  // Array.prototype.sort is stable, which keeps duplicates in merged order.
  const fromPatch = merged.filter((item) => indexIn(patchOrder, item) >= 0).sort(byIndexIn(patchOrder));
  const serverOnly = merged.filter((item) => indexIn(patchOrder, item) < 0).sort(byIndexIn(serverOrder));

  const out: unknown[] = [];
  let i = 0;
  let j = 0;
  while (i < serverOnly.length && j < fromPatch.length) {
    const si = indexIn(serverOrder, serverOnly[i]);
    const pj = indexIn(serverOrder, fromPatch[j]);
    if (si >= 0 && pj >= 0 && si < pj) out.push(serverOnly[i++]);
    else out.push(fromPatch[j++]);
  }
  return [...out, ...serverOnly.slice(i), ...fromPatch.slice(j)];
}

/** Merges a patch list into an existing list per the field's strategy. */
function mergeList(
  original: unknown[],
  patch: unknown[],
  path: string[],
  meta: FieldStrategy,
  isDeleteList: boolean,
  schema: PatchSchema,
): unknown[] {
  if (meta.strategy !== 'merge' && !isDeleteList) return freshValue(patch, path, schema) as unknown[];
  if (original.length === 0 && patch.length === 0) return original;

  const kinds = new Set([...original, ...patch].map(jsonKind));
  if (kinds.has('array')) throw new PatchError(`cannot merge lists of lists at ${path.join('.')}`);
  if (kinds.size > 1) throw new PatchError(`list items at ${path.join('.')} are not all of the same type`);

  if (!kinds.has('object')) {
    if (isDeleteList) return original.filter((v) => !patch.includes(v));
    const merged = [...new Set([...original, ...patch])];
    return normalizeOrder(merged, patch, original, (item) => item);
  }
  if (isDeleteList) {
    throw new PatchError(`${DELETE_PRIMITIVES}/${path.at(-1)} applies only to lists of primitives`);
  }
  if (meta.mergeKey === '')
    throw new PatchError(`cannot merge a list of objects without a merge key at ${path.join('.')}`);
  const mergeKey = meta.mergeKey;

  // Directive items first: deletions and "replace the whole list".
  let base = original;
  const items: JsonObject[] = [];
  let replace = false;
  for (const item of patch as JsonObject[]) {
    if (!hasOwn(item, PATCH)) {
      items.push(item);
      continue;
    }
    const directive = item[PATCH];
    if (directive === 'delete') {
      const key = mergeKeyValue(item, mergeKey);
      base = base.filter((o) => !(isObject(o) && hasOwn(o, mergeKey) && o[mergeKey] === key));
    } else if (directive === 'replace') {
      replace = true;
    } else if (directive === 'merge') {
      // Merging is what a merge list does anyway; an item that also names
      // a merge key is an ordinary item.
      if (hasOwn(item, mergeKey)) items.push(withoutKey(item, PATCH));
    } else {
      throw unknownDirective(directive);
    }
  }
  if (replace) return items.map((item) => mergeMap({}, item, path, schema));

  const merged = [...base];
  for (const item of items) {
    const key = mergeKeyValue(item, mergeKey);
    const at = merged.findIndex((o) => isObject(o) && hasOwn(o, mergeKey) && o[mergeKey] === key);
    if (at >= 0) merged[at] = mergeMap(merged[at] as JsonObject, item, path, schema);
    else merged.push(mergeMap({}, item, path, schema));
  }
  return normalizeOrder(merged, items, base, itemIdentity(mergeKey, merged));
}

/**
 * A patch value stored where the document had nothing to merge with: a copy
 * with nulls and directives applied against emptiness. DROP means the value
 * deletes itself ("$patch": "delete").
 */
function freshValue(value: unknown, path: string[], schema: PatchSchema): unknown {
  if (Array.isArray(value)) {
    const out: unknown[] = [];
    for (const item of value) {
      if (isObject(item) && hasOwn(item, PATCH)) {
        const directive = item[PATCH];
        if (directive === 'merge') out.push(mergeMap({}, withoutKey(item, PATCH), path, schema));
        else if (directive !== 'delete' && directive !== 'replace') throw unknownDirective(directive);
      } else {
        const fresh = freshValue(item, path, schema);
        if (fresh !== DROP) out.push(fresh);
      }
    }
    return out;
  }
  if (isObject(value)) {
    if (value[PATCH] === 'delete') return DROP;
    return mergeMap({}, value, path, schema);
  }
  return value;
}

/**
 * Returns a strategic merge patch that turns `original` into `modified`,
 * like upstream's CreateTwoWayMergePatch: merge lists are diffed item by
 * item (with "$patch": "delete" for removed items, a
 * "$deleteFromPrimitiveList" list for removed primitives and a
 * "$setElementOrder" list to keep the order), retainKeys fields carry a
 * "$retainKeys" list, and everything else is as in a merge patch.
 */
export function createStrategicMergePatch(
  original: unknown,
  modified: unknown,
  schema: PatchSchema,
): Record<string, unknown> {
  const asObject = (doc: unknown, name: string): JsonObject => {
    if (doc === undefined || doc === null) return {};
    if (!isObject(doc)) throw new PatchError(`the ${name} document must be a JSON object`);
    return doc;
  };
  return diffMaps(asObject(original, 'original'), asObject(modified, 'modified'), [], false, schema);
}

function diffMaps(
  original: JsonObject,
  modified: JsonObject,
  path: string[],
  buildRetainKeys: boolean,
  schema: PatchSchema,
): JsonObject {
  const patch: JsonObject = {};
  const retained: string[] = [];
  for (const [key, after] of Object.entries(modified)) {
    if (buildRetainKeys && after !== null) retained.push(key);
    if (!hasOwn(original, key)) {
      setOwn(patch, key, cloneJson(after));
      continue;
    }
    const before = original[key];
    const childPath = [...path, key];
    if (isObject(before) && isObject(after)) {
      const meta = lookup(schema, childPath);
      if (meta.strategy === 'replace') {
        if (!jsonEqual(before, after)) setOwn(patch, key, cloneJson(after));
      } else {
        const sub = diffMaps(before, after, childPath, meta.retainKeys, schema);
        if (Object.keys(sub).length > 0) setOwn(patch, key, sub);
      }
    } else if (Array.isArray(before) && Array.isArray(after)) {
      const meta = lookup(schema, childPath);
      if (meta.strategy === 'merge') diffLists(key, before, after, childPath, meta, patch, schema);
      else if (!jsonEqual(before, after)) setOwn(patch, key, cloneJson(after));
    } else if (!jsonEqual(before, after)) {
      setOwn(patch, key, cloneJson(after));
    }
  }
  for (const key of Object.keys(original)) {
    if (!hasOwn(modified, key)) setOwn(patch, key, null);
  }
  // With nothing changed the map needs no patch, $retainKeys included.
  if (retained.length > 0 && Object.keys(patch).length > 0) patch[RETAIN_KEYS] = retained.sort();
  return patch;
}

/** Diffs one merge list, writing the list and its parallel directives into `patch`. */
function diffLists(
  key: string,
  original: unknown[],
  modified: unknown[],
  path: string[],
  meta: FieldStrategy,
  patch: JsonObject,
  schema: PatchSchema,
): void {
  if (original.length === 0) {
    if (modified.length > 0) setOwn(patch, key, cloneJson(modified));
    return;
  }
  const kinds = new Set([...original, ...modified].map(jsonKind));
  if (kinds.has('array')) throw new PatchError(`cannot diff lists of lists at ${path.join('.')}`);
  if (kinds.size > 1) throw new PatchError(`list items at ${path.join('.')} are not all of the same type`);

  let items: unknown[];
  let deleted: unknown[] = [];
  let order: unknown[] = [];
  if (kinds.has('object')) {
    const mergeKey = meta.mergeKey;
    if (mergeKey === '')
      throw new PatchError(`cannot diff a list of objects without a merge key at ${path.join('.')}`);
    const keyOf = (item: unknown) => mergeKeyValue(item, mergeKey);
    const beforeKeys = original.map(keyOf);
    const afterKeys = modified.map(keyOf);
    items = [];
    for (const item of modified as JsonObject[]) {
      const at = beforeKeys.indexOf(item[mergeKey]);
      if (at < 0) {
        items.push(cloneJson(item));
        continue;
      }
      const sub = diffMaps(original[at] as JsonObject, item, path, meta.retainKeys, schema);
      if (Object.keys(sub).length > 0) {
        setOwn(sub, mergeKey, item[mergeKey]);
        items.push(sub);
      }
    }
    for (const k of beforeKeys) {
      if (!afterKeys.includes(k)) {
        const directive: JsonObject = { [PATCH]: 'delete' };
        setOwn(directive, mergeKey, k);
        items.push(directive);
      }
    }
    const sameOrder = jsonEqual(beforeKeys, afterKeys);
    if (items.length > 0 || !sameOrder) {
      order = afterKeys.map((k) => {
        const entry: JsonObject = {};
        setOwn(entry, mergeKey, k);
        return entry;
      });
    }
  } else {
    items = [...new Set(modified.filter((v) => !original.includes(v)))];
    deleted = [...new Set(original.filter((v) => !modified.includes(v)))];
    if (deleted.length > 0 || !jsonEqual(original, modified)) order = [...modified];
  }
  if (items.length > 0) setOwn(patch, key, items);
  if (deleted.length > 0) setOwn(patch, `${DELETE_PRIMITIVES}/${key}`, deleted);
  if (order.length > 0) setOwn(patch, `${SET_ORDER}/${key}`, order);
}
