// The walks server-side apply makes over JSON objects with their types:
// the field set of a value, the comparison of two values, the merge of an
// applied configuration into a live object, and the removal of fields.
// They follow structured-merge-diff's typed package (ToFieldSet, Compare,
// Merge, RemoveItems) in what they produce; see the notes on each.

import { hasOwn, isObject, type JsonObject, jsonEqual, setOwn } from '../patch/json.ts';
import {
  FieldSet,
  keyElement,
  // An element's FieldsV1 key is canonical, so it doubles as its identity in a list.
  elementKey as keyOf,
  type Path,
  type PathElement,
  pathString,
} from './fieldpath.ts';
import type { ListType, TypeRef, TypeResolver } from './schema.ts';

/** An object that cannot be typed (duplicate list keys, list items missing their keys...). */
export class TypedValueError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TypedValueError';
  }
}

type Shape = 'leaf' | 'object' | 'list';

/**
 * How a value of a type is walked. Atomic types are leaves; a value whose JSON
 * kind does not fit its type is a leaf too (upstream would have rejected it
 * while typing the object; Skiff's validation runs elsewhere). null stands for
 * an empty object or list where one is expected, as upstream reads it.
 */
function shapeOf(type: TypeRef, v: unknown): Shape {
  switch (type.kind) {
    case 'struct':
    case 'map':
      return !type.atomic && (v === null || isObject(v)) ? 'object' : 'leaf';
    case 'list':
      return type.relationship !== 'atomic' && (v === null || Array.isArray(v)) ? 'list' : 'leaf';
    case 'untyped':
      return isObject(v) ? 'object' : 'leaf';
    default:
      return 'leaf';
  }
}

const isEmptyContainer = (v: unknown): boolean =>
  v === null || (Array.isArray(v) ? v.length === 0 : isObject(v) && Object.keys(v).length === 0);

/** The type of the child an element selects. */
export function childType(r: TypeResolver, type: TypeRef, pe: PathElement): TypeRef {
  if ('field' in pe) return r.field(type, pe.field).type;
  if (type.kind === 'list') return r.item(type);
  return { kind: 'untyped' };
}

/**
 * The element identifying a list item: its key fields for associative lists
 * (missing ones taken from upstream's defaults, e.g. protocol "TCP" for
 * ports), its value for sets, its index otherwise. `strict` (for applied
 * configurations) rejects items upstream cannot key; live objects fall back
 * to the index so that odd stored data still round-trips.
 */
function itemElement(
  r: TypeResolver,
  list: ListType,
  item: unknown,
  index: number,
  path: Path,
  strict: boolean,
): PathElement {
  const fail = (msg: string): PathElement => {
    if (strict) throw new TypedValueError(`${pathString(path)}: element ${index}: ${msg}`);
    return { index };
  };
  if (list.relationship === 'map') {
    if (!isObject(item)) return fail('associative list with keys may not have non-map elements');
    const fields: Array<[string, unknown]> = [];
    for (const key of list.keys) {
      if (hasOwn(item, key) && item[key] !== undefined) {
        fields.push([key, item[key]]);
        continue;
      }
      const def = r.keyDefault(list, key);
      if (def === undefined) {
        return fail(
          `associative list with keys has an element that omits key field "${key}" (and doesn't have default value)`,
        );
      }
      fields.push([key, def]);
    }
    return keyElement(fields);
  }
  if (list.relationship === 'set') {
    if (isObject(item)) return fail("associative list without keys has an element that's a map type");
    return { value: item };
  }
  return { index };
}

interface IndexedList {
  /** Each item's element, in list order (duplicates included). */
  elements: PathElement[];
  items: unknown[];
  /** First item for each element key. */
  byKey: Map<string, unknown>;
}

function indexList(
  r: TypeResolver,
  list: ListType,
  items: unknown[],
  path: Path,
  strict: boolean,
): IndexedList {
  const out: IndexedList = { elements: [], items, byKey: new Map() };
  items.forEach((item, i) => {
    const pe = itemElement(r, list, item, i, path, strict);
    const k = keyOf(pe);
    if (out.byKey.has(k)) {
      if (strict)
        throw new TypedValueError(`${pathString(path)}: duplicate entries for key ${pathString([pe])}`);
    } else {
      out.byKey.set(k, item);
    }
    out.elements.push(pe);
  });
  return out;
}

/**
 * The fields a value sets (upstream's ToFieldSet): every leaf; every list
 * item, as "."; every map entry (a key that is not a declared struct field),
 * as "."; but not struct fields themselves, which are tracked through their
 * leaves only. Throws TypedValueError for values upstream cannot type.
 */
export function toFieldSet(r: TypeResolver, type: TypeRef, value: unknown): FieldSet {
  const set = new FieldSet();
  const walk = (t: TypeRef, v: unknown, path: PathElement[]): void => {
    const shape = shapeOf(t, v);
    if (shape === 'leaf') {
      set.insert(path);
    } else if (shape === 'object') {
      if (!isObject(v)) return;
      for (const [k, child] of Object.entries(v)) {
        // JSON has no undefined; objects built in code may.
        if (child === undefined) continue;
        const { type: ct, declared } = r.field(t, k);
        const p = [...path, { field: k }];
        walk(ct, child, p);
        if (!declared) set.insert(p);
      }
    } else if (Array.isArray(v) && t.kind === 'list') {
      const indexed = indexList(r, t, v, path, true);
      const it = r.item(t);
      indexed.elements.forEach((pe, i) => {
        const p = [...path, pe];
        walk(it, v[i], p);
        set.insert(p);
      });
    }
  };
  walk(type, value, []);
  return set;
}

export interface Comparison {
  added: FieldSet;
  modified: FieldSet;
  removed: FieldSet;
}

/**
 * What changed from lhs to rhs (upstream's Compare). Leaves that differ are
 * modified; a subtree present on one side only is added (or removed) as a
 * whole, every node of it included, struct fields too. That is why an Update
 * that creates labels owns "metadata.labels" itself ("." in FieldsV1) while
 * an Apply of the same labels only owns the keys.
 */
export function compare(r: TypeResolver, type: TypeRef, lhs: unknown, rhs: unknown): Comparison {
  const c: Comparison = { added: new FieldSet(), modified: new FieldSet(), removed: new FieldSet() };
  const all = (t: TypeRef, v: unknown, path: PathElement[], into: FieldSet): void => {
    const shape = shapeOf(t, v);
    if (shape === 'object' && isObject(v)) {
      for (const [k, child] of Object.entries(v)) {
        if (child !== undefined) all(r.field(t, k).type, child, [...path, { field: k }], into);
      }
    } else if (shape === 'list' && Array.isArray(v) && t.kind === 'list') {
      const indexed = indexList(r, t, v, path, false);
      const it = r.item(t);
      indexed.elements.forEach((pe, i) => {
        all(it, v[i], [...path, pe], into);
      });
    }
    into.insert(path);
  };
  const walk = (t: TypeRef, l: unknown, rr: unknown, path: PathElement[]): void => {
    if (l === undefined && rr === undefined) return;
    if (l === undefined || rr === undefined) {
      if (l === undefined) all(t, rr, path, c.added);
      else all(t, l, path, c.removed);
      return;
    }
    const shape = shapeOf(t, l);
    if (shape !== shapeOf(t, rr) || shape === 'leaf' || (isEmptyContainer(l) && isEmptyContainer(rr))) {
      if (!jsonEqual(l, rr)) c.modified.insert(path);
      return;
    }
    if (shape === 'object') {
      const lo = (l ?? {}) as JsonObject;
      const ro = (rr ?? {}) as JsonObject;
      for (const k of unionKeys(lo, ro)) {
        walk(r.field(t, k).type, own(lo, k), own(ro, k), [...path, { field: k }]);
      }
      return;
    }
    if (t.kind !== 'list') return;
    const li = indexList(r, t, (l ?? []) as unknown[], path, false);
    const ri = indexList(r, t, (rr ?? []) as unknown[], path, false);
    const it = r.item(t);
    const seen = new Set<string>();
    for (const pe of [...li.elements, ...ri.elements]) {
      const k = keyOf(pe);
      if (seen.has(k)) continue;
      seen.add(k);
      walk(it, li.byKey.get(k), ri.byKey.get(k), [...path, pe]);
    }
  };
  walk(type, lhs, rhs, []);
  return c;
}

/**
 * Where a walk that builds a set is: the element it took from its parent,
 * the result's node for this path (made only once something is inserted at
 * or below it, so that the set never holds empty nodes), and the nodes of
 * `reset` and `strip` for the same path.
 */
interface Cursor {
  readonly parent: Cursor | undefined;
  readonly pe: PathElement | undefined;
  node: FieldSet | undefined;
  readonly reset: FieldSet | undefined;
  readonly strip: FieldSet | undefined;
}

/**
 * The fields an Update from lhs to rhs takes: what compare() finds modified
 * or added, without the paths in `reset` and everything below them, and
 * without the exact paths in `strip`. It is the same set as
 * `compare(r, type, lhs, rhs)` gives by
 * `modified.union(added).recursiveDifference(reset).difference(strip)`, but
 * built in one walk that inserts into the result as it goes: no path copies,
 * no intermediate sets, and nothing at all for what only lhs has. Every
 * create goes through it (against the zero object), so it is on the API
 * server's hottest path.
 */
export function changedFields(
  r: TypeResolver,
  type: TypeRef,
  lhs: unknown,
  rhs: unknown,
  reset: FieldSet,
  strip: FieldSet,
): FieldSet {
  const out = new FieldSet();
  const nodeOf = (c: Cursor): FieldSet => {
    if (c.node === undefined) c.node = nodeOf(c.parent!).childOrCreate(c.pe!);
    return c.node;
  };
  const insert = (c: Cursor): void => {
    // The empty path (the whole object) is never tracked, as in FieldSet.insert.
    if (c.parent === undefined) return;
    if (c.parent.strip?.hasMember(c.pe!)) return;
    nodeOf(c.parent).addMember(c.pe!);
  };
  // The cursor for a child, or undefined when `reset` drops the whole subtree.
  const enter = (c: Cursor, pe: PathElement): Cursor | undefined => {
    if (c.reset?.hasMember(pe)) return undefined;
    return { parent: c, pe, node: undefined, reset: c.reset?.child(pe), strip: c.strip?.child(pe) };
  };
  // Everything in v, v's own path included (compare's `all`).
  const all = (t: TypeRef, v: unknown, c: Cursor): void => {
    const shape = shapeOf(t, v);
    if (shape === 'object' && isObject(v)) {
      for (const k in v) {
        if (!hasOwn(v, k)) continue;
        const child = v[k];
        if (child === undefined) continue;
        const cc = enter(c, { field: k });
        if (cc) all(r.field(t, k).type, child, cc);
      }
    } else if (shape === 'list' && Array.isArray(v) && t.kind === 'list') {
      const indexed = indexList(r, t, v, [], false);
      const it = r.item(t);
      for (let i = 0; i < v.length; i++) {
        const cc = enter(c, indexed.elements[i]!);
        if (cc) all(it, v[i], cc);
      }
    }
    insert(c);
  };
  const walk = (t: TypeRef, l: unknown, rr: unknown, c: Cursor): void => {
    // What only lhs has is removed, which an Update does not take.
    if (rr === undefined) return;
    if (l === undefined) {
      all(t, rr, c);
      return;
    }
    const shape = shapeOf(t, l);
    if (shape !== shapeOf(t, rr) || shape === 'leaf' || (isEmptyContainer(l) && isEmptyContainer(rr))) {
      if (!jsonEqual(l, rr)) insert(c);
      return;
    }
    if (shape === 'object') {
      const lo = (l ?? {}) as JsonObject;
      const ro = (rr ?? {}) as JsonObject;
      for (const k in ro) {
        if (!hasOwn(ro, k)) continue;
        const child = ro[k];
        if (child === undefined) continue;
        const cc = enter(c, { field: k });
        if (cc) walk(r.field(t, k).type, own(lo, k), child, cc);
      }
      return;
    }
    if (t.kind !== 'list') return;
    const li = indexList(r, t, (l ?? []) as unknown[], [], false);
    const ri = indexList(r, t, (rr ?? []) as unknown[], [], false);
    const it = r.item(t);
    const seen = new Set<string>();
    for (const pe of ri.elements) {
      const k = keyOf(pe);
      if (seen.has(k)) continue;
      seen.add(k);
      const cc = enter(c, pe);
      if (cc) walk(it, li.byKey.get(k), ri.byKey.get(k), cc);
    }
  };
  walk(type, lhs, rhs, { parent: undefined, pe: undefined, node: out, reset, strip });
  return out;
}

const own = (obj: JsonObject, k: string): unknown => (hasOwn(obj, k) ? obj[k] : undefined);

function unionKeys(a: JsonObject, b: JsonObject): string[] {
  const keys = Object.keys(a);
  for (const k of Object.keys(b)) if (!hasOwn(a, k)) keys.push(k);
  return keys;
}

/**
 * Merges an applied configuration into a live object (upstream's Merge with
 * "keep the right-hand side"): structs and maps merge key by key, keeping the
 * live order and appending new keys; associative lists and sets merge item by
 * item (see mergeLists for the order); atomic values and leaves are replaced.
 * A side that is absent keeps the other. The result shares unchanged
 * subtrees with the inputs; callers clone it.
 */
export function merge(r: TypeResolver, type: TypeRef, lhs: unknown, rhs: unknown): unknown {
  const walk = (t: TypeRef, l: unknown, rr: unknown, path: PathElement[]): unknown => {
    if (rr === undefined) return l;
    if (l === undefined) return rr;
    const shape = shapeOf(t, l);
    if (shape !== shapeOf(t, rr) || shape === 'leaf' || (isEmptyContainer(l) && isEmptyContainer(rr))) {
      return rr;
    }
    if (shape === 'object') {
      // An applied null for a granular map keeps the live entries, as upstream.
      const lo = (l ?? {}) as JsonObject;
      const ro = (rr ?? {}) as JsonObject;
      const out: JsonObject = {};
      for (const k of unionKeys(lo, ro)) {
        setOwn(out, k, walk(r.field(t, k).type, own(lo, k), own(ro, k), [...path, { field: k }]));
      }
      return out;
    }
    if (t.kind !== 'list') return rr;
    return mergeLists(r, t, (l ?? []) as unknown[], (rr ?? []) as unknown[], path, walk);
  };
  return walk(type, lhs, rhs, []);
}

/**
 * Merges two keyed lists the way upstream orders them: items only in the
 * live list keep their place, items only in the applied list are placed
 * where the applied order puts them, and the items both have follow the
 * applied order. With live [a, b] and applied [a, c] this gives [a, b, c];
 * with live [a, b, c] and applied [c, a] it gives [b, c, a].
 */
function mergeLists(
  r: TypeResolver,
  list: ListType,
  lhs: unknown[],
  rhs: unknown[],
  path: PathElement[],
  mergeItem: (t: TypeRef, l: unknown, r: unknown, path: PathElement[]) => unknown,
): unknown[] {
  const live = indexList(r, list, lhs, path, false);
  const applied = indexList(r, list, rhs, path, true);
  const it = r.item(list);
  const liveKeys = live.elements.map(keyOf);
  const appliedKeys = applied.elements.map(keyOf);
  // The shared items, in applied order: the next one due is taken from live
  // only when its turn comes.
  const shared = appliedKeys.filter((k) => live.byKey.has(k));
  let next = 0;
  const done = new Set<string>();
  const out: unknown[] = [];
  const take = (k: string, pe: PathElement): void => {
    out.push(mergeItem(it, live.byKey.get(k), applied.byKey.get(k), [...path, pe]));
    done.add(k);
    if (shared[next] === k) next++;
  };
  let li = 0;
  let ri = 0;
  while (li < liveKeys.length || ri < appliedKeys.length) {
    if (li < liveKeys.length && ri < appliedKeys.length) {
      const lk = liveKeys[li]!;
      if (lk === appliedKeys[ri]) {
        take(lk, live.elements[li]!);
        li++;
        ri++;
        continue;
      }
      if (applied.byKey.has(lk) && next < shared.length && shared[next] !== lk && !done.has(lk)) {
        // A shared item whose turn in the applied order has not come yet.
        li++;
        continue;
      }
    }
    if (li < liveKeys.length) {
      const lk = liveKeys[li]!;
      if (!applied.byKey.has(lk)) {
        out.push(live.items[li]);
        li++;
        continue;
      }
      if (done.has(lk)) {
        li++;
        continue;
      }
    }
    if (ri < appliedKeys.length) {
      const rk = appliedKeys[ri]!;
      take(rk, applied.elements[ri]!);
      ri++;
    }
  }
  return out;
}

/** What removeItems returns for a map or list it emptied: the caller drops it. */
const EMPTIED: unique symbol = Symbol('emptied');

/**
 * The value without the given fields (upstream's RemoveItems): a path in the
 * set goes with everything below it. Maps and lists left empty by the
 * removal are dropped (upstream leaves them null, which Go's omitempty drops
 * when the object is written back).
 */
export function removeItems(r: TypeResolver, type: TypeRef, value: unknown, set: FieldSet): unknown {
  const walk = (t: TypeRef, v: unknown, s: FieldSet, path: PathElement[]): unknown => {
    const shape = shapeOf(t, v);
    if (shape === 'object' && isObject(v)) {
      const out: JsonObject = {};
      let removed = false;
      for (const [k, child] of Object.entries(v)) {
        const pe = { field: k };
        if (s.hasMember(pe)) {
          removed = true;
          continue;
        }
        const sub = s.child(pe);
        const kept = sub ? walk(r.field(t, k).type, child, sub, [...path, pe]) : child;
        if (kept === EMPTIED) removed = true;
        else setOwn(out, k, kept);
      }
      return removed && Object.keys(out).length === 0 ? EMPTIED : out;
    }
    if (shape === 'list' && Array.isArray(v) && t.kind === 'list') {
      const indexed = indexList(r, t, v, path, false);
      const it = r.item(t);
      const out: unknown[] = [];
      indexed.elements.forEach((pe, i) => {
        if (s.hasMember(pe)) return;
        const sub = s.child(pe);
        const kept = sub ? walk(it, v[i], sub, [...path, pe]) : v[i];
        if (kept !== EMPTIED) out.push(kept);
      });
      return out.length === 0 && v.length > 0 ? EMPTIED : out;
    }
    return v;
  };
  const out = walk(type, value, set, []);
  return out === EMPTIED ? {} : out;
}

/**
 * The set plus every declared struct field with something below it
 * (upstream's EnsureNamedFieldsAreMembers). Pruning works on such sets, so
 * that a struct the applier no longer sets, and nobody else owns anything
 * in, goes as a whole, defaulted contents included.
 */
export function withNamedFields(r: TypeResolver, type: TypeRef, set: FieldSet): FieldSet {
  const out = new FieldSet();
  for (const path of set.paths()) {
    out.insert(path);
    let t = type;
    for (let i = 0; i < path.length - 1; i++) {
      const pe = path[i]!;
      if ('field' in pe && r.field(t, pe.field).declared) out.insert(path.slice(0, i + 1));
      t = childType(r, t, pe);
    }
  }
  return out;
}

/**
 * An empty object of a type as Go would serialize it: the struct fields Go
 * always writes (metadata, spec, status, pod templates...) present as {},
 * and the unset lists Go writes as null (a pod's containers) present as null.
 * Upstream compares a create against this, so those fields are not "added"
 * by the creator.
 */
export function zeroValue(r: TypeResolver, type: TypeRef): JsonObject {
  const out: JsonObject = {};
  for (const name of r.alwaysPresent(type)) setOwn(out, name, zeroValue(r, r.field(type, name).type));
  for (const name of r.alwaysNull(type)) setOwn(out, name, null);
  return out;
}
