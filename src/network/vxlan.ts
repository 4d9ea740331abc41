// The VXLAN backend (the default), as flannel's vxlan backend programs the
// kernel (flannel pkg/backend/vxlan, "directRouting" off):
//
//   - one VTEP per node, `skiff.1` (VNI 1, UDP 8472, nolearning: the
//     agent, not flooding, tells the kernel where every MAC lives), its MTU
//     the underlay's less 50, its address the .0 of the node's podCIDR;
//   - per peer, three entries:
//       route  <peer podCIDR> via <peer .0> dev skiff.1 onlink
//       neigh  <peer .0> lladdr <peer VtepMAC> dev skiff.1 (permanent)
//       fdb    <peer VtepMAC> dev skiff.1 dst <peer public IP> (permanent)
//     so a packet for a remote pod is routed to the peer's VTEP address,
//     whose MAC the neighbour entry gives without ARP, and whose underlay
//     address the FDB entry gives without multicast.
//
// The VTEP's MAC is derived from the node's name (a locally administered
// address), so an agent restart, or a VTEP recreated after a crash, keeps
// the MAC its peers already hold: no window where they send to a stale one.

import { createHash } from 'node:crypto';
import type { Exec } from '../proxy/backend.ts';
import { batch, diffEntries, type Entries, readRoutes, routeLine } from './entries.ts';
import {
  cidrAddress,
  type LocalNode,
  type OverlayBackend,
  type OverlayPeer,
  VXLAN_OVERHEAD,
  VXLAN_PORT,
  VXLAN_VNI,
} from './overlay.ts';
import { findUnderlay, type Underlay } from './underlay.ts';

export const VTEP_DEVICE = 'skiff.1';

export interface VxlanOptions {
  /** Runs ip/bridge on the node (or in a test's namespace). */
  exec: Exec;
  /** --flannel-iface: the underlay interface (default: the one holding the public IP). */
  iface?: string;
  device?: string;
}

/** A stable, locally administered unicast MAC for a node's VTEP. */
export function vtepMAC(nodeName: string): string {
  const h = createHash('sha256').update(`skiff-vtep/${nodeName}`).digest();
  return ['0a', ...[...h.subarray(0, 5)].map((b) => b.toString(16).padStart(2, '0'))].join(':');
}

/** The kernel entries that reach these peers through `device` (pure). */
export function vxlanEntries(peers: OverlayPeer[], device: string): Entries {
  const e: Entries = new Map();
  for (const p of peers) {
    if (!p.vtepMAC) continue;
    const vtep = cidrAddress(p.podCIDR, 0);
    e.set(`route ${p.podCIDR}`, `via ${vtep} dev ${device}`);
    e.set(`neigh ${vtep}`, p.vtepMAC);
    e.set(`fdb ${p.vtepMAC}`, p.publicIP);
  }
  return e;
}

/** The `ip -batch` and `bridge -batch` lines that turn `actual` into `desired` (pure). */
export function vxlanCommands(
  actual: Entries,
  desired: Entries,
  device: string,
): { ip: string[]; bridge: string[] } {
  const { upsert, remove } = diffEntries(actual, desired);
  const kind = (k: string) => k.slice(0, k.indexOf(' '));
  const arg = (k: string) => k.slice(k.indexOf(' ') + 1);
  const ip: string[] = [];
  const bridge: string[] = [];
  // Removals first (a peer whose podCIDR moved frees it before another takes it).
  for (const k of remove) {
    const v = actual.get(k)!;
    if (kind(k) === 'route') ip.push(routeLine('del', k, v));
    else if (kind(k) === 'neigh') ip.push(`neigh del ${arg(k)} dev ${device}`);
    else bridge.push(`fdb del ${arg(k)} dev ${device} dst ${v} self`);
  }
  for (const k of upsert) {
    const v = desired.get(k)!;
    if (kind(k) === 'route') ip.push(routeLine('replace', k, v, true));
    else if (kind(k) === 'neigh') ip.push(`neigh replace ${arg(k)} lladdr ${v} dev ${device} nud permanent`);
    // On a VXLAN device, `fdb replace` changes the MAC's (single) remote.
    else bridge.push(`fdb replace ${arg(k)} dev ${device} dst ${v} self permanent`);
  }
  return { ip, bridge };
}

interface JsonLink {
  address?: string;
  mtu?: number;
  linkinfo?: {
    info_kind?: string;
    info_data?: { id?: number; local?: string; port?: number; learning?: boolean };
  };
}

export function vxlanBackend(opts: VxlanOptions): OverlayBackend {
  const exec = opts.exec;
  const device = opts.device ?? VTEP_DEVICE;
  let underlay: Underlay | undefined;
  let actual: Entries | undefined;
  let peers: OverlayPeer[] = [];

  /** What the kernel holds on our device: routes (ours), permanent neighbours, FDB entries. */
  const readActual = async (): Promise<Entries> => {
    const e: Entries = new Map();
    for (const [k, v] of await readRoutes(exec)) if (v.endsWith(`dev ${device}`)) e.set(k, v);
    const neigh = JSON.parse((await exec('ip', ['-j', '-4', 'neigh', 'show', 'dev', device])) || '[]') as {
      dst: string;
      lladdr?: string;
      state?: string[];
    }[];
    for (const n of neigh) if (n.lladdr && n.state?.includes('PERMANENT')) e.set(`neigh ${n.dst}`, n.lladdr);
    const fdb = JSON.parse((await exec('bridge', ['-j', 'fdb', 'show', 'dev', device])) || '[]') as {
      mac: string;
      dst?: string;
    }[];
    for (const f of fdb) if (f.dst && f.mac !== '00:00:00:00:00:00') e.set(`fdb ${f.mac}`, f.dst);
    return e;
  };

  const apply = async (desired: Entries) => {
    actual ??= await readActual();
    const { ip, bridge } = vxlanCommands(actual, desired, device);
    try {
      // FDB before routes on the way in, routes before FDB on the way out
      // would be tidier; both orders only ever black-hole a podCIDR that is
      // being added or removed anyway, so one order keeps it simple.
      await batch(exec, 'bridge', bridge);
      await batch(exec, 'ip', ip);
      actual = desired;
    } catch (err) {
      actual = undefined; // read the kernel again next time
      throw err;
    }
  };

  const ensureDevice = async (node: LocalNode, u: Underlay) => {
    const mac = vtepMAC(node.name);
    const mtu = u.mtu - VXLAN_OVERHEAD;
    const existing = await exec('ip', ['-j', '-d', 'link', 'show', device]).then(
      (out) => (JSON.parse(out) as JsonLink[])[0],
      () => undefined,
    );
    const d = existing?.linkinfo?.info_data;
    const same =
      existing?.linkinfo?.info_kind === 'vxlan' &&
      d?.id === VXLAN_VNI &&
      d.local === u.address &&
      d.port === VXLAN_PORT &&
      d.learning === false;
    if (existing && !same) {
      await exec('ip', ['link', 'delete', device]);
      actual = undefined;
    }
    if (!same) {
      await exec('ip', [
        ...['link', 'add', device, 'type', 'vxlan', 'id', String(VXLAN_VNI), 'local', u.address],
        ...['dev', u.iface, 'dstport', String(VXLAN_PORT), 'nolearning'],
      ]);
    }
    await exec('ip', ['link', 'set', device, 'address', mac, 'mtu', String(mtu), 'up']);
    const address = `${cidrAddress(node.podCIDR, 0)}/32`;
    const addrs = JSON.parse(await exec('ip', ['-j', '-4', 'addr', 'show', 'dev', device])) as {
      addr_info?: { local: string; prefixlen: number }[];
    }[];
    const have = (addrs[0]?.addr_info ?? []).map((a) => `${a.local}/${a.prefixlen}`);
    for (const a of have) if (a !== address) await exec('ip', ['addr', 'del', a, 'dev', device]);
    if (!have.includes(address)) await exec('ip', ['addr', 'add', address, 'dev', device]);
    return mac;
  };

  return {
    type: 'vxlan',
    async ensureLocal(node) {
      underlay = await findUnderlay(exec, {
        address: node.publicIP,
        ...(opts.iface ? { iface: opts.iface } : {}),
      });
      const mac = await ensureDevice(node, underlay);
      return { VNI: VXLAN_VNI, VtepMAC: mac };
    },
    async syncPeers(next) {
      await apply(vxlanEntries(next, device));
      peers = next;
    },
    async remove(name) {
      const next = peers.filter((p) => p.name !== name);
      await apply(vxlanEntries(next, device));
      peers = next;
    },
    mtu() {
      if (!underlay) throw new Error('vxlan: ensureLocal first');
      return underlay.mtu - VXLAN_OVERHEAD;
    },
    probeAddress: (peer) => cidrAddress(peer.podCIDR, 0),
    async close() {
      // The device takes its routes, neighbours and FDB entries with it.
      await exec('ip', ['link', 'delete', device]).catch(() => undefined);
      actual = undefined;
      peers = [];
    },
  };
}
