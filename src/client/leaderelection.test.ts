import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ApiError } from '../api/errors.ts';
import { createInProcessTransport } from '../apiserver/in-process.ts';
import { startTestServer, type TestServer } from '../apiserver/testing.ts';
import { type Clientset, createClientset } from './clientset.ts';
import { FakeClock } from './fake-clock.ts';
import { type LeaderElector, startLeaderElection, validateLeaderElectionTimings } from './leaderelection.ts';

let server: TestServer;
let clients: Clientset;
before(async () => {
  server = await startTestServer();
  clients = createClientset(
    createInProcessTransport(server.api, { name: 'system:kube-controller-manager', groups: [] }),
  );
});
after(() => server.close());

// Lets the in-process API calls a timer started finish before the clock moves on.
const settle = async () => {
  for (let i = 0; i < 4; i++) await new Promise((r) => setTimeout(r, 5));
};

/** A candidate whose API calls fail while `down` is set: a server that died or lost its store. */
function candidate(
  clock: FakeClock,
  name: string,
  identity: string,
  events: string[],
): { elector: LeaderElector; down: { value: boolean } } {
  const down = { value: false };
  const leases = new Proxy(clients.leases, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver);
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => {
        if (down.value) return Promise.reject(new ApiError(500, 'InternalError', 'connection refused'));
        return (v as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  const epoch = Date.UTC(2026, 0, 1);
  const elector = startLeaderElection({
    clients: { leases },
    namespace: 'kube-system',
    name,
    identity,
    clock,
    now: () => new Date(epoch + clock.now()),
    rand: () => 0.5,
    onStartedLeading: () => events.push(`${identity} started`),
    onStoppedLeading: () => events.push(`${identity} stopped`),
  });
  return { elector, down };
}

/** Advances the clock a step at a time, checking after each that at most one candidate leads. */
async function run(clock: FakeClock, ms: number, electors: LeaderElector[]): Promise<void> {
  for (let t = 0; t < ms; t += 250) {
    clock.advance(250);
    await settle();
    assert.ok(electors.filter((e) => e.isLeader()).length <= 1, `two leaders at ${clock.now()} ms`);
  }
}

describe('leader election (client-go leaderelection with a Lease lock)', () => {
  it('the first candidate creates the Lease and leads; a second waits while it renews', async () => {
    const clock = new FakeClock();
    const events: string[] = [];
    const a = candidate(clock, 'first', 'a_1', events);
    await settle();
    assert.ok(a.elector.isLeader());
    const lease = await clients.leases.get('kube-system', 'first');
    assert.equal(lease.spec?.holderIdentity, 'a_1');
    assert.equal(lease.spec?.leaseDurationSeconds, 15);
    assert.equal(lease.spec?.leaseTransitions, 0);
    const b = candidate(clock, 'first', 'b_1', events);
    await run(clock, 30_000, [a.elector, b.elector]);
    assert.ok(a.elector.isLeader());
    assert.ok(!b.elector.isLeader());
    assert.equal(b.elector.leader(), 'a_1');
    const renewed = await clients.leases.get('kube-system', 'first');
    assert.notEqual(renewed.spec?.renewTime, lease.spec?.renewTime, 'the leader renews');
    await b.elector.stop();
    await a.elector.stop();
    assert.deepEqual(events, ['a_1 started', 'a_1 stopped']);
  });

  it('a leader that cannot renew stops at the renew deadline; another takes over after the lease duration, never both', async () => {
    const clock = new FakeClock();
    const events: string[] = [];
    const a = candidate(clock, 'lost', 'a_2', events);
    await settle();
    const b = candidate(clock, 'lost', 'b_2', events);
    await run(clock, 3_000, [a.elector, b.elector]);
    assert.ok(a.elector.isLeader());
    a.down.value = true;
    const cut = clock.now();
    let stoppedAt = 0;
    let takenAt = 0;
    for (let t = 0; t < 25_000 && !takenAt; t += 250) {
      await run(clock, 250, [a.elector, b.elector]);
      if (!stoppedAt && !a.elector.isLeader()) stoppedAt = clock.now() - cut;
      if (b.elector.isLeader()) takenAt = clock.now() - cut;
    }
    // The last renewal was at most one retry period (2 s) before the cut.
    assert.ok(stoppedAt > 0 && stoppedAt <= 10_000, `a stopped ${stoppedAt} ms after the cut`);
    assert.ok(takenAt > stoppedAt, 'b takes over only after a has stopped');
    // At most the lease duration after a's last renewal; never sooner than
    // the renew deadline after it (a's own stop), plus a margin.
    assert.ok(takenAt <= 15_250, `b took over ${takenAt} ms after the cut`);
    // ... and at least leaseDuration - renewDeadline - retryPeriod (3 s) after a stopped (250 ms steps).
    assert.ok(takenAt - stoppedAt >= 2_750, `b took over ${takenAt - stoppedAt} ms after a stopped`);
    const lease = await clients.leases.get('kube-system', 'lost');
    assert.equal(lease.spec?.holderIdentity, 'b_2');
    assert.equal(lease.spec?.leaseTransitions, 1);
    // The old leader, back, sees b's live Lease and stays a follower.
    a.down.value = false;
    await run(clock, 10_000, [a.elector, b.elector]);
    assert.ok(!a.elector.isLeader() && b.elector.isLeader());
    await a.elector.stop();
    await b.elector.stop();
    assert.deepEqual(events.slice(0, 3), ['a_2 started', 'a_2 stopped', 'b_2 started']);
  });

  it('stop() releases the Lease, so the next candidate takes over at its next retry', async () => {
    const clock = new FakeClock();
    const events: string[] = [];
    const a = candidate(clock, 'release', 'a_3', events);
    await settle();
    const b = candidate(clock, 'release', 'b_3', events);
    await run(clock, 4_000, [a.elector, b.elector]);
    await a.elector.stop();
    assert.equal((await clients.leases.get('kube-system', 'release')).spec?.holderIdentity, '');
    await run(clock, 2_500, [b.elector]);
    assert.ok(b.elector.isLeader());
    await b.elector.stop();
  });

  it('a leader whose Lease is taken over (written by another holder) stops at once', async () => {
    const clock = new FakeClock();
    const events: string[] = [];
    const a = candidate(clock, 'stolen', 'a_4', events);
    await settle();
    const lease = await clients.leases.get('kube-system', 'stolen');
    await clients.leases.update({ ...lease, spec: { ...lease.spec, holderIdentity: 'intruder' } });
    await run(clock, 2_500, [a.elector]);
    assert.ok(!a.elector.isLeader());
    assert.deepEqual(events, ['a_4 started', 'a_4 stopped']);
    await a.elector.stop();
  });

  it('refuses timings that could let two candidates lead, as upstream', () => {
    assert.match(
      validateLeaderElectionTimings({
        leaseDurationMs: 10_000,
        renewDeadlineMs: 10_000,
        retryPeriodMs: 2_000,
      }) ?? '',
      /lease duration must be greater than the renew deadline/,
    );
    assert.match(
      validateLeaderElectionTimings({
        leaseDurationMs: 15_000,
        renewDeadlineMs: 2_000,
        retryPeriodMs: 2_000,
      }) ?? '',
      /renew deadline must be greater than the retry period/,
    );
    assert.equal(
      validateLeaderElectionTimings({
        leaseDurationMs: 15_000,
        renewDeadlineMs: 10_000,
        retryPeriodMs: 2_000,
      }),
      undefined,
    );
  });
});
