// Copies one store into another, as k3s moves a SQLite cluster into etcd
// when it first starts with --cluster-init: every key's latest version,
// written in the order of its modRevision, so the target's revisions (the
// new resourceVersions) keep the source's order, and every value (uids,
// managedFields, encrypted Secrets) byte for byte. History and deleted
// keys are not copied; a watch cannot resume across the move, so clients
// relist once, as after any compaction.

import type { KeyValue, Store } from './store.ts';

export interface MigrateOptions {
  /** Keys under these prefixes are not copied (a server's own ephemeral keys). */
  skipPrefixes?: string[];
  pageSize?: number;
}

/** Returns how many keys were copied. The target must not hold any of them. */
export async function migrateStore(from: Store, to: Store, opts: MigrateOptions = {}): Promise<number> {
  const skip = opts.skipPrefixes ?? [];
  const all: KeyValue[] = [];
  let cont: string | undefined;
  do {
    const page = await from.list('/', { limit: opts.pageSize ?? 1000, ...(cont ? { continue: cont } : {}) });
    all.push(...page.items);
    cont = page.continue;
  } while (cont);
  const keep = all.filter((kv) => !skip.some((p) => kv.key.startsWith(p)));
  keep.sort((a, b) => a.modRevision - b.modRevision);
  for (const kv of keep) await to.create(kv.key, kv.value);
  return keep.length;
}
