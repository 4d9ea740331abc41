// The embedded SQLite Store: Skiff's default, one file under the data dir.
//
// Layout (the whole history is a log; the row id is the global revision):
//
//   log(revision PK AUTOINCREMENT, key, create_revision, prev_revision, deleted, value)
//   current(key PK, revision)     -- the live version of every key
//   meta(name PK, value)          -- compaction bookkeeping
//
// What this fixes relative to kine's published failures:
// - "Latest value of every key under a prefix" is a range scan of `current`
//   joined to `log` by primary key: it never groups over the log, so a key
//   with 100,000 old revisions costs nothing extra (kine issues #? "slow list
//   with many revisions" came from `MAX(id) GROUP BY name`).
// - Compaction deletes superseded rows in small revision batches, each its
//   own short transaction, yielding to writers in between; it can neither
//   stall behind them nor block them, and its progress survives a restart.
// - One process owns the file and runs every statement on one connection, so
//   no read transaction outlives a call and the WAL always checkpoints;
//   journal_size_limit truncates it back after a burst. Nothing else opens the
//   database, so there is no "database is locked".
//
// Writes are grouped: every write queued in the same event-loop turn commits
// in one transaction (group commit), so one fsync covers many concurrent
// writes. Each write is still checked (create-if-absent, compare-and-swap)
// on its own inside that transaction.
//
// Durability (synchronous FULL, the default) without blocking the event
// loop: SQLite itself runs with synchronous=NORMAL, so COMMIT writes the WAL
// without syncing it, and the store then fdatasyncs the WAL file on libuv's
// thread pool. Only when that returns is the batch durable: its writes are
// acknowledged, its events published and its revision made current, as etcd
// acknowledges a write once it is in the fsynced log. Until then nothing of
// it can be observed: reads (get, list, count, currentRevision) wait for
// the sync, a watch's backlog stops at the durable revision, and the next
// batch does not commit before the sync returns (writes queued meanwhile
// join it, which is the group commit etcd's raft log does too). A failed
// fsync fails its writes and every write after it: after an fsync error
// the state of the file is unknown, so the store refuses to go on.

import { chmodSync, closeSync, fdatasync, fdatasyncSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync, type SQLInputValue, type StatementSync } from 'node:sqlite';
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
  prefixEnd,
  type Store,
  type Watch,
  type WatchEvent,
  type WatchOptions,
} from '../store.ts';
import { WatchHub } from '../watch-hub.ts';

export interface SqliteStoreOptions {
  /** The database file; its directory is created if missing. */
  path: string;
  /**
   * SQLite's synchronous setting. FULL (default) fsyncs the WAL on every
   * commit, so an acknowledged write survives power loss, like etcd.
   * NORMAL survives a crash of the process but not of the machine.
   */
  synchronous?: 'FULL' | 'NORMAL';
  /** Revisions removed per compaction transaction. */
  compactBatch?: number;
  /** The WAL is truncated back to this size after checkpoints. */
  walSizeLimitBytes?: number;
}

/** The extra surface of the sqlite store, for tests and benchmarks. */
export interface SqliteStore extends Store {
  readonly path: string;
  /** Resolves when no compaction is running. */
  compactionIdle(): Promise<void>;
  /** Rows in the log table (history size). */
  logRows(): number;
  /** SQLite's query plans for list, watch and compaction, to prove none of them scans the log. */
  explainList(): string[];
}

interface Row {
  revision: number;
  key: string;
  create_revision: number;
  prev_revision: number;
  deleted: number;
  value: string;
}

interface EventRow extends Row {
  prev_value: string | null;
  prev_create_revision: number | null;
}

type WriteOp =
  | { kind: 'create'; key: string; value: string }
  | { kind: 'update'; key: string; value: string; expected: number }
  | { kind: 'delete'; key: string; expected: number | undefined };

interface Pending {
  op: WriteOp;
  resolve: (result: unknown) => void;
  reject: (err: unknown) => void;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS log (
  revision INTEGER PRIMARY KEY AUTOINCREMENT,
  key TEXT NOT NULL,
  create_revision INTEGER NOT NULL,
  prev_revision INTEGER NOT NULL,
  deleted INTEGER NOT NULL,
  value TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS log_key_revision ON log (key, revision);
CREATE TABLE IF NOT EXISTS current (key TEXT PRIMARY KEY, revision INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
`;

const kvOf = (r: Row): KeyValue => ({
  key: r.key,
  value: r.value,
  createRevision: r.create_revision,
  modRevision: r.revision,
});

export async function createSqliteStore(opts: SqliteStoreOptions): Promise<SqliteStore> {
  const path = opts.path;
  if (path !== ':memory:') {
    // The database holds every Secret: owner-only, as k3s keeps state.db.
    // SQLite gives the -wal and -shm files the database file's mode.
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    closeSync(openSync(path, 'a', 0o600));
    chmodSync(path, 0o600);
  }
  const db = new DatabaseSync(path);
  const walLimit = opts.walSizeLimitBytes ?? 16 * 1024 * 1024;
  const journal = (db.prepare('PRAGMA journal_mode = WAL').get() as { journal_mode: string }).journal_mode;
  // FULL: the store syncs the WAL itself, off the event loop (see the top).
  // An in-memory database has no file to sync.
  const syncWal = opts.synchronous !== 'NORMAL' && path !== ':memory:' && journal === 'wal';
  db.exec(`
    PRAGMA synchronous = ${opts.synchronous === 'NORMAL' || syncWal ? 'NORMAL' : 'FULL'};
    PRAGMA journal_size_limit = ${walLimit};
    PRAGMA foreign_keys = OFF;
    PRAGMA temp_store = MEMORY;
    PRAGMA cache_size = -32000;
  `);
  db.exec(SCHEMA);
  const compactBatch = opts.compactBatch ?? 1000;

  const q = (sql: string): StatementSync => db.prepare(sql);
  const stmt = {
    sequence: q(`SELECT seq FROM sqlite_sequence WHERE name = 'log'`),
    meta: q(`SELECT value FROM meta WHERE name = ?`),
    setMeta: q(
      `INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value`,
    ),
    // The columns a KeyValue needs (not l.*: each column is a property made per row).
    current: q(
      `SELECT l.key, l.value, l.create_revision, l.revision FROM current c JOIN log l ON l.revision = c.revision WHERE c.key = ?`,
    ),
    // A create only needs to know the key is free: no join, no value read.
    exists: q(`SELECT 1 FROM current WHERE key = ?`),
    getAt: q(`SELECT * FROM log WHERE key = ? AND revision <= ? ORDER BY revision DESC LIMIT 1`),
    insert: q(
      `INSERT INTO log (revision, key, create_revision, prev_revision, deleted, value) VALUES (?, ?, ?, ?, ?, ?)`,
    ),
    setCurrent: q(
      `INSERT INTO current (key, revision) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET revision = excluded.revision`,
    ),
    dropCurrent: q(`DELETE FROM current WHERE key = ?`),
    // The live list: a range over `current`, each row joined to the log by primary key.
    listLive: q(`
      SELECT l.* FROM current c JOIN log l ON l.revision = c.revision
      WHERE c.key >= ? AND c.key < ? ORDER BY c.key LIMIT ?`),
    countLive: q(`SELECT count(*) AS n FROM current WHERE key >= ? AND key < ?`),
    // A list at a past revision R: the candidate keys are the live ones plus
    // those written after R (which may have been deleted since); each is
    // resolved to its newest version at or below R through the (key, revision)
    // index. The cost grows with the keys and the writes since R, never with
    // how much history a key has.
    listAt: q(`
      SELECT l.* FROM (
        SELECT key FROM current WHERE key >= ?1 AND key < ?2
        UNION
        SELECT key FROM log NOT INDEXED WHERE revision > ?3 AND key >= ?1 AND key < ?2
      ) k
      JOIN log l ON l.revision = (
        SELECT max(revision) FROM log x WHERE x.key = k.key AND x.revision <= ?3)
      WHERE l.deleted = 0 ORDER BY k.key LIMIT ?4`),
    countAt: q(`
      SELECT count(*) AS n FROM (
        SELECT key FROM current WHERE key >= ?1 AND key < ?2
        UNION
        SELECT key FROM log NOT INDEXED WHERE revision > ?3 AND key >= ?1 AND key < ?2
      ) k
      JOIN log l ON l.revision = (
        SELECT max(revision) FROM log x WHERE x.key = k.key AND x.revision <= ?3)
      WHERE l.deleted = 0`),
    events: q(`
      SELECT l.*, p.value AS prev_value, p.create_revision AS prev_create_revision
      FROM log l NOT INDEXED LEFT JOIN log p ON p.revision = l.prev_revision
      WHERE l.revision > ? AND l.revision <= ? AND l.key >= ? AND l.key < ? ORDER BY l.revision`),
    // The next batch of rows after `done` and at or below the compaction
    // target, each marked dead if compaction removes it: a tombstone, or a
    // version superseded by a newer version at or below the target.
    compactBatch: q(`
      SELECT revision, (l.deleted = 1 OR EXISTS (
          SELECT 1 FROM log n WHERE n.key = l.key AND n.revision > l.revision AND n.revision <= ?2)) AS dead
      FROM log l WHERE l.revision > ?1 AND l.revision <= ?2 ORDER BY l.revision LIMIT ?3`),
    deleteRow: q(`DELETE FROM log WHERE revision = ?`),
    logRows: q(`SELECT count(*) AS n FROM log`),
  };

  const metaValue = (name: string): number => {
    const row = stmt.meta.get(name) as { value: number } | undefined;
    return row?.value ?? 0;
  };

  // The last committed revision; `durable` is the last one synced, which is
  // the one everybody sees (they differ only while a sync is in flight).
  let revision = Number((stmt.sequence.get() as { seq: number } | undefined)?.seq ?? 0);
  let durable = revision;
  let compacted = metaValue('compact_revision');
  const hub = new WatchHub();
  let closing = false;

  // The WAL file, opened after the first commit (SQLite creates it lazily);
  // the directory is synced once too, so that a new WAL file's entry is durable.
  let walFd: number | undefined;
  const walFile = (): number => {
    if (walFd === undefined) {
      walFd = openSync(`${path}-wal`, 'r+');
      const dirFd = openSync(dirname(path), 'r');
      try {
        fdatasyncSync(dirFd);
      } finally {
        closeSync(dirFd);
      }
    }
    return walFd;
  };
  // The sync in flight, if any, and the error of a failed one (fatal).
  let syncing: Promise<void> | undefined;
  let syncFailed: unknown;
  /** Resolves when no sync is in flight: what is then in the database is durable. */
  const settled = async (): Promise<void> => {
    while (syncing) await syncing;
    if (syncFailed !== undefined) throw syncFailed;
  };

  const checkRevision = (rev: number) => {
    if (rev > revision) throw errFutureRevision(rev, revision);
    if (rev < compacted) throw errCompacted(rev, compacted);
  };

  // ---- the single writer ------------------------------------------------

  let queue: Pending[] = [];
  let flushScheduled = false;

  const enqueue = <T>(op: WriteOp): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      if (closing) {
        reject(new Error('sqlite store is closed'));
        return;
      }
      if (syncFailed !== undefined) {
        reject(syncFailed);
        return;
      }
      queue.push({ op, resolve: resolve as (r: unknown) => void, reject });
      // While a batch syncs, its completion schedules the next one.
      if (!flushScheduled && !syncing) {
        flushScheduled = true;
        setImmediate(flush);
      }
    });

  // Applies one write inside the open transaction. Returns the event, or
  // throws a StorageError for this write alone (nothing was written for it).
  const apply = (op: WriteOp): { result: unknown; event: WatchEvent } => {
    const rev = revision + 1;
    if (op.kind === 'create') {
      if (stmt.exists.get(op.key)) throw errKeyExists(op.key);
      stmt.insert.run(rev, op.key, rev, 0, 0, op.value);
      stmt.setCurrent.run(op.key, rev);
      revision = rev;
      const kv: KeyValue = { key: op.key, value: op.value, createRevision: rev, modRevision: rev };
      return { result: kv, event: { type: 'create', kv, revision: rev } };
    }
    const prevRow = stmt.current.get(op.key) as Row | undefined;
    const prev = prevRow ? kvOf(prevRow) : undefined;
    switch (op.kind) {
      case 'update': {
        if (!prev) throw errNotFound(op.key);
        if (prev.modRevision !== op.expected) throw errConflict(op.key, prev);
        stmt.insert.run(rev, op.key, prev.createRevision, prev.modRevision, 0, op.value);
        stmt.setCurrent.run(op.key, rev);
        revision = rev;
        const kv: KeyValue = {
          key: op.key,
          value: op.value,
          createRevision: prev.createRevision,
          modRevision: rev,
        };
        return { result: kv, event: { type: 'update', kv, prevKv: prev, revision: rev } };
      }
      case 'delete': {
        if (!prev) throw errNotFound(op.key);
        if (op.expected !== undefined && prev.modRevision !== op.expected) throw errConflict(op.key, prev);
        // A tombstone keeps no value of its own; prevKv comes from prev_revision.
        stmt.insert.run(rev, op.key, prev.createRevision, prev.modRevision, 1, '');
        stmt.dropCurrent.run(op.key);
        revision = rev;
        return {
          result: { prevKv: prev, revision: rev },
          event: { type: 'delete', kv: { ...prev, modRevision: rev }, prevKv: prev, revision: rev },
        };
      }
    }
  };

  function flush(finalSync = false): void {
    flushScheduled = false;
    // One batch at a time: the next commits once this one is durable.
    if (syncing) return;
    const batch = queue;
    queue = [];
    if (batch.length === 0) return;
    const startRevision = revision;
    const outcomes: Array<{ ok: true; result: unknown } | { ok: false; err: unknown }> = [];
    const events: WatchEvent[] = [];
    try {
      db.exec('BEGIN IMMEDIATE');
      for (const p of batch) {
        try {
          const { result, event } = apply(p.op);
          outcomes.push({ ok: true, result });
          events.push(event);
        } catch (err) {
          // Only the checks above throw here; they run before any statement of
          // this write, so the transaction holds nothing of it.
          outcomes.push({ ok: false, err });
        }
      }
      db.exec('COMMIT');
    } catch (err) {
      // The transaction failed as a whole (disk full, I/O error): nothing of
      // it is visible, so every write in it fails.
      if (db.isTransaction) db.exec('ROLLBACK');
      revision = startRevision;
      for (const p of batch) p.reject(err);
      return;
    }
    const acknowledge = () => {
      durable = revision;
      batch.forEach((p, i) => {
        const o = outcomes[i]!;
        if (o.ok) p.resolve(o.result);
        else p.reject(o.err);
      });
      hub.publish(events);
    };
    const fail = (err: unknown) => {
      syncFailed = err;
      for (const p of batch) p.reject(err);
      for (const p of queue.splice(0)) p.reject(err);
    };
    if (!syncWal || events.length === 0) {
      acknowledge();
      return;
    }
    if (finalSync) {
      try {
        fdatasyncSync(walFile());
      } catch (err) {
        fail(err);
        return;
      }
      acknowledge();
      return;
    }
    let fd: number;
    try {
      fd = walFile();
    } catch (err) {
      fail(err);
      return;
    }
    syncing = new Promise<void>((resolve) => {
      fdatasync(fd, (err) => {
        syncing = undefined;
        if (err) fail(err);
        else acknowledge();
        resolve();
        // Readers woken by the resolve (microtasks) read before the next
        // batch commits; then the writes queued meanwhile go as one batch.
        if (queue.length > 0 && !flushScheduled) {
          flushScheduled = true;
          setImmediate(flush);
        }
      });
    });
  }

  // ---- compaction -------------------------------------------------------

  let compaction: Promise<void> | undefined;

  // Each pass walks every row at or below the target, in batches of rows:
  // rows kept by an earlier pass (the newest version of each key) may have
  // been superseded since. Progress is saved with each batch, so a restart
  // resumes the pass where it stopped.
  const runCompaction = async (): Promise<void> => {
    let target = 0;
    let done = 0;
    while (!closing) {
      if (target !== compacted) {
        // A new target (or the first batch): continue the saved pass only if
        // it was for this very target, else start over from the oldest row.
        target = compacted;
        done = metaValue('compact_pass') === target ? metaValue('compact_progress') : 0;
      }
      if (done >= target) return;
      db.exec('BEGIN IMMEDIATE');
      try {
        const rows = stmt.compactBatch.all(done, target, compactBatch) as Array<{
          revision: number;
          dead: number;
        }>;
        for (const r of rows) if (r.dead) stmt.deleteRow.run(r.revision);
        done = rows.length < compactBatch ? target : rows.at(-1)!.revision;
        stmt.setMeta.run('compact_pass', target);
        stmt.setMeta.run('compact_progress', done);
        db.exec('COMMIT');
      } catch (err) {
        if (db.isTransaction) db.exec('ROLLBACK');
        throw err;
      }
      // Let queued writes and reads run between batches.
      await new Promise((r) => setImmediate(r));
    }
  };

  const compactionPending = () =>
    metaValue('compact_pass') !== compacted || metaValue('compact_progress') < compacted;

  const startCompaction = (): Promise<void> => {
    compaction ??= runCompaction().finally(() => {
      compaction = undefined;
    });
    return compaction;
  };

  // Resume a compaction that a restart interrupted.
  if (compacted > 0 && compactionPending()) startCompaction().catch(() => {});

  // ---- the Store --------------------------------------------------------

  const listPage = (
    prefix: string,
    rev: number,
    after: string | undefined,
    limit: number,
  ): { rows: Row[]; total: number } => {
    const lo = after === undefined ? prefix : `${after}\u0000`;
    const hi = prefixEnd(prefix);
    const max = limit > 0 ? limit : -1;
    if (rev === revision) {
      const rows = stmt.listLive.all(lo, hi, max) as unknown as Row[];
      const total = limit > 0 ? (stmt.countLive.get(lo, hi) as { n: number }).n : rows.length;
      return { rows, total };
    }
    const rows = stmt.listAt.all(lo, hi, rev, max) as unknown as Row[];
    const total = limit > 0 ? (stmt.countAt.get(lo, hi, rev) as { n: number }).n : rows.length;
    return { rows, total };
  };

  const store: SqliteStore = {
    path,

    async get(key: string, opts: GetOptions = {}) {
      if (syncing || syncFailed !== undefined) await settled();
      if (!opts.revision) {
        const row = stmt.current.get(key) as Row | undefined;
        return row ? kvOf(row) : undefined;
      }
      checkRevision(opts.revision);
      const row = stmt.getAt.get(key, opts.revision) as Row | undefined;
      return row && !row.deleted ? kvOf(row) : undefined;
    },

    async list(prefix: string, opts: ListOptions = {}): Promise<ListResult> {
      if (syncing || syncFailed !== undefined) await settled();
      let rev = opts.revision || revision;
      let after: string | undefined;
      if (opts.continue) {
        const token = decodeContinue(opts.continue);
        rev = token.rev;
        after = token.after;
      }
      checkRevision(rev);
      const { rows, total } = listPage(prefix, rev, after, opts.limit ?? 0);
      const items = rows.map(kvOf);
      const remaining = total - items.length;
      const result: ListResult = { items, revision: rev, remaining };
      if (remaining > 0) result.continue = encodeContinue(rev, items.at(-1)!.key);
      return result;
    },

    async count(prefix: string) {
      if (syncing || syncFailed !== undefined) await settled();
      return (stmt.countLive.get(prefix, prefixEnd(prefix)) as { n: number }).n;
    },

    create: (key, value) => enqueue<KeyValue>({ kind: 'create', key, value }),
    update: (key, value, expected) => enqueue<KeyValue>({ kind: 'update', key, value, expected }),
    delete: (key, expected) => enqueue({ kind: 'delete', key, expected }),

    watch(prefix: string, wopts: WatchOptions): Watch {
      // Up to the durable revision: a batch being synced arrives through
      // publish() once it is durable, right after this backlog.
      const afterRevision = wopts.afterRevision ?? durable;
      return hub.subscribe(
        prefix,
        wopts,
        () => {
          if (afterRevision < compacted) throw errCompacted(afterRevision, compacted);
          if (afterRevision > durable) throw errFutureRevision(afterRevision, durable);
          if (afterRevision === durable) return [];
          const rows = stmt.events.all(
            afterRevision,
            durable,
            prefix,
            prefixEnd(prefix),
          ) as unknown as EventRow[];
          return rows.map(eventOf);
        },
        () => durable,
      );
    },

    async currentRevision() {
      if (syncing || syncFailed !== undefined) await settled();
      return revision;
    },

    async compactedRevision() {
      return compacted;
    },

    async compact(rev: number) {
      if (syncing || syncFailed !== undefined) await settled();
      if (rev > revision) throw errFutureRevision(rev, revision);
      if (rev <= compacted) return;
      // Reads below the new mark fail from now on, before any row goes, so
      // nobody can observe a half-compacted history.
      compacted = rev;
      stmt.setMeta.run('compact_revision', rev);
      // A pass already running picks the new target up at its next batch.
      while (!closing && compactionPending()) await startCompaction();
    },

    async compactionIdle() {
      while (compaction) await compaction;
    },

    logRows() {
      return (stmt.logRows.get() as { n: number }).n;
    },

    explainList() {
      const plan = (sql: string, ...params: SQLInputValue[]) =>
        (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as Array<{ detail: string }>).map(
          (r) => r.detail,
        );
      return [
        ...plan(stmt.listLive.sourceSQL, '/a', '/b', 10),
        ...plan(stmt.listAt.sourceSQL, '/a', '/b', 1, 10),
        ...plan(stmt.events.sourceSQL, 1, 2, '/a', '/b'),
        ...plan(stmt.compactBatch.sourceSQL, 1, 2, 2),
      ];
    },

    async close() {
      if (closing) return;
      closing = true;
      // Writes already queued still commit (and are synced before the
      // database closes).
      while (syncing) await syncing;
      if (queue.length > 0) flush(true);
      await compaction?.catch(() => {});
      hub.closeAll();
      db.close();
      if (walFd !== undefined) closeSync(walFd);
    },
  };
  return store;
}

function eventOf(r: EventRow): WatchEvent {
  const prevKv: KeyValue | undefined =
    r.prev_revision && r.prev_value !== null
      ? {
          key: r.key,
          value: r.prev_value,
          createRevision: r.prev_create_revision ?? r.create_revision,
          modRevision: r.prev_revision,
        }
      : undefined;
  if (r.deleted) {
    return {
      type: 'delete',
      kv: {
        key: r.key,
        value: prevKv?.value ?? '',
        createRevision: r.create_revision,
        modRevision: r.revision,
      },
      ...(prevKv ? { prevKv } : {}),
      revision: r.revision,
    };
  }
  const kv = kvOf(r);
  return prevKv
    ? { type: 'update', kv, prevKv, revision: r.revision }
    : { type: 'create', kv, revision: r.revision };
}
