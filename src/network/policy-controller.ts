// The NetworkPolicy controller of a node (k3s runs kube-router's netpol
// controller in each agent; this is Skiff's): watches NetworkPolicies, Pods
// and Namespaces through shared informers and keeps the node's nftables
// table (policy-nft.ts) equal to the model of its pods (policy.ts).
//
// Any change can move any pod in or out of any rule (a label on a pod in
// another namespace, a namespace's label, a pod getting its IP), so a sync
// recomputes the whole model from the caches, level-triggered. Bursts are
// batched: a sync runs at most once per debounceMs, one at a time, and the
// table is rewritten only when the rendered model differs. A failure is
// retried with backoff.

import type { Clientset } from '../client/clientset.ts';
import { createInformerFactory, type InformerFactory } from '../client/informer-factory.ts';
import type { Log } from '../util/log.ts';
import { nodePolicyModel, type PodPolicy } from './policy.ts';
import { type PolicyTable, policyTable, policyTableForClusterCIDR } from './policy-nft.ts';

export interface NetworkPolicyControllerOptions {
  /** list/watch of pods, namespaces and networkpolicies (system:skiff-network-policy). */
  clients: Clientset;
  /** Policies are enforced for this node's pods. */
  nodeName: string;
  table: PolicyTable;
  /** A shared informer factory; the controller makes (and starts, stops) its own when none is given. */
  informers?: InformerFactory;
  debounceMs?: number;
  log?: Log;
}

export interface NetworkPolicyController {
  /** Resolves after the first sync was attempted (a failure is logged and retried). */
  start(): Promise<void>;
  stop(): Promise<void>;
  /** The model the kernel holds now. */
  readonly model: readonly PodPolicy[];
  readonly syncs: { ok: number; failed: number };
  /** Resolves once every change seen so far is in the kernel, or the sync trying it failed. */
  flushed(): Promise<void>;
}

export function createNetworkPolicyController(opts: NetworkPolicyControllerOptions): NetworkPolicyController {
  const ownInformers = !opts.informers;
  const informers = opts.informers ?? createInformerFactory(opts.clients);
  const policies = informers.informer('networkPolicies');
  const pods = informers.informer('pods');
  const namespaces = informers.informer('namespaces');
  const debounceMs = opts.debounceMs ?? 100;
  const syncs = { ok: 0, failed: 0 };
  let model: PodPolicy[] = [];
  let dirty = false;
  let started = false;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let backoffMs = 0;
  let failed = false;
  let waiters: (() => void)[] = [];

  const schedule = (delayMs = debounceMs) => {
    dirty = true;
    if (!started || stopped || timer || running) return;
    timer = setTimeout(() => {
      timer = undefined;
      running = runSync().finally(() => {
        running = undefined;
        if (dirty) schedule(backoffMs || debounceMs);
        if (!dirty || failed) {
          const w = waiters;
          waiters = [];
          for (const f of w) f();
        }
      });
    }, delayMs);
  };

  const runSync = async () => {
    dirty = false;
    failed = false;
    const next = nodePolicyModel({
      nodeName: opts.nodeName,
      policies: policies.indexer.list(),
      pods: pods.indexer.list(),
      namespaces: namespaces.indexer.list(),
    });
    try {
      await opts.table.sync(next);
      if (JSON.stringify(next) !== JSON.stringify(model))
        opts.log?.('synced network policy rules', { isolatedPods: next.length });
      model = next;
      syncs.ok++;
      backoffMs = 0;
    } catch (err) {
      failed = true;
      dirty = true;
      syncs.failed++;
      backoffMs = Math.min(Math.max(backoffMs * 2, 500), 30_000);
      opts.log?.error('syncing network policy rules failed', { error: String(err), retryMs: backoffMs });
    }
  };

  const changed = () => schedule();
  for (const inf of [policies, pods, namespaces] as const)
    (inf as typeof policies).on({ add: changed, update: changed, delete: changed });

  return {
    get model() {
      return model;
    },
    syncs,
    async start() {
      await informers.start();
      started = true;
      await new Promise<void>((resolve) => {
        waiters.push(resolve);
        schedule(0);
      });
    },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running;
      if (ownInformers) informers.stop();
      for (const f of waiters) f();
      waiters = [];
    },
    flushed() {
      if (!running && !timer && !dirty) return Promise.resolve();
      return new Promise<void>((resolve) => waiters.push(resolve));
    },
  };
}

export interface NodeNetworkPolicyOptions {
  clients: Clientset;
  nodeName: string;
  clusterCIDR: string;
  log?: Log;
}

/**
 * Starts enforcing NetworkPolicy on this host. Its rules stay when the agent
 * stops (pods keep running, and so does their isolation), as the proxy's;
 * `skiff agent --cleanup` removes the table (cleanupNetworkPolicy).
 */
export async function startNodeNetworkPolicy(
  opts: NodeNetworkPolicyOptions,
): Promise<NetworkPolicyController> {
  const controller = createNetworkPolicyController({
    clients: opts.clients,
    nodeName: opts.nodeName,
    table: policyTable({ table: policyTableForClusterCIDR(opts.clusterCIDR) }),
    ...(opts.log ? { log: opts.log } : {}),
  });
  await controller.start();
  opts.log?.('network policy controller started', { table: policyTableForClusterCIDR(opts.clusterCIDR) });
  return controller;
}

/** Removes this cluster's NetworkPolicy table from the host (`skiff agent --cleanup`). */
export async function cleanupNetworkPolicy(clusterCIDR: string): Promise<void> {
  await policyTable({ table: policyTableForClusterCIDR(clusterCIDR) }).cleanup();
}
