// A Store that encrypts some keys' values at rest (config.ts): the values
// under /registry/<resource>/ for each resource the EncryptionConfiguration
// names. Everything above it (the registry, the watch cache) sees plain
// values; the backend only ever holds ciphertext. reencrypt() rewrites every
// value not written by the current provider and key (a key rotation, or
// encryption turned on over existing Secrets), compare-and-swap, as
// upstream's `kubectl get secrets -A -o json | kubectl replace -f -` would.

import { type KeyValue, StorageError, type Store, type WatchEvent } from '../store.ts';
import type { Transformer } from './config.ts';

export interface EncryptedStore extends Store {
  /** Rewrites stale values with the current writer; counts what it looked at and rewrote. */
  reencrypt(): Promise<{ total: number; rewritten: number; byWriter: Record<string, number> }>;
}

export function encryptedStore(store: Store, transformers: Record<string, Transformer>): EncryptedStore {
  const rules = Object.entries(transformers).map(([resource, t]) => ({
    prefix: `/registry/${resource}/`,
    t,
  }));
  const ruleFor = (key: string) => rules.find((r) => key.startsWith(r.prefix))?.t;
  const read = (kv: KeyValue): KeyValue => {
    const t = ruleFor(kv.key);
    return t ? { ...kv, value: t.fromStorage(kv.value).value } : kv;
  };
  const write = (key: string, value: string) => ruleFor(key)?.toStorage(value) ?? value;
  const rethrow = (err: unknown): never => {
    if (err instanceof StorageError && err.current)
      throw new StorageError(err.code, err.message, {
        ...(err.key !== undefined ? { key: err.key } : {}),
        current: read(err.current),
        ...(err.revision !== undefined ? { revision: err.revision } : {}),
      });
    throw err;
  };

  return {
    async get(key, opts) {
      const kv = await store.get(key, opts);
      return kv && read(kv);
    },
    async list(prefix, opts) {
      const r = await store.list(prefix, opts);
      return { ...r, items: r.items.map(read) };
    },
    count: (prefix) => store.count(prefix),
    create: (key, value) => store.create(key, write(key, value)).then(read, rethrow),
    update: (key, value, rev) => store.update(key, write(key, value), rev).then(read, rethrow),
    async delete(key, rev) {
      const r = await store.delete(key, rev).catch(rethrow);
      return { ...r, prevKv: read(r.prevKv) };
    },
    watch(prefix, opts) {
      return store.watch(prefix, {
        ...opts,
        onEvents: (events) =>
          opts.onEvents(
            events.map(
              (e): WatchEvent => ({ ...e, kv: read(e.kv), ...(e.prevKv ? { prevKv: read(e.prevKv) } : {}) }),
            ),
          ),
      });
    },
    currentRevision: () => store.currentRevision(),
    compactedRevision: () => store.compactedRevision(),
    compact: (rev) => store.compact(rev),
    close: () => store.close(),
    async reencrypt() {
      let total = 0;
      let rewritten = 0;
      const byWriter: Record<string, number> = {};
      for (const { prefix, t } of rules) {
        let cont: string | undefined;
        do {
          const page = await store.list(prefix, { limit: 500, ...(cont ? { continue: cont } : {}) });
          for (const kv of page.items) {
            total++;
            const { value, stale } = t.fromStorage(kv.value);
            if (stale) {
              try {
                await store.update(kv.key, t.toStorage(value), kv.modRevision);
                rewritten++;
              } catch (err) {
                // Written (so with the current key) or deleted meanwhile.
                if (!(err instanceof StorageError && (err.code === 'Conflict' || err.code === 'NotFound')))
                  throw err;
              }
            }
            byWriter[t.writer] = (byWriter[t.writer] ?? 0) + 1;
          }
          cont = page.continue;
        } while (cont);
      }
      return { total, rewritten, byWriter };
    },
  };
}
