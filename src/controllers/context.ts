// What every controller is given: typed clients for writes, the shared
// informers for reads, an event recorder, a logger, a clock, and the
// cluster's settings. Nothing here reaches storage: controllers act only
// through the API (ARCHITECTURE.md, "the one rule").

import type { KubeObject } from '../api/meta.ts';
import type { Clientset } from '../client/clientset.ts';
import type { EventRecorder } from '../client/events.ts';
import type { InformerFactory } from '../client/informer-factory.ts';
import type { Clock, WorkQueueMetrics } from '../client/workqueue.ts';
import type { Log } from '../util/log.ts';
import type { HPAOptions } from './horizontal.ts';

export interface ControllerOptions {
  /** --cluster-cidr: node podCIDRs are carved from it (default 10.42.0.0/16). */
  clusterCIDR: string;
  /** Size of each node's podCIDR (upstream's --node-cidr-mask-size, default 24). */
  nodeCIDRMaskSize: number;
  /** A node whose Lease is older than this turns Ready=Unknown (upstream default 40 s). */
  nodeMonitorGracePeriodMs: number;
  /** Terminated pods kept before the pod GC deletes the oldest (upstream default 12,500). */
  terminatedPodGCThreshold: number;
  /** Address and port of the API server, for the `kubernetes` Service's Endpoints. */
  apiServerAddress?: { ip: string; port: number };
  /** The cluster CA certificate (PEM), published in every namespace as kube-root-ca.crt. */
  rootCA?: string;
  /**
   * The CA that signs approved CSRs for the kubernetes.io signers (upstream's
   * --cluster-signing-cert-file and --cluster-signing-key-file); no signing without it.
   */
  clusterSigningCA?: { cert: string; key: string };
  /** Where the local-path provisioner puts volumes on a node (k3s's --default-local-storage-path). */
  defaultLocalStoragePath: string;
  /** The HPA controller's settings (--horizontal-pod-autoscaler-*). */
  hpa?: HPAOptions;
  /** The longest certificate the CSR signer issues (upstream's --cluster-signing-duration, 1 year). */
  clusterSigningDurationMs: number;
  /** Signs the long-lived tokens of kubernetes.io/service-account-token Secrets. */
  legacyTokenSigner?: {
    legacy(
      namespace: string,
      serviceAccount: { name: string; uid: string },
      secretName: string,
    ): Promise<string>;
  };
}

export const defaultControllerOptions: ControllerOptions = {
  clusterCIDR: '10.42.0.0/16',
  nodeCIDRMaskSize: 24,
  nodeMonitorGracePeriodMs: 40_000,
  terminatedPodGCThreshold: 12_500,
  clusterSigningDurationMs: 365 * 24 * 3600 * 1000,
  defaultLocalStoragePath: '/var/lib/skiff/storage',
};

export interface ControllerContext {
  readonly clients: Clientset;
  readonly informers: InformerFactory;
  /** An event recorder reporting as `component` (e.g. "replicaset-controller"). */
  recorder(component: string): EventRecorder;
  readonly log: Log;
  /** Wall-clock time, injectable for tests (timestamps, deadlines, schedules). */
  now(): Date;
  /** Timers and monotonic time for queues and delays, injectable for tests. */
  readonly clock: Clock;
  readonly options: ControllerOptions;
  /** Each work queue's metrics, by the queue's name (upstream's workqueue_*); none when unset. */
  readonly queueMetrics?: (queueName: string) => WorkQueueMetrics;
}

/** A running controller: started by the manager once the informers have synced. */
export interface Controller {
  readonly name: string;
  /** Starts the workers. Called once, after every informer has synced. */
  run(): void;
  /** Stops the workers; in-flight syncs may finish. */
  stop(): Promise<void>;
}

/**
 * Builds a controller: asks the context for informers and adds event
 * handlers (enqueue only), but does no work until run().
 */
export type ControllerFactory = (ctx: ControllerContext) => Controller;

/** `namespace/name`, or `name` for cluster-scoped objects (client-go's MetaNamespaceKeyFunc). */
export { keyOf } from '../client/informer.ts';

/** Splits a key made by keyOf. */
export function splitKey(key: string): { namespace: string | undefined; name: string } {
  const i = key.indexOf('/');
  return i < 0 ? { namespace: undefined, name: key } : { namespace: key.slice(0, i), name: key.slice(i + 1) };
}

export type { KubeObject };
