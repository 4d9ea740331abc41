// Periodic compaction, as kube-apiserver does it: every interval, compact to
// the revision that was current one interval ago. Watchers therefore always
// have at least one interval of history to resume from, and the store never
// keeps more than about two intervals of it.

import type { Store } from './store.ts';

export interface CompactorOptions {
  intervalMs?: number;
  /** Always keep at least this many revisions (small clusters write rarely). */
  minRetainRevisions?: number;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

export function startCompactor(store: Store, opts: CompactorOptions = {}): { stop(): void } {
  const interval = opts.intervalMs ?? 5 * 60 * 1000;
  const retain = opts.minRetainRevisions ?? 1000;
  let previous: number | undefined;
  let running = false;
  const tick = async () => {
    if (running) return;
    running = true;
    try {
      const current = await store.currentRevision();
      const target = Math.min(previous ?? 0, current - retain);
      if (target > (await store.compactedRevision())) {
        const started = performance.now();
        await store.compact(target);
        opts.log?.('compacted store', { revision: target, ms: Math.round(performance.now() - started) });
      }
      previous = current;
    } catch (err) {
      opts.log?.('compaction failed', { error: String(err) });
    } finally {
      running = false;
    }
  };
  const timer = setInterval(tick, interval);
  timer.unref();
  void tick();
  return { stop: () => clearInterval(timer) };
}
