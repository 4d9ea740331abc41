// The controller work queue, with the semantics of client-go's
// util/workqueue: a rate-limited, delaying queue of keys in which
//
//   - a key waiting in the queue is held once, however often it is added, so a
//     burst of watch events for one object costs one reconcile;
//   - a key is never handed to two workers at once: adding a key that is being
//     processed only marks it dirty, and done() puts it back in the queue, so a
//     change seen mid-reconcile is reconciled again afterwards;
//   - keys otherwise come out in the order they went in.
//
// JavaScript runs one callback at a time, so the mutex and condition variable
// of the Go version become a list of pending get() promises: every state change
// happens inside one synchronous call, and a key is moved to the processing set
// at the moment it is handed to a getter, not when the getter's continuation runs.
//
// Keys are compared as Map keys are (SameValueZero), so use strings or other
// primitives; two equal-looking objects are two different keys.

/** The source of time, injectable so tests can drive delays without sleeping. */
export interface Clock {
  /** Milliseconds on a monotonic scale; only differences are meaningful. */
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

// performance.now() rather than Date.now(): a wall-clock step (NTP, a suspended
// laptop) must not stretch or collapse backoffs and token refills.
export const realClock: Clock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/** Decides how long a key must wait before it is retried. */
export interface RateLimiter<K = string> {
  /** The delay in ms before `key` may be processed again; records one more failure. */
  when(key: K): number;
  /** Stops tracking `key`, whether it finally succeeded or was given up on. */
  forget(key: K): void;
  /** How many times `key` has been requeued since it was last forgotten. */
  numRequeues(key: K): number;
}

/**
 * Per-key exponential backoff: base * 2^failures, capped at max. A key that
 * keeps failing is retried ever more slowly while other keys are unaffected.
 */
export function exponentialFailureRateLimiter<K = string>(baseMs = 5, maxMs = 1000_000): RateLimiter<K> {
  if (!(baseMs >= 0) || !(maxMs >= 0)) throw new RangeError('backoff delays must be non-negative');
  const failures = new Map<K, number>();
  return {
    when(key) {
      const n = failures.get(key) ?? 0;
      failures.set(key, n + 1);
      // 2 ** 1023 is the largest finite power of two; past it the product would
      // be Infinity (or NaN for a zero base), and the cap applies long before.
      const backoff = baseMs * 2 ** Math.min(n, 1023);
      return Math.min(backoff, maxMs);
    },
    forget(key) {
      failures.delete(key);
    },
    numRequeues(key) {
      return failures.get(key) ?? 0;
    },
  };
}

/**
 * An overall token bucket shared by all keys: `burst` requeues go through at
 * once, then one every 1/qps seconds. It bounds the retry rate of the whole
 * controller when many keys fail together, which per-key backoff alone cannot.
 * Like golang.org/x/time/rate's Reserve, every call takes a token even if it has
 * to wait for it, so delays grow for each caller beyond the burst.
 */
export function bucketRateLimiter<K = string>(
  qps = 10,
  burst = 100,
  clock: Clock = realClock,
): RateLimiter<K> {
  if (!(qps > 0)) throw new RangeError('qps must be positive');
  if (!(burst >= 1)) throw new RangeError('burst must be at least 1');
  const interval = 1000 / qps;
  const capacity = burst * interval;
  // Rather than a fractional token count, keep the time at which the bucket
  // would be full again: each token taken pushes it one interval later. With a
  // whole-ms interval (10 qps → 100 ms) the arithmetic stays exact, so delays
  // are round numbers instead of 99.99999.
  let fullAt = Number.NEGATIVE_INFINITY;
  return {
    when() {
      const now = clock.now();
      fullAt = Math.max(fullAt, now) + interval;
      // The token is ours once the debt fits in the bucket again.
      return Math.max(0, fullAt - capacity - now);
    },
    forget() {},
    numRequeues() {
      return 0;
    },
  };
}

/**
 * Combines limiters: the delay is the longest any of them asks for. Every
 * limiter sees every call, so each keeps its own count.
 */
export function maxOfRateLimiter<K = string>(...limiters: RateLimiter<K>[]): RateLimiter<K> {
  return {
    when(key) {
      let delay = 0;
      for (const l of limiters) delay = Math.max(delay, l.when(key));
      return delay;
    },
    forget(key) {
      for (const l of limiters) l.forget(key);
    },
    numRequeues(key) {
      let n = 0;
      for (const l of limiters) n = Math.max(n, l.numRequeues(key));
      return n;
    },
  };
}

/**
 * client-go's DefaultControllerRateLimiter: per-key exponential backoff from
 * 5 ms to 1000 s, and overall no more than 10 retries a second after a burst of 100.
 */
export function defaultControllerRateLimiter<K = string>(clock: Clock = realClock): RateLimiter<K> {
  return maxOfRateLimiter<K>(
    exponentialFailureRateLimiter<K>(5, 1000_000),
    bucketRateLimiter<K>(10, 100, clock),
  );
}

export type WorkItem<K> = { key: K; shutdown: false } | { shutdown: true };

export interface WorkQueue<K = string> {
  readonly name: string;
  /** Marks `key` as needing processing. A no-op if it is already queued or after shutdown. */
  add(key: K): void;
  /** Adds `key` once `ms` have passed; of several pending delays for one key the soonest wins. */
  addAfter(key: K, ms: number): void;
  /** Adds `key` after the delay the rate limiter chooses: the retry path after a failure. */
  addRateLimited(key: K): void;
  /** Clears the rate limiter's memory of `key`. Call it when `key` succeeded; it does not replace done(). */
  forget(key: K): void;
  numRequeues(key: K): number;
  /**
   * Waits for a key to process. Every key received must be passed to done().
   * After shutdown the keys still queued are handed out, then every call
   * resolves `{ shutdown: true }` and the worker should stop.
   */
  get(): Promise<WorkItem<K>>;
  /** Ends processing of `key`; if it was added meanwhile it goes back in the queue. */
  done(key: K): void;
  /** Keys waiting to be handed out; not those being processed or delayed. For information only. */
  len(): number;
  /** Refuses new keys, drops delayed ones and wakes idle getters with `{ shutdown: true }`. */
  shutDown(): void;
  /**
   * Shuts down like shutDown(), then resolves once every key being processed
   * has been passed to done(). Workers must keep calling done() or this never
   * resolves; a later shutDown() resolves it at once.
   */
  shutDownWithDrain(): Promise<void>;
  shuttingDown(): boolean;
}

/**
 * Where a queue reports what it does, as client-go's workqueue
 * MetricsProvider: src/metrics/workqueue.ts makes upstream's workqueue_*
 * series of it. Times are in seconds.
 */
export interface WorkQueueMetrics {
  /** A key was added (workqueue_adds_total). */
  added(): void;
  /** A key was handed out after waiting `seconds` (workqueue_queue_duration_seconds). */
  handedOut(seconds: number): void;
  /** A key's processing took `seconds` (workqueue_work_duration_seconds). */
  processed(seconds: number): void;
  /** A key was put back after a failure (workqueue_retries_total). */
  retried(): void;
  /**
   * Given once: asked at each scrape for the keys waiting (workqueue_depth)
   * and how long each key in processing has been so (the unfinished and
   * longest-running work).
   */
  observe(probe: () => QueueState): void;
}

export interface QueueState {
  depth: number;
  runningSeconds: number[];
}

export interface WorkQueueOptions<K> {
  /** Identifies the queue in logs, and in its metrics (the name label). */
  name?: string;
  /** Reports adds, depth, waits, work durations and retries; none when unset. */
  metrics?: WorkQueueMetrics;
  /** Defaults to defaultControllerRateLimiter on the queue's clock. */
  rateLimiter?: RateLimiter<K>;
  clock?: Clock;
}

// A FIFO with O(1) removal from the front; Array.prototype.shift is O(n), which
// matters when a resync queues every object in the cluster at once.
class Fifo<T> {
  #items: (T | undefined)[] = [];
  #head = 0;

  get length(): number {
    return this.#items.length - this.#head;
  }

  push(item: T): void {
    this.#items.push(item);
  }

  shift(): T | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const item = this.#items[this.#head];
    // Clear the slot so the key can be collected before the array is compacted.
    this.#items[this.#head] = undefined;
    this.#head++;
    if (this.#head === this.#items.length) {
      this.#items = [];
      this.#head = 0;
    } else if (this.#head >= 1024 && this.#head * 2 >= this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }
}

// Node turns a timeout above 2^31-1 ms (~24.8 days) into 1 ms. Long delays are
// waited for in steps of at most this much.
const MAX_TIMER_MS = 2 ** 31 - 1;

export function createWorkQueue<K = string>(opts: WorkQueueOptions<K> = {}): WorkQueue<K> {
  const name = opts.name ?? '';
  const clock = opts.clock ?? realClock;
  const limiter = opts.rateLimiter ?? defaultControllerRateLimiter<K>(clock);

  // Invariants: every key in `queue` is in `dirty` and not in `processing`;
  // `getters` is non-empty only while `queue` is empty and we are not shutting down.
  const queue = new Fifo<K>();
  const dirty = new Set<K>();
  const processing = new Set<K>();
  const getters: ((item: WorkItem<K>) => void)[] = [];
  const drainers: (() => void)[] = [];
  const delayed = new Map<K, { readyAt: number; timer: unknown }>();
  let shutting = false;
  const metrics = opts.metrics;
  // When each waiting key was added, and each key in processing was handed out (for metrics).
  const addedAt = new Map<K, number>();
  const startedAt = new Map<K, number>();
  metrics?.observe(() => {
    const now = clock.now();
    return { depth: queue.length, runningSeconds: [...startedAt.values()].map((t) => (now - t) / 1000) };
  });
  // What a key's hand-out tells the metrics (client-go's queueMetrics.get).
  const handOut = (key: K) => {
    if (!metrics) return;
    const now = clock.now();
    metrics.handedOut((now - (addedAt.get(key) ?? now)) / 1000);
    addedAt.delete(key);
    startedAt.set(key, now);
  };

  // Hands queued keys to waiting getters. A key is in `processing` from the
  // moment it is handed over, so an add() before the getter resumes marks it
  // dirty instead of queueing it a second time.
  const dispatch = () => {
    while (getters.length > 0 && queue.length > 0) {
      const key = queue.shift() as K;
      dirty.delete(key);
      processing.add(key);
      handOut(key);
      getters.shift()!({ key, shutdown: false });
    }
  };

  const add = (key: K) => {
    if (shutting || dirty.has(key)) return;
    dirty.add(key);
    if (metrics) {
      if (!addedAt.has(key)) addedAt.set(key, clock.now());
      metrics.added();
    }
    // A key in flight is only marked dirty; done() puts it back in the queue.
    if (processing.has(key)) return;
    queue.push(key);
    dispatch();
  };

  const arm = (key: K, readyAt: number): unknown =>
    clock.setTimeout(
      () => {
        const entry = delayed.get(key);
        if (!entry) return;
        // Timers may fire a little early, and long delays are waited for in
        // steps; re-arm until the time has really come.
        if (clock.now() < entry.readyAt) {
          entry.timer = arm(key, entry.readyAt);
          return;
        }
        delayed.delete(key);
        add(key);
      },
      Math.min(Math.max(0, readyAt - clock.now()), MAX_TIMER_MS),
    );

  const addAfter = (key: K, ms: number) => {
    if (shutting) return;
    // NaN and negative delays mean "now", as a zero duration does in Go.
    if (!(ms > 0)) {
      add(key);
      return;
    }
    const readyAt = clock.now() + ms;
    const existing = delayed.get(key);
    if (existing) {
      // One timer per key: a sooner request replaces a later one, and a later
      // one is subsumed, since the key will be added by then anyway.
      if (existing.readyAt <= readyAt) return;
      clock.clearTimeout(existing.timer);
    }
    delayed.set(key, { readyAt, timer: arm(key, readyAt) });
  };

  const settleDrain = () => {
    for (const resolve of drainers.splice(0)) resolve();
  };

  const stop = () => {
    shutting = true;
    for (const { timer } of delayed.values()) clock.clearTimeout(timer);
    delayed.clear();
    // Getters only wait while the queue is empty, so there is nothing left to
    // give them.
    for (const resolve of getters.splice(0)) resolve({ shutdown: true });
  };

  return {
    name,
    add,
    addAfter,
    addRateLimited(key) {
      // Checked first so a key offered during shutdown does not count as a failure.
      if (shutting) return;
      metrics?.retried();
      addAfter(key, limiter.when(key));
    },
    forget(key) {
      limiter.forget(key);
    },
    numRequeues(key) {
      return limiter.numRequeues(key);
    },
    get() {
      if (queue.length > 0) {
        const key = queue.shift() as K;
        dirty.delete(key);
        processing.add(key);
        handOut(key);
        return Promise.resolve({ key, shutdown: false });
      }
      if (shutting) return Promise.resolve({ shutdown: true });
      return new Promise<WorkItem<K>>((resolve) => getters.push(resolve));
    },
    done(key) {
      // done() for a key that was never handed out would otherwise queue a
      // dirty key a second time.
      if (!processing.delete(key)) return;
      const started = startedAt.get(key);
      if (metrics && started !== undefined) {
        metrics.processed((clock.now() - started) / 1000);
        startedAt.delete(key);
      }
      if (dirty.has(key)) {
        queue.push(key);
        dispatch();
      }
      if (processing.size === 0) settleDrain();
    },
    len() {
      return queue.length;
    },
    shutDown() {
      stop();
      // A plain shutDown means "stop now", so it also ends any
      // shutDownWithDrain still waiting for workers.
      settleDrain();
    },
    shutDownWithDrain() {
      stop();
      if (processing.size === 0) return Promise.resolve();
      return new Promise<void>((resolve) => drainers.push(resolve));
    },
    shuttingDown() {
      return shutting;
    },
  };
}
