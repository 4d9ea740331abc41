// ControllerRevisions: the recorded history of a DaemonSet's or StatefulSet's
// pod template, as upstream's pkg/controller/history/controller_history.go.
// Each revision is an immutable snapshot of the template (its `data`) with a
// monotonically increasing `revision` number; its name is the owner's name
// plus a hash of the data, so writing the same template twice finds the
// existing revision instead of making a second one. `kubectl rollout history`
// and `kubectl rollout undo` read these objects.
//
// The hashes are FNV-32a over canonical JSON (keys sorted), encoded with
// upstream's "safe" alphabet (no vowels, so no words). Upstream hashes Go's
// in-memory representation instead, so the values differ from a real
// cluster's; only their stability and uniqueness matter to the controllers.

import { isApiError } from '../api/errors.ts';
import type { Selector } from '../api/labels.ts';
import { deepCopy, jsonEqual, type KubeObject } from '../api/meta.ts';
import type { ControllerRevision } from '../api/types/apps-v1.ts';
import type { ResourceClient } from '../client/client.ts';
import type { Indexer } from '../client/informer.ts';
import { NAMESPACE_INDEX } from '../client/informer-factory.ts';
import { claimObjects, controllerRefOf, ownerRef } from './ownership.ts';

/**
 * The label daemon and stateful pods carry naming the revision they were made
 * from (apps/v1 ControllerRevisionHashLabelKey, a.k.a.
 * DefaultDaemonSetUniqueLabelKey and StatefulSetRevisionLabel).
 */
export const CONTROLLER_REVISION_HASH_LABEL_KEY = 'controller-revision-hash';

/** The label history.NewControllerRevision puts on a revision: the hash of its data. */
export const CONTROLLER_REVISION_DATA_HASH_LABEL = 'controller.kubernetes.io/hash';

// ---- hashing ----------------------------------------------------------------

/** JSON with object keys sorted, so equal values always hash alike. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map((x) => canonicalJson(x === undefined ? null : x)).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

const FNV32_OFFSET = 0x811c9dc5;
const FNV32_PRIME = 0x01000193;

/** FNV-1a, 32 bits (Go's hash/fnv New32a), continuing from `hash`. */
export function fnv32a(bytes: Uint8Array, hash = FNV32_OFFSET): number {
  let h = hash;
  for (const b of bytes) {
    h ^= b;
    h = Math.imul(h, FNV32_PRIME) >>> 0;
  }
  return h >>> 0;
}

// Upstream's util/rand alphabet: no vowels and no easily confused characters,
// so a generated name never spells a word.
const SAFE_ALPHANUMS = 'bcdfghjklmnpqrstvwxz2456789';

/** rand.SafeEncodeString: maps each character onto the safe alphabet. */
export function safeEncodeString(s: string): string {
  let out = '';
  for (const ch of s) out += SAFE_ALPHANUMS[(ch.codePointAt(0) ?? 0) % SAFE_ALPHANUMS.length];
  return out;
}

const utf8 = new TextEncoder();

/**
 * controller.ComputeHash: the hash of a pod template, with the owner's
 * status.collisionCount mixed in (as 4 little-endian bytes) when set, so a
 * collision can be escaped by bumping the count. The DaemonSet controller
 * names its revisions and labels its pods with it.
 */
export function computeHash(template: unknown, collisionCount?: number): string {
  let h = fnv32a(utf8.encode(canonicalJson(template ?? null)));
  if (collisionCount !== undefined && collisionCount !== null) {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, collisionCount >>> 0, true);
    h = fnv32a(b, h);
  }
  return safeEncodeString(String(h));
}

/**
 * history.HashControllerRevision: the hash of a revision's data, with the
 * collision probe appended in decimal when given.
 */
export function hashControllerRevision(revision: Pick<ControllerRevision, 'data'>, probe?: number): string {
  let h = fnv32a(utf8.encode(canonicalJson(revision.data ?? null)));
  if (probe !== undefined) h = fnv32a(utf8.encode(String(probe)), h);
  return safeEncodeString(String(h));
}

/** `prefix-hash`, the prefix cut to 223 characters so the name fits in 253. */
export function controllerRevisionName(prefix: string, hash: string): string {
  return `${prefix.slice(0, 223)}-${hash}`;
}

// ---- building and comparing revisions ---------------------------------------

/**
 * The data DaemonSets and StatefulSets record: a strategic merge patch that
 * replaces the owner's spec.template. kubectl's `rollout history --revision`
 * and `rollout undo` apply it to the owner, so the shape matters
 * (daemon/update.go and stateful_set_utils.go getPatch).
 */
export function templatePatch(template: unknown): { spec: { template: Record<string, unknown> } } {
  return {
    spec: { template: { ...(deepCopy(template ?? {}) as Record<string, unknown>), $patch: 'replace' } },
  };
}

export interface NewControllerRevisionOptions {
  parent: KubeObject;
  /** The owner's apiVersion and kind, for the controller ownerReference (e.g. apps/v1, StatefulSet). */
  parentApiVersion: string;
  parentKind: string;
  /** The pod template's labels: revisions are selected by the owner's selector like its pods. */
  templateLabels: Record<string, string> | undefined;
  data: unknown;
  revision: number;
  collisionCount?: number;
}

/** history.NewControllerRevision: named `<parent>-<hash of data>`, owned by the parent. */
export function newControllerRevision(o: NewControllerRevisionOptions): ControllerRevision {
  const cr: ControllerRevision = {
    apiVersion: 'apps/v1',
    kind: 'ControllerRevision',
    metadata: {
      labels: { ...(o.templateLabels ?? {}) },
      ownerReferences: [ownerRef(o.parent, o.parentApiVersion, o.parentKind)],
      ...(o.parent.metadata.namespace ? { namespace: o.parent.metadata.namespace } : {}),
    },
    data: o.data,
    revision: o.revision,
  };
  const hash = hashControllerRevision(cr, o.collisionCount);
  cr.metadata.name = controllerRevisionName(o.parent.metadata.name ?? '', hash);
  cr.metadata.labels![CONTROLLER_REVISION_DATA_HASH_LABEL] = hash;
  return cr;
}

/** history.EqualRevision: same data (and same data hash label, when both carry one). */
export function equalRevision(a: ControllerRevision | undefined, b: ControllerRevision | undefined): boolean {
  if (!a || !b) return a === b;
  const ha = a.metadata.labels?.[CONTROLLER_REVISION_DATA_HASH_LABEL];
  const hb = b.metadata.labels?.[CONTROLLER_REVISION_DATA_HASH_LABEL];
  if (ha !== undefined && hb !== undefined && ha !== hb) return false;
  return jsonEqual(a.data, b.data);
}

/** history.FindEqualRevisions, in the order given. */
export function findEqualRevisions(
  revisions: readonly ControllerRevision[],
  needle: ControllerRevision,
): ControllerRevision[] {
  return revisions.filter((r) => equalRevision(r, needle));
}

/**
 * history.SortControllerRevisions: oldest first by revision number, ties
 * broken by creation time, then name. Returns a new array.
 */
export function sortControllerRevisions(revisions: readonly ControllerRevision[]): ControllerRevision[] {
  return [...revisions].sort((a, b) => {
    const d = (a.revision ?? 0) - (b.revision ?? 0);
    if (d !== 0) return d;
    const ta = a.metadata.creationTimestamp ?? '';
    const tb = b.metadata.creationTimestamp ?? '';
    if (ta !== tb) return ta < tb ? -1 : 1;
    const na = a.metadata.name ?? '';
    const nb = b.metadata.name ?? '';
    return na < nb ? -1 : na > nb ? 1 : 0;
  });
}

/** The highest revision number, 0 when there is none. */
export function maxRevision(revisions: readonly ControllerRevision[]): number {
  return revisions.reduce((m, r) => Math.max(m, r.revision ?? 0), 0);
}

/** The number the next new revision gets. */
export const nextRevision = (revisions: readonly ControllerRevision[]): number => maxRevision(revisions) + 1;

// ---- the History: reads from the informer cache, writes through the API -----

/** What a controller does with its history (upstream's history.Interface). */
export interface History {
  /** Revisions in the parent's namespace matching selector that the parent controls, or nobody does. */
  list(parent: KubeObject, selector: Selector): ControllerRevision[];
  /**
   * Creates `revision` (named by its data hash and collisionCount). When a
   * revision of that name exists with other data, bumps the count and tries
   * the next name. Returns what exists afterwards and the count to store in
   * the owner's status.collisionCount.
   */
  create(
    parent: KubeObject,
    revision: ControllerRevision,
    collisionCount: number,
  ): Promise<{ revision: ControllerRevision; collisionCount: number }>;
  /** Sets a revision's number (retrying on conflict), e.g. when a rollback re-uses an old template. */
  update(revision: ControllerRevision, newRevision: number): Promise<ControllerRevision>;
  delete(revision: ControllerRevision): Promise<void>;
  /**
   * Adopts orphaned revisions matching the selector and releases owned ones
   * that stopped matching (ControllerRefManager.ClaimControllerRevisions).
   */
  claim(opts: {
    parent: KubeObject;
    parentApiVersion: string;
    parentKind: string;
    selector: Selector;
    recheckParent: () => Promise<KubeObject | undefined>;
  }): Promise<ControllerRevision[]>;
}

export function newHistory(
  client: ResourceClient<ControllerRevision>,
  indexer: Indexer<ControllerRevision>,
): History {
  const list = (parent: KubeObject, selector: Selector) =>
    indexer.byIndex(NAMESPACE_INDEX, parent.metadata.namespace ?? '').filter((r) => {
      if (!selector.matches(r.metadata.labels ?? {})) return false;
      const ref = controllerRefOf(r);
      return !ref || ref.uid === parent.metadata.uid;
    });

  return {
    list,

    async create(parent, revision, collisionCount) {
      const ns = parent.metadata.namespace;
      let count = collisionCount;
      const clone = deepCopy(revision);
      clone.metadata.namespace = ns;
      // Bounded so a broken hash cannot spin forever; upstream loops until success.
      for (let attempt = 0; attempt < 100; attempt++) {
        clone.metadata.name = controllerRevisionName(
          parent.metadata.name ?? '',
          hashControllerRevision(revision, count),
        );
        try {
          return { revision: await client.create(ns, clone), collisionCount: count };
        } catch (err) {
          if (!isApiError(err, 'AlreadyExists')) throw err;
        }
        const exists = await client.get(ns, clone.metadata.name);
        if (jsonEqual(exists.data, clone.data)) return { revision: exists, collisionCount: count };
        count++;
      }
      throw new Error(`no free ControllerRevision name for ${parent.metadata.name} after 100 collisions`);
    },

    async update(revision, newRevision) {
      let clone = deepCopy(revision);
      for (let attempt = 0; ; attempt++) {
        if (clone.revision === newRevision) return clone;
        clone.revision = newRevision;
        try {
          return await client.update(clone);
        } catch (err) {
          if (!isApiError(err, 'Conflict') || attempt >= 4) throw err;
          clone = deepCopy(await client.get(clone.metadata.namespace, clone.metadata.name ?? ''));
        }
      }
    },

    async delete(revision) {
      try {
        await client.delete(revision.metadata.namespace, revision.metadata.name ?? '', {
          ...(revision.metadata.uid ? { preconditions: { uid: revision.metadata.uid } } : {}),
        });
      } catch (err) {
        if (!isApiError(err, 'NotFound') && !isApiError(err, 'Conflict')) throw err;
      }
    },

    claim({ parent, parentApiVersion, parentKind, selector, recheckParent }) {
      const candidates = indexer
        .byIndex(NAMESPACE_INDEX, parent.metadata.namespace ?? '')
        .filter((r) => !controllerRefOf(r) || controllerRefOf(r)?.uid === parent.metadata.uid);
      return claimObjects(candidates, {
        owner: parent,
        ownerApiVersion: parentApiVersion,
        ownerKind: parentKind,
        selector,
        client,
        recheckOwner: recheckParent,
      });
    },
  };
}

export interface TruncateHistoryOptions {
  /** Revisions that must stay: the current and update revisions, and those pods still run. */
  isLive: (revision: ControllerRevision) => boolean;
  /** spec.revisionHistoryLimit. */
  limit: number;
  /**
   * Whether live revisions count against the limit. The StatefulSet's
   * truncateHistory keeps `limit` non-live revisions besides the live ones;
   * the DaemonSet's cleanupHistory keeps `limit` old revisions in all, live
   * ones included (it is given the old revisions only, without the current).
   */
  liveCountTowardsLimit?: boolean;
}

/** The revisions to delete to honour revisionHistoryLimit, oldest first; never a live one. */
export function revisionsToTruncate(
  revisions: readonly ControllerRevision[],
  { isLive, limit, liveCountTowardsLimit = false }: TruncateHistoryOptions,
): ControllerRevision[] {
  const notLive = sortControllerRevisions(revisions).filter((r) => !isLive(r));
  const total = liveCountTowardsLimit ? revisions.length : notLive.length;
  return notLive.slice(0, Math.max(0, total - Math.max(0, limit)));
}
