// Leader election through a coordination.k8s.io/v1 Lease, as client-go's
// tools/leaderelection (the LeaseLock): several copies of a component run,
// and only the holder of the Lease runs its loops.
//
// Every candidate tries to acquire or renew the Lease every retryPeriod
// (jittered by up to 20%, as upstream's JitterFactor 1.2). A Lease held by
// someone else counts as live for leaseDuration after this candidate saw it
// change. Upstream measures that on the local clock, not from the Lease's
// renewTime, so clocks that disagree between machines do not matter; we do
// the same. The holder that cannot renew within renewDeadline of the start
// of its last successful renewal stops leading at once (onStoppedLeading),
// before its Lease can have expired for the others: renewDeadline <
// leaseDuration is what guarantees that nothing runs twice.
//
// Two refinements over client-go make failover take at most leaseDuration
// after the leader's last renewal (upstream: up to leaseDuration plus two
// retry periods), with the same guarantee:
// - A changed record is taken to have changed just after the previous read
//   that still showed the old one was sent (upstream: when the new one was
//   read). That is still no earlier than the renewal's start minus one
//   retry period, and the leader stops at its start plus renewDeadline, so
//   the others wait leaseDuration - renewDeadline - retryPeriod (3 s with
//   the defaults) longer than it leads.
// - A candidate tries again exactly when the Lease it saw expires, not at
//   its next jittered retry after that.
//
// Upstream's timings are kube-controller-manager's and kube-scheduler's
// defaults: 15 s lease, 10 s renew deadline, 2 s retry
// (--leader-elect-lease-duration, --leader-elect-renew-deadline,
// --leader-elect-retry-period).
//
// stop() releases the Lease (upstream's ReleaseOnCancel): it writes an empty
// holder with a 1 s duration, so another candidate takes over at its next
// retry instead of waiting out the lease.

import { isApiError } from '../api/errors.ts';
import { rfc3339Micro } from '../api/meta.ts';
import type { Lease } from '../api/types/coordination-v1.ts';
import type { Clientset } from './clientset.ts';
import { type Clock, realClock } from './workqueue.ts';

export const DEFAULT_LEASE_DURATION_MS = 15_000;
export const DEFAULT_RENEW_DEADLINE_MS = 10_000;
export const DEFAULT_RETRY_PERIOD_MS = 2_000;
const JITTER_FACTOR = 1.2;

export interface LeaderElectionTimings {
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
}

export const defaultLeaderElectionTimings: LeaderElectionTimings = {
  leaseDurationMs: DEFAULT_LEASE_DURATION_MS,
  renewDeadlineMs: DEFAULT_RENEW_DEADLINE_MS,
  retryPeriodMs: DEFAULT_RETRY_PERIOD_MS,
};

/** Upstream's checks (leaderelection.NewLeaderElector): a clear error for timings that could let two lead. */
export function validateLeaderElectionTimings(t: LeaderElectionTimings): string | undefined {
  if (!(t.retryPeriodMs > 0)) return 'the retry period must be greater than zero';
  if (!(t.leaseDurationMs > t.renewDeadlineMs))
    return 'the lease duration must be greater than the renew deadline';
  if (!(t.renewDeadlineMs > JITTER_FACTOR * t.retryPeriodMs))
    return `the renew deadline must be greater than the retry period times ${JITTER_FACTOR}`;
  return undefined;
}

export interface LeaderElectionOptions extends Partial<LeaderElectionTimings> {
  clients: Pick<Clientset, 'leases'>;
  namespace: string;
  /** The Lease's name: the component's (kube-controller-manager, kube-scheduler). */
  name: string;
  /** This candidate: upstream's `<hostname>_<uuid>`, unique per process. */
  identity: string;
  /** Called when this candidate becomes the leader. */
  onStartedLeading(): void;
  /** Called when it stops being the leader (lost the Lease, or stop()). */
  onStoppedLeading(): void;
  /** Called whenever the holder this candidate sees changes (including to itself). */
  onNewLeader?(identity: string): void;
  clock?: Clock;
  /** Wall time for the Lease's acquireTime and renewTime. */
  now?(): Date;
  /** In [0, 1), for the retry jitter. */
  rand?(): number;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

export interface LeaderElector {
  isLeader(): boolean;
  /** The holder last seen ('' when none). */
  leader(): string;
  /** Stops trying; a leader stops leading and releases its Lease. */
  stop(): Promise<void>;
}

export function startLeaderElection(opts: LeaderElectionOptions): LeaderElector {
  const timings: LeaderElectionTimings = {
    leaseDurationMs: opts.leaseDurationMs ?? DEFAULT_LEASE_DURATION_MS,
    renewDeadlineMs: opts.renewDeadlineMs ?? DEFAULT_RENEW_DEADLINE_MS,
    retryPeriodMs: opts.retryPeriodMs ?? DEFAULT_RETRY_PERIOD_MS,
  };
  const invalid = validateLeaderElectionTimings(timings);
  if (invalid) throw new Error(`leader election for ${opts.name}: ${invalid}`);
  const clock = opts.clock ?? realClock;
  const now = opts.now ?? (() => new Date());
  const rand = opts.rand ?? Math.random;
  const { clients, namespace, name, identity } = opts;
  const leaseSeconds = Math.max(1, Math.round(timings.leaseDurationMs / 1000));

  // What this candidate last saw, and when on its own clock.
  let observed: Lease | undefined;
  let observedRecord = '';
  let observedAt = 0;
  // When the last successful read of the Lease was sent (undefined before the first).
  let lastReadSentAt: number | undefined;
  let seenLeader = '';
  let leading = false;
  let lastRenew = 0;
  let stopped = false;
  let timer: unknown;
  let deadlineTimer: unknown;
  let attempt: Promise<boolean> | undefined;

  const recordKey = (l: Lease) =>
    `${l.spec?.holderIdentity ?? ''}|${l.spec?.renewTime ?? ''}|${l.spec?.leaseDurationSeconds ?? ''}`;

  /** `changedAfter`: a time the record is known to have changed after (see the top). */
  const observe = (l: Lease, changedAfter = clock.now()) => {
    observed = l;
    const key = recordKey(l);
    if (key !== observedRecord) {
      observedRecord = key;
      observedAt = changedAfter;
    }
    const holder = l.spec?.holderIdentity ?? '';
    if (holder !== seenLeader) {
      seenLeader = holder;
      if (holder) opts.onNewLeader?.(holder);
    }
  };

  const desired = (base: Lease | undefined): Lease => {
    const mine = base?.spec?.holderIdentity === identity;
    const t = rfc3339Micro(now());
    return {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      ...base,
      metadata: { ...base?.metadata, name, namespace },
      spec: {
        holderIdentity: identity,
        leaseDurationSeconds: leaseSeconds,
        acquireTime: mine ? (base?.spec?.acquireTime ?? t) : t,
        renewTime: t,
        // Counts the times the Lease changed hands (0 for a new Lease).
        leaseTransitions: !base ? 0 : (base.spec?.leaseTransitions ?? 0) + (mine ? 0 : 1),
      },
    };
  };

  /** client-go's tryAcquireOrRenew: true when this candidate holds the Lease afterwards. */
  async function tryAcquireOrRenew(): Promise<boolean> {
    let current: Lease;
    const sentAt = clock.now();
    try {
      current = await clients.leases.get(namespace, name);
    } catch (err) {
      if (!isApiError(err, 'NotFound')) throw err;
      const created = await clients.leases.create(namespace, desired(undefined));
      observe(created);
      return true;
    }
    observe(current, lastReadSentAt ?? clock.now());
    lastReadSentAt = sentAt;
    const holder = current.spec?.holderIdentity ?? '';
    const durationMs = (current.spec?.leaseDurationSeconds ?? 0) * 1000;
    if (holder && holder !== identity && observedAt + durationMs > clock.now()) return false;
    const updated = await clients.leases.update(desired(current));
    observe(updated);
    return true;
  }

  const stopLeading = (why: string) => {
    if (!leading) return;
    leading = false;
    if (deadlineTimer !== undefined) clock.clearTimeout(deadlineTimer);
    deadlineTimer = undefined;
    opts.log?.('stopped leading', { lease: `${namespace}/${name}`, identity, reason: why });
    opts.onStoppedLeading();
  };

  // The holder's own deadline: if no renewal succeeds within renewDeadline
  // of the last one, it stops, even while a request is still hanging.
  const armDeadline = () => {
    if (deadlineTimer !== undefined) clock.clearTimeout(deadlineTimer);
    deadlineTimer = clock.setTimeout(
      () => {
        deadlineTimer = undefined;
        if (leading && clock.now() - lastRenew >= timings.renewDeadlineMs)
          stopLeading('failed to renew the lease within the renew deadline');
      },
      Math.max(0, lastRenew + timings.renewDeadlineMs - clock.now()),
    );
  };

  const schedule = () => {
    if (stopped) return;
    // Candidates jitter their retries (upstream's wait.JitterUntil); the
    // leader renews every retryPeriod.
    const wait = leading ? timings.retryPeriodMs : timings.retryPeriodMs * (1 + rand() * (JITTER_FACTOR - 1));
    timer = clock.setTimeout(loop, wait);
  };

  function loop(): void {
    if (stopped) return;
    const started = clock.now();
    attempt = tryAcquireOrRenew().catch((err: unknown) => {
      opts.log?.('error retrieving or updating the lease', {
        lease: `${namespace}/${name}`,
        error: String((err as Error)?.message ?? err),
      });
      return false;
    });
    void attempt.then((held) => {
      attempt = undefined;
      if (stopped) return;
      if (held) {
        // A renewal that took longer than the deadline does not count.
        if (leading && started - lastRenew >= timings.renewDeadlineMs) {
          stopLeading('failed to renew the lease within the renew deadline');
        } else {
          lastRenew = started;
          if (!leading) {
            leading = true;
            opts.log?.('successfully acquired lease', { lease: `${namespace}/${name}`, identity });
            opts.onStartedLeading();
          }
          armDeadline();
        }
      } else if (leading && clock.now() - lastRenew >= timings.renewDeadlineMs) {
        stopLeading('failed to renew the lease within the renew deadline');
      } else if (leading && seenLeader !== identity) {
        stopLeading(`the lease is held by ${seenLeader}`);
      }
      schedule();
    });
  }

  loop();

  return {
    isLeader: () => leading,
    leader: () => seenLeader,
    async stop() {
      if (stopped) return;
      stopped = true;
      if (timer !== undefined) clock.clearTimeout(timer);
      await attempt;
      const wasLeading = leading;
      stopLeading('stopping');
      if (!wasLeading || !observed || observed.spec?.holderIdentity !== identity) return;
      // Release: an empty holder, so the next candidate need not wait out the lease.
      try {
        await clients.leases.update({
          ...observed,
          spec: {
            ...observed.spec,
            holderIdentity: '',
            leaseDurationSeconds: 1,
            renewTime: rfc3339Micro(now()),
          },
        });
      } catch (err) {
        opts.log?.('failed to release the lease', { lease: `${namespace}/${name}`, error: String(err) });
      }
    },
  };
}
