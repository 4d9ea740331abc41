// bench/storage: every Store backend against its raw baseline, in one run.
//
// Per backend: creates/s (one in flight, and 64 in flight), updates/s,
// gets/s, a LIST of 30,000 keys, and the latency from one write to 1,000
// watchers all holding it. Baselines: raw SQLite single-row-transaction
// inserts through the same driver and durability setting; raw etcd puts.
// Headline: sqlite creates/s (64 in flight) as a ratio of raw inserts/s.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { Etcd3 } from 'etcd3';
import { createEtcdStore } from '../src/storage/etcd/etcd.ts';
import { startEtcd } from '../src/storage/etcd/etcd-harness.ts';
import { createMemoryStore } from '../src/storage/memory/memory.ts';
import { createSqliteStore } from '../src/storage/sqlite/sqlite.ts';
import type { Store } from '../src/storage/store.ts';
import { load, percentile, ratio, round, writeResult } from './lib.ts';

const quick = process.env.BENCH_QUICK === '1';
const N = quick ? 1000 : 5000;
const LIST_KEYS = quick ? 3000 : 30_000;
const WATCHERS = 1000;
const value = JSON.stringify({
  kind: 'Pod',
  metadata: { name: 'x'.repeat(40) },
  spec: { pad: 'y'.repeat(900) },
});
const dir = mkdtempSync(join(tmpdir(), 'skiff-bench-storage-'));

const log = (msg: string) => console.log(msg);

async function measureStore(name: string, store: Store) {
  log(`\n== ${name}`);
  const seq = await load(Math.min(N, 2000), 1, (i) => store.create(`/bench/seq/${i}`, value));
  log(`creates/s, 1 in flight:   ${seq.opsPerSec}`);
  const par = await load(N, 64, (i) => store.create(`/bench/par/${i}`, value));
  log(`creates/s, 64 in flight:  ${par.opsPerSec}  (p99 ${percentile(par.latencies, 99)} ms)`);
  const revs = new Map<number, number>();
  const upd = await load(N, 64, async (i) => {
    const key = `/bench/par/${i}`;
    const kv = await store.update(key, value, revs.get(i) ?? (await store.get(key))!.modRevision);
    revs.set(i, kv.modRevision);
  });
  log(`updates/s, 64 in flight:  ${upd.opsPerSec}  (each a get + CAS update)`);
  const gets = await load(N, 64, (i) => store.get(`/bench/par/${i}`));
  log(`gets/s, 64 in flight:     ${gets.opsPerSec}`);

  await load(LIST_KEYS, 64, (i) => store.create(`/bench/list/${String(i).padStart(6, '0')}`, value));
  const listTimes: number[] = [];
  let count = 0;
  for (let r = 0; r < 3; r++) {
    const t = performance.now();
    count = (await store.list('/bench/list/')).items.length;
    listTimes.push(performance.now() - t);
  }
  const listMs = round(Math.min(...listTimes));
  log(`list of ${count} keys:     ${listMs} ms`);

  const fanout = await watchFanout(store);
  log(`write → ${WATCHERS} watchers: p50 ${fanout.p50} ms, max ${fanout.max} ms`);
  return {
    createsPerSec1: seq.opsPerSec,
    createsPerSec64: par.opsPerSec,
    createP99Ms64: percentile(par.latencies, 99),
    updatesPerSec64: upd.opsPerSec,
    getsPerSec64: gets.opsPerSec,
    listKeys: count,
    listMs,
    watchFanoutP50Ms: fanout.p50,
    watchFanoutMaxMs: fanout.max,
  };
}

/** Latency from a write to the moment all WATCHERS watchers have received it. */
async function watchFanout(store: Store): Promise<{ p50: number; max: number }> {
  let pending = 0;
  let done: () => void = () => {};
  const watches = Array.from({ length: WATCHERS }, () =>
    store.watch('/bench/fanout/', {
      onEvents: () => {
        if (--pending === 0) done();
      },
      onError: (err) => {
        throw err;
      },
    }),
  );
  await new Promise((r) => setTimeout(r, 500)); // let remote watches establish
  const samples: number[] = [];
  for (let i = 0; i < 20; i++) {
    pending = WATCHERS;
    const received = new Promise<void>((r) => {
      done = r;
    });
    const t = performance.now();
    await store.create(`/bench/fanout/${i}`, 'x');
    await received;
    samples.push(performance.now() - t);
  }
  for (const w of watches) w.cancel();
  return { p50: percentile(samples, 50), max: round(Math.max(...samples)) };
}

function rawSqliteInserts(): number {
  const path = join(dir, 'raw.db');
  const db = new DatabaseSync(path);
  db.exec(`PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;
    CREATE TABLE kv (id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL, value TEXT NOT NULL)`);
  const insert = db.prepare('INSERT INTO kv (key, value) VALUES (?, ?)');
  const n = Math.min(N, 2000);
  const t = performance.now();
  for (let i = 0; i < n; i++) {
    db.exec('BEGIN IMMEDIATE');
    insert.run(`/raw/${i}`, value);
    db.exec('COMMIT');
  }
  const perSec = Math.round(n / ((performance.now() - t) / 1000));
  db.close();
  return perSec;
}

async function rawEtcdPuts(endpoints: string[]): Promise<{ puts1: number; puts64: number }> {
  const client = new Etcd3({ hosts: endpoints });
  const one = await load(Math.min(N, 2000), 1, (i) => client.put(`/raw/seq/${i}`).value(value).exec());
  const par = await load(N, 64, (i) => client.put(`/raw/par/${i}`).value(value).exec());
  client.close();
  return { puts1: one.opsPerSec, puts64: par.opsPerSec };
}

const results: Record<string, unknown> = {};
try {
  const raw = rawSqliteInserts();
  log(`raw sqlite single-row-transaction inserts/s (synchronous=FULL, WAL): ${raw}`);

  const memory = await measureStore('memory', createMemoryStore());
  const sqliteStore = await createSqliteStore({ path: join(dir, 'store.db') });
  const sqlite = await measureStore('sqlite (synchronous=FULL)', sqliteStore);
  await sqliteStore.close();

  log('\nstarting etcd for the etcd backend');
  const etcdProc = await startEtcd();
  let etcd: Record<string, number> = {};
  let rawEtcd = { puts1: 0, puts64: 0 };
  try {
    rawEtcd = await rawEtcdPuts(etcdProc.endpoints);
    log(`raw etcd puts/s: ${rawEtcd.puts1} (1 in flight), ${rawEtcd.puts64} (64 in flight)`);
    const etcdStore = await createEtcdStore({ endpoints: etcdProc.endpoints, prefix: '/skiff' });
    etcd = await measureStore('etcd', etcdStore);
    await etcdStore.close();
  } finally {
    await etcdProc.stop();
  }

  const headline = ratio(sqlite.createsPerSec64, raw);
  Object.assign(results, {
    baselines: {
      rawSqliteInsertsPerSec: raw,
      rawEtcdPutsPerSec1: rawEtcd.puts1,
      rawEtcdPutsPerSec64: rawEtcd.puts64,
    },
    memory,
    sqlite: {
      ...sqlite,
      createsVsRawInserts64: headline,
      createsVsRawInserts1: ratio(sqlite.createsPerSec1, raw),
      updatesVsRawInserts: ratio(sqlite.updatesPerSec64, raw),
    },
    etcd: {
      ...etcd,
      createsVsRawPuts64: ratio(etcd.createsPerSec64 ?? 0, rawEtcd.puts64),
      createsVsRawPuts1: ratio(etcd.createsPerSec1 ?? 0, rawEtcd.puts1),
    },
    parameters: { n: N, listKeys: LIST_KEYS, watchers: WATCHERS, valueBytes: value.length },
  });
  log(
    `\nsqlite creates/s vs raw inserts/s: ${headline} (64 in flight), ${ratio(sqlite.createsPerSec1, raw)} (1 in flight)`,
  );
  writeResult(
    'storage',
    {
      metric: 'sqlite creates/s as a ratio of raw SQLite inserts/s (64 in flight)',
      value: headline,
      unit: 'ratio',
    },
    results,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
process.exit(0);
