// Small helpers shared by the benchmarks: timing, percentiles, result files.

import { mkdirSync, writeFileSync } from 'node:fs';

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
    machine: { node: process.version, cpus: navigator.hardwareConcurrency, date: new Date().toISOString() },
  };
  writeFileSync(file, `${JSON.stringify(body, null, 2)}\n`);
  console.log(`\n${headline.metric}: ${headline.value} ${headline.unit}`);
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

export const round = (x: number, digits = 2): number => Math.round(x * 10 ** digits) / 10 ** digits;

export const ratio = (a: number, b: number): number => round(a / b, 3);
