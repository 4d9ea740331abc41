// The node's underlay: which interface carries the overlay, its address and
// MTU. k3s's semantics (pkg/agent/flannel, pkg/util/net): --flannel-iface
// names the interface outright; otherwise it is the one holding --node-ip
// (or, with neither, the default route's). The public IP peers send to is
// the node IP, or --node-external-ip with --flannel-external-ip.

import type { Exec } from '../proxy/backend.ts';

export interface Underlay {
  iface: string;
  /** The IPv4 address the overlay's packets leave from (flannel's public-ip). */
  address: string;
  mtu: number;
}

interface JsonAddr {
  ifname: string;
  mtu: number;
  addr_info?: { family: string; local: string; scope?: string }[];
}

export interface UnderlayChoice {
  /** --flannel-iface. */
  iface?: string;
  /** --node-ip (or the external IP when the overlay must use it). */
  address?: string;
}

/** Picks the underlay from `ip -j addr`'s output (pure: the parsing and the rules). */
export function chooseUnderlay(
  addrJson: string,
  defaultIface: string | undefined,
  want: UnderlayChoice,
): Underlay {
  const links = JSON.parse(addrJson || '[]') as JsonAddr[];
  const v4 = (l: JsonAddr) => (l.addr_info ?? []).filter((a) => a.family === 'inet' && a.scope !== 'host');
  const pick = (l: JsonAddr, address?: string): Underlay => {
    const a = address ?? v4(l)[0]?.local;
    if (!a) throw new Error(`interface ${l.ifname} has no IPv4 address for the overlay`);
    return { iface: l.ifname, address: a, mtu: l.mtu };
  };
  if (want.iface) {
    const l = links.find((x) => x.ifname === want.iface);
    if (!l) throw new Error(`--flannel-iface ${want.iface}: no such interface`);
    if (want.address && !v4(l).some((a) => a.local === want.address))
      throw new Error(`--flannel-iface ${want.iface} does not hold ${want.address}`);
    return pick(l, want.address);
  }
  if (want.address) {
    const l = links.find((x) => v4(x).some((a) => a.local === want.address));
    if (!l) throw new Error(`no interface holds the node IP ${want.address}`);
    return pick(l, want.address);
  }
  const l = links.find((x) => x.ifname === defaultIface) ?? links.find((x) => v4(x).length > 0);
  if (!l) throw new Error('no interface with an IPv4 address for the overlay');
  return pick(l);
}

/** Reads the host's (or a namespace's) interfaces and picks the underlay. */
export async function findUnderlay(exec: Exec, want: UnderlayChoice): Promise<Underlay> {
  const addrs = await exec('ip', ['-j', '-4', 'addr', 'show']);
  const routes = JSON.parse((await exec('ip', ['-j', '-4', 'route', 'show', 'default'])) || '[]') as {
    dev?: string;
  }[];
  return chooseUnderlay(addrs, routes[0]?.dev, want);
}
