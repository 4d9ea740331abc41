// Field paths and sets of them, as structured-merge-diff (the library behind
// upstream server-side apply) models them, with their FieldsV1 JSON form.
//
// A path is a list of elements, each selecting a child of the value before:
// - { field }: a struct field or a map key ("f:<name>" in FieldsV1);
// - { key }:   an item of an associative list, by its key fields
//              ("k:{\"name\":\"c\"}", key fields sorted by name);
// - { value }: an item of a set, by its value ("v:\"x\"");
// - { index }: an item of an atomic list ("i:0"), rare in practice.
//
// A FieldSet is a trie: each node has the elements that are themselves in the
// set ("members") and the elements below which some deeper path is in the set
// ("children"). An element can be both, which FieldsV1 writes as a child
// object holding a "." key.

export type PathElement =
  | { readonly field: string }
  | { readonly key: ReadonlyArray<readonly [string, unknown]> }
  | { readonly value: unknown }
  | { readonly index: number };

export type Path = readonly PathElement[];

/** The FieldsV1 key of an element; also its identity inside a FieldSet. */
export function elementKey(pe: PathElement): string {
  if ('field' in pe) {
    // Field elements are made afresh by every walk; their keys are few and
    // reused, so one string per field name (its hash computed once) serves
    // every FieldSet lookup.
    let key = fieldKeys.get(pe.field);
    if (key === undefined) {
      key = `f:${pe.field}`;
      if (fieldKeys.size < 100_000) fieldKeys.set(pe.field, key);
    }
    return key;
  }
  let key = keyCache.get(pe);
  if (key === undefined) {
    // The key fields are kept sorted, so this is canonical.
    if ('key' in pe) key = `k:{${pe.key.map(([name, v]) => `${goJSON(name)}:${goJSON(v)}`).join(',')}}`;
    else if ('value' in pe) key = `v:${goJSON(pe.value)}`;
    else key = `i:${pe.index}`;
    keyCache.set(pe, key);
  }
  return key;
}

// Elements are immutable, so their keys can be remembered.
const keyCache = new WeakMap<PathElement, string>();
const fieldKeys = new Map<string, string>();

/** Parses a FieldsV1 key back into an element. */
export function parseElementKey(text: string): PathElement {
  const body = text.slice(2);
  switch (text.slice(0, 2)) {
    case 'f:':
      return { field: body };
    case 'k:': {
      const parsed: unknown = JSON.parse(body);
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
        throw new Error(`invalid key element ${JSON.stringify(text)}`);
      }
      return keyElement(Object.entries(parsed));
    }
    case 'v:':
      return { value: JSON.parse(body) };
    case 'i:': {
      if (!/^-?\d+$/.test(body)) throw new Error(`invalid index element ${JSON.stringify(text)}`);
      return { index: Number(body) };
    }
    default:
      throw new Error(`unknown path element ${JSON.stringify(text)}`);
  }
}

/** A key element with its fields sorted by name, as upstream keeps them. */
export function keyElement(fields: Iterable<readonly [string, unknown]>): PathElement {
  return { key: [...fields].sort((a, b) => compareStrings(a[0], b[0])) };
}

const rank = (pe: PathElement): number => ('field' in pe ? 0 : 'key' in pe ? 1 : 'value' in pe ? 2 : 3);

/** Upstream's order of elements: fields, then keys, then values, then indices. */
export function compareElements(a: PathElement, b: PathElement): number {
  const ra = rank(a);
  const rb = rank(b);
  if (ra !== rb) return ra - rb;
  if ('field' in a && 'field' in b) return compareStrings(a.field, b.field);
  if ('key' in a && 'key' in b) {
    const n = Math.min(a.key.length, b.key.length);
    for (let i = 0; i < n; i++) {
      const [an, av] = a.key[i]!;
      const [bn, bv] = b.key[i]!;
      const c = compareStrings(an, bn) || compareValues(av, bv);
      if (c !== 0) return c;
    }
    return a.key.length - b.key.length;
  }
  if ('value' in a && 'value' in b) return compareValues(a.value, b.value);
  if ('index' in a && 'index' in b) return a.index - b.index;
  return 0;
}

export function comparePaths(a: Path, b: Path): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const c = compareElements(a[i]!, b[i]!);
    if (c !== 0) return c;
  }
  return a.length - b.length;
}

/**
 * Go compares strings bytewise over UTF-8, which is code point order; plain
 * JavaScript comparison is UTF-16 unit order and differs above U+FFFF.
 */
export function compareStrings(a: string, b: string): number {
  if (a === b) return 0;
  // The two orders agree up to the first differing unit unless both units
  // there are at or above the surrogates (0xD800): only then is the slow,
  // code point by code point comparison needed.
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  if (i === n) return a.length < b.length ? -1 : a.length > b.length ? 1 : 0;
  const x = a.charCodeAt(i);
  const y = b.charCodeAt(i);
  if (x < 0xd800 || y < 0xd800) return x < y ? -1 : 1;
  return compareCodePoints(a, b);
}

function compareCodePoints(a: string, b: string): number {
  const ia = a[Symbol.iterator]();
  const ib = b[Symbol.iterator]();
  for (;;) {
    const x = ia.next();
    const y = ib.next();
    if (x.done || y.done) return x.done ? (y.done ? 0 : -1) : 1;
    const d = x.value.codePointAt(0)! - y.value.codePointAt(0)!;
    if (d !== 0) return d < 0 ? -1 : 1;
  }
}

const valueRank = (v: unknown): number => {
  if (typeof v === 'number') return 0;
  if (typeof v === 'string') return 1;
  if (typeof v === 'boolean') return 2;
  if (Array.isArray(v)) return 3;
  if (v !== null && typeof v === 'object') return 4;
  return 5; // null last, as upstream's value.Compare has it
};

/** A total order over JSON values, the one upstream sorts set items and keys by. */
export function compareValues(a: unknown, b: unknown): number {
  const ra = valueRank(a);
  const rb = valueRank(b);
  if (ra !== rb) return ra - rb;
  switch (ra) {
    case 0:
      return (a as number) < (b as number) ? -1 : (a as number) > (b as number) ? 1 : 0;
    case 1:
      return compareStrings(a as string, b as string);
    case 2:
      return a === b ? 0 : a ? 1 : -1;
    case 3: {
      const x = a as unknown[];
      const y = b as unknown[];
      for (let i = 0; i < Math.min(x.length, y.length); i++) {
        const c = compareValues(x[i], y[i]);
        if (c !== 0) return c;
      }
      return x.length - y.length;
    }
    case 4: {
      const x = a as Record<string, unknown>;
      const y = b as Record<string, unknown>;
      const kx = Object.keys(x).sort(compareStrings);
      const ky = Object.keys(y).sort(compareStrings);
      for (let i = 0; i < Math.min(kx.length, ky.length); i++) {
        const c = compareStrings(kx[i]!, ky[i]!) || compareValues(x[kx[i]!], y[ky[i]!]);
        if (c !== 0) return c;
      }
      return kx.length - ky.length;
    }
    default:
      return 0;
  }
}

/**
 * JSON as Go's encoding/json writes it: object keys sorted, and <, >, &,
 * U+2028 and U+2029 escaped. FieldsV1 keys embed values written this way, so
 * matching it keeps "k:" and "v:" keys byte-identical to upstream's.
 */
export function goJSON(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(goJSON).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const obj = value as Record<string, unknown>;
    const keys = Object.keys(obj)
      .filter((k) => obj[k] !== undefined)
      .sort(compareStrings);
    return `{${keys.map((k) => `${goJSON(k)}:${goJSON(obj[k])}`).join(',')}}`;
  }
  if (typeof value === 'string') {
    const json = JSON.stringify(value);
    if (!/[<>&\u2028\u2029]/.test(json)) return json;
    return json.replace(/[<>&\u2028\u2029]/g, (c) => {
      return `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
    });
  }
  return JSON.stringify(value ?? null);
}

/** Go's %q for a string (what upstream uses to quote managers and key values). */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (ch === '"' || ch === '\\') out += `\\${ch}`;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\t') out += '\\t';
    else if (ch === '\r') out += '\\r';
    else if (cp < 0x20 || cp === 0x7f) out += `\\x${cp.toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return `${out}"`;
}

/** A value as upstream's value.ToString prints it inside a path. */
function valueString(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'string') return goQuote(v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return `[${v.map(valueString).join(', ')}]`;
  const obj = v as Record<string, unknown>;
  const keys = Object.keys(obj).sort(compareStrings);
  return `{${keys.map((k) => `${k}=${valueString(obj[k])}`).join(', ')}}`;
}

/** The human-readable form upstream puts in conflict messages: .spec.containers[name="c"].image */
export function pathString(path: Path): string {
  return path
    .map((pe) => {
      if ('field' in pe) return `.${pe.field}`;
      if ('key' in pe) return `[${pe.key.map(([n, v]) => `${n}=${valueString(v)}`).join(',')}]`;
      if ('value' in pe) return `[=${valueString(pe.value)}]`;
      return `[${pe.index}]`;
    })
    .join('');
}

interface Child {
  readonly pe: PathElement;
  readonly set: FieldSet;
}

/** A set of field paths. Operations return new sets; only insert mutates. */
export class FieldSet {
  private readonly members = new Map<string, PathElement>();
  private readonly children = new Map<string, Child>();

  static of(...paths: Path[]): FieldSet {
    const set = new FieldSet();
    for (const p of paths) set.insert(p);
    return set;
  }

  /** Adds a path. The empty path (the whole object) is never tracked, as upstream. */
  insert(path: Path): void {
    if (path.length === 0) return;
    let node: FieldSet = this;
    for (let i = 0; i < path.length - 1; i++) node = node.childOrCreate(path[i]!);
    const last = path[path.length - 1]!;
    node.members.set(elementKey(last), last);
  }

  has(path: Path): boolean {
    if (path.length === 0) return false;
    let node: FieldSet | undefined = this;
    for (let i = 0; i < path.length - 1 && node; i++) node = node.child(path[i]!);
    return node?.hasMember(path[path.length - 1]!) ?? false;
  }

  hasMember(pe: PathElement): boolean {
    return this.members.has(elementKey(pe));
  }

  /** The paths below pe, relative to it; undefined when there are none. */
  child(pe: PathElement): FieldSet | undefined {
    return this.children.get(elementKey(pe))?.set;
  }

  isEmpty(): boolean {
    return this.members.size === 0 && this.children.size === 0;
  }

  /** The union of many sets, built in one pass. */
  static unionAll(sets: Iterable<FieldSet>): FieldSet {
    const out = new FieldSet();
    for (const s of sets) out.addAll(s);
    return out;
  }

  union(other: FieldSet): FieldSet {
    const out = this.clone();
    out.addAll(other);
    return out;
  }

  /** Paths of this set that other does not have; a child path survives removing its parent. */
  difference(other: FieldSet): FieldSet {
    return this.combine(other, 'difference');
  }

  /** Like difference, but removing a path also removes everything below it. */
  recursiveDifference(other: FieldSet): FieldSet {
    return this.combine(other, 'recursive');
  }

  intersection(other: FieldSet): FieldSet {
    const out = new FieldSet();
    for (const [k, pe] of this.members) if (other.members.has(k)) out.members.set(k, pe);
    for (const [k, { pe, set }] of this.children) {
      const theirs = other.children.get(k);
      if (!theirs) continue;
      const both = set.intersection(theirs.set);
      if (!both.isEmpty()) out.children.set(k, { pe, set: both });
    }
    return out;
  }

  equals(other: FieldSet): boolean {
    if (this.members.size !== other.members.size || this.children.size !== other.children.size) return false;
    for (const k of this.members.keys()) if (!other.members.has(k)) return false;
    for (const [k, { set }] of this.children) {
      const theirs = other.children.get(k);
      if (!theirs || !set.equals(theirs.set)) return false;
    }
    return true;
  }

  /** Every path in the set, in upstream's order. */
  paths(): Path[] {
    const out: Path[] = [];
    const walk = (node: FieldSet, prefix: PathElement[]): void => {
      for (const entry of node.sortedEntries()) {
        const path = [...prefix, entry.pe];
        if (entry.member) out.push(path);
        if (entry.set) walk(entry.set, path);
      }
    };
    walk(this, []);
    return out;
  }

  /** The set's members and children at this level, merged in upstream's order. */
  sortedEntries(): Array<{ pe: PathElement; member: boolean; set?: FieldSet }> {
    const byKey = new Map<string, { pe: PathElement; member: boolean; set?: FieldSet }>();
    for (const [k, pe] of this.members) byKey.set(k, { pe, member: true });
    for (const [k, { pe, set }] of this.children) {
      const entry = byKey.get(k);
      if (entry) entry.set = set;
      else byKey.set(k, { pe, member: false, set });
    }
    return [...byKey.values()].sort((a, b) => compareElements(a.pe, b.pe));
  }

  /** The FieldsV1 form: {"f:data":{"f:a":{}}}, "." marking a node that is itself a member. */
  toFieldsV1(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    this.writeFieldsV1(out);
    return out;
  }

  // sortedEntries' order, without its intermediate map and with no object
  // spreads: this runs on every write.
  private writeFieldsV1(out: Record<string, unknown>): void {
    const entries: Array<{ key: string; pe: PathElement; member: boolean; set: FieldSet | undefined }> = [];
    for (const [key, pe] of this.members) {
      entries.push({ key, pe, member: true, set: this.children.get(key)?.set });
    }
    for (const [key, { pe, set }] of this.children) {
      if (!this.members.has(key)) entries.push({ key, pe, member: false, set });
    }
    entries.sort((a, b) => compareElements(a.pe, b.pe));
    for (const { key, member, set } of entries) {
      // Every key has a two-character prefix ("f:", "k:"...), so none is an
      // array index and the object keeps this insertion order.
      const inner: Record<string, unknown> = member && set ? { '.': {} } : {};
      set?.writeFieldsV1(inner);
      out[key] = inner;
    }
  }

  static fromFieldsV1(json: unknown): FieldSet {
    const set = new FieldSet();
    set.readFieldsV1(json);
    return set;
  }

  private readFieldsV1(json: unknown): void {
    if (typeof json !== 'object' || json === null || Array.isArray(json)) {
      throw new Error('FieldsV1 must be a JSON object');
    }
    for (const [key, value] of Object.entries(json)) {
      if (key === '.') continue;
      const pe = parseElementKey(key);
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        throw new Error(`FieldsV1 value for ${JSON.stringify(key)} must be an object`);
      }
      const inner = Object.keys(value);
      if (inner.length === 0 || Object.hasOwn(value, '.')) this.members.set(elementKey(pe), pe);
      if (inner.some((k) => k !== '.')) {
        const child = new FieldSet();
        child.readFieldsV1(value);
        if (!child.isEmpty()) this.children.set(elementKey(pe), { pe, set: child });
      }
    }
  }

  /** Adds pe itself at this level (for walks that build a set node by node). */
  addMember(pe: PathElement): void {
    this.members.set(elementKey(pe), pe);
  }

  /** The node for the paths below pe, made if missing (for walks that build a set node by node). */
  childOrCreate(pe: PathElement): FieldSet {
    const k = elementKey(pe);
    let entry = this.children.get(k);
    if (!entry) {
      entry = { pe, set: new FieldSet() };
      this.children.set(k, entry);
    }
    return entry.set;
  }

  private clone(): FieldSet {
    const out = new FieldSet();
    out.addAll(this);
    return out;
  }

  private addAll(other: FieldSet): void {
    for (const [k, pe] of other.members) this.members.set(k, pe);
    for (const [k, { pe, set }] of other.children) {
      let mine = this.children.get(k);
      if (!mine) {
        mine = { pe, set: new FieldSet() };
        this.children.set(k, mine);
      }
      mine.set.addAll(set);
    }
  }

  private combine(other: FieldSet, mode: 'difference' | 'recursive'): FieldSet {
    const out = new FieldSet();
    for (const [k, pe] of this.members) if (!other.members.has(k)) out.members.set(k, pe);
    for (const [k, { pe, set }] of this.children) {
      if (mode === 'recursive' && other.members.has(k)) continue;
      const theirs = other.children.get(k);
      const rest = theirs ? set.combine(theirs.set, mode) : set.clone();
      if (!rest.isEmpty()) out.children.set(k, { pe, set: rest });
    }
    return out;
  }
}
