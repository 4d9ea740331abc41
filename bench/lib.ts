// Small helpers shared by the benchmarks: timing, percentiles, result files.

import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { type RunningServer, type ServerConfig, startServer } from '../src/server/server.ts';
import { createLog } from '../src/util/log.ts';

// The machine's load average (1, 5, 15 min) when the bench started: this
// module is loaded before any bench's own work begins.
const loadAtStart = loadavg().map((x) => round(x));

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
    load: { start: loadAtStart, end: loadavg().map((x) => round(x)) },
    machine: { node: process.version, cpus: navigator.hardwareConcurrency, date: new Date().toISOString() },
  };
  writeFileSync(file, `${JSON.stringify(body, null, 2)}\n`);
  console.log(`\n${headline.metric}: ${headline.value} ${headline.unit}`);
  console.log(
    `load average at start ${loadAtStart.join(' ')}, at end ${loadavg()
      .map((x) => round(x))
      .join(' ')}`,
  );
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
