// Runs a component (the controller manager, the scheduler) only while this
// server holds its Lease, as kube-controller-manager and kube-scheduler
// with --leader-elect. Upstream exits the process when the lease is lost and
// lets systemd start it again; Skiff's server keeps serving the API, so the
// component is stopped at once and started afresh (new informers, new
// caches) the next time this server wins the Lease.
//
// With SQLite (or memory) one server is the only server, so there is no
// election and the component just runs (k3s does the same: leader election
// only matters with several servers on one datastore).

import type { Clientset } from '../client/clientset.ts';
import {
  type LeaderElectionTimings,
  type LeaderElector,
  startLeaderElection,
} from '../client/leaderelection.ts';
import type { Log } from '../util/log.ts';

export interface Stoppable {
  stop(): Promise<void>;
}

export interface LeaderGatedOptions {
  /** The Lease's name, upstream's: kube-controller-manager, kube-scheduler. */
  name: string;
  identity: string;
  /** The component's own client: its RBAC role may get and update only its Lease. */
  clients: Pick<Clientset, 'leases'>;
  timings: LeaderElectionTimings;
  start(): Promise<Stoppable>;
  log: Log;
}

export interface LeaderGated {
  /** The running component, while this server leads. */
  readonly running: Stoppable | undefined;
  readonly elector: LeaderElector;
  stop(): Promise<void>;
}

export const LEADER_ELECTION_NAMESPACE = 'kube-system';
const RELEASE_TIMEOUT_MS = 2_000;

export function startLeaderGated(opts: LeaderGatedOptions): LeaderGated {
  let running: Stoppable | undefined;
  // Starts and stops run one after another, in the order the elector asked.
  let chain: Promise<void> = Promise.resolve();
  const enqueue = (step: () => Promise<void>) => {
    chain = chain.then(step).catch((err: unknown) => {
      opts.log.error('leader-elected component failed', {
        component: opts.name,
        error: String((err as Error)?.message ?? err),
      });
    });
  };
  const stopRunning = async () => {
    const r = running;
    running = undefined;
    await r?.stop();
  };
  const elector: LeaderElector = startLeaderElection({
    clients: opts.clients,
    namespace: LEADER_ELECTION_NAMESPACE,
    name: opts.name,
    identity: opts.identity,
    ...opts.timings,
    log: (msg, fields) => opts.log(msg, fields),
    onNewLeader: (leader) => opts.log('new leader elected', { lease: opts.name, leader }),
    onStartedLeading: () =>
      enqueue(async () => {
        if (!elector.isLeader() || running) return;
        const started = await opts.start();
        running = started;
        // Lost the lease while starting: stop what just started.
        if (!elector.isLeader()) await stopRunning();
      }),
    onStoppedLeading: () => enqueue(stopRunning),
  });
  return {
    get running() {
      return running;
    },
    elector,
    async stop() {
      // The loops stop first; releasing the Lease is a courtesy to the next
      // leader, bounded so a datastore that is gone cannot hold up shutdown.
      const released = elector.stop();
      enqueue(stopRunning);
      await chain;
      await Promise.race([released, new Promise((r) => setTimeout(r, RELEASE_TIMEOUT_MS).unref())]);
    },
  };
}
