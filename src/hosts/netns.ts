// The network of hosts made on one machine (src/hosts/hosts.ts): each host
// is a network namespace with one veth into a bridge of the root namespace,
// as machines plugged into one switch.
//
//   root namespace:  skiffh<id> (bridge, 198.18.<id>.1/24)
//                      ├── skh<id>-0 (veth) ──▶ netns skh<id>-0: eth0 198.18.<id>.10
//                      ├── skh<id>-1 (veth) ──▶ netns skh<id>-1: eth0 198.18.<id>.11
//                      ...
//
// 198.18.0.0/15 is the range set aside for benchmarking networks (RFC 2544):
// it lives only on this machine, never on the machine's own 192.0.2.0/24.
// Every host routes the cluster's pod and Service ranges to a local
// `unreachable` route before anything runs in it, as the agent does
// (network/cni.ts ensureSafetyRoutes), so a missing rule fails on the host
// rather than leaving by the default route; nothing here masquerades the
// host range to the outside world.
//
// Every name made here starts with skh/skiffh, and the id keeps clusters of
// hosts (a test's, a user's) apart on one machine.

import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The most clusters of hosts on one machine: one /24 of 198.18.0.0/16 each. */
export const MAX_CLUSTER_ID = 255;

export interface HostsNetwork {
  /** The bridge in the root namespace, `skiffh<id>`. */
  bridge: string;
  /** The bridge's own address (the hosts' default gateway), `198.18.<id>.1`. */
  gateway: string;
  prefixLength: number;
}

export interface HostLink {
  /** The network namespace, in /run/netns, and the root side of its veth: `skh<id>-<index>`. */
  netns: string;
  /** The host's address, `198.18.<id>.<10 + index>`. */
  address: string;
}

export function hostsNetwork(id: number): HostsNetwork {
  checkId(id);
  return { bridge: `skiffh${id}`, gateway: `198.18.${id}.1`, prefixLength: 24 };
}

/** Host `index` (0 is the server's) of cluster `id`. */
export function hostLink(id: number, index: number): HostLink {
  checkId(id);
  if (!(Number.isInteger(index) && index >= 0 && index < 200))
    throw new Error(`host index ${index}: 0 to 199`);
  return { netns: `skh${id}-${index}`, address: `198.18.${id}.${10 + index}` };
}

function checkId(id: number): void {
  if (!(Number.isInteger(id) && id >= 0 && id <= MAX_CLUSTER_ID))
    throw new Error(`hosts cluster id ${id}: 0 to ${MAX_CLUSTER_ID}`);
}

async function ip(args: string[]): Promise<string> {
  try {
    return (await run('ip', args)).stdout;
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`ip ${args.join(' ')}: ${(e.stderr || e.message).trim()}`);
  }
}

const ignoreErrors = (p: Promise<unknown>) => p.catch(() => undefined);

/** Makes the bridge (idempotent). */
export async function ensureBridge(net: HostsNetwork): Promise<void> {
  if (!(await linkExists(net.bridge))) await ip(['link', 'add', net.bridge, 'type', 'bridge']);
  await ip(['addr', 'replace', `${net.gateway}/${net.prefixLength}`, 'dev', net.bridge]);
  await ip(['link', 'set', net.bridge, 'up']);
}

export async function deleteBridge(net: HostsNetwork): Promise<void> {
  await ignoreErrors(ip(['link', 'delete', net.bridge, 'type', 'bridge']));
}

export async function linkExists(name: string): Promise<boolean> {
  return ip(['link', 'show', 'dev', name]).then(
    () => true,
    () => false,
  );
}

export interface AddHostOptions {
  /** Ranges routed `unreachable` inside the host (the cluster's pod and Service CIDRs). */
  safetyRoutes: string[];
}

/**
 * Makes a host: its namespace (loopback up, IP forwarding on, as a node's
 * kernel needs for pod traffic), the veth into the bridge, its address, a
 * default route via the bridge, and the safety routes.
 */
export async function addHost(net: HostsNetwork, host: HostLink, opts: AddHostOptions): Promise<void> {
  await ip(['netns', 'add', host.netns]);
  const inHost = (args: string[]) => ip(['-n', host.netns, ...args]);
  await ip(['link', 'add', host.netns, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', host.netns]);
  await ip(['link', 'set', host.netns, 'master', net.bridge, 'up']);
  await inHost(['link', 'set', 'lo', 'up']);
  await inHost(['addr', 'add', `${host.address}/${net.prefixLength}`, 'dev', 'eth0']);
  await inHost(['link', 'set', 'eth0', 'up']);
  await inHost(['route', 'add', 'default', 'via', net.gateway]);
  for (const cidr of opts.safetyRoutes) await inHost(['route', 'replace', 'unreachable', cidr]);
  await run('ip', ['netns', 'exec', host.netns, 'sysctl', '-q', '-w', 'net.ipv4.ip_forward=1']);
}

/** Cuts the host off the bridge, as a pulled cable: its veth goes down. */
export async function cutLink(host: HostLink): Promise<void> {
  await ip(['link', 'set', host.netns, 'down']);
}

export async function restoreLink(host: HostLink): Promise<void> {
  await ip(['link', 'set', host.netns, 'up']);
}

/** Deletes the namespace and its veth (deleting either end deletes both). Missing ones are fine. */
export async function deleteHost(host: HostLink): Promise<void> {
  await ignoreErrors(ip(['netns', 'delete', host.netns]));
  await ignoreErrors(ip(['link', 'delete', host.netns]));
}

/** The namespaces of cluster `id` that exist now (a running cluster's, or a killed run's leftovers). */
export async function listHostNamespaces(id: number): Promise<string[]> {
  checkId(id);
  const out = await ip(['netns', 'list']).catch(() => '');
  const mine = new RegExp(`^skh${id}-\\d+$`);
  return out
    .split('\n')
    .map((line) => line.split(' ')[0] ?? '')
    .filter((name) => mine.test(name));
}

/** The pids of the processes in a namespace (`ip netns pids`). */
export async function namespacePids(netns: string): Promise<number[]> {
  const out = await ip(['netns', 'pids', netns]).catch(() => '');
  return out
    .split('\n')
    .map(Number)
    .filter((pid) => Number.isInteger(pid) && pid > 0);
}
