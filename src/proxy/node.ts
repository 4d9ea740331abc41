// The service proxy as a node agent runs it (src/agent/agent.ts), and
// `skiff agent --cleanup`, which removes everything a Skiff node added to
// the machine's network: the proxy's nftables table or iptables chains, the
// routes, the pod bridges, the CNI config and IPAM state, the cluster DNS
// address.

import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Clientset } from '../client/clientset.ts';
import { cleanupDNSAddress, clusterDNSIP } from '../dns/node.ts';
import { cleanupNetworkPolicy } from '../network/policy-controller.ts';
import { ensurePackages, type NodePackage } from '../node/packages.ts';
import { containerdPaths } from '../node/paths.ts';
import type { Log } from '../util/log.ts';
import { hostExec, type ProxyMode } from './backend.ts';
import { iptablesBackend } from './iptables.ts';
import { ipInCIDR } from './model.ts';
import { nftablesBackend, tableForServiceCIDR } from './nftables.ts';
import { createProxy, type ProxyMetrics, type ServiceProxy } from './proxy.ts';

export const PROXY_PACKAGES: Record<ProxyMode, NodePackage> = {
  nftables: { name: 'nftables', provides: ['/usr/sbin/nft'], why: 'the service proxy (nftables mode)' },
  iptables: {
    name: 'iptables',
    provides: ['/usr/sbin/iptables-restore'],
    why: 'the service proxy (iptables mode) and hostPorts',
  },
};

export interface NodeProxyOptions {
  clients: Clientset;
  nodeName: string;
  clusterCIDR: string;
  serviceCIDR: string;
  /** nftables (default); iptables for hosts without nft. */
  mode?: ProxyMode;
  log?: Log;
  /** The sync metrics (metrics/proxy.ts). */
  metrics?: ProxyMetrics;
}

/**
 * Starts the proxy on this host. nftables, the default, falls back to
 * iptables when nft is missing and cannot be installed (upstream's
 * kube-proxy leaves the choice to --proxy-mode; a node that cannot run its
 * default had better proxy some way than none).
 */
export async function startNodeProxy(opts: NodeProxyOptions): Promise<ServiceProxy> {
  let mode = opts.mode ?? 'nftables';
  const packageLog = opts.log ? { log: opts.log } : {};
  try {
    await ensurePackages({ packages: [PROXY_PACKAGES[mode]], ...packageLog });
  } catch (err) {
    if (mode !== 'nftables') throw err;
    opts.log?.warn('nft is not available, using iptables', { error: String(err) });
    mode = 'iptables';
    await ensurePackages({ packages: [PROXY_PACKAGES.iptables], ...packageLog });
  }
  const config = { clusterCIDR: opts.clusterCIDR, serviceCIDR: opts.serviceCIDR };
  const backend =
    mode === 'nftables'
      ? nftablesBackend({
          ...config,
          table: tableForServiceCIDR(opts.serviceCIDR),
          warn: (message, fields) => opts.log?.warn(message, fields),
        })
      : iptablesBackend(config);
  const proxy = createProxy({
    clients: opts.clients,
    backend,
    nodeName: opts.nodeName,
    ...(opts.log ? { log: opts.log } : {}),
    ...(opts.metrics ? { metrics: opts.metrics } : {}),
  });
  // A first sync that fails is retried by the proxy itself; the node runs on.
  await proxy.start().then(
    () => opts.log?.('service proxy started', { mode, ...config }),
    (err: Error) =>
      opts.log?.error('the service proxy could not program the kernel yet', { mode, error: err.message }),
  );
  return proxy;
}

export interface CleanupOptions {
  dataDir: string;
  clusterCIDR: string;
  serviceCIDR: string;
  log?: Log;
}

/**
 * Removes Skiff's network state from this machine; what is already gone is
 * skipped, so it can run any number of times. Containers are not stopped:
 * stop the agent (and its pods) first.
 */
export async function cleanupNode(opts: CleanupOptions): Promise<void> {
  const exec = hostExec();
  const quiet = (p: Promise<unknown>) => p.catch(() => undefined);
  const config = { clusterCIDR: opts.clusterCIDR, serviceCIDR: opts.serviceCIDR };
  // nftables: this cluster's table (one per service CIDR; another cluster
  // on this machine keeps its own).
  if (existsSync('/usr/sbin/nft')) {
    const table = tableForServiceCIDR(opts.serviceCIDR);
    const tables = await exec('nft', ['list', 'tables']).catch(() => '');
    if (tables.split('\n').some((l) => l.trim() === `table ip ${table}`)) {
      await exec('nft', ['delete', 'table', 'ip', table]);
      opts.log?.('removed nftables table', { table });
    }
  }
  // The pod network across nodes: VTEP, overlay routes, masquerade table.
  await (await import('../network/node.ts')).cleanupNodeNetwork(opts.clusterCIDR, exec, opts.log);
  // A left-over ingress HAProxy of this data dir (src/ingress/node.ts).
  await quiet((await import('../ingress/node.ts')).cleanupNodeIngress(opts.dataDir));
  // NetworkPolicy's table (src/network/policy-nft.ts), one per cluster CIDR.
  if (existsSync('/usr/sbin/nft')) await quiet(cleanupNetworkPolicy(opts.clusterCIDR));
  // iptables: the chains and the jumps into them.
  if (existsSync('/usr/sbin/iptables-restore')) await iptablesBackend(config).cleanup();
  // Routes: the safety route of the cluster CIDR and the proxy's service CIDR route.
  await quiet(exec('ip', ['route', 'del', opts.clusterCIDR]));
  await quiet(exec('ip', ['route', 'del', opts.serviceCIDR]));
  // Pod bridges: one per podCIDR, skiff<network in hex> (src/agent/runtime.ts),
  // only those of this cluster's range; and the cluster DNS address.
  const links = await exec('ip', ['-o', 'link', 'show', 'type', 'bridge']).catch(() => '');
  for (const m of links.matchAll(/^\d+: (skiff([0-9a-f]{8}))[:@]/gm)) {
    const network = m[2]!
      .match(/../g)!
      .map((h) => Number.parseInt(h, 16))
      .join('.');
    if (!ipInCIDR(network, opts.clusterCIDR)) continue;
    await quiet(exec('ip', ['link', 'delete', m[1]!]));
    opts.log?.('removed pod bridge', { bridge: m[1] });
  }
  // Before one bridge per podCIDR, every cluster used `skiff0`; one left
  // behind keeps a route for its range and shadows the new bridge. Removed
  // when nothing is attached to it any more.
  if (/^\d+: skiff0[:@]/m.test(links)) {
    const members = await exec('ip', ['-o', 'link', 'show', 'master', 'skiff0']).catch(() => '');
    if (!members.trim()) {
      await quiet(exec('ip', ['link', 'delete', 'skiff0']));
      opts.log?.('removed the legacy pod bridge', { bridge: 'skiff0' });
    }
  }
  await cleanupDNSAddress(clusterDNSIP(opts.serviceCIDR));
  // CNI: the network config and host-local's IP allocations.
  await rm(containerdPaths(opts.dataDir).cniConfDir, { recursive: true, force: true });
  await rm(join(opts.dataDir, 'agent', 'cni'), { recursive: true, force: true });
  opts.log?.('cleaned up the node network', { dataDir: opts.dataDir, ...config });
}
