// The machine's own address for others to reach it at, as upstream's
// utilnet.ChooseHostInterface: the IPv4 address of the interface that holds
// the default route (/proc/net/route), else the first global IPv4 address
// of any interface. Addresses on lo (the cluster DNS address a node agent
// puts there, say) are never chosen.

import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';

const globalIPv4 = (iface: string | undefined) =>
  (iface ? (networkInterfaces()[iface] ?? []) : []).find(
    (a) => a.family === 'IPv4' && !a.internal && !a.address.startsWith('169.254.'),
  )?.address;

/** The default route's interface, from the kernel's routing table; undefined without one. */
export function defaultRouteInterface(routes = '/proc/net/route'): string | undefined {
  let text: string;
  try {
    text = readFileSync(routes, 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n').slice(1)) {
    const [iface, destination, , , , , , mask] = line.trim().split(/\s+/);
    if (destination === '00000000' && mask === '00000000' && iface && iface !== '*') return iface;
  }
  return undefined;
}

export function hostAddress(): string | undefined {
  const viaDefault = globalIPv4(defaultRouteInterface());
  if (viaDefault) return viaDefault;
  for (const [name, addrs] of Object.entries(networkInterfaces())) {
    if (name === 'lo') continue;
    const a = (addrs ?? []).find(
      (x) => x.family === 'IPv4' && !x.internal && !x.address.startsWith('169.254.'),
    );
    if (a) return a.address;
  }
  return undefined;
}
