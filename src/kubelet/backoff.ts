// The kubelet's container restart backoff, as upstream's flowcontrol.Backoff
// used by kuberuntime's doBackOff: the first restart of a failed container
// is immediate, then each further one waits 10 s, 20 s, 40 s ... up to 5 min
// (CrashLoopBackOff). A container that stays up for twice the maximum
// (10 min) starts again from 10 s.
// https://github.com/kubernetes/kubernetes/blob/master/pkg/kubelet/kuberuntime/kuberuntime_manager.go (doBackOff)

export interface BackoffOptions {
  initialMs?: number;
  maxMs?: number;
  /** Wall-clock milliseconds, injectable for tests. */
  now?: () => number;
}

interface Entry {
  backoffMs: number;
  lastUpdate: number;
}

export class Backoff {
  readonly initialMs: number;
  readonly maxMs: number;
  readonly #now: () => number;
  readonly #entries = new Map<string, Entry>();

  constructor(opts: BackoffOptions = {}) {
    this.initialMs = opts.initialMs ?? 10_000;
    this.maxMs = opts.maxMs ?? 300_000;
    this.#now = opts.now ?? Date.now;
  }

  #expired(eventTime: number, entry: Entry): boolean {
    return eventTime - entry.lastUpdate > this.maxMs * 2;
  }

  /** Records one more restart of `id`, which failed at `eventTime`, and lengthens its backoff. */
  next(id: string, eventTime: number): void {
    const entry = this.#entries.get(id);
    if (!entry || this.#expired(eventTime, entry)) {
      this.#entries.set(id, { backoffMs: this.initialMs, lastUpdate: this.#now() });
    } else {
      entry.backoffMs = Math.min(entry.backoffMs * 2, this.maxMs);
      entry.lastUpdate = this.#now();
    }
  }

  /** Milliseconds left before `id`, which failed at `eventTime`, may restart (0: it may now). */
  remaining(id: string, eventTime: number): number {
    const entry = this.#entries.get(id);
    if (!entry || this.#expired(eventTime, entry)) return 0;
    return Math.max(0, entry.backoffMs - (this.#now() - eventTime));
  }

  /** The current backoff of `id`, for messages ("back-off 20s restarting ..."). */
  current(id: string): number {
    return this.#entries.get(id)?.backoffMs ?? 0;
  }

  /** Forgets entries not updated for twice the maximum (upstream's GC). */
  gc(): void {
    const now = this.#now();
    for (const [id, e] of this.#entries) if (now - e.lastUpdate > this.maxMs * 2) this.#entries.delete(id);
  }

  forgetPrefix(prefix: string): void {
    for (const id of this.#entries.keys()) if (id.startsWith(prefix)) this.#entries.delete(id);
  }
}
