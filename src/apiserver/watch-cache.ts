// The watch cache: one store watch per resource feeds an in-memory copy of
// every object plus a ring of recent events. LIST and WATCH are served from
// here, so 1,000 watchers of pods cost one store watch, not a thousand.
//
// Consistency: a LIST without a resourceVersion must not be stale, so it first
// asks the store for its current revision and waits until the cache has caught
// up to it (upstream's "consistent reads from cache", KEP-2340).

import type { KubeObject } from '../api/meta.ts';
import type { StorageError, Store, WatchEvent as StoreEvent, Watch } from '../storage/store.ts';

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

/** One change to one object, decoded once and shared by every watcher. */
export interface CacheEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  object: KubeObject;
  /** The object before the change (for selector transitions). */
  prevObject?: KubeObject;
  revision: number;
  key: string;
}

/**
 * One watch event as the JSON line sent on the wire, encoded once per object
 * and type however many watchers receive it. Cached objects are shared and
 * never mutated, so the line stays valid for as long as the object lives.
 * With the in-process clients (scheduler, controllers) and HTTP watchers of
 * one resource, each event was re-serialized per watcher.
 */
export function watchEventLine(type: WatchEventType, object: KubeObject): string {
  let lines = encodedLines.get(object);
  if (!lines) {
    lines = {};
    encodedLines.set(object, lines);
  }
  lines[type] ??= `${JSON.stringify({ type, object })}\n`;
  return lines[type];
}

const encodedLines = new WeakMap<KubeObject, Partial<Record<WatchEventType, string>>>();

export interface CacheWatcher {
  /** Receives events in revision order. */
  send(events: CacheEvent[]): void;
  /** The cache stopped (store watch failed for good); the watch must end. */
  close(reason: string): void;
}

export interface WatchCacheOptions {
  /** Events kept for watches that resume from a past resourceVersion. */
  capacity?: number;
  /** Decodes a stored value into an object with metadata.resourceVersion set. */
  decode: (value: string, modRevision: number) => KubeObject;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

export class TooOldResourceVersionError extends Error {
  readonly requested: number;
  readonly oldest: number;
  constructor(requested: number, oldest: number) {
    super(`too old resource version: ${requested} (${oldest})`);
    this.requested = requested;
    this.oldest = oldest;
  }
}

interface Waiter {
  revision: number;
  resolve: () => void;
}

export class WatchCache {
  readonly prefix: string;
  readonly #store: Store;
  readonly #opts: WatchCacheOptions;
  readonly #capacity: number;
  /** key → current object. Sorted lazily for lists. */
  readonly #objects = new Map<string, KubeObject>();
  #sortedKeys: string[] | undefined;
  /** Ring of recent events, oldest first. */
  #ring: CacheEvent[] = [];
  /** Every event after this revision is in the ring (or nothing happened). */
  #ringStart = 0;
  #revision = 0;
  readonly #watchers = new Set<CacheWatcher>();
  #waiters: Waiter[] = [];
  #storeWatch: Watch | undefined;
  #ready: Promise<void> | undefined;
  /** Listed and watching: `get` answers from a snapshot no older than the watch's delivery lag. */
  #synced = false;
  #stopped = false;

  constructor(store: Store, prefix: string, opts: WatchCacheOptions) {
    this.#store = store;
    this.prefix = prefix;
    this.#opts = opts;
    this.#capacity = opts.capacity ?? 4096;
  }

  /** Lists the store and starts watching it. Idempotent. */
  start(): Promise<void> {
    this.#ready ??= this.#relist();
    return this.#ready;
  }

  stop(): void {
    this.#stopped = true;
    this.#storeWatch?.cancel();
    for (const w of this.#watchers) w.close('watch cache stopped');
    this.#watchers.clear();
  }

  get revision(): number {
    return this.#revision;
  }

  async #relist(): Promise<void> {
    this.#synced = false;
    this.#storeWatch?.cancel();
    // Read every page at one revision, so the cache starts from a snapshot.
    const first = await this.#store.list(this.prefix, { limit: 10_000 });
    const items = [...first.items];
    let token = first.continue;
    while (token) {
      const page = await this.#store.list(this.prefix, { limit: 10_000, continue: token });
      items.push(...page.items);
      token = page.continue;
    }
    this.#objects.clear();
    for (const kv of items) this.#objects.set(kv.key, this.#opts.decode(kv.value, kv.modRevision));
    this.#sortedKeys = undefined;
    this.#revision = first.revision;
    this.#ring = [];
    this.#ringStart = first.revision;
    this.#storeWatch = this.#store.watch(this.prefix, {
      afterRevision: first.revision,
      onEvents: (events) => this.#apply(events),
      onError: (err) => this.#onStoreError(err),
      onProgress: (rev) => this.#onProgress(rev),
    });
    this.#synced = true;
    this.#wake();
  }

  #onStoreError(err: StorageError): void {
    if (this.#stopped) return;
    // The store compacted past us (we fell behind): start over from a fresh
    // list. Watchers cannot be resumed across the gap, so they end and their
    // clients relist, exactly as after a 410 from upstream.
    this.#opts.log?.('watch cache relisting', { prefix: this.prefix, error: err.message });
    this.#synced = false;
    for (const w of this.#watchers) w.close(`watch cache reset: ${err.message}`);
    this.#watchers.clear();
    this.#ready = this.#relist();
  }

  #apply(storeEvents: StoreEvent[]): void {
    const events: CacheEvent[] = [];
    for (const e of storeEvents) {
      const prevObject = this.#objects.get(e.kv.key);
      let event: CacheEvent;
      if (e.type === 'delete') {
        // A deleted object is reported with the delete's resourceVersion, as upstream does.
        const object = this.#opts.decode(e.prevKv?.value ?? e.kv.value, e.revision);
        this.#objects.delete(e.kv.key);
        this.#sortedKeys = undefined;
        event = { type: 'DELETED', object, revision: e.revision, key: e.kv.key };
      } else {
        const object = this.#opts.decode(e.kv.value, e.kv.modRevision);
        if (!prevObject) this.#sortedKeys = undefined;
        this.#objects.set(e.kv.key, object);
        event = prevObject
          ? { type: 'MODIFIED', object, prevObject, revision: e.revision, key: e.kv.key }
          : { type: 'ADDED', object, revision: e.revision, key: e.kv.key };
      }
      events.push(event);
      this.#ring.push(event);
      this.#revision = e.revision;
    }
    if (this.#ring.length > this.#capacity) {
      const drop = this.#ring.length - this.#capacity;
      this.#ringStart = this.#ring[drop - 1]!.revision;
      this.#ring = this.#ring.slice(drop);
    }
    for (const w of this.#watchers) w.send(events);
    this.#wake();
  }

  #wake(): void {
    if (this.#waiters.length === 0) return;
    const still: Waiter[] = [];
    for (const w of this.#waiters) {
      if (this.#revision >= w.revision) w.resolve();
      else still.push(w);
    }
    this.#waiters = still;
  }

  /** Resolves once the cache has seen every write up to revision. */
  async waitFor(revision: number, timeoutMs = 3000): Promise<void> {
    await this.start();
    if (this.#revision >= revision) return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w.resolve !== done);
        reject(
          new Error(`watch cache for ${this.prefix} did not reach revision ${revision} in ${timeoutMs} ms`),
        );
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      this.#waiters.push({ revision, resolve: done });
    });
  }

  /**
   * True when the store can tell us the cache has caught up (progress
   * notifications); otherwise consistent reads must go to the store.
   */
  get canSync(): boolean {
    return this.#storeWatch?.requestProgress !== undefined;
  }

  /**
   * Brings the cache up to date with the store: a consistent read. Asks the
   * store's watch for a progress notification, which arrives after every
   * event up to the store's current revision (including writes to other
   * resources, which raise the revision but never reach this prefix).
   */
  async sync(timeoutMs = 5000): Promise<void> {
    await this.start();
    const watch = this.#storeWatch;
    if (!watch?.requestProgress) throw new Error(`the store cannot report watch progress for ${this.prefix}`);
    const target = await this.#store.currentRevision();
    if (this.#revision >= target) return;
    watch.requestProgress();
    await this.waitFor(target, timeoutMs);
  }

  #onProgress(revision: number): void {
    if (revision > this.#revision) {
      this.#revision = revision;
      this.#wake();
    }
  }

  /** Every object, in key order, optionally under a key prefix (a namespace). */
  list(keyPrefix?: string): KubeObject[] {
    return [...this.objects(keyPrefix)];
  }

  /**
   * Objects in key order under a key prefix, lazily: a paged list stops
   * after its page instead of filtering every object. Binary search finds
   * where the prefix starts, so one namespace costs its own size.
   */
  *objects(keyPrefix = ''): Generator<KubeObject> {
    this.#sortedKeys ??= [...this.#objects.keys()].sort();
    const keys = this.#sortedKeys;
    let lo = 0;
    let hi = keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (keys[mid]! < keyPrefix) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < keys.length; i++) {
      const key = keys[i]!;
      if (!key.startsWith(keyPrefix)) break;
      const obj = this.#objects.get(key);
      if (obj) yield obj;
    }
  }

  get(key: string): KubeObject | undefined {
    return this.#objects.get(key);
  }

  /**
   * True once the cache has listed and is watching (and not relisting):
   * what it holds is then the store's state as of a recent revision, so a
   * writer can start from it and let compare-and-swap catch a stale copy.
   */
  get synced(): boolean {
    return this.#synced && !this.#stopped;
  }

  /**
   * Registers a watcher for every event after `fromRevision`. Throws
   * TooOldResourceVersionError when those events have left the ring.
   * Returns the backlog to send first, and a function to unregister.
   */
  watch(fromRevision: number, watcher: CacheWatcher): { backlog: CacheEvent[]; stop: () => void } {
    if (fromRevision < this.#ringStart)
      throw new TooOldResourceVersionError(fromRevision, this.#ringStart + 1);
    const backlog = this.#ring.filter((e) => e.revision > fromRevision);
    this.#watchers.add(watcher);
    return { backlog, stop: () => this.#watchers.delete(watcher) };
  }

  get watcherCount(): number {
    return this.#watchers.size;
  }
}
