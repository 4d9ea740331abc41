// The pod lifecycle event generator, as upstream's GenericPLEG
// (pkg/kubelet/pleg/generic.go): it relists the runtime's sandboxes and
// containers every second and tells the kubelet which pods had a container
// start, exit or vanish, so their workers sync. The relist is what notices
// a container exiting on its own.

import { KUBERNETES_POD_UID_LABEL } from './labels.ts';
import type { Container, PodSandbox, Runtime } from './runtime/runtime.ts';

export interface PLEGOptions {
  runtime: Runtime;
  /**
   * Called for every pod whose containers or sandboxes changed since the last
   * relist, with what the relist saw of them (podRuntimeFingerprint).
   */
  onPodChanged(uid: string, fingerprint: string): void;
  /** Upstream relists every second. */
  relistPeriodMs?: number;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

export interface PLEG {
  start(): void;
  stop(): void;
  /** Relists once now (tests, and the first relist at start). */
  relist(): Promise<void>;
  /** Whether the last relist succeeded recently enough (upstream's PLEG health check). */
  healthy(): boolean;
  /**
   * What the last relist listed, and when (ms since the epoch): housekeeping
   * and log rotation read it instead of listing the runtime again.
   */
  lastListing(): { sandboxes: PodSandbox[]; containers: Container[]; atMs: number } | undefined;
}

export function createPLEG(opts: PLEGOptions): PLEG {
  const period = opts.relistPeriodMs ?? 1000;
  // id → `${uid} ${state}`, for containers and sandboxes alike.
  let last = new Map<string, string>();
  let timer: NodeJS.Timeout | undefined;
  let lastRelist = Date.now();
  let running = false;
  let listing: { sandboxes: PodSandbox[]; containers: Container[]; atMs: number } | undefined;

  async function relist(): Promise<void> {
    if (running) return;
    running = true;
    try {
      const [sandboxes, containers] = await Promise.all([
        opts.runtime.listPodSandbox(),
        opts.runtime.listContainers(),
      ]);
      const now = new Map<string, string>();
      for (const s of sandboxes) now.set(s.id, `${s.labels[KUBERNETES_POD_UID_LABEL] ?? ''} ${s.state}`);
      for (const c of containers) now.set(c.id, `${c.labels[KUBERNETES_POD_UID_LABEL] ?? ''} ${c.state}`);
      const changed = new Set<string>();
      for (const [id, v] of now) if (last.get(id) !== v) changed.add(v.split(' ')[0] ?? '');
      for (const [id, v] of last) if (!now.has(id)) changed.add(v.split(' ')[0] ?? '');
      last = now;
      lastRelist = Date.now();
      listing = { sandboxes, containers, atMs: lastRelist };
      const seen = new Map<string, { id: string; state: string }[]>();
      for (const o of [...sandboxes, ...containers]) {
        const uid = o.labels[KUBERNETES_POD_UID_LABEL] ?? '';
        if (changed.has(uid)) seen.set(uid, [...(seen.get(uid) ?? []), o]);
      }
      for (const uid of changed) if (uid) opts.onPodChanged(uid, podRuntimeFingerprint(seen.get(uid) ?? []));
    } catch (err) {
      opts.log?.('PLEG relist failed', { error: String(err) });
    } finally {
      running = false;
    }
  }

  return {
    start() {
      const tick = () => {
        void relist().finally(() => {
          if (timer) timer = setTimeout(tick, period);
        });
      };
      timer = setTimeout(tick, 0);
    },
    stop() {
      if (timer) clearTimeout(timer);
      timer = undefined;
    },
    relist,
    // Upstream reports the PLEG unhealthy after 3 minutes without a relist.
    healthy: () => Date.now() - lastRelist < 3 * 60_000,
    lastListing: () => listing,
  };
}

/**
 * The ids and states of a pod's sandboxes and containers, in one string: two
 * looks at the runtime saw the same thing when their fingerprints are equal
 * (ids are never reused, and states only move forward).
 */
export function podRuntimeFingerprint(objects: { id: string; state: string }[]): string {
  return objects
    .map((o) => `${o.id}=${o.state}`)
    .sort()
    .join(',');
}
