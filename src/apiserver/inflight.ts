// Flow control for mutating requests off the wire: at most `max` run at
// once, and the rest wait their turn, first come first served, as API
// Priority and Fairness queues a priority level's requests beyond its
// concurrency (upstream's --max-mutating-requests-inflight refuses them
// with 429 instead; APF, upstream's default, queues).
//
// Why it pays on one event loop: a hundred creates in flight interleave
// stage by stage, so each waits on every other one's parsing, validation
// and encoding, and all of their objects are alive at once (young-generation
// GC copies whatever is alive). Run a few dozen at a time, each finishes in
// a fraction of the time, the queue drains in arrival order, and the server
// does less work per request: in the create-only harness at 100 clients,
// 32 at a time took server CPU per create from ~480 to ~320 us and the rate
// from ~2,200 to ~3,200 creates/s.
//
// The limit covers a request until it is answered, the store's sync
// included, so it must stay well above what one sync batch holds.

export class InflightLimit {
  readonly max: number;
  #running = 0;
  readonly #queue: Array<() => void> = [];

  constructor(max: number) {
    if (!Number.isInteger(max) || max < 1)
      throw new Error(`in-flight limit must be a positive integer, not ${max}`);
    this.max = max;
  }

  /** Requests running now. */
  get running(): number {
    return this.#running;
  }

  /** Requests waiting for a turn. */
  get waiting(): number {
    return this.#queue.length;
  }

  /**
   * Runs fn once a turn is free. `abandoned` is asked when the turn comes:
   * a request whose client has gone away gives its turn to the next one
   * without running.
   */
  async run<T>(fn: () => Promise<T>, abandoned: () => boolean = () => false): Promise<T | undefined> {
    if (this.#running >= this.max) await new Promise<void>((resolve) => this.#queue.push(resolve));
    else this.#running++;
    try {
      if (abandoned()) return undefined;
      return await fn();
    } finally {
      // The turn passes straight to the next in line (running stays the same).
      const next = this.#queue.shift();
      if (next) next();
      else this.#running--;
    }
  }
}
