// Event expiry: kube-apiserver's --event-ttl (default 1 h). Upstream writes
// every Event with an etcd lease of that TTL, renewed on each update, so an
// Event disappears an hour after its last write and a busy cluster's store
// does not grow without bound. Skiff's stores have no leases, so the API
// server sweeps instead: every tenth of the TTL (at most a minute) it
// deletes the Events whose last write is older than the TTL. The last write
// is the latest of the times an Event carries (creationTimestamp,
// lastTimestamp, eventTime, series.lastObservedTime, managedFields' times),
// which every writer of an Event moves. The delete is conditional on the
// resourceVersion seen, so an Event updated meanwhile stays.

import { ApiError } from '../api/errors.ts';
import type { KubeObject } from '../api/meta.ts';
import type { ResourceStorage } from './rest.ts';

export const DEFAULT_EVENT_TTL_MS = 60 * 60_000;

export interface EventTTLOptions {
  ttlMs?: number;
  /** How often to sweep (default a tenth of the TTL, 1 s to 60 s). */
  intervalMs?: number;
  now?: () => number;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

/** The latest write time an Event shows, in ms since the epoch. */
export function lastWrite(event: KubeObject): number {
  const e = event as KubeObject & {
    lastTimestamp?: string;
    eventTime?: string;
    series?: { lastObservedTime?: string };
  };
  const times = [
    e.metadata.creationTimestamp,
    e.lastTimestamp,
    e.eventTime,
    e.series?.lastObservedTime,
    ...(e.metadata.managedFields ?? []).map((f) => f.time),
  ]
    .map((t) => (t ? Date.parse(t) : Number.NaN))
    .filter((t) => !Number.isNaN(t));
  return times.length > 0 ? Math.max(...times) : 0;
}

export function startEventTTL(
  events: ResourceStorage,
  opts: EventTTLOptions = {},
): { sweep(): Promise<number>; stop(): void } {
  const ttlMs = opts.ttlMs ?? DEFAULT_EVENT_TTL_MS;
  const now = opts.now ?? Date.now;
  const intervalMs = opts.intervalMs ?? Math.min(60_000, Math.max(1000, ttlMs / 10));
  let running = false;

  async function sweep(): Promise<number> {
    const cutoff = now() - ttlMs;
    const list = await events.list(undefined, { limit: 0 });
    let deleted = 0;
    for (const e of list.items) {
      if (lastWrite(e) > cutoff) continue;
      try {
        await events.delete(e.metadata.namespace, e.metadata.name!, {
          preconditions: { resourceVersion: e.metadata.resourceVersion ?? '' },
        });
        deleted++;
      } catch (err) {
        // Gone already, or written again since the list: either way it stays as it is.
        if (!(err instanceof ApiError && (err.code === 404 || err.code === 409))) throw err;
      }
    }
    if (deleted > 0) opts.log?.('expired events', { deleted, ttl: `${ttlMs / 1000}s` });
    return deleted;
  }

  const timer = setInterval(() => {
    if (running) return;
    running = true;
    sweep()
      .catch((err: unknown) => opts.log?.('expiring events failed', { error: String(err) }))
      .finally(() => {
        running = false;
      });
  }, intervalMs);
  timer.unref();
  return { sweep, stop: () => clearInterval(timer) };
}
