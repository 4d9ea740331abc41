// The node's heartbeat: a Lease named after the node in kube-node-lease,
// renewed every 10 s (a quarter of its 40 s duration), as upstream's node
// lease controller (k8s.io/component-helpers/apimachinery/lease). The node
// lifecycle controller reads renewTime to tell a live node from a dead one;
// the Node's status is only rewritten when it changes.
//
// The Lease is owned by the Node, so deleting the Node deletes its Lease.
// Renewals update the last Lease written (no GET each time); a conflict or a
// failure fetches it again, retrying after 200 ms, doubling up to 7 s.

import { isApiError } from '../api/errors.ts';
import { rfc3339Micro } from '../api/meta.ts';
import type { Lease } from '../api/types/coordination-v1.ts';
import type { Clientset } from '../client/clientset.ts';
import type { Clock } from '../client/workqueue.ts';

export const NODE_LEASE_NAMESPACE = 'kube-node-lease';

export interface NodeLeaseOptions {
  clients: Clientset;
  nodeName: string;
  /** The Node's uid once registered, for the Lease's ownerReference. */
  nodeUID(): string | undefined;
  clock: Clock;
  now(): Date;
  leaseDurationSeconds?: number;
  /** Upstream renews at a quarter of the duration: 10 s. */
  renewIntervalMs?: number;
  /**
   * In [0, 1): renewals fall at this fraction of each interval, counted on
   * the clock (the first one still comes at once). Nodes started together
   * (hollow nodes) get evenly spread phases, so their renewals reach the API
   * server as a steady stream rather than a burst every 10 s.
   */
  phase?: number;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

export interface NodeLease {
  start(): void;
  stop(): void;
  /** Renews once now; resolves to the Lease written. */
  renew(): Promise<Lease>;
}

export function createNodeLease(opts: NodeLeaseOptions): NodeLease {
  const { clients, nodeName, clock } = opts;
  const duration = opts.leaseDurationSeconds ?? 40;
  const interval = opts.renewIntervalMs ?? (duration * 1000) / 4;
  let latest: Lease | undefined;
  let timer: unknown;
  let stopped = true;
  let failures = 0;

  const owner = () => {
    const uid = opts.nodeUID();
    return uid ? [{ apiVersion: 'v1', kind: 'Node', name: nodeName, uid }] : undefined;
  };

  const desired = (base: Lease | undefined): Lease => {
    const ownerReferences = base?.metadata.ownerReferences?.length ? base.metadata.ownerReferences : owner();
    return {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      ...base,
      metadata: {
        ...base?.metadata,
        name: nodeName,
        namespace: NODE_LEASE_NAMESPACE,
        ...(ownerReferences ? { ownerReferences } : {}),
      },
      spec: {
        ...base?.spec,
        holderIdentity: nodeName,
        leaseDurationSeconds: duration,
        renewTime: rfc3339Micro(opts.now()),
      },
    };
  };

  async function renew(): Promise<Lease> {
    if (latest) {
      try {
        latest = await clients.leases.update(desired(latest));
        return latest;
      } catch (err) {
        latest = undefined;
        if (!isApiError(err, 'Conflict') && !isApiError(err, 'NotFound')) throw err;
      }
    }
    try {
      const current = await clients.leases.get(NODE_LEASE_NAMESPACE, nodeName);
      latest = await clients.leases.update(desired(current));
    } catch (err) {
      if (!isApiError(err, 'NotFound')) throw err;
      latest = await clients.leases.create(NODE_LEASE_NAMESPACE, desired(undefined));
    }
    return latest;
  }

  function loop(): void {
    if (stopped) return;
    renew().then(
      () => {
        failures = 0;
        // With a phase, the next renewal is at the next phase point, so a slow
        // renewal does not push the later ones along.
        const next =
          opts.phase === undefined
            ? interval
            : (((opts.phase * interval - clock.now()) % interval) + interval) % interval || interval;
        if (!stopped) timer = clock.setTimeout(loop, next);
      },
      (err: unknown) => {
        failures++;
        const retry = Math.min(200 * 2 ** (failures - 1), 7000);
        opts.log?.('failed to renew the node lease', { error: String(err), retryInMs: retry });
        if (!stopped) timer = clock.setTimeout(loop, retry);
      },
    );
  }

  return {
    start() {
      if (!stopped) return;
      stopped = false;
      loop();
    },
    stop() {
      stopped = true;
      if (timer !== undefined) clock.clearTimeout(timer);
    },
    renew,
  };
}
