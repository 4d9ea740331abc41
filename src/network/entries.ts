// What the backends share about kernel entries: each backend says what the
// kernel must hold for a set of peers as a map (entry key → entry value,
// e.g. "route 10.42.1.0/24" → "via 10.42.1.0"), reads what it holds into
// the same shape, and applies the difference. The diff is pure, so the
// interesting part of every backend is tested without a kernel.

import type { Exec } from '../proxy/backend.ts';

export type Entries = Map<string, string>;

export interface EntriesDiff {
  /** Keys to add or to change (present in desired, absent or different in actual). */
  upsert: string[];
  /** Keys to delete (present in actual only). */
  remove: string[];
}

export function diffEntries(actual: Entries, desired: Entries): EntriesDiff {
  const upsert = [...desired].filter(([k, v]) => actual.get(k) !== v).map(([k]) => k);
  const remove = [...actual.keys()].filter((k) => !desired.has(k));
  return { upsert: upsert.sort(), remove: remove.sort() };
}

/**
 * The route protocol number Skiff's overlay routes carry (`ip route ... proto
 * 83`), so that an agent finds its own routes again after a restart and never
 * takes someone else's for its own. Unassigned in iproute2's rt_protos.
 */
export const ROUTE_PROTO = 83;

/** Runs `tool -batch -` with one command a line; nothing when there are none. */
export async function batch(exec: Exec, tool: 'ip' | 'bridge', lines: string[]): Promise<void> {
  if (lines.length === 0) return;
  await exec(tool, ['-batch', '-'], `${lines.join('\n')}\n`);
}

interface JsonRoute {
  dst?: string;
  gateway?: string;
  dev?: string;
  protocol?: string | number;
}

/** Our routes in the kernel (those with ROUTE_PROTO), as `route <dst>` → `via <gw> dev <dev>`. */
export async function readRoutes(exec: Exec): Promise<Entries> {
  const out = await exec('ip', ['-j', '-4', 'route', 'show', 'proto', String(ROUTE_PROTO)]);
  const routes = JSON.parse(out || '[]') as JsonRoute[];
  return new Map(routes.filter((r) => r.dst).map((r) => [`route ${r.dst}`, `via ${r.gateway} dev ${r.dev}`]));
}

/** The `ip` lines that make a route entry so or remove it. */
export function routeLine(op: 'replace' | 'del', key: string, value: string, onlink = false): string {
  const dst = key.slice('route '.length);
  return op === 'del'
    ? `route del ${dst} proto ${ROUTE_PROTO}`
    : `route replace ${dst} ${value}${onlink ? ' onlink' : ''} proto ${ROUTE_PROTO}`;
}
