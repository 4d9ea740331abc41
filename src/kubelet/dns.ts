// A pod's resolv.conf, as upstream's kubelet makes it
// (pkg/kubelet/network/dns/dns.go, GetPodDNS), handed to the runtime in the
// sandbox config (CRI DNSConfig):
//
//   ClusterFirst (the default)   nameserver: the cluster DNS (--cluster-dns);
//                                search: <ns>.svc.<domain> svc.<domain> <domain>
//                                and the node's own search domains; options ndots:5.
//                                A hostNetwork pod falls back to Default.
//   ClusterFirstWithHostNet      ClusterFirst, hostNetwork or not.
//   Default                      the node's resolv.conf (--resolv-conf).
//   None                         nothing but the pod's spec.dnsConfig.
//
// spec.dnsConfig is then merged in: its name servers and searches appended
// (duplicates dropped), its options replacing same-named ones. The result is
// cut to resolver limits (3 name servers, 32 search domains of 2048
// characters in all), with a DNSConfigForming warning event as upstream.
// https://kubernetes.io/docs/concepts/services-networking/dns-pod-service/#pod-s-dns-policy

import type { Pod } from '../api/types/core-v1.ts';
import { type ResolvConf, readResolvConf } from '../dns/resolv-conf.ts';
import type { DNSConfig } from './runtime/runtime.ts';

const MAX_NAMESERVERS = 3;
const MAX_SEARCH_PATHS = 32;
const MAX_SEARCH_CHARS = 2048;
const DEFAULT_OPTIONS = ['ndots:5'];

export interface PodDNSOptions {
  /** --cluster-dns: the cluster DNS addresses (empty: ClusterFirst falls back to Default, with an event). */
  clusterDNS: string[];
  /** --cluster-domain (e.g. cluster.local). */
  clusterDomain: string;
  /** The node's resolver configuration (--resolv-conf, read at each call so edits are seen). */
  hostResolvConf: () => ResolvConf;
  /** A warning event on the pod (reason, message). */
  warn?: (pod: Pod, reason: string, message: string) => void;
}

const unique = (xs: string[]) => [...new Set(xs)];

export function podDNSConfigurer(opts: PodDNSOptions): (pod: Pod) => DNSConfig {
  return (pod) => {
    const host = opts.hostResolvConf();
    const spec = pod.spec ?? {};
    const policy = spec.dnsPolicy || 'ClusterFirst';
    let config: DNSConfig;
    const useCluster =
      policy === 'ClusterFirstWithHostNet' || (policy === 'ClusterFirst' && !spec.hostNetwork);
    if (policy === 'None') config = { servers: [], searches: [], options: [] };
    else if (useCluster && opts.clusterDNS.length) {
      const ns = pod.metadata.namespace ?? 'default';
      const d = opts.clusterDomain;
      config = {
        servers: [...opts.clusterDNS],
        searches: unique([`${ns}.svc.${d}`, `svc.${d}`, d, ...host.searches]),
        options: [...DEFAULT_OPTIONS],
      };
    } else {
      if (useCluster) {
        opts.warn?.(
          pod,
          'MissingClusterDNS',
          'kubelet does not have ClusterDNS IP configured and cannot create Pod using "ClusterFirst" policy. Falling back to "Default" policy.',
        );
      }
      config = { servers: [...host.nameservers], searches: [...host.searches], options: [...host.options] };
    }
    const extra = spec.dnsConfig;
    if (extra) {
      config.servers = unique([...config.servers, ...(extra.nameservers ?? [])]);
      config.searches = unique([...config.searches, ...(extra.searches ?? [])]);
      config.options = mergeOptions(
        config.options,
        (extra.options ?? []).map((o) => (o.value !== undefined ? `${o.name}:${o.value}` : (o.name ?? ''))),
      );
    }
    return fitLimits(config, (msg) => opts.warn?.(pod, 'DNSConfigForming', msg));
  };
}

/** Options by name (before the colon): later ones replace earlier ones, in first-seen order. */
function mergeOptions(base: string[], overrides: string[]): string[] {
  const byName = new Map<string, string>();
  for (const o of [...base, ...overrides]) if (o) byName.set(o.split(':')[0]!, o);
  return [...byName.values()];
}

function fitLimits(config: DNSConfig, warn: (msg: string) => void): DNSConfig {
  if (config.servers.length > MAX_NAMESERVERS) {
    config.servers = config.servers.slice(0, MAX_NAMESERVERS);
    warn(
      `Nameserver limits were exceeded, some nameservers have been omitted, the applied nameserver line is: ${config.servers.join(' ')}`,
    );
  }
  let searches = config.searches.slice(0, MAX_SEARCH_PATHS);
  while (searches.join(' ').length > MAX_SEARCH_CHARS) searches = searches.slice(0, -1);
  if (searches.length !== config.searches.length) {
    config.searches = searches;
    warn(
      `Search Line limits were exceeded, some search paths have been omitted, the applied search line is: ${searches.join(' ')}`,
    );
  }
  return config;
}

/**
 * The host's resolv.conf at `path`, read again once `maxAgeMs` has passed
 * (edits are seen within that), not on every pod: a sync read per pod was
 * blocking the event loop for each of a node's pods.
 */
export function hostResolvConfReader(
  path: string,
  maxAgeMs = 1000,
  now: () => number = Date.now,
): () => ResolvConf {
  let cached: { at: number; conf: ResolvConf } | undefined;
  return () => {
    const t = now();
    if (!cached || t - cached.at >= maxAgeMs) cached = { at: t, conf: readResolvConf(path) };
    return cached.conf;
  };
}
