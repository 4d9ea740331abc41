// Fan-out of committed events to in-process watchers, shared by the memory
// and sqlite backends (etcd has its own watch stream).
//
// The single writer calls publish() right after each commit: watchers are
// pushed events, nobody polls. Delivery is asynchronous (a microtask), so a
// watcher callback never runs inside a write and cannot re-enter the store.

import {
  isStorageError,
  type StorageError,
  type Watch,
  type WatchEvent,
  type WatchOptions,
} from './store.ts';

/** A progress request, queued behind the events it must follow. */
interface ProgressMark {
  progress: number;
}

interface Subscriber {
  prefix: string;
  opts: WatchOptions;
  pending: Array<WatchEvent | ProgressMark>;
  scheduled: boolean;
  closed: boolean;
}

export class WatchHub {
  // Subscribers grouped by prefix: an event is matched once per distinct
  // prefix, not once per watcher (1,000 watchers of /registry/pods/ cost one
  // startsWith per event).
  readonly #byPrefix = new Map<string, Set<Subscriber>>();

  /**
   * Registers a watcher. `backlog` runs synchronously, before the watcher
   * becomes live, and returns the past events it must see first; since the
   * writer cannot run in between, the two join with no gap and no duplicate.
   * If backlog throws a StorageError, the watcher gets onError instead.
   */
  subscribe(
    prefix: string,
    opts: WatchOptions,
    backlog: () => WatchEvent[],
    currentRevision: () => number,
  ): Watch {
    const sub: Subscriber = { prefix, opts, pending: [], scheduled: false, closed: false };
    let events: WatchEvent[];
    try {
      events = backlog();
    } catch (err) {
      if (!isStorageError(err)) throw err;
      sub.closed = true;
      queueMicrotask(() => opts.onError(err as StorageError));
      return { cancel() {} };
    }
    let set = this.#byPrefix.get(prefix);
    if (!set) {
      set = new Set();
      this.#byPrefix.set(prefix, set);
    }
    set.add(sub);
    if (events.length > 0) this.#enqueue(sub, events);
    return {
      requestProgress: () => {
        if (!sub.closed) this.#enqueue(sub, [{ progress: currentRevision() }]);
      },
      cancel: () => {
        sub.closed = true;
        const s = this.#byPrefix.get(prefix);
        s?.delete(sub);
        if (s?.size === 0) this.#byPrefix.delete(prefix);
      },
    };
  }

  get size(): number {
    let n = 0;
    for (const s of this.#byPrefix.values()) n += s.size;
    return n;
  }

  publish(events: WatchEvent[]): void {
    if (this.#byPrefix.size === 0) return;
    for (const [prefix, subs] of this.#byPrefix) {
      const matching = prefix === '' ? events : events.filter((e) => e.kv.key.startsWith(prefix));
      if (matching.length === 0) continue;
      for (const sub of subs) this.#enqueue(sub, matching);
    }
  }

  /** Ends every watcher (the store is closing). */
  closeAll(): void {
    for (const subs of this.#byPrefix.values()) for (const sub of subs) sub.closed = true;
    this.#byPrefix.clear();
  }

  #enqueue(sub: Subscriber, items: Array<WatchEvent | ProgressMark>): void {
    for (const e of items) sub.pending.push(e);
    if (sub.scheduled) return;
    sub.scheduled = true;
    queueMicrotask(() => {
      sub.scheduled = false;
      if (sub.closed) return;
      const pending = sub.pending;
      sub.pending = [];
      let batch: WatchEvent[] = [];
      for (const item of pending) {
        if ('progress' in item) {
          if (batch.length > 0) sub.opts.onEvents(batch);
          batch = [];
          sub.opts.onProgress?.(item.progress);
        } else batch.push(item);
      }
      if (batch.length > 0) sub.opts.onEvents(batch);
    });
  }
}
