// In-memory Store: the same semantics as sqlite and etcd, for unit tests and
// benchmarks that want no disk. Nothing survives close().

import {
  decodeContinue,
  encodeContinue,
  errCompacted,
  errConflict,
  errFutureRevision,
  errKeyExists,
  errNotFound,
  type GetOptions,
  type KeyValue,
  type ListOptions,
  type ListResult,
  type Store,
  type Watch,
  type WatchEvent,
  type WatchOptions,
} from '../store.ts';
import { WatchHub } from '../watch-hub.ts';

/** One entry in a key's history; a tombstone marks a delete. */
interface Version {
  kv: KeyValue;
  deleted: boolean;
}

export function createMemoryStore(): Store {
  let revision = 0;
  let compacted = 0;
  // Every key's history, oldest first. Compaction trims it.
  const history = new Map<string, Version[]>();
  // The event log, for watches that start in the past.
  let log: WatchEvent[] = [];
  let sortedKeys: string[] | undefined;
  const hub = new WatchHub();

  const latest = (key: string): Version | undefined => history.get(key)?.at(-1);
  const live = (key: string): KeyValue | undefined => {
    const v = latest(key);
    return v && !v.deleted ? v.kv : undefined;
  };
  const at = (key: string, rev: number): KeyValue | undefined => {
    const versions = history.get(key);
    if (!versions) return undefined;
    for (let i = versions.length - 1; i >= 0; i--) {
      const v = versions[i]!;
      if (v.kv.modRevision <= rev) return v.deleted ? undefined : v.kv;
    }
    return undefined;
  };
  const checkRevision = (rev: number) => {
    if (rev > revision) throw errFutureRevision(rev, revision);
    if (rev < compacted) throw errCompacted(rev, compacted);
  };
  const record = (key: string, version: Version, event: WatchEvent) => {
    let versions = history.get(key);
    if (!versions) {
      versions = [];
      history.set(key, versions);
      sortedKeys = undefined;
    }
    versions.push(version);
    log.push(event);
    hub.publish([event]);
  };

  const store: Store = {
    async get(key: string, opts: GetOptions = {}) {
      if (opts.revision === undefined || opts.revision === 0) return live(key);
      checkRevision(opts.revision);
      return at(key, opts.revision);
    },

    async list(prefix: string, opts: ListOptions = {}): Promise<ListResult> {
      let rev = opts.revision || revision;
      let after: string | undefined;
      if (opts.continue) {
        const token = decodeContinue(opts.continue);
        rev = token.rev;
        after = token.after;
      }
      checkRevision(rev);
      sortedKeys ??= [...history.keys()].sort();
      const matches: KeyValue[] = [];
      for (const key of sortedKeys) {
        if (!key.startsWith(prefix) || (after !== undefined && key <= after)) continue;
        const kv = at(key, rev);
        if (kv) matches.push(kv);
      }
      const limit = opts.limit && opts.limit > 0 ? opts.limit : matches.length;
      const items = matches.slice(0, limit);
      const remaining = matches.length - items.length;
      const result: ListResult = { items, revision: rev, remaining };
      if (remaining > 0) result.continue = encodeContinue(rev, items.at(-1)!.key);
      return result;
    },

    async count(prefix: string) {
      let n = 0;
      for (const key of history.keys()) if (key.startsWith(prefix) && live(key)) n++;
      return n;
    },

    async create(key: string, value: string) {
      if (live(key)) throw errKeyExists(key);
      const rev = ++revision;
      const kv: KeyValue = { key, value, createRevision: rev, modRevision: rev };
      record(key, { kv, deleted: false }, { type: 'create', kv, revision: rev });
      return kv;
    },

    async update(key: string, value: string, expectedModRevision: number) {
      const prev = live(key);
      if (!prev) throw errNotFound(key);
      if (prev.modRevision !== expectedModRevision) throw errConflict(key, prev);
      const rev = ++revision;
      const kv: KeyValue = { key, value, createRevision: prev.createRevision, modRevision: rev };
      record(key, { kv, deleted: false }, { type: 'update', kv, prevKv: prev, revision: rev });
      return kv;
    },

    async delete(key: string, expectedModRevision?: number) {
      const prev = live(key);
      if (!prev) throw errNotFound(key);
      if (expectedModRevision !== undefined && prev.modRevision !== expectedModRevision) {
        throw errConflict(key, prev);
      }
      const rev = ++revision;
      const kv: KeyValue = { ...prev, modRevision: rev };
      record(key, { kv, deleted: true }, { type: 'delete', kv, prevKv: prev, revision: rev });
      return { prevKv: prev, revision: rev };
    },

    watch(prefix: string, opts: WatchOptions): Watch {
      const afterRevision = opts.afterRevision ?? revision;
      return hub.subscribe(
        prefix,
        opts,
        () => {
          if (afterRevision < compacted) throw errCompacted(afterRevision, compacted);
          if (afterRevision > revision) throw errFutureRevision(afterRevision, revision);
          // Everything here is synchronous, so the backlog and the switch to
          // live delivery happen with no write in between: no gap, no duplicate.
          return log.filter((e) => e.revision > afterRevision && e.kv.key.startsWith(prefix));
        },
        () => revision,
      );
    },

    async currentRevision() {
      return revision;
    },

    async compactedRevision() {
      return compacted;
    },

    async compact(rev: number) {
      if (rev > revision) throw errFutureRevision(rev, revision);
      if (rev <= compacted) return;
      compacted = rev;
      log = log.filter((e) => e.revision > rev);
      for (const [key, versions] of history) {
        // Keep the newest version at or below rev (unless it is a tombstone) and everything newer.
        let keepFrom = 0;
        for (let i = 0; i < versions.length; i++) if (versions[i]!.kv.modRevision <= rev) keepFrom = i;
        let kept = versions.slice(keepFrom);
        if (kept[0] && kept[0].kv.modRevision <= rev && kept[0].deleted) kept = kept.slice(1);
        if (kept.length === 0) {
          history.delete(key);
          sortedKeys = undefined;
        } else history.set(key, kept);
      }
    },

    async close() {
      hub.closeAll();
    },
  };
  return store;
}
