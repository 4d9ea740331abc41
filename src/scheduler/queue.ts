// The scheduling queue, after kube-scheduler's PriorityQueue:
//
//   activeQ        pods to try now, highest priority first, then oldest;
//   backoffQ       pods that failed recently, each waiting out its own
//                  exponential backoff (1 s doubling to 10 s);
//   unschedulable  pods no node could take. They stay until a cluster event
//                  that one of the plugins which rejected them declared as
//                  helpful happens (a node added, a pod deleted, ...), or at
//                  the latest 5 minutes.
//
// A pod that failed while such an event happened during its own cycle goes to
// backoffQ rather than unschedulable: the event may already have helped it
// (upstream's moveRequestCycle).

import type { Pod } from '../api/types/core-v1.ts';
import { type Clock, realClock } from '../client/workqueue.ts';
import type { ClusterEvent, ClusterEventWithHint, QueuedPodInfo } from './framework.ts';
import { KeyedHeap } from './heap.ts';
import { newPodInfo, podKey } from './nodeinfo.ts';

export const INITIAL_BACKOFF_MS = 1000;
export const MAX_BACKOFF_MS = 10_000;
/** upstream's podMaxInUnschedulablePodsDuration */
export const MAX_UNSCHEDULABLE_MS = 5 * 60 * 1000;
const UNSCHEDULABLE_FLUSH_INTERVAL_MS = 30_000;
/**
 * The scheduling loop shares the event loop with the API server when it runs
 * inside `skiff server`. While the active queue is full, pop() resolves at
 * once and cycle follows cycle as one chain of promises, which never lets the
 * event loop reach sockets and timers: in bench/scheduler an anti-affinity
 * backlog held GET /version for 100+ ms. So pop() waits for the next turn of
 * the event loop once the loop has run this long without one.
 */
export const YIELD_AFTER_MS = 10;

export interface QueueOptions {
  /** The queue-sort plugin's ordering. */
  less: (a: QueuedPodInfo, b: QueuedPodInfo) => boolean;
  /** Which events each plugin declared can help the pods it rejected. */
  eventsByPlugin: Map<string, ClusterEventWithHint[]>;
  clock?: Clock;
}

const keyOf = (q: QueuedPodInfo) => podKey(q.info.pod);

export function backoffDuration(attempts: number): number {
  let d = INITIAL_BACKOFF_MS;
  for (let i = 1; i < attempts; i++) {
    d *= 2;
    if (d >= MAX_BACKOFF_MS) return MAX_BACKOFF_MS;
  }
  return d;
}

function eventMatches(registered: ClusterEvent, happened: ClusterEvent): boolean {
  if (registered.resource !== '*' && registered.resource !== happened.resource) return false;
  if (registered.actions.includes('All')) return true;
  return happened.actions.some(
    (a) =>
      registered.actions.includes(a) || (a.startsWith('Update') && registered.actions.includes('Update')),
  );
}

export class SchedulingQueue {
  readonly #active: KeyedHeap<QueuedPodInfo>;
  readonly #backoff: KeyedHeap<QueuedPodInfo>;
  readonly #unschedulable = new Map<string, QueuedPodInfo>();
  /** Pods popped and not yet done: their cycle is running. */
  readonly #inFlight = new Set<string>();
  readonly #clock: Clock;
  readonly #events: Map<string, ClusterEventWithHint[]>;
  #schedulingCycle = 0;
  #moveRequestCycle = -1;
  #waiters: ((q: QueuedPodInfo | undefined) => void)[] = [];
  /** When pop() last let the event loop turn (performance.now(): CPU time, not the injected clock). */
  #lastYield = performance.now();
  #backoffTimer: unknown;
  #flushTimer: ReturnType<typeof setInterval> | undefined;
  #closed = false;

  constructor(opts: QueueOptions) {
    this.#clock = opts.clock ?? realClock;
    this.#events = opts.eventsByPlugin;
    this.#active = new KeyedHeap(keyOf, opts.less);
    this.#backoff = new KeyedHeap(keyOf, (a, b) => this.#backoffExpiry(a) < this.#backoffExpiry(b));
  }

  /** Starts the periodic flush of long-unschedulable pods. */
  run(): void {
    this.#flushTimer = setInterval(() => this.flushUnschedulableLeftover(), UNSCHEDULABLE_FLUSH_INTERVAL_MS);
    this.#flushTimer.unref?.();
  }

  close(): void {
    this.#closed = true;
    if (this.#flushTimer) clearInterval(this.#flushTimer);
    if (this.#backoffTimer !== undefined) this.#clock.clearTimeout(this.#backoffTimer);
    for (const w of this.#waiters.splice(0)) w(undefined);
  }

  get schedulingCycle(): number {
    return this.#schedulingCycle;
  }

  /** Counts for tests and logs. */
  stats(): { active: number; backoff: number; unschedulable: number } {
    return {
      active: this.#active.size,
      backoff: this.#backoff.size,
      unschedulable: this.#unschedulable.size,
    };
  }

  has(pod: Pod): boolean {
    const k = podKey(pod);
    return this.#active.has(k) || this.#backoff.has(k) || this.#unschedulable.has(k) || this.#inFlight.has(k);
  }

  /** A new pending pod. */
  add(pod: Pod): void {
    if (this.has(pod)) {
      this.update(pod);
      return;
    }
    const now = this.#clock.now();
    this.#pushActive({
      info: newPodInfo(pod),
      initialAttemptTimestamp: now,
      timestamp: now,
      attempts: 0,
      unschedulablePlugins: new Set(),
      lastFailureWasError: false,
    });
  }

  /** A pending pod changed. An unschedulable pod whose spec changed is retried. */
  update(pod: Pod): void {
    const key = podKey(pod);
    for (const heap of [this.#active, this.#backoff]) {
      const q = heap.get(key);
      if (q) {
        heap.push({ ...q, info: newPodInfo(pod) });
        return;
      }
    }
    const q = this.#unschedulable.get(key);
    if (q) {
      const changed =
        JSON.stringify(q.info.pod.spec) !== JSON.stringify(pod.spec) ||
        JSON.stringify(q.info.pod.metadata.labels) !== JSON.stringify(pod.metadata.labels);
      const updated = { ...q, info: newPodInfo(pod) };
      if (changed) {
        this.#unschedulable.delete(key);
        this.#requeue(updated);
      } else this.#unschedulable.set(key, updated);
      return;
    }
    if (!this.#inFlight.has(key)) this.add(pod);
  }

  delete(pod: Pod): void {
    const key = podKey(pod);
    this.#active.delete(key);
    this.#backoff.delete(key);
    this.#unschedulable.delete(key);
  }

  /** Waits for the next pod to schedule; undefined once closed. */
  async pop(): Promise<QueuedPodInfo | undefined> {
    if (this.#active.size > 0 && performance.now() - this.#lastYield >= YIELD_AFTER_MS) {
      await new Promise<void>((r) => setImmediate(r));
      this.#lastYield = performance.now();
    }
    const q = this.#active.pop();
    if (q) return this.#start(q);
    if (this.#closed) return undefined;
    return new Promise((resolve) => {
      this.#lastYield = performance.now();
      this.#waiters.push(resolve);
    });
  }

  #start(q: QueuedPodInfo): QueuedPodInfo {
    this.#schedulingCycle++;
    q.attempts++;
    this.#inFlight.add(keyOf(q));
    return q;
  }

  /** The cycle of `q` ended (scheduled, or requeued by addUnschedulable). */
  done(pod: Pod): void {
    this.#inFlight.delete(podKey(pod));
  }

  /**
   * A scheduling attempt failed. `podSchedulingCycle` is the cycle it was
   * popped in: if an event that may help came meanwhile, back off instead of
   * parking the pod as unschedulable.
   */
  addUnschedulable(q: QueuedPodInfo, podSchedulingCycle: number): void {
    const key = keyOf(q);
    this.#inFlight.delete(key);
    if (this.#closed) return;
    q.timestamp = this.#clock.now();
    if (q.lastFailureWasError || this.#moveRequestCycle >= podSchedulingCycle) {
      this.#pushBackoff(q);
      return;
    }
    this.#unschedulable.set(key, q);
  }

  /**
   * A cluster event happened: move the unschedulable pods it may help to
   * backoffQ (if still backing off) or activeQ.
   */
  moveOnEvent(event: ClusterEvent, oldObj?: unknown, newObj?: unknown): number {
    let moved = 0;
    for (const [key, q] of this.#unschedulable) {
      if (!this.#helps(q, event, oldObj, newObj)) continue;
      this.#unschedulable.delete(key);
      this.#requeue(q);
      moved++;
    }
    this.#moveRequestCycle = this.#schedulingCycle;
    return moved;
  }

  #helps(q: QueuedPodInfo, event: ClusterEvent, oldObj: unknown, newObj: unknown): boolean {
    if (q.lastFailureWasError || q.unschedulablePlugins.size === 0) return true;
    for (const plugin of q.unschedulablePlugins) {
      for (const reg of this.#events.get(plugin) ?? []) {
        if (!eventMatches(reg.event, event)) continue;
        if (!reg.hint || reg.hint(q.info.pod, oldObj, newObj)) return true;
      }
    }
    return false;
  }

  /** Pods unschedulable for longer than MAX_UNSCHEDULABLE_MS are retried anyway. */
  flushUnschedulableLeftover(): void {
    const now = this.#clock.now();
    for (const [key, q] of this.#unschedulable) {
      if (now - q.timestamp >= MAX_UNSCHEDULABLE_MS) {
        this.#unschedulable.delete(key);
        this.#requeue(q);
      }
    }
  }

  #requeue(q: QueuedPodInfo): void {
    if (this.#backoffExpiry(q) > this.#clock.now()) this.#pushBackoff(q);
    else this.#pushActive(q);
  }

  #backoffExpiry(q: QueuedPodInfo): number {
    return q.timestamp + backoffDuration(q.attempts);
  }

  #pushActive(q: QueuedPodInfo): void {
    const waiter = this.#waiters.shift();
    if (waiter) waiter(this.#start(q));
    else this.#active.push(q);
  }

  #pushBackoff(q: QueuedPodInfo): void {
    this.#backoff.push(q);
    this.#armBackoffTimer();
  }

  #armBackoffTimer(): void {
    if (this.#backoffTimer !== undefined) this.#clock.clearTimeout(this.#backoffTimer);
    const next = this.#backoff.peek();
    if (!next) {
      this.#backoffTimer = undefined;
      return;
    }
    const wait = Math.max(0, this.#backoffExpiry(next) - this.#clock.now());
    this.#backoffTimer = this.#clock.setTimeout(() => {
      this.#backoffTimer = undefined;
      const now = this.#clock.now();
      for (let q = this.#backoff.peek(); q && this.#backoffExpiry(q) <= now; q = this.#backoff.peek()) {
        this.#backoff.pop();
        this.#pushActive(q);
      }
      this.#armBackoffTimer();
    }, wait);
  }
}
