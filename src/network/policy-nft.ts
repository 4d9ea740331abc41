// The NetworkPolicy model of a node (policy.ts) as one nftables table of
// ours, in the ip family, rewritten whole in one atomic `nft -f`
// transaction (as src/proxy/nftables.ts writes its full syncs), so a packet
// never meets half a policy. The service proxy's table is separate: a packet
// must pass both, and ours comes after its DNAT, so policies see the pod a
// Service picked, as upstream's NetworkPolicy does.
//
//   map ingress-pods   isolated pod IP -> jump its ingress chain
//   map egress-pods    isolated pod IP -> jump its egress chain
//   chain forward      (hook forward) replies pass; a new packet jumps to its
//                      source's egress chain, then its destination's ingress
//                      chain. Pod-to-pod on one bridge gets here too
//                      (bridge-nf-call-iptables, see applyPolicySysctls).
//   chain input        (hook input) a pod's packets to the node itself
//                      (cluster DNS lives on every node): egress only.
//   ingress-H-ns/name  one per isolated pod: `return` for what a rule
//   egress-H-ns/name   allows, `drop` for the rest.
// The node's own traffic to its pods (the kubelet's probes, port-forward)
// is not filtered: it leaves by the output hook, which we do not hook, as
// kube-router and most implementations let the node reach its pods.

import { type Exec, hostExec } from '../proxy/backend.ts';
import { shortHash } from '../proxy/model.ts';
import type { Allow, Peer, PodPolicy, PortMatch } from './policy.ts';

export const DEFAULT_POLICY_TABLE = 'skiff-netpol';

/** The table for a cluster: `skiff-netpol` for the default pod range, else one per range (several clusters on one machine, as tests run them). */
export function policyTableForClusterCIDR(clusterCIDR: string): string {
  if (clusterCIDR === '10.42.0.0/16') return DEFAULT_POLICY_TABLE;
  return `${DEFAULT_POLICY_TABLE}-${clusterCIDR.replace(/[./]/g, '-')}`;
}

type Direction = 'ingress' | 'egress';

const chainName = (direction: Direction, p: PodPolicy) =>
  `${direction}-${shortHash(`${p.pod}/${p.ip}`, 8)}-${p.pod}`.slice(0, 200);

/** `ip saddr …` (ingress: where it comes from) or `ip daddr …` (egress: where it goes). */
function peerMatch(direction: Direction, peer: Peer): string {
  const field = direction === 'ingress' ? 'ip saddr' : 'ip daddr';
  if ('ips' in peer) return `${field} { ${peer.ips.join(', ')} }`;
  const except = peer.except.length ? ` ${field} != { ${dropContained(peer.except).join(', ')} }` : '';
  return `${field} ${peer.cidr}${except}`;
}

function portMatch(m: PortMatch): string {
  const proto = m.protocol.toLowerCase();
  if (!m.ranges) return `meta l4proto ${proto}`;
  const elements = m.ranges.map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`));
  return `${proto} dport { ${elements.join(', ')} }`;
}

/** The rules of one allow: every peer crossed with every protocol's ports. */
export function allowRules(direction: Direction, allow: Allow): string[] {
  const peers = allow.peers ? allow.peers.map((p) => peerMatch(direction, p)) : [''];
  const ports = allow.ports ? allow.ports.map(portMatch) : [''];
  const out: string[] = [];
  for (const peer of peers)
    for (const port of ports) out.push(`${[peer, port].filter(Boolean).join(' ')} return`.trim());
  return out;
}

/** The chain of one isolated pod and direction: what is allowed returns, the rest is dropped. */
export function podChainRules(direction: Direction, allows: Allow[]): string[] {
  return [...allows.flatMap((a) => allowRules(direction, a)), 'drop'];
}

/** The whole table for the model, replacing whatever is there, in one transaction. */
export function policyScript(table: string, model: readonly PodPolicy[]): string {
  const t = `ip ${table}`;
  const lines = [
    `add table ${t}`,
    `delete table ${t}`,
    `add table ${t}`,
    `add map ${t} ingress-pods { type ipv4_addr : verdict ; }`,
    `add map ${t} egress-pods { type ipv4_addr : verdict ; }`,
    `add chain ${t} forward { type filter hook forward priority 0 ; policy accept ; }`,
    `add rule ${t} forward ct state established,related accept`,
    `add rule ${t} forward ip saddr vmap @egress-pods`,
    `add rule ${t} forward ip daddr vmap @ingress-pods`,
    `add chain ${t} input { type filter hook input priority 0 ; policy accept ; }`,
    `add rule ${t} input ct state established,related accept`,
    `add rule ${t} input ip saddr vmap @egress-pods`,
  ];
  const elements: Record<Direction, string[]> = { ingress: [], egress: [] };
  for (const pod of model) {
    for (const direction of ['ingress', 'egress'] as const) {
      const allows = pod[direction];
      if (!allows) continue;
      const chain = chainName(direction, pod);
      lines.push(`add chain ${t} ${chain}`);
      for (const rule of podChainRules(direction, allows)) lines.push(`add rule ${t} ${chain} ${rule}`);
      elements[direction].push(`${pod.ip} : jump ${chain}`);
    }
  }
  for (const direction of ['ingress', 'egress'] as const)
    if (elements[direction].length)
      lines.push(`add element ${t} ${direction}-pods { ${elements[direction].join(', ')} }`);
  return `${lines.join('\n')}\n`;
}

/** CIDRs inside another of the list left out: nft refuses overlapping intervals in one set. */
function dropContained(cidrs: string[]): string[] {
  const parsed = [...new Set(cidrs)].map((c) => {
    const [addr, bits] = c.split('/');
    const size = 2 ** (32 - Number(bits));
    const start = addr!.split('.').reduce((n, o) => n * 256 + Number(o), 0);
    return { c, start, end: start + size - 1 };
  });
  return parsed
    .filter(
      (a) =>
        !parsed.some(
          (b) => b !== a && b.start <= a.start && a.end <= b.end && (b.start !== a.start || b.end !== a.end),
        ),
    )
    .map((a) => a.c);
}

export interface PolicyTable {
  /** Programs the kernel with the model; a model equal to the last one applied is not rewritten. */
  sync(model: readonly PodPolicy[]): Promise<void>;
  /** Removes the table. */
  cleanup(): Promise<void>;
}

export interface PolicyTableOptions {
  table?: string;
  /** Runs nft and sysctl (on the host, or in a test's network namespace). */
  exec?: Exec;
}

/**
 * Pod-to-pod traffic on one bridge is bridged, not routed: without
 * bridge-nf-call-iptables it never reaches the ip family's forward hook and
 * no policy would see it (kube-router and kube-proxy ask for the same).
 */
export async function applyPolicySysctls(exec: Exec): Promise<void> {
  await exec('sysctl', ['-q', '-w', 'net.bridge.bridge-nf-call-iptables=1']).catch(() => undefined);
}

export function policyTable(opts: PolicyTableOptions = {}): PolicyTable {
  const table = opts.table ?? DEFAULT_POLICY_TABLE;
  const exec = opts.exec ?? hostExec();
  let applied: string | undefined;
  let prepared = false;
  return {
    async sync(model) {
      if (!prepared) {
        await applyPolicySysctls(exec);
        prepared = true;
      }
      const script = policyScript(table, model);
      if (script === applied) return;
      applied = undefined;
      await exec('nft', ['-f', '-'], script);
      applied = script;
    },
    async cleanup() {
      await exec('nft', ['-f', '-'], `add table ip ${table}\ndelete table ip ${table}\n`);
      applied = undefined;
    },
  };
}
