// The cross-node pod network, as flannel builds it with its Kubernetes
// subnet manager (flannel's --kube-subnet-manager, what k3s embeds): every
// node publishes on its own Node object how to reach its podCIDR, and every
// node watches the Nodes and keeps one kernel entry set per peer.
//
// The backends (vxlan.ts, the default, and host-gw.ts) sit behind one
// interface and pass one contract suite (overlay.case.ts). This file holds
// what they share: the interface, the Node annotations and the controller
// an agent runs.
//
// The annotations are flannel's own (flannel.alpha.coreos.com/...), not
// Skiff-prefixed ones, on purpose: they mean the same thing (the backend,
// its VNI and VTEP MAC, the public IP), so people and tools that know
// flannel or k3s read a Skiff Node at once (`kubectl describe node` shows
// them where they expect). Skiff is the cluster's flannel, as k3s is.
// https://github.com/flannel-io/flannel/blob/master/pkg/subnet/kube/annotations.go

import type { Node } from '../api/types/core-v1.ts';
import type { Clientset } from '../client/clientset.ts';
import { createInformer, type Informer } from '../client/informer.ts';
import type { Log } from '../util/log.ts';

export type OverlayBackendType = 'vxlan' | 'host-gw';

const FLANNEL = 'flannel.alpha.coreos.com';
export const BACKEND_TYPE_ANNOTATION = `${FLANNEL}/backend-type`;
export const BACKEND_DATA_ANNOTATION = `${FLANNEL}/backend-data`;
export const PUBLIC_IP_ANNOTATION = `${FLANNEL}/public-ip`;
export const SUBNET_MANAGER_ANNOTATION = `${FLANNEL}/kube-subnet-manager`;

/** flannel's VXLAN defaults: VNI 1 on UDP 8472 (the Linux kernel's legacy VXLAN port, not IANA's 4789). */
export const VXLAN_VNI = 1;
export const VXLAN_PORT = 8472;
/** What VXLAN adds to each packet: outer IPv4 (20) + UDP (8) + VXLAN (8) + inner Ethernet (14). */
export const VXLAN_OVERHEAD = 50;

/** This node, as its backend needs it. */
export interface LocalNode {
  name: string;
  /** spec.podCIDR, e.g. 10.42.1.0/24. */
  podCIDR: string;
  /** The address peers send to (flannel's public-ip): the node's InternalIP unless told otherwise. */
  publicIP: string;
}

/** What a backend publishes about its node: flannel's backend-data (null for host-gw). */
export interface VxlanBackendData {
  VNI: number;
  VtepMAC: string;
}
export type BackendData = VxlanBackendData | null;

/** A remote node the backend must reach, read from its Node. */
export interface OverlayPeer {
  name: string;
  podCIDR: string;
  publicIP: string;
  backendType: OverlayBackendType;
  /** The peer's VTEP MAC (vxlan only). */
  vtepMAC?: string;
}

/**
 * One way of reaching other nodes' podCIDRs. Every method is idempotent,
 * and syncPeers is level-triggered: after it the kernel holds exactly the
 * given peers' entries, whatever it held before (an agent restart included).
 */
export interface OverlayBackend {
  readonly type: OverlayBackendType;
  /** Sets up this node's side (the VTEP for vxlan); returns what to publish on the Node. */
  ensureLocal(node: LocalNode): Promise<BackendData>;
  /** Makes the kernel's entries match `peers` (adds, changes, and removes those not listed). */
  syncPeers(peers: OverlayPeer[]): Promise<void>;
  /** Removes one peer's entries (a node that went). */
  remove(peerName: string): Promise<void>;
  /** The MTU pods must use on this node (the underlay's, less the backend's overhead). */
  mtu(): number;
  /** Where the probe of a peer goes: an address of the peer that only the overlay path reaches. */
  probeAddress(peer: OverlayPeer): string;
  /** Removes everything this backend added (the node leaves the cluster, or a test ends). */
  close(): Promise<void>;
}

// ---- addresses ---------------------------------------------------------

const ipToInt = (ip: string): number => ip.split('.').reduce((n, o) => n * 256 + Number(o), 0);
const intToIp = (n: number): string => [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');

/** The n-th address of a CIDR: `cidrAddress('10.42.1.0/24', 0)` is 10.42.1.0 (flannel's VTEP address). */
export function cidrAddress(cidr: string, n: number): string {
  const [base = '', bits = '32'] = cidr.split('/');
  const prefix = Number(bits);
  const start = ipToInt(base) - (ipToInt(base) % 2 ** (32 - prefix));
  return intToIp(start + n);
}

export function isIPv4(s: string | undefined): s is string {
  return !!s && /^(\d{1,3})(\.\d{1,3}){3}$/.test(s) && s.split('.').every((o) => Number(o) <= 255);
}

export function isIPv4CIDR(s: string | undefined): s is string {
  if (!s) return false;
  const [ip, bits, ...rest] = s.split('/');
  return rest.length === 0 && isIPv4(ip) && /^\d{1,2}$/.test(bits ?? '') && Number(bits) <= 32;
}

// ---- annotations -------------------------------------------------------

/** The annotations this node publishes (a merge patch's metadata.annotations). */
export function backendAnnotations(
  type: OverlayBackendType,
  node: LocalNode,
  data: BackendData,
): Record<string, string> {
  return {
    [BACKEND_TYPE_ANNOTATION]: type,
    [BACKEND_DATA_ANNOTATION]: JSON.stringify(data),
    [PUBLIC_IP_ANNOTATION]: node.publicIP,
    [SUBNET_MANAGER_ANNOTATION]: 'true',
  };
}

export type PeerParse = { peer: OverlayPeer } | { skip: string };

const MAC = /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i;

/**
 * Reads a Node as a peer. A Node that has not published (yet) or that
 * publishes nonsense is skipped with the reason, never half-programmed: a
 * route to a VTEP whose MAC is unknown would only black-hole the podCIDR.
 */
export function peerFromNode(node: Node): PeerParse {
  const name = node.metadata.name ?? '';
  const podCIDR = node.spec?.podCIDR;
  const a = node.metadata.annotations ?? {};
  const type = a[BACKEND_TYPE_ANNOTATION];
  const publicIP = a[PUBLIC_IP_ANNOTATION];
  if (!isIPv4CIDR(podCIDR)) return { skip: 'no podCIDR' };
  if (type !== 'vxlan' && type !== 'host-gw')
    return { skip: type ? `unknown backend ${type}` : 'no backend' };
  if (!isIPv4(publicIP)) return { skip: `bad ${PUBLIC_IP_ANNOTATION} ${JSON.stringify(publicIP ?? '')}` };
  if (type === 'host-gw') return { peer: { name, podCIDR, publicIP, backendType: type } };
  let data: unknown;
  try {
    data = JSON.parse(a[BACKEND_DATA_ANNOTATION] ?? '');
  } catch {
    return { skip: `bad ${BACKEND_DATA_ANNOTATION}` };
  }
  const { VNI, VtepMAC } = (data ?? {}) as Partial<VxlanBackendData>;
  if (VNI !== VXLAN_VNI) return { skip: `VNI ${String(VNI)} is not ${VXLAN_VNI}` };
  if (typeof VtepMAC !== 'string' || !MAC.test(VtepMAC)) return { skip: 'bad VtepMAC' };
  return { peer: { name, podCIDR, publicIP, backendType: type, vtepMAC: VtepMAC.toLowerCase() } };
}

/** The peers a node of backend `type` programs: every other Node that published the same backend. */
export function peersFromNodes(
  nodes: Iterable<Node>,
  self: string,
  type: OverlayBackendType,
): { peers: OverlayPeer[]; skipped: Record<string, string> } {
  const peers: OverlayPeer[] = [];
  const skipped: Record<string, string> = {};
  for (const node of nodes) {
    const name = node.metadata.name ?? '';
    if (name === self || node.metadata.deletionTimestamp) continue;
    const p = peerFromNode(node);
    if ('skip' in p) skipped[name] = p.skip;
    else if (p.peer.backendType !== type) skipped[name] = `backend ${p.peer.backendType}, not ${type}`;
    else peers.push(p.peer);
  }
  peers.sort((a, b) => a.name.localeCompare(b.name));
  return { peers, skipped };
}

/** Whether the Node already carries these annotations (no patch needed). */
export function hasAnnotations(node: Node | undefined, want: Record<string, string>): boolean {
  const have = node?.metadata.annotations ?? {};
  return Object.entries(want).every(([k, v]) => have[k] === v);
}

// ---- the controller ----------------------------------------------------

export interface OverlayControllerOptions {
  /** The node's own client (system:node:<name>): it patches this node's Node, and nothing else. */
  clients: Clientset;
  /**
   * Who reads all Nodes. The Node authorizer lets a node read only its own
   * Node (upstream's AuthorizeNodeWithSelectors), so the watch goes through
   * a client that may list them: the node's service proxy (system:kube-proxy,
   * role system:node-proxier, which reads Nodes anyway). flannel has its own
   * ServiceAccount for the same reason; this adds no power to any identity.
   */
  watchClients?: Clientset;
  nodeName: string;
  backend: OverlayBackend;
  /** This node's podCIDR, once the Node has one (the kubelet's onPodCIDR). */
  podCIDR: () => Promise<string>;
  publicIP: string;
  log?: Log;
}

export interface OverlayController {
  /** The peers programmed at the last successful sync. */
  peers(): OverlayPeer[];
  /** A Node as the controller's cache has it. */
  node(name: string): Node | undefined;
  /** Resolves once the node's side is up and the first sync is done. */
  ready: Promise<void>;
  stop(): Promise<void>;
}

/**
 * Publishes this node's backend data and keeps the backend's peers in sync
 * with the Nodes. One sync at a time; events during a sync coalesce into
 * one more (syncs are level-triggered, so none is lost). A failed sync is
 * retried with backoff.
 */
export function startOverlayController(opts: OverlayControllerOptions): OverlayController {
  const log = opts.log;
  const informer: Informer<Node> = createInformer((opts.watchClients ?? opts.clients).nodes);
  let programmed: OverlayPeer[] = [];
  let stopped = false;
  let running: Promise<void> | undefined;
  let again = false;
  let retry: NodeJS.Timeout | undefined;
  let failures = 0;
  let local: LocalNode | undefined;

  const syncOnce = async () => {
    const { peers, skipped } = peersFromNodes(informer.indexer.list(), opts.nodeName, opts.backend.type);
    await opts.backend.syncPeers(peers);
    const was = new Set(programmed.map((p) => p.name));
    for (const p of peers)
      if (!was.has(p.name)) log?.('overlay peer added', { peer: p.name, podCIDR: p.podCIDR });
    const now = new Set(peers.map((p) => p.name));
    for (const p of programmed) if (!now.has(p.name)) log?.('overlay peer removed', { peer: p.name });
    if (Object.keys(skipped).length) log?.debug('nodes not (yet) overlay peers', { skipped });
    programmed = peers;
  };

  const sync = (): Promise<void> => {
    if (stopped || !local) return Promise.resolve();
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      try {
        do {
          again = false;
          await syncOnce();
        } while (again && !stopped);
        failures = 0;
      } catch (err) {
        failures++;
        const ms = Math.min(30_000, 200 * 2 ** Math.min(failures, 8));
        log?.warn('overlay sync failed, retrying', { error: String(err), retryInMs: ms });
        clearTimeout(retry);
        retry = setTimeout(() => void sync(), ms);
      } finally {
        running = undefined;
      }
    })();
    return running;
  };

  const publish = async (data: BackendData) => {
    const want = backendAnnotations(opts.backend.type, local!, data);
    const own =
      informer.indexer.get(opts.nodeName) ?? (await opts.clients.nodes.get(undefined, opts.nodeName));
    if (hasAnnotations(own, want)) return;
    await opts.clients.nodes.patch(undefined, opts.nodeName, 'merge', { metadata: { annotations: want } });
    log?.('published overlay backend data', { backend: opts.backend.type, publicIP: local!.publicIP });
  };

  informer.on({ add: () => void sync(), update: () => void sync(), delete: () => void sync() });

  const ready = (async () => {
    const podCIDR = await opts.podCIDR();
    if (stopped) return; // stopped before the Node had its podCIDR
    const node: LocalNode = { name: opts.nodeName, podCIDR, publicIP: opts.publicIP };
    const data = await opts.backend.ensureLocal(node);
    local = node;
    await informer.start();
    if (stopped) return informer.stop();
    await publish(data);
    await sync();
  })();
  ready.catch((err) => log?.error('the overlay did not start', { error: String(err) }));

  return {
    peers: () => programmed,
    node: (name) => informer.indexer.get(name),
    ready,
    async stop() {
      stopped = true;
      clearTimeout(retry);
      informer.stop();
      await running;
    },
  };
}
