// Egress NAT for pods, as flannel's (pkg/ip/iptables.go MasqRules) in one
// nftables table of our own:
//
//   pod → pod, any node          untouched: the receiver sees the client
//                                pod's real IP (the Kubernetes network model)
//   pod → off-cluster address    masqueraded to the node's address, so
//                                replies find their way back to the node
//   multicast                    untouched (flannel leaves it alone too)
//
// Traffic to a Service IP is DNATed to a pod IP by the proxy before
// postrouting, so it falls in the first case; the proxy masquerades what
// it must (hairpin, external traffic) in its own table.

import type { Exec } from '../proxy/backend.ts';

export const MASQ_TABLE = 'skiff-overlay';

/**
 * The table of the cluster with this pod range: one per cluster on a
 * machine, as the proxy's and NetworkPolicy's are, so a second cluster in
 * the same network namespace (a test's beside a user's) neither rewrites
 * nor, when it goes, removes the first one's.
 */
export function masqTableForClusterCIDR(clusterCIDR: string): string {
  if (clusterCIDR === '10.42.0.0/16') return MASQ_TABLE;
  return `${MASQ_TABLE}-${clusterCIDR.replace(/[./]/g, '-')}`;
}

export interface MasqueradeOptions {
  exec: Exec;
  clusterCIDR: string;
  /** Default: masqTableForClusterCIDR(clusterCIDR). */
  table?: string;
}

/** The nft script that (re)writes the table in one transaction (pure). */
export function masqueradeScript(clusterCIDR: string, table = masqTableForClusterCIDR(clusterCIDR)): string {
  const t = `ip ${table}`;
  return [
    `add table ${t}`,
    `delete table ${t}`,
    `add table ${t}`,
    `add chain ${t} postrouting { type nat hook postrouting priority srcnat; policy accept; }`,
    `add rule ${t} postrouting ip saddr ${clusterCIDR} ip daddr ${clusterCIDR} return`,
    `add rule ${t} postrouting ip saddr ${clusterCIDR} ip daddr 224.0.0.0/4 return`,
    `add rule ${t} postrouting ip saddr ${clusterCIDR} masquerade fully-random`,
    '',
  ].join('\n');
}

export interface Masquerade {
  ensure(): Promise<void>;
  remove(): Promise<void>;
}

export function masquerade(opts: MasqueradeOptions): Masquerade {
  const table = opts.table ?? masqTableForClusterCIDR(opts.clusterCIDR);
  return {
    ensure: async () => {
      await opts.exec('nft', ['-f', '-'], masqueradeScript(opts.clusterCIDR, table));
    },
    remove: async () => {
      await opts.exec('nft', ['delete', 'table', 'ip', table]).catch(() => undefined);
    },
  };
}
