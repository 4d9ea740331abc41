// metadata.managedFields entries: decoding them into field sets per manager,
// encoding them back in upstream's order, and capping the number of Update
// entries (k8s.io/apimachinery/pkg/util/managedfields/internal).

import { FieldSet, goJSON, goQuote } from './fieldpath.ts';

/** One metadata.managedFields entry, as upstream writes it. */
export interface ManagedFieldsEntry {
  manager: string;
  operation: 'Apply' | 'Update';
  apiVersion: string;
  /** RFC 3339, second precision. Absent for an applier whose apply changed nothing yet. */
  time?: string;
  fieldsType: 'FieldsV1';
  fieldsV1: Record<string, unknown>;
  subresource?: string;
}

/** A decoded entry. */
export interface Manager {
  manager: string;
  operation: 'Apply' | 'Update';
  apiVersion: string;
  subresource: string;
  time: string | undefined;
  set: FieldSet;
  /**
   * The entry's fieldsV1 as decoded, with the set it decoded to: while
   * `set` is still that set, encoding gives this back instead of writing
   * the set out again (an update re-encodes every other manager's entry).
   */
  decoded?: { set: FieldSet; fieldsV1: Record<string, unknown> };
}

/**
 * Upstream's manager identifier: the entry without time and fields, as JSON
 * in ManagedFieldsEntry's field order. Appliers are identified without their
 * API version, so an applier keeps one entry across versions; updaters get one
 * entry per version. Conflicts sort by this string.
 */
export function managerId(m: Pick<Manager, 'manager' | 'operation' | 'apiVersion' | 'subresource'>): string {
  const parts: string[] = [];
  if (m.manager !== '') parts.push(`"manager":${goJSON(m.manager)}`);
  parts.push(`"operation":${goJSON(m.operation)}`);
  if (m.operation === 'Update' && m.apiVersion !== '') parts.push(`"apiVersion":${goJSON(m.apiVersion)}`);
  if (m.subresource !== '') parts.push(`"subresource":${goJSON(m.subresource)}`);
  return `{${parts.join(',')}}`;
}

/** How conflict messages name a manager: "kubectl-edit" using v1, "mgr" with subresource "status". */
export function describeManager(
  m: Pick<Manager, 'manager' | 'operation' | 'apiVersion' | 'subresource'>,
): string {
  let s = goQuote(m.manager);
  if (m.subresource !== '') s += ` with subresource ${goQuote(m.subresource)}`;
  return m.operation === 'Update' ? `${s} using ${m.apiVersion}` : s;
}

export class ManagedFieldsDecodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ManagedFieldsDecodeError';
  }
}

/**
 * Decodes entries, keyed by manager identifier (a later duplicate wins, as
 * upstream). With `keepEncoding` (entries this server wrote, so already in
 * canonical form) each manager keeps its fieldsV1 for re-encoding.
 */
export function decodeManagedFields(entries: unknown, keepEncoding = false): Map<string, Manager> {
  const out = new Map<string, Manager>();
  if (entries === undefined || entries === null) return out;
  if (!Array.isArray(entries)) throw new ManagedFieldsDecodeError('managedFields must be a list');
  entries.forEach((e: unknown, i) => {
    if (typeof e !== 'object' || e === null || Array.isArray(e)) {
      throw new ManagedFieldsDecodeError(`managed fields entry ${i} must be an object`);
    }
    const entry = e as Record<string, unknown>;
    const str = (k: string): string => (typeof entry[k] === 'string' ? (entry[k] as string) : '');
    const operation = entry.operation;
    if (operation !== 'Apply' && operation !== 'Update') {
      throw new ManagedFieldsDecodeError('operation must be `Apply` or `Update`');
    }
    if (str('apiVersion') === '') throw new ManagedFieldsDecodeError('apiVersion must not be empty');
    if (str('fieldsType') === '')
      throw new ManagedFieldsDecodeError(`missing fieldsType in managed fields entry ${i}`);
    if (entry.fieldsType !== 'FieldsV1') {
      throw new ManagedFieldsDecodeError(
        `invalid fieldsType "${str('fieldsType')}" in managed fields entry ${i}`,
      );
    }
    let set: FieldSet;
    try {
      set =
        entry.fieldsV1 === undefined || entry.fieldsV1 === null
          ? new FieldSet()
          : FieldSet.fromFieldsV1(entry.fieldsV1);
    } catch (err) {
      throw new ManagedFieldsDecodeError(`error decoding versioned set: ${(err as Error).message}`);
    }
    const m: Manager = {
      manager: str('manager'),
      operation,
      apiVersion: str('apiVersion'),
      subresource: str('subresource'),
      time: str('time') || undefined,
      set,
      ...(keepEncoding && isFieldsObject(entry.fieldsV1)
        ? { decoded: { set, fieldsV1: entry.fieldsV1 } }
        : {}),
    };
    out.set(managerId(m), m);
  });
  return out;
}

const isFieldsObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Equal JSON, key order included (a FieldsV1 in canonical form has one spelling). */
export function sameJSON(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  for (let i = 0; i < ka.length; i++) {
    const k = ka[i]!;
    if (k !== kb[i]) return false;
    if (!sameJSON((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])) return false;
  }
  return true;
}

const seconds = (time: string | undefined): number => {
  const ms = time === undefined ? Number.NaN : Date.parse(time);
  return Number.isNaN(ms) ? 0 : Math.floor(ms / 1000);
};

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Entries in upstream's order: Apply before Update, then oldest first, then
 * by manager, API version and subresource. Managers with no fields are left
 * out.
 */
export function encodeManagedFields(managers: Map<string, Manager>): ManagedFieldsEntry[] {
  const list = [...managers.values()].filter((m) => !m.set.isEmpty());
  list.sort(
    (p, q) =>
      cmp(p.operation, q.operation) ||
      seconds(p.time) - seconds(q.time) ||
      cmp(p.manager, q.manager) ||
      cmp(p.apiVersion, q.apiVersion) ||
      cmp(p.subresource, q.subresource),
  );
  return list.map((m) => ({
    manager: m.manager,
    operation: m.operation,
    apiVersion: m.apiVersion,
    ...(m.time !== undefined ? { time: m.time } : {}),
    fieldsType: 'FieldsV1',
    fieldsV1: m.decoded?.set === m.set ? m.decoded.fieldsV1 : m.set.toFieldsV1(),
    ...(m.subresource !== '' ? { subresource: m.subresource } : {}),
  }));
}

/** Upstream keeps at most this many Update entries (DefaultMaxUpdateManagers). */
export const DEFAULT_MAX_UPDATE_MANAGERS = 10;
const ANCIENT_CHANGES = 'ancient-changes';

/**
 * Folds the oldest Update entries into one "ancient-changes" entry per API
 * version until at most `max` remain, as upstream's capManagersManager does
 * so that objects written by many clients keep a bounded managedFields.
 */
export function capUpdateManagers(managers: Map<string, Manager>, max: number): void {
  const updaters = [...managers.entries()].filter(([, m]) => m.operation === 'Update');
  if (updaters.length <= max) return;
  updaters.sort(([ia, a], [ib, b]) => seconds(a.time) - seconds(b.time) || cmp(ia, ib));
  const firstOfVersion = new Map<string, string>();
  let remaining = updaters.length;
  for (const [id, m] of updaters) {
    if (remaining <= max) break;
    const bucket: Manager = {
      manager: ANCIENT_CHANGES,
      operation: 'Update',
      apiVersion: m.apiVersion,
      subresource: '',
      time: undefined,
      set: new FieldSet(),
    };
    const bucketId = managerId(bucket);
    const first = firstOfVersion.get(m.apiVersion);
    // The bucket itself may be among the oldest entries; it never folds into itself.
    if (first === undefined || id === bucketId) {
      firstOfVersion.set(m.apiVersion, id);
      continue;
    }
    let target = managers.get(bucketId);
    if (!target) {
      const firstEntry = managers.get(first)!;
      managers.delete(first);
      target = { ...bucket, set: firstEntry.set, time: firstEntry.time };
      managers.set(bucketId, target);
    }
    target.set = m.set.union(target.set);
    // The folded entry is the more recent one, so its time stands for the bucket.
    target.time = m.time;
    managers.delete(id);
    remaining--;
  }
}
