// The node's resolver configuration: what the cluster DNS forwards other
// names to, and what the kubelet gives pods with dnsPolicy Default (and adds
// to ClusterFirst pods' search path).

import { existsSync, readFileSync } from 'node:fs';

export interface ResolvConf {
  nameservers: string[];
  searches: string[];
  options: string[];
}

/**
 * resolv.conf(5) as upstream's kubelet reads it (pkg/kubelet/network/dns
 * parseResolvConf): every `nameserver`, the last `search` (or `domain`) line
 * wins, trailing dots dropped, and every `options` word.
 */
export function parseResolvConf(text: string): ResolvConf {
  const out: ResolvConf = { nameservers: [], searches: [], options: [] };
  for (const raw of text.split('\n')) {
    const line = raw.replace(/[#;].*$/, '').trim();
    const [key, ...fields] = line.split(/\s+/);
    if (key === 'nameserver' && fields[0]) out.nameservers.push(fields[0]);
    else if (key === 'search' || key === 'domain') {
      out.searches = fields.map((s) => (s.endsWith('.') && s !== '.' ? s.slice(0, -1) : s));
    } else if (key === 'options') out.options.push(...fields);
  }
  return out;
}

const isLoopback = (ip: string) => ip.startsWith('127.') || ip === '::1';

/** systemd-resolved's list of the real upstream servers, behind its 127.0.0.53 stub. */
export const SYSTEMD_RESOLVED_CONF = '/run/systemd/resolve/resolv.conf';

/**
 * The resolv.conf for pods and for forwarding: /etc/resolv.conf, unless its
 * only name servers are loopback stubs (systemd-resolved's 127.0.0.53,
 * dnsmasq's 127.0.0.1) that a pod's network namespace cannot reach. Then
 * systemd-resolved's own upstream list, as k3s picks its --resolv-conf
 * (pkg/agent/config: "Using systemd-resolved's resolv.conf" when /etc's
 * holds only loopback). The DNS server runs on the host, so it could reach a
 * stub; it reads the same file so that pods with dnsPolicy Default and
 * ClusterFirst resolve outside names through the same servers.
 */
export function hostResolvConfPath(etc = '/etc/resolv.conf', resolved = SYSTEMD_RESOLVED_CONF): string {
  try {
    const conf = parseResolvConf(readFileSync(etc, 'utf8'));
    if (conf.nameservers.length && conf.nameservers.every(isLoopback) && existsSync(resolved)) {
      return resolved;
    }
  } catch {
    // No /etc/resolv.conf: callers get an empty configuration from readResolvConf.
  }
  return etc;
}

export function readResolvConf(path: string): ResolvConf {
  try {
    return parseResolvConf(readFileSync(path, 'utf8'));
  } catch {
    return { nameservers: [], searches: [], options: [] };
  }
}
