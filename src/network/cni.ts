// The pod network on one node, as CNI sees it: the network config the
// container runtime loads, and the routes that keep cluster traffic from ever
// leaving the node by its default route.
//
// The config is the classic one of kubenet and of k3s's flannel backend
// minus flannel: a Linux bridge with the node's podCIDR (host-local IPAM
// hands out addresses from it, the bridge holds the gateway), plus portmap
// for hostPort. containerd's CRI plugin adds the pod's loopback itself (it
// runs the `loopback` plugin from the same bin dir).
// https://www.cni.dev/plugins/current/main/bridge/
// https://www.cni.dev/plugins/current/ipam/host-local/
// https://www.cni.dev/plugins/current/meta/portmap/

import { execFile } from 'node:child_process';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The CNI spec version of the config; Debian 12's plugins (1.1) and containerd 1.6 both speak it. */
export const CNI_VERSION = '1.0.0';

export interface PodNetworkOptions {
  /** The node's spec.podCIDR, e.g. 10.42.0.0/24. */
  podCIDR: string;
  /** The bridge's name (at most 15 characters); one per node. */
  bridge?: string;
  /** The network's name, which containerd records per sandbox. */
  name?: string;
  /** host-local's allocation state; under the node's data dir so nodes sharing a machine do not collide. */
  ipamDataDir: string;
  /** The pods' MTU (the bridge plugin sets it on the bridge and both ends of each veth): the overlay's. */
  mtu?: number;
}

/** The network configuration list (a .conflist) for the node's pods. */
export function podNetworkConfig(opts: PodNetworkOptions): Record<string, unknown> {
  return {
    cniVersion: CNI_VERSION,
    name: opts.name ?? 'skiff',
    plugins: [
      {
        type: 'bridge',
        bridge: opts.bridge ?? 'skiff0',
        ...(opts.mtu ? { mtu: opts.mtu } : {}),
        // The bridge holds the podCIDR's gateway address, so the node reaches
        // its own pods directly and the podCIDR route lands on the bridge.
        isGateway: true,
        // No masquerading here: pod-to-pod traffic across nodes keeps pod
        // source IPs, as the Kubernetes network model requires. Egress NAT to
        // outside the cluster belongs to the node's network setup, which
        // knows the cluster CIDR to exclude.
        ipMasq: false,
        // A pod reaching itself through a Service IP comes back in on its own
        // veth (kubelet's hairpin-veth mode).
        hairpinMode: true,
        ipam: {
          type: 'host-local',
          ranges: [[{ subnet: opts.podCIDR }]],
          routes: [{ dst: '0.0.0.0/0' }],
          dataDir: opts.ipamDataDir,
        },
      },
      { type: 'portmap', capabilities: { portMappings: true } },
    ],
  };
}

/** The file name containerd picks: the first config in lexical order wins (max_conf_num = 1). */
export const CNI_CONFIG_FILE = '10-skiff.conflist';

/** Writes the pod network config into `confDir`, removing any other config there so ours is the one loaded. */
export async function writePodNetworkConfig(confDir: string, opts: PodNetworkOptions): Promise<string> {
  await mkdir(confDir, { recursive: true });
  await mkdir(opts.ipamDataDir, { recursive: true });
  for (const f of await readdir(confDir)) {
    if (f !== CNI_CONFIG_FILE && /\.(conf|conflist|json)$/.test(f))
      await rm(join(confDir, f), { force: true });
  }
  const file = join(confDir, CNI_CONFIG_FILE);
  await writeFile(`${file}.tmp`, `${JSON.stringify(podNetworkConfig(opts), null, 2)}\n`);
  // Renamed into place: containerd watches the dir and must never read half a file.
  const { rename } = await import('node:fs/promises');
  await rename(`${file}.tmp`, file);
  return file;
}

/**
 * The safety routes: the whole cluster CIDR and service CIDR routed to
 * nowhere (`unreachable`), on every node. The more specific routes win where
 * they exist (this node's podCIDR on its bridge, other nodes' podCIDRs over
 * the overlay, service IPs DNATed by the proxy before routing), so all that
 * these catch is traffic for an address nothing serves. It then fails on the
 * node with "no route to host" instead of going out of the default route
 * onto the machine's LAN. Upstream's nftables proxy rejects traffic to
 * unallocated service IPs for the same reason.
 */
export async function ensureSafetyRoutes(cidrs: string[]): Promise<void> {
  for (const cidr of cidrs) {
    // `replace` is add-or-update, so this is idempotent across agent restarts.
    await run('ip', ['route', 'replace', 'unreachable', cidr]).catch((err: Error & { stderr?: string }) => {
      throw new Error(`adding the safety route for ${cidr}: ${(err.stderr || err.message).trim()}`);
    });
  }
}

/** How the node would route `ip` right now: `ip route get`'s first line, e.g. "10.42.0.5 dev skiff0 src 10.42.0.1". */
export async function routeTo(ip: string): Promise<string> {
  const { stdout } = await run('ip', ['route', 'get', ip]).catch((err: Error & { stderr?: string }) => ({
    stdout: (err.stderr || err.message).trim(),
  }));
  return stdout.split('\n')[0]!.trim();
}

/** Deletes the pod bridge (when a node is torn down, or after a test); a missing bridge is fine. */
export async function deleteBridge(bridge: string): Promise<void> {
  await run('ip', ['link', 'delete', bridge, 'type', 'bridge']).catch(() => undefined);
}
