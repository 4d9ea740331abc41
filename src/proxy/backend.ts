// The contract between the proxier core (proxy.ts) and the kernel backends
// (nftables.ts, iptables.ts), and how backends run their commands: on the
// host, or inside a network namespace (tests and the benchmark program a
// namespace of their own, so the host's tables are untouched).

import { spawn } from 'node:child_process';
import type { ServicePort } from './model.ts';

export type ProxyMode = 'nftables' | 'iptables';

export interface ProxyBackend {
  readonly mode: ProxyMode;
  /**
   * Programs the kernel so it matches `ports` (every ServicePort the node
   * proxies, by key). With `changed`, only those keys differ from the last
   * successful sync (added, changed or removed) and the backend touches only
   * their rules; without it, everything is rewritten (the first sync, and
   * the one after a failure).
   */
  sync(ports: ReadonlyMap<string, ServicePort>, changed?: ReadonlySet<string>): Promise<void>;
  /** Removes everything this backend ever added. */
  cleanup(): Promise<void>;
}

/** Runs a command with optional stdin; resolves its stdout, rejects with its stderr. */
export type Exec = (cmd: string, args: string[], input?: string) => Promise<string>;

export class ExecError extends Error {
  readonly command: string;
  readonly code: number | null;
  readonly stderr: string;
  constructor(command: string, code: number | null, stderr: string) {
    super(`${command} exited ${code}: ${stderr.trim().slice(0, 4000)}`);
    this.command = command;
    this.code = code;
    this.stderr = stderr;
  }
}

/**
 * Runs commands on this host, or in the named network namespace. The
 * namespace is entered with `nsenter --net` rather than `ip netns exec`:
 * the latter also unshares a mount namespace and remounts /sys for every
 * command, ~5-6 ms here that an agent running nft on its node never pays,
 * and which bench/proxy then counted in every incremental sync. Nothing
 * run here reads /sys; /proc/sys/net follows the network namespace.
 */
export function hostExec(netns?: string): Exec {
  return (cmd, args, input) =>
    new Promise((resolve, reject) => {
      const [file, argv] = netns ? ['nsenter', [`--net=/run/netns/${netns}`, cmd, ...args]] : [cmd, args];
      const child = spawn(file, argv, { stdio: ['pipe', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout.on('data', (d: Buffer) => out.push(d));
      child.stderr.on('data', (d: Buffer) => err.push(d));
      child.on('error', reject);
      child.on('close', (code) => {
        const stdout = Buffer.concat(out).toString('utf8');
        if (code === 0) resolve(stdout);
        else reject(new ExecError(`${cmd} ${args.join(' ')}`, code, Buffer.concat(err).toString('utf8')));
      });
      child.stdin.on('error', () => undefined);
      child.stdin.end(input ?? '');
    });
}

/**
 * The kernel settings service proxying needs, as upstream's kube-proxy sets
 * them at start:
 * - route_localnet, so a node port answers on 127.0.0.1 (upstream iptables'
 *   localhost node ports): packets DNATed from 127.0.0.1 towards a pod may
 *   then leave loopback, and are masqueraded on their way out;
 * - bridge-nf-call-iptables, so traffic between two pods on one bridge
 *   passes netfilter: a pod reaching another through a Service gets the
 *   reply un-DNATed (kube-proxy's br_netfilter requirement);
 * - ip_forward, which routing pods' traffic needs at all.
 */
export async function applyNodeSysctls(exec: Exec): Promise<void> {
  await exec('sysctl', ['-q', '-w', 'net.ipv4.conf.all.route_localnet=1', 'net.ipv4.ip_forward=1']);
  // br_netfilter may not be loaded on a node without a bridge yet; best effort.
  await exec('sysctl', ['-q', '-w', 'net.bridge.bridge-nf-call-iptables=1']).catch(() => undefined);
}

/**
 * Routes the service CIDR to loopback once the proxy's rules are in. The
 * agent's safety route (src/network/cni.ts) makes it `unreachable` so
 * nothing for it leaves by the default route; but the node's own
 * connections look up their route before netfilter's output hook, so with
 * that route a process on the node could never reach a cluster IP (connect
 * fails with "no route to host" before any DNAT). A route to `lo` keeps
 * both promises: the output hook runs and DNATs, and whatever is not DNATed
 * stays on the node, where the rules reject it (traffic to unallocated
 * service IPs). Not `local`: that would make every service IP a local
 * address, and node ports would answer on them.
 */
export async function routeServiceCIDR(exec: Exec, serviceCIDR: string): Promise<void> {
  await exec('ip', ['route', 'replace', serviceCIDR, 'dev', 'lo']);
}

/** Removes the service CIDR's route, whichever kind (cleanup). */
export async function deleteServiceCIDRRoute(exec: Exec, serviceCIDR: string): Promise<void> {
  await exec('ip', ['route', 'del', serviceCIDR]).catch(() => undefined);
}
