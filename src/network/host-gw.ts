// The host-gw backend, as flannel's (pkg/backend/hostgw): no encapsulation,
// one plain route per peer, `<peer podCIDR> via <peer public IP>`. It works
// only when every node reaches every other directly on one L2 segment (the
// kernel refuses a gateway that is not on a connected subnet), and then it
// costs nothing: packets leave as they are, at the underlay's full MTU.

import type { Exec } from '../proxy/backend.ts';
import { batch, diffEntries, type Entries, readRoutes, routeLine } from './entries.ts';
import { cidrAddress, type OverlayBackend, type OverlayPeer } from './overlay.ts';
import { findUnderlay, type Underlay } from './underlay.ts';

export interface HostGwOptions {
  exec: Exec;
  /** --flannel-iface: the interface the peers are on (default: the one holding the public IP). */
  iface?: string;
}

/** The routes that reach these peers over `iface` (pure). */
export function hostGwEntries(peers: OverlayPeer[], iface: string): Entries {
  return new Map(peers.map((p) => [`route ${p.podCIDR}`, `via ${p.publicIP} dev ${iface}`]));
}

/** The `ip -batch` lines that turn `actual` into `desired` (pure). */
export function hostGwCommands(actual: Entries, desired: Entries): string[] {
  const { upsert, remove } = diffEntries(actual, desired);
  return [
    ...remove.map((k) => routeLine('del', k, actual.get(k)!)),
    ...upsert.map((k) => routeLine('replace', k, desired.get(k)!)),
  ];
}

export function hostGwBackend(opts: HostGwOptions): OverlayBackend {
  const exec = opts.exec;
  let underlay: Underlay | undefined;
  let actual: Entries | undefined;
  let peers: OverlayPeer[] = [];

  const apply = async (desired: Entries) => {
    actual ??= await readRoutes(exec);
    try {
      await batch(exec, 'ip', hostGwCommands(actual, desired));
      actual = desired;
    } catch (err) {
      actual = undefined;
      throw err;
    }
  };
  const iface = () => {
    if (!underlay) throw new Error('host-gw: ensureLocal first');
    return underlay.iface;
  };

  return {
    type: 'host-gw',
    async ensureLocal(node) {
      underlay = await findUnderlay(exec, {
        address: node.publicIP,
        ...(opts.iface ? { iface: opts.iface } : {}),
      });
      return null;
    },
    async syncPeers(next) {
      await apply(hostGwEntries(next, iface()));
      peers = next;
    },
    async remove(name) {
      const next = peers.filter((p) => p.name !== name);
      await apply(hostGwEntries(next, iface()));
      peers = next;
    },
    mtu() {
      if (!underlay) throw new Error('host-gw: ensureLocal first');
      return underlay.mtu;
    },
    // The peer's pod gateway (its bridge's .1): reached only by the podCIDR route.
    probeAddress: (peer) => cidrAddress(peer.podCIDR, 1),
    async close() {
      actual ??= await readRoutes(exec).catch(() => new Map());
      await batch(exec, 'ip', hostGwCommands(actual, new Map())).catch(() => undefined);
      actual = undefined;
      peers = [];
    },
  };
}
