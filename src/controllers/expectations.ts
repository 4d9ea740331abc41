// Controller expectations, as upstream's controller_utils.go: after a
// controller creates or deletes N pods it expects to see N watch events. Until
// they arrive (or 5 minutes pass) the informer cache is known to be behind, so
// the controller does not act on it again: that is what keeps a slow cache
// from making a ReplicaSet create its pods twice.

import type { Clock } from '../client/workqueue.ts';

/** Upstream's ExpectationsTimeout: after this, stale expectations are ignored. */
export const EXPECTATIONS_TIMEOUT_MS = 5 * 60 * 1000;

interface Expectation {
  add: number;
  del: number;
  /** For deletions: the keys of the pods we deleted and have not seen go. */
  deleting: Set<string>;
  at: number;
}

export class Expectations {
  readonly #items = new Map<string, Expectation>();
  readonly #clock: Pick<Clock, 'now'>;

  constructor(clock: Pick<Clock, 'now'>) {
    this.#clock = clock;
  }

  /** True when the controller may sync `key`: every expected event arrived, or they expired. */
  satisfied(key: string): boolean {
    const e = this.#items.get(key);
    if (!e) return true;
    if (e.add <= 0 && e.del <= 0) return true;
    return this.#clock.now() - e.at > EXPECTATIONS_TIMEOUT_MS;
  }

  /** Before creating `adds` objects and deleting the objects `deletes` names. */
  expect(key: string, adds: number, deletes: string[] = []): void {
    this.#items.set(key, {
      add: adds,
      del: deletes.length,
      deleting: new Set(deletes),
      at: this.#clock.now(),
    });
  }

  /** A create was seen (watch event), or failed and will never be seen. */
  creationObserved(key: string): void {
    const e = this.#items.get(key);
    if (e) e.add--;
  }

  /** A deletion of `objectKey` was seen, or failed. Counted once per object. */
  deletionObserved(key: string, objectKey?: string): void {
    const e = this.#items.get(key);
    if (!e) return;
    if (objectKey !== undefined) {
      if (!e.deleting.delete(objectKey)) return;
    }
    e.del--;
  }

  /** The owner was deleted: forget it. */
  delete(key: string): void {
    this.#items.delete(key);
  }
}
