// Small helpers shared by the benchmarks: timing, percentiles, result files.

import { mkdirSync, writeFileSync } from 'node:fs';
import { type Agent, request } from 'node:https';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { type RunningServer, type ServerConfig, startServer } from '../src/server/server.ts';
import { openStore } from '../src/storage/open.ts';
import { createLog } from '../src/util/log.ts';

/** The machine's load average (1, 5, 15 min) now, rounded. */
export const loadNow = (): number[] => loadavg().map((x) => round(x));

// The load average when the bench started: this module is loaded before any
// bench's own work begins.
const loadAtStart = loadNow();

export interface Headline {
  metric: string;
  value: number;
  unit: string;
}

/** Writes bench/results/NAME.json and prints where it went. */
export function writeResult(name: string, headline: Headline, figures: Record<string, unknown>): void {
  const dir = new URL('./results/', import.meta.url);
  mkdirSync(dir, { recursive: true });
  const file = new URL(`${name}.json`, dir);
  const body = {
    headline,
    ...figures,
    // A figure is only comparable to one taken on an as busy machine.
    load: { start: loadAtStart, end: loadNow() },
    machine: { node: process.version, cpus: navigator.hardwareConcurrency, date: new Date().toISOString() },
  };
  writeFileSync(file, `${JSON.stringify(body, null, 2)}\n`);
  console.log(`\n${headline.metric}: ${headline.value} ${headline.unit}`);
  console.log(`load average at start ${loadAtStart.join(' ')}, at end ${loadNow().join(' ')}`);
  console.log(`wrote ${file.pathname}`);
}

/** Runs fn n times with `concurrency` calls in flight; returns ops/s and latencies (ms). */
export async function load(
  n: number,
  concurrency: number,
  fn: (i: number) => Promise<unknown>,
): Promise<{ opsPerSec: number; latencies: number[] }> {
  const latencies: number[] = new Array(n);
  let next = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        const i = next++;
        const t = performance.now();
        await fn(i);
        latencies[i] = performance.now() - t;
      }
    }),
  );
  const seconds = (performance.now() - start) / 1000;
  return { opsPerSec: Math.round(n / seconds), latencies };
}

export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const idx = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return round(sorted[Math.max(0, idx)] ?? 0);
}

export function round(x: number, digits = 2): number {
  return Math.round(x * 10 ** digits) / 10 ** digits;
}

export const ratio = (a: number, b: number): number => round(a / b, 3);

/**
 * `skiff server` in this process on a sqlite store in dataDir, listening on
 * loopback, with its logs dropped: what the in-process benches share.
 * `overrides` turns parts on or off (agent, controllers, scheduler).
 */
export function startBenchServer(
  dataDir: string,
  overrides: Partial<ServerConfig> = {},
): Promise<RunningServer> {
  return startServer(
    {
      dataDir,
      datastoreEndpoint: `sqlite://${join(dataDir, 'state.db')}`,
      bindAddress: '127.0.0.1',
      httpsPort: 0,
      serviceCIDR: '10.43.0.0/16',
      clusterCIDR: '10.42.0.0/16',
      disableAgent: true,
      ...overrides,
    },
    createLog({}, () => {}),
  );
}

/** Polls check every pollMs until it holds; throws after timeoutMs. */
export async function until(
  what: string,
  check: () => boolean,
  timeoutMs: number,
  pollMs = 10,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

/**
 * One write of an object's raw-path sequence (rawStoreWrites): the first
 * write of a key creates it, a later one is a compare-and-swap update on the
 * revision the previous write returned, as the API server's writes are.
 */
export interface RawWrite {
  key: string;
  value: string;
}

/**
 * The raw path of the control-plane benches: the store writes that Skiff's
 * components cause for each of n objects (a pod's create, binding and
 * Scheduled Event; a Node's create, status and Lease), made straight to a
 * fresh store opened as `skiff server` opens its --datastore-endpoint, with
 * `concurrency` objects in flight and each object's writes in order. No API
 * server, no watch, no client: what the same writes cost the store alone.
 * The values are encoded before the clock starts. The store lives in dataDir
 * and is closed before this returns.
 */
export async function rawStoreWrites(opts: {
  endpoint: string;
  dataDir: string;
  n: number;
  concurrency: number;
  writes: (i: number) => RawWrite[];
}): Promise<{
  objects: number;
  writes: number;
  seconds: number;
  objectsPerSec: number;
  writesPerSec: number;
}> {
  const { store } = await openStore(opts.endpoint, opts.dataDir);
  try {
    const all = Array.from({ length: opts.n }, (_, i) => opts.writes(i));
    const writes = all.reduce((sum, w) => sum + w.length, 0);
    const t = performance.now();
    await load(opts.n, opts.concurrency, async (i) => {
      const revisions = new Map<string, number>();
      for (const { key, value } of all[i]!) {
        const previous = revisions.get(key);
        const kv =
          previous === undefined ? await store.create(key, value) : await store.update(key, value, previous);
        revisions.set(key, kv.modRevision);
      }
    });
    const seconds = (performance.now() - t) / 1000;
    return {
      objects: opts.n,
      writes,
      seconds: round(seconds, 3),
      objectsPerSec: round(opts.n / seconds, 1),
      writesPerSec: Math.round(writes / seconds),
    };
  } finally {
    await store.close();
  }
}

/**
 * One JSON request to a local API server over HTTPS with the given agent
 * (its client certificate); rejects with the status and the start of the
 * body on an HTTP error.
 */
export function httpsCall(
  port: number,
  agent: Agent,
  method: string,
  path: string,
  body?: unknown,
  host = '127.0.0.1',
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      {
        host,
        port,
        path,
        method,
        agent,
        headers: data
          ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) }
          : {},
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (text += d));
        res.on('end', () => {
          if ((res.statusCode ?? 0) >= 400)
            reject(new Error(`${method} ${path}: ${res.statusCode} ${text.slice(0, 200)}`));
          else resolve({ status: res.statusCode ?? 0, text });
        });
      },
    );
    req.on('error', reject);
    req.end(data);
  });
}
