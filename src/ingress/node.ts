// The node's ingress (src/agent/agent.ts starts it on a cri node unless
// `--disable ingress`): the controller (controller.ts) driving HAProxy on
// the node's ports 80 and 443 (--ingress-http-port, --ingress-https-port).
// HAProxy stops with the agent; one left behind by a killed agent is
// stopped on the next start and by `skiff agent --cleanup`.

import { join } from 'node:path';
import type { Clientset } from '../client/clientset.ts';
import { ensurePackages, type NodePackage } from '../node/packages.ts';
import type { Log } from '../util/log.ts';
import { createIngressController, type IngressController } from './controller.ts';
import { stopLeftover } from './haproxy.ts';

export const DEFAULT_INGRESS_HTTP_PORT = 80;
export const DEFAULT_INGRESS_HTTPS_PORT = 443;

export interface NodeIngressOptions {
  clients: Clientset;
  dataDir: string;
  nodeName: string;
  httpPort?: number;
  httpsPort?: number;
  log?: Log;
}

/** Debian's HAProxy, installed by the agent when missing, as containerd is. */
export const INGRESS_PACKAGE: NodePackage = {
  name: 'haproxy',
  provides: ['/usr/sbin/haproxy'],
  why: 'the ingress proxy on ports 80 and 443',
};

export const ingressDir = (dataDir: string): string => join(dataDir, 'agent', 'ingress');

export async function startNodeIngress(opts: NodeIngressOptions): Promise<IngressController> {
  const httpPort = opts.httpPort ?? DEFAULT_INGRESS_HTTP_PORT;
  const httpsPort = opts.httpsPort ?? DEFAULT_INGRESS_HTTPS_PORT;
  await ensurePackages({ packages: [INGRESS_PACKAGE], ...(opts.log ? { log: opts.log } : {}) });
  const controller = createIngressController({
    clients: opts.clients,
    dir: ingressDir(opts.dataDir),
    httpPort,
    httpsPort,
    nodeName: opts.nodeName,
    ...(opts.log ? { log: opts.log } : {}),
  });
  await controller.start();
  opts.log?.('ingress controller started', { httpPort, httpsPort });
  return controller;
}

/** Stops a left-over HAProxy of this data dir (`skiff agent --cleanup`). */
export async function cleanupNodeIngress(dataDir: string): Promise<void> {
  const dir = ingressDir(dataDir);
  await stopLeftover(dir, join(dir, 'haproxy.cfg'));
}
