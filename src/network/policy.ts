// NetworkPolicy (networking.k8s.io/v1) as one node enforces it: pure logic
// from the cluster's policies, pods and namespaces to which of this node's
// pod IPs accept what from where, and may send what to where. The nftables
// rendering is policy-nft.ts; the controller feeding it is
// policy-controller.ts.
//
// Semantics are upstream's (the API reference, and the cases of
// test/e2e/network/netpol), which kube-router (k3s's controller) follows:
// - a pod is isolated for ingress (egress) when some policy selects it and
//   lists Ingress (Egress) in policyTypes; a pod no policy isolates is
//   unrestricted in that direction;
// - an isolated pod accepts only what at least one rule of one of the
//   policies selecting it allows: policies and rules are a union;
// - a rule's peers: podSelector (pods of the policy's namespace),
//   namespaceSelector (every pod of those namespaces), both in one peer (the
//   selected pods of the selected namespaces), ipBlock (a CIDR minus its
//   `except`); no `from`/`to` means any peer, no `ports` any port;
// - a port is a protocol (TCP by default), a number or name, and an endPort
//   making it a range. A name is resolved against the container ports of
//   the pod it lands on: the isolated pod itself for ingress, each
//   destination pod for egress (so a named egress port can only reach pods);
// - replies to an allowed connection always pass (conntrack, in the rules).
// Pods on other nodes count as peers by their pod IPs; hostNetwork pods are
// neither selected nor peers (their address is the node's), as upstream
// leaves them out of NetworkPolicy.

import {
  everything,
  type LabelSelector,
  nothing,
  type Selector,
  selectorFromLabelSelector,
} from '../api/labels.ts';
import { isPodTerminal, podIPs } from '../api/pod-util.ts';
import type { Namespace, Pod } from '../api/types/core-v1.ts';
import type { NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort } from '../api/types/networking-v1.ts';

export type Protocol = 'TCP' | 'UDP' | 'SCTP';

/** One protocol's ports: `ranges` of [first, last] port, or every port of it when absent. */
export interface PortMatch {
  protocol: Protocol;
  ranges?: [number, number][];
}

/** Where traffic comes from (ingress) or goes to (egress). */
export type Peer = { ips: string[] } | { cidr: string; except: string[] };

/**
 * What one rule lets through: any of `peers` (anywhere when absent) on any
 * of `ports` (every port and protocol when absent).
 */
export interface Allow {
  peers?: Peer[];
  ports?: PortMatch[];
}

/**
 * One isolated pod of the node. `ingress` (`egress`) is absent when no
 * policy isolates it in that direction, and empty when it is isolated and
 * nothing is allowed (default deny).
 */
export interface PodPolicy {
  /** namespace/name */
  pod: string;
  ip: string;
  ingress?: Allow[];
  egress?: Allow[];
  /** The policies that select it (namespace/name), for logs and tests. */
  policies: string[];
}

export interface PolicyInput {
  nodeName: string;
  policies: readonly NetworkPolicy[];
  pods: readonly Pod[];
  namespaces: readonly Namespace[];
}

/** A pod taking part in NetworkPolicy: on the pod network, with an IPv4 address, not finished. */
interface PolicyPod {
  pod: Pod;
  key: string;
  namespace: string;
  ip: string;
}

/** The API's LabelSelector type is looser than the selector parser's (optional keys). */
function selectorOf(ls: unknown): Selector {
  try {
    return selectorFromLabelSelector(ls as LabelSelector | undefined);
  } catch {
    // Validation rejects a bad operator; one that got in anyway selects nothing rather than stop every sync.
    return nothing();
  }
}

const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';

function policyPods(pods: readonly Pod[]): PolicyPod[] {
  const out: PolicyPod[] = [];
  for (const pod of pods) {
    if (pod.spec?.hostNetwork || isPodTerminal(pod)) continue;
    const ip = podIPs(pod).find((a) => !a.includes(':'));
    if (!ip) continue;
    const namespace = pod.metadata.namespace ?? 'default';
    out.push({ pod, key: `${namespace}/${pod.metadata.name}`, namespace, ip });
  }
  return out;
}

/** upstream's defaulting, for objects that did not go through the API (Egress only when egress rules exist). */
export function policyTypesOf(np: NetworkPolicy): string[] {
  return np.spec?.policyTypes ?? (np.spec?.egress ? ['Ingress', 'Egress'] : ['Ingress']);
}

/** The model for the pods of `nodeName`: only pods some policy isolates, by IP. */
export function nodePolicyModel(input: PolicyInput): PodPolicy[] {
  const all = policyPods(input.pods);
  const local = all.filter((p) => p.pod.spec?.nodeName === input.nodeName);
  const namespaceLabels = new Map<string, Record<string, string>>();
  for (const ns of input.namespaces) {
    const name = ns.metadata.name ?? '';
    namespaceLabels.set(name, { [NAMESPACE_NAME_LABEL]: name, ...ns.metadata.labels });
  }
  const labelsOfNamespace = (name: string) => namespaceLabels.get(name) ?? { [NAMESPACE_NAME_LABEL]: name };
  const ctx: Context = { all, labelsOfNamespace };

  const byIP = new Map<string, PodPolicy>();
  const sorted = [...input.policies].sort((a, b) => policyKey(a).localeCompare(policyKey(b)));
  for (const np of sorted) {
    const namespace = np.metadata.namespace ?? 'default';
    const selector = selectorOf(np.spec?.podSelector ?? {});
    const types = policyTypesOf(np);
    for (const target of local) {
      if (target.namespace !== namespace || !selector.matches(target.pod.metadata.labels)) continue;
      let entry = byIP.get(target.ip);
      if (!entry) {
        entry = { pod: target.key, ip: target.ip, policies: [] };
        byIP.set(target.ip, entry);
      }
      entry.policies.push(policyKey(np));
      if (types.includes('Ingress')) {
        entry.ingress ??= [];
        for (const rule of np.spec?.ingress ?? [])
          entry.ingress.push(...ingressAllows(ctx, namespace, target, rule.from, rule.ports));
      }
      if (types.includes('Egress')) {
        entry.egress ??= [];
        for (const rule of np.spec?.egress ?? [])
          entry.egress.push(...egressAllows(ctx, namespace, rule.to, rule.ports));
      }
    }
  }
  return [...byIP.values()].sort((a, b) => ipToNumber(a.ip) - ipToNumber(b.ip));
}

interface Context {
  all: PolicyPod[];
  labelsOfNamespace(name: string): Record<string, string>;
}

const policyKey = (np: NetworkPolicy) => `${np.metadata.namespace ?? 'default'}/${np.metadata.name}`;

/** A rule's peers: pods (as one list) and IP blocks; undefined = any peer. */
interface ResolvedPeers {
  pods: PolicyPod[];
  blocks: { cidr: string; except: string[] }[];
}

function resolvePeers(
  ctx: Context,
  policyNamespace: string,
  peers: NetworkPolicyPeer[] | undefined,
): ResolvedPeers | undefined {
  if (!peers || peers.length === 0) return undefined;
  const pods = new Map<string, PolicyPod>();
  const blocks: ResolvedPeers['blocks'] = [];
  for (const peer of peers) {
    if (peer.ipBlock?.cidr) {
      if (peer.ipBlock.cidr.includes(':')) continue; // IPv4 only, as the pod network
      blocks.push({
        cidr: canonicalCIDR(peer.ipBlock.cidr),
        except: (peer.ipBlock.except ?? []).filter((c) => !c.includes(':')).map(canonicalCIDR),
      });
      continue;
    }
    if (!peer.podSelector && !peer.namespaceSelector) continue;
    const podSelector = peer.podSelector ? selectorOf(peer.podSelector) : everything();
    const namespaceSelector = peer.namespaceSelector ? selectorOf(peer.namespaceSelector) : undefined;
    for (const p of ctx.all) {
      const inNamespace = namespaceSelector
        ? namespaceSelector.matches(ctx.labelsOfNamespace(p.namespace))
        : p.namespace === policyNamespace;
      if (inNamespace && podSelector.matches(p.pod.metadata.labels)) pods.set(p.ip, p);
    }
  }
  return { pods: [...pods.values()], blocks };
}

function peerList(resolved: ResolvedPeers): Peer[] {
  const peers: Peer[] = [];
  if (resolved.pods.length > 0) peers.push({ ips: sortIPs(resolved.pods.map((p) => p.ip)) });
  peers.push(...resolved.blocks);
  return peers;
}

const protocolOf = (p: NetworkPolicyPort): Protocol => (p.protocol ?? 'TCP').toUpperCase() as Protocol;

/** The number a named port has on a pod (a container port of that name and protocol). */
export function namedPort(pod: Pod, name: string, protocol: Protocol): number | undefined {
  for (const c of [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])])
    for (const p of c.ports ?? [])
      if (p.name === name && (p.protocol ?? 'TCP').toUpperCase() === protocol) return p.containerPort;
  return undefined;
}

/** Numeric ports as matches; named ones resolved with `resolve`, dropped when it finds none. */
function portMatches(
  ports: NetworkPolicyPort[],
  resolve: (name: string, protocol: Protocol) => number | undefined,
): PortMatch[] {
  const byProtocol = new Map<Protocol, PortMatch>();
  for (const p of ports) {
    const protocol = protocolOf(p);
    let range: [number, number] | undefined;
    if (typeof p.port === 'number') range = [p.port, p.endPort ?? p.port];
    else if (typeof p.port === 'string') {
      const n = resolve(p.port, protocol);
      if (n === undefined) continue;
      range = [n, n];
    }
    const match = byProtocol.get(protocol) ?? { protocol, ranges: [] };
    byProtocol.set(protocol, match);
    if (!range)
      delete match.ranges; // the protocol's every port
    else match.ranges?.push(range);
  }
  return [...byProtocol.values()].map((m) => (m.ranges ? { ...m, ranges: mergeRanges(m.ranges) } : m));
}

function ingressAllows(
  ctx: Context,
  namespace: string,
  target: PolicyPod,
  from: NetworkPolicyPeer[] | undefined,
  ports: NetworkPolicyPort[] | undefined,
): Allow[] {
  const resolved = resolvePeers(ctx, namespace, from);
  const allow: Allow = {};
  if (resolved) {
    allow.peers = peerList(resolved);
    if (allow.peers.length === 0) return [];
  }
  if (ports && ports.length > 0) {
    allow.ports = portMatches(ports, (name, protocol) => namedPort(target.pod, name, protocol));
    if (allow.ports.length === 0) return [];
  }
  return [allow];
}

function egressAllows(
  ctx: Context,
  namespace: string,
  to: NetworkPolicyPeer[] | undefined,
  ports: NetworkPolicyPort[] | undefined,
): Allow[] {
  const resolved = resolvePeers(ctx, namespace, to);
  const peers = resolved ? peerList(resolved) : undefined;
  if (peers?.length === 0) return [];
  if (!ports || ports.length === 0) return [peers ? { peers } : {}];
  const out: Allow[] = [];
  const numeric = ports.filter((p) => typeof p.port !== 'string');
  if (numeric.length > 0)
    out.push({ ...(peers ? { peers } : {}), ports: portMatches(numeric, () => undefined) });
  // A named port is each destination pod's own: one allow per (protocol,
  // number) for the pods that have it. IP blocks name no pod, so they get
  // nothing from a named port.
  const named = ports.filter((p) => typeof p.port === 'string');
  if (named.length === 0) return out;
  const destinations = resolved ? resolved.pods : ctx.all;
  const podsByPort = new Map<string, { protocol: Protocol; port: number; ips: string[] }>();
  for (const p of named) {
    const protocol = protocolOf(p);
    for (const d of destinations) {
      const n = namedPort(d.pod, p.port as string, protocol);
      if (n === undefined) continue;
      const k = `${protocol}/${n}`;
      const entry = podsByPort.get(k) ?? { protocol, port: n, ips: [] };
      if (!entry.ips.includes(d.ip)) entry.ips.push(d.ip);
      podsByPort.set(k, entry);
    }
  }
  for (const { protocol, port, ips } of podsByPort.values())
    out.push({ peers: [{ ips: sortIPs(ips) }], ports: [{ protocol, ranges: [[port, port]] }] });
  return out;
}

/** Sorted, overlapping and adjacent ranges joined (nft refuses overlapping intervals in one set). */
export function mergeRanges(ranges: [number, number][]): [number, number][] {
  const sorted = ranges
    .map(([a, b]): [number, number] => [Math.min(a, b), Math.max(a, b)])
    .sort((x, y) => x[0] - y[0]);
  const out: [number, number][] = [];
  for (const r of sorted) {
    const last = out.at(-1);
    if (last && r[0] <= last[1] + 1) last[1] = Math.max(last[1], r[1]);
    else out.push([...r]);
  }
  return out;
}

export function ipToNumber(ip: string): number {
  return ip.split('.').reduce((n, o) => n * 256 + Number(o), 0);
}

const numberToIP = (n: number) => [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');

/** The CIDR with its host bits cleared (198.18.42.7/24 → 198.18.42.0/24); a bare address is a /32. */
export function canonicalCIDR(cidr: string): string {
  const [addr, bitsText] = cidr.split('/');
  const bits = bitsText === undefined ? 32 : Number(bitsText);
  const size = 2 ** (32 - bits);
  const n = ipToNumber(addr!);
  return `${numberToIP(n - (n % size))}/${bits}`;
}

const sortIPs = (ips: string[]) => [...new Set(ips)].sort((a, b) => ipToNumber(a) - ipToNumber(b));
