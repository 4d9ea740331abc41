// The kubelet server as a node agent starts it: the one entry point the
// agent calls (src/agent/agent.ts), next to its kubelet.
//
// The serving certificate is the node's own, as upstream's kubelet makes one
// when none is given (a self-signed CA and a certificate for the node's
// name and IP, under <data-dir>/agent/kubelet-tls): the API server does not
// verify it (no --kubelet-certificate-authority), while the kubelet verifies
// the API server's client certificate against the cluster CA.

import { join } from 'node:path';
import { isApiError } from '../../api/errors.ts';
import type { Clientset } from '../../client/clientset.ts';
import type { Registry } from '../../metrics/prometheus.ts';
import { createStatsProvider, type NodeStatsSource, procNodeStats } from '../../metrics/summary.ts';
import { ensureCA, ensureLeaf } from '../../pki/pki.ts';
import type { Log } from '../../util/log.ts';
import type { Runtime } from '../runtime/runtime.ts';
import type { VolumeStats } from '../volumes/volume-stats.ts';
import { DEFAULT_KUBELET_PORT, type KubeletServer, startKubeletServer } from './server.ts';

export interface NodeKubeletServerOptions {
  runtime: Runtime;
  clients: Clientset;
  nodeName: string;
  /** Put in the serving certificate's SANs. */
  nodeIP?: string;
  dataDir: string;
  /** The cluster CA (PEM), which signs the API server's kubelet client certificate. */
  clusterCA: string;
  /** Default 10250, which the Node reports in status.daemonEndpoints. */
  port?: number;
  address?: string;
  log: Log;
  /** The kubelet's metrics, served on /metrics (metrics/kubelet.ts). */
  metrics?: Registry;
  /** The node's own usage for /stats/summary (default: this machine's, from /proc). */
  nodeStats?: NodeStatsSource;
  /** Each pod's volume stats for /stats/summary, by uid (the kubelet's volume manager). */
  volumeStats?: (uid: string) => Promise<VolumeStats[]>;
}

/**
 * Asks the API server, as this kubelet, whether `user` may do `verb` on
 * nodes/<subresource> of this node: upstream's webhook authorizer
 * (a SubjectAccessReview, which system:node may create).
 */
export function subjectAccessReviewer(clients: Clientset, nodeName: string) {
  const reviews = clients.forResource({
    group: 'authorization.k8s.io',
    version: 'v1',
    plural: 'subjectaccessreviews',
    namespaced: false,
  });
  return async (user: { name: string; groups: string[] }, verb: string, subresource: string) => {
    const answer = (await reviews.create(undefined, {
      apiVersion: 'authorization.k8s.io/v1',
      kind: 'SubjectAccessReview',
      metadata: {},
      spec: {
        user: user.name,
        groups: user.groups,
        resourceAttributes: { verb, resource: 'nodes', subresource, name: nodeName, version: 'v1' },
      },
    } as never)) as { status?: { allowed?: boolean } };
    return answer.status?.allowed === true;
  };
}

/**
 * Starts the node's kubelet server on 10250, or, when another agent on this
 * machine has that port (tests, several nodes on one host), on a free one:
 * the Node reports whichever port it got in status.daemonEndpoints, which
 * is where the API server looks.
 */
export async function startNodeKubeletServer(opts: NodeKubeletServerOptions): Promise<KubeletServer> {
  const dir = join(opts.dataDir, 'agent', 'kubelet-tls');
  const ca = ensureCA(dir, `${opts.nodeName}-ca`);
  const serving = ensureLeaf(ca, dir, 'kubelet', {
    commonName: opts.nodeName,
    usage: 'server',
    dnsNames: [opts.nodeName, 'localhost'],
    ips: [...(opts.nodeIP ? [opts.nodeIP] : []), '127.0.0.1'],
  });
  const start = (port: number) =>
    startKubeletServer({
      runtime: opts.runtime,
      // The API server's copy of the pod, with the status this kubelet wrote.
      getPod: async (ns, name) => {
        try {
          const pod = await opts.clients.pods.get(ns, name);
          return pod.spec?.nodeName === opts.nodeName ? pod : undefined;
        } catch (err) {
          if (isApiError(err, 'NotFound')) return undefined;
          throw err;
        }
      },
      tls: { cert: serving.cert, key: serving.key, clientCA: opts.clusterCA },
      port,
      ...(opts.address ? { address: opts.address } : {}),
      ...(opts.metrics ? { metrics: opts.metrics } : {}),
      stats: createStatsProvider({
        runtime: opts.runtime,
        nodeName: opts.nodeName,
        node: opts.nodeStats ?? procNodeStats(opts.dataDir),
        ...(opts.volumeStats ? { volumeStats: opts.volumeStats } : {}),
        log: opts.log,
      }),
      authorizeUser: subjectAccessReviewer(opts.clients, opts.nodeName),
      log: opts.log,
    });
  const port = opts.port ?? DEFAULT_KUBELET_PORT;
  try {
    return await start(port);
  } catch (err) {
    if ((err as { code?: string }).code !== 'EADDRINUSE' || port === 0) throw err;
    opts.log.warn('kubelet port in use (another agent on this machine?); serving on a free port', { port });
    return start(0);
  }
}
