// The pod network across nodes as a node agent runs it (src/agent/agent.ts):
// the backend k3s's --flannel-backend names, on the underlay --flannel-iface
// and --node-ip pick, the masquerade table, the overlay controller and the
// peer probes. And its cleanup, for `skiff agent --cleanup`.
//
// Kernel state outlives the agent, as kube-proxy's rules and flannel's VTEP
// do: pods keep reaching each other while an agent restarts, and the next
// agent adopts what it finds (each backend's syncPeers is level-triggered).

import type { Clientset } from '../client/clientset.ts';
import { type Exec, hostExec } from '../proxy/backend.ts';
import type { Log } from '../util/log.ts';
import { batch, readRoutes, routeLine } from './entries.ts';
import { hostGwBackend } from './host-gw.ts';
import { masqTableForClusterCIDR, masquerade } from './masquerade.ts';
import { type OverlayBackend, startOverlayController, VXLAN_OVERHEAD } from './overlay.ts';
import { createNetworkProber } from './probe.ts';
import { findUnderlay } from './underlay.ts';
import { VTEP_DEVICE, vxlanBackend } from './vxlan.ts';

export type FlannelBackend = 'vxlan' | 'host-gw' | 'none';
export const FLANNEL_BACKENDS: readonly FlannelBackend[] = ['vxlan', 'host-gw', 'none'];

export interface NodeNetworkOptions {
  /** The kubelet's clients (system:node:<name>): patch this node's Node. */
  clients: Clientset;
  /** Reads all Nodes (the proxy's, system:kube-proxy); see OverlayControllerOptions.watchClients. */
  watchClients?: Clientset;
  nodeName: string;
  /** --flannel-backend (default vxlan). */
  backend?: FlannelBackend;
  /** --flannel-iface. */
  iface?: string;
  /** The address peers send to: --node-ip, or --node-external-ip with --flannel-external-ip. */
  publicIP: string;
  clusterCIDR: string;
  exec?: Exec;
  probeIntervalMs?: number;
  log?: Log;
}

export interface NodeNetwork {
  /** The MTU pods get (the CNI bridge's): the underlay's less the backend's overhead. */
  readonly mtu: number;
  /** The Node's podCIDR, once it has one (the kubelet's onPodCIDR): the overlay starts then. */
  setPodCIDR(podCIDR: string): void;
  stop(): Promise<void>;
}

/** Starts the node's pod network across nodes; undefined for --flannel-backend none. */
export async function startNodeNetwork(opts: NodeNetworkOptions): Promise<NodeNetwork | undefined> {
  const type = opts.backend ?? 'vxlan';
  if (type === 'none') return undefined;
  const exec = opts.exec ?? hostExec();
  const log = opts.log;
  const iface = opts.iface ? { iface: opts.iface } : {};
  const underlay = await findUnderlay(exec, { address: opts.publicIP, ...iface });
  const backend: OverlayBackend =
    type === 'vxlan' ? vxlanBackend({ exec, ...iface }) : hostGwBackend({ exec, ...iface });
  await exec('sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
  await masquerade({ exec, clusterCIDR: opts.clusterCIDR }).ensure();

  let resolvePodCIDR: (cidr: string) => void = () => undefined;
  const podCIDR = new Promise<string>((resolve) => {
    resolvePodCIDR = resolve;
  });
  const controller = startOverlayController({
    clients: opts.clients,
    ...(opts.watchClients ? { watchClients: opts.watchClients } : {}),
    nodeName: opts.nodeName,
    backend,
    podCIDR: () => podCIDR,
    publicIP: opts.publicIP,
    ...(log ? { log } : {}),
  });
  const prober = createNetworkProber({
    clients: opts.clients,
    nodeName: opts.nodeName,
    backend,
    peers: controller.peers,
    nodeOf: controller.node,
    exec,
    ...(opts.probeIntervalMs ? { intervalMs: opts.probeIntervalMs } : {}),
    ...(log ? { log } : {}),
  });
  controller.ready.then(
    () => {
      log?.('pod network across nodes up', { backend: type, iface: underlay.iface, publicIP: opts.publicIP });
      prober.start();
    },
    () => undefined, // logged by the controller
  );
  return {
    mtu: type === 'vxlan' ? underlay.mtu - VXLAN_OVERHEAD : underlay.mtu,
    setPodCIDR: (cidr) => resolvePodCIDR(cidr),
    async stop() {
      prober.stop();
      await controller.stop();
    },
  };
}

/** Removes the overlay from this host: the VTEP (with its entries), our routes, the cluster's masquerade table. */
export async function cleanupNodeNetwork(
  clusterCIDR: string,
  exec: Exec = hostExec(),
  log?: Log,
): Promise<void> {
  const table = masqTableForClusterCIDR(clusterCIDR);
  const quiet = (p: Promise<unknown>) => p.catch(() => undefined);
  await quiet(exec('ip', ['link', 'delete', VTEP_DEVICE]));
  const routes = await readRoutes(exec).catch(() => new Map<string, string>());
  await quiet(
    batch(
      exec,
      'ip',
      [...routes].map(([k, v]) => routeLine('del', k, v)),
    ),
  );
  await quiet(exec('nft', ['delete', 'table', 'ip', table]));
  log?.('removed the pod network across nodes', { vtep: VTEP_DEVICE, routes: routes.size, table });
}
