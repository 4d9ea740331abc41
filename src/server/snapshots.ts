// Datastore snapshots, as k3s's `k3s etcd-snapshot` (docs.k3s.io/cli/etcd-snapshot):
// save, ls, delete, prune, on a cron schedule with a retention, and restore
// with `skiff server --cluster-reset --cluster-reset-restore-path FILE`.
//
// - SQLite (the default store): an online, consistent copy through SQLite's
//   backup API (node:sqlite `backup`), from a connection of its own, so the
//   server keeps serving while it runs (WAL readers do not block the
//   writer). The copy keeps every row: objects, revisions (resourceVersions)
//   and uids come back as they were. Restore puts the copy in place of
//   state.db, with the server stopped, and keeps the old file beside it.
// - etcd: etcd's own snapshot (the Maintenance Snapshot RPC, what
//   `etcdctl snapshot save` does), a bbolt file. Restoring an etcd the server
//   does not run is etcd's business (`etcdctl snapshot restore` into a new
//   data dir, then start etcd on it), as k3s leaves an external etcd alone.
//
// Files: <data-dir>/server/db/snapshots (k3s's path), or --etcd-snapshot-dir.
// Names: <name>-<node>-<unix seconds>, as k3s's, with `.sqlite` for SQLite.

import {
  closeSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
} from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { parseCronSchedule } from '../api/resources/cron.ts';
import type { DatastoreTLS } from '../storage/open.ts';
import type { Log } from '../util/log.ts';

export const DEFAULT_SNAPSHOT_NAME = 'on-demand';
export const SCHEDULED_SNAPSHOT_NAME = 'etcd-snapshot';
/** k3s's defaults: every 12 hours, keep 5. */
export const DEFAULT_SNAPSHOT_CRON = '0 */12 * * *';
export const DEFAULT_SNAPSHOT_RETENTION = 5;

export const defaultSnapshotDir = (dataDir: string): string => join(dataDir, 'server', 'db', 'snapshots');

export type Datastore =
  | { kind: 'sqlite'; path: string }
  | { kind: 'etcd'; endpoints: string[]; tls?: { ca: Buffer; cert?: Buffer; key?: Buffer } };

/** Which store a --datastore-endpoint names (as storage/open.ts reads it). */
export function datastoreOf(endpoint: string, dataDir: string, tls: DatastoreTLS = {}): Datastore {
  const [scheme, rest = ''] = endpoint.includes('://')
    ? (endpoint.split('://', 2) as [string, string])
    : [endpoint, ''];
  if (scheme === 'sqlite') return { kind: 'sqlite', path: rest || join(dataDir, 'server', 'db', 'state.db') };
  if (scheme === 'etcd' || scheme === 'http' || scheme === 'https') {
    const hosts = (scheme === 'etcd' ? rest : endpoint).split(',').filter(Boolean);
    const dflt = tls.caFile ? 'https' : 'http';
    return {
      kind: 'etcd',
      endpoints: hosts.map((h) => (h.includes('://') ? h : `${dflt}://${h}`)),
      ...(tls.caFile
        ? {
            tls: {
              ca: readFileSync(tls.caFile),
              ...(tls.certFile && tls.keyFile
                ? { cert: readFileSync(tls.certFile), key: readFileSync(tls.keyFile) }
                : {}),
            },
          }
        : {}),
    };
  }
  throw new Error(`snapshots need a sqlite:// or etcd:// datastore, not ${JSON.stringify(endpoint)}`);
}

export interface SnapshotInfo {
  name: string;
  location: string;
  size: number;
  created: Date;
}

const SNAPSHOT_FILE = /^(.+)-(\d{9,11})(\.sqlite)?$/;

/** A snapshot name may not walk out of the directory. */
function checkName(name: string): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name))
    throw new Error(`invalid snapshot name ${JSON.stringify(name)}: use letters, digits, '.', '_' and '-'`);
}

export interface SaveOptions {
  datastore: Datastore;
  dir: string;
  name?: string;
  nodeName: string;
  now?: () => Date;
}

export async function saveSnapshot(opts: SaveOptions): Promise<SnapshotInfo> {
  const base = opts.name ?? DEFAULT_SNAPSHOT_NAME;
  checkName(base);
  mkdirSync(opts.dir, { recursive: true, mode: 0o700 });
  const created = (opts.now ?? (() => new Date()))();
  const stamp = Math.floor(created.getTime() / 1000);
  const name = `${base}-${opts.nodeName}-${stamp}${opts.datastore.kind === 'sqlite' ? '.sqlite' : ''}`;
  const file = join(opts.dir, name);
  const partial = `${file}.part`;
  try {
    if (opts.datastore.kind === 'sqlite') await sqliteBackup(opts.datastore.path, partial);
    else await etcdSnapshot(opts.datastore.endpoints, partial, opts.datastore.tls);
    renameSync(partial, file);
  } finally {
    rmSync(partial, { force: true });
  }
  return { name, location: `file://${file}`, size: statSync(file).size, created };
}

async function sqliteBackup(path: string, dest: string): Promise<void> {
  if (!existsSync(path))
    throw new Error(`no SQLite datastore at ${path}: give the server's --data-dir (or --datastore-endpoint)`);
  const { DatabaseSync, backup } = await import('node:sqlite');
  // A connection of our own; the backup API copies a consistent snapshot
  // page by page while the server goes on writing.
  const db = new DatabaseSync(path);
  try {
    await backup(db, dest);
  } finally {
    db.close();
  }
}

async function etcdSnapshot(
  endpoints: string[],
  dest: string,
  tls?: { ca: Buffer; cert?: Buffer; key?: Buffer },
): Promise<void> {
  const { Etcd3 } = await import('etcd3');
  const client = new Etcd3({
    hosts: endpoints,
    ...(tls
      ? {
          credentials: {
            rootCertificate: tls.ca,
            ...(tls.key ? { privateKey: tls.key } : {}),
            ...(tls.cert ? { certChain: tls.cert } : {}),
          },
        }
      : {}),
  });
  const out = await open(dest, 'w', 0o600);
  try {
    const stream = await client.maintenance.snapshot();
    await new Promise<void>((resolve, reject) => {
      let writing = Promise.resolve();
      stream.on('data', (chunk) => {
        writing = writing.then(async () => {
          await out.write(chunk.blob);
        });
      });
      stream.on('error', reject);
      stream.on('end', () => writing.then(resolve, reject));
    });
  } finally {
    await out.close();
    client.close();
  }
}

export function listSnapshots(dir: string): SnapshotInfo[] {
  if (!existsSync(dir)) return [];
  const out: SnapshotInfo[] = [];
  for (const f of readdirSync(dir)) {
    const m = SNAPSHOT_FILE.exec(f);
    if (!m) continue;
    const path = join(dir, f);
    const st = statSync(path);
    if (!st.isFile()) continue;
    out.push({ name: f, location: `file://${path}`, size: st.size, created: new Date(Number(m[2]) * 1000) });
  }
  return out.sort((a, b) => a.created.getTime() - b.created.getTime() || a.name.localeCompare(b.name));
}

export function deleteSnapshot(dir: string, name: string): void {
  checkName(name);
  const path = join(dir, name);
  if (!SNAPSHOT_FILE.test(name) || !existsSync(path)) throw new Error(`snapshot ${name} not found in ${dir}`);
  rmSync(path);
}

/** Deletes all but the newest `retention` snapshots whose name starts with `<name>-` (k3s prunes by name). */
export function pruneSnapshots(dir: string, name: string, retention: number): string[] {
  const mine = listSnapshots(dir).filter((s) => s.name.startsWith(`${name}-`));
  const doomed = mine.slice(0, Math.max(0, mine.length - retention));
  for (const s of doomed) rmSync(join(dir, s.name));
  return doomed.map((s) => s.name);
}

const SQLITE_HEADER = 'SQLite format 3\0';

/**
 * --cluster-reset --cluster-reset-restore-path FILE on SQLite: the snapshot
 * becomes state.db. The server must be stopped; the old database (and its
 * WAL) is kept as state.db.before-restore-<unix seconds>.
 */
export function restoreSqliteSnapshot(file: string, dbPath: string, now = new Date()): { kept?: string } {
  if (!existsSync(file)) throw new Error(`--cluster-reset-restore-path ${file}: no such file`);
  const head = Buffer.alloc(16);
  const fd = openSync(file, 'r');
  try {
    readSync(fd, head, 0, 16, 0);
  } finally {
    closeSync(fd);
  }
  if (head.toString('latin1') !== SQLITE_HEADER)
    throw new Error(
      `${file} is not a SQLite snapshot (an etcd snapshot restores with etcdctl snapshot restore; see docs/ha.md)`,
    );
  mkdirSync(join(dbPath, '..'), { recursive: true, mode: 0o700 });
  let kept: string | undefined;
  if (existsSync(dbPath)) {
    kept = `${dbPath}.before-restore-${Math.floor(now.getTime() / 1000)}`;
    renameSync(dbPath, kept);
    for (const ext of ['-wal', '-shm']) {
      if (existsSync(dbPath + ext)) renameSync(dbPath + ext, kept + ext);
    }
  }
  copyFileSync(file, dbPath);
  return kept ? { kept } : {};
}

export interface ScheduleOptions extends Omit<SaveOptions, 'name'> {
  cron: string;
  retention: number;
  log: Log;
}

/** Scheduled snapshots (--etcd-snapshot-schedule-cron), pruned to --etcd-snapshot-retention. */
export function scheduleSnapshots(opts: ScheduleOptions): { stop(): void } {
  const schedule = parseCronSchedule(opts.cron);
  const now = opts.now ?? (() => new Date());
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const arm = () => {
    if (stopped) return;
    const next = schedule.next(now());
    if (!next) {
      opts.log.warn('the snapshot schedule never fires', { cron: opts.cron });
      return;
    }
    const wait = Math.max(0, next.getTime() - now().getTime());
    // setTimeout holds at most ~24.8 days; a later time is re-armed on the way.
    timer = setTimeout(() => (wait > 2 ** 31 - 1 ? arm() : void take()), Math.min(wait, 2 ** 31 - 1));
    timer.unref();
  };
  const take = async () => {
    try {
      const s = await saveSnapshot({ ...opts, name: SCHEDULED_SNAPSHOT_NAME });
      const pruned = pruneSnapshots(opts.dir, SCHEDULED_SNAPSHOT_NAME, opts.retention);
      opts.log('saved a scheduled snapshot', { snapshot: s.location, size: s.size, pruned });
    } catch (err) {
      opts.log.error('scheduled snapshot failed', {
        error: String((err as Error)?.message ?? err),
        hint: 'check the snapshot directory has room and the datastore is reachable',
      });
    }
    arm();
  };
  arm();
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
