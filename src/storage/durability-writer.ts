// The victim process of the durability tests (durability.case.ts): writes
// keys through a Store as fast as they are acknowledged and prints each
// acknowledged key on its own stdout line, until it is killed.
//
//   node src/storage/durability-writer.ts <etcd|sqlite> '<options as JSON>' [concurrency]
//
// The options are the backend's create*Store options. A line is printed only
// after the store resolved the write, so every line the parent reads is a
// write the store promised to keep.

import { fileURLToPath } from 'node:url';
import type { Store } from './store.ts';

export type WriterBackend = 'etcd' | 'sqlite';

export const WRITER_SCRIPT = fileURLToPath(import.meta.url);
export const DURABILITY_PREFIX = '/durability/';

export const durabilityKey = (i: number): string => `${DURABILITY_PREFIX}${String(i).padStart(8, '0')}`;

/** The index a durabilityKey was made from, or undefined for any other key. */
export function durabilityIndex(key: string): number | undefined {
  const m = /^\/durability\/(\d{8})$/.exec(key);
  return m ? Number(m[1]) : undefined;
}

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/**
 * The value written for index i: deterministic, so the checker can recompute
 * it, and of varying size up to ~8 KiB, so some writes span several pages or
 * WAL frames, where a torn write would show.
 */
export function durabilityValue(i: number): string {
  const len = 100 + ((i * 7919) % 8000);
  let x = (i + 1) >>> 0;
  let body = '';
  for (let j = 0; j < len; j++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    body += ALPHABET[x >>> 26];
  }
  // Index and length at both ends: a value cut short or spliced from two
  // writes cannot match.
  return `${i}:${len}:${body}:${len}:${i}`;
}

async function openStore(kind: string, options: unknown): Promise<Store> {
  // Imported on demand, so each run loads only its own backend (etcd pulls
  // in gRPC; sqlite needs node:sqlite).
  switch (kind) {
    case 'etcd': {
      const { createEtcdStore } = await import('./etcd/etcd.ts');
      return createEtcdStore(options as Parameters<typeof createEtcdStore>[0]);
    }
    case 'sqlite': {
      const { createSqliteStore } = await import('./sqlite/sqlite.ts');
      return createSqliteStore(options as Parameters<typeof createSqliteStore>[0]);
    }
    default:
      throw new Error(`unknown backend ${JSON.stringify(kind)} (want etcd or sqlite)`);
  }
}

async function main(argv: string[]): Promise<void> {
  const [kind = '', json = '{}', concurrencyArg = '4'] = argv;
  const store = await openStore(kind, JSON.parse(json));
  const concurrency = Math.max(1, Number(concurrencyArg) || 1);
  let next = 0;
  // Several writers at once, as the apiserver would have: backends that
  // batch commits must still acknowledge each write only once it is durable.
  const loop = async () => {
    for (;;) {
      const i = next++;
      const key = durabilityKey(i);
      await store.create(key, durabilityValue(i));
      // Writes to a pipe are synchronous on Linux: once this returns, the
      // line is the parent's even if we are killed on the next instruction.
      process.stdout.write(`${key}\n`);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
}

if (process.argv[1] === WRITER_SCRIPT) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(
      `durability-writer: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exit(1);
  });
}
