// What the service proxy programs, computed from the API objects alone: one
// ServicePort per (Service, port), with the endpoints traffic to it may go
// to. Backends (nftables.ts, iptables.ts) turn these into kernel rules; this
// file knows nothing about either, so it is tested without a kernel.
//
// Upstream's equivalents are pkg/proxy's ServicePortName/BaseServicePortInfo
// (servicechangetracker.go) and the endpoint categorisation of
// pkg/proxy/topology.go (CategorizeEndpoints).

import { createHash } from 'node:crypto';
import type { Service } from '../api/types/core-v1.ts';
import type { EndpointSlice } from '../api/types/discovery-v1.ts';

export type Protocol = 'TCP' | 'UDP' | 'SCTP';

/** The EndpointSlice label naming the Service a slice belongs to. */
export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';
/** Services with this label are handled by another proxy (upstream skips them too). */
export const SERVICE_PROXY_NAME_LABEL = 'service.kubernetes.io/service-proxy-name';

export interface ProxyEndpoint {
  ip: string;
  port: number;
  /** On this node (endpoint.nodeName): the candidates of a Local traffic policy. */
  local: boolean;
}

export interface ServicePort {
  /** Upstream's ServicePortName: `namespace/name:portName` (portName may be empty). */
  key: string;
  /** `namespace/name`, the Service this port belongs to. */
  service: string;
  portName: string;
  protocol: Protocol;
  /** IPv4 cluster IPs (Skiff's proxy programs the IPv4 family). */
  clusterIP: string;
  port: number;
  nodePort: number | undefined;
  externalIPs: string[];
  /** status.loadBalancer.ingress[].ip: traffic to them is handled like externalIPs. */
  loadBalancerIPs: string[];
  /** sessionAffinity ClientIP: the affinity timeout in seconds; undefined for None. */
  affinitySeconds: number | undefined;
  /** externalTrafficPolicy Local (only for NodePort and LoadBalancer Services, as upstream). */
  externalPolicyLocal: boolean;
  /** internalTrafficPolicy Local. */
  internalPolicyLocal: boolean;
  /**
   * The endpoints traffic may use: the ready ones, or, when none is ready,
   * the serving-and-terminating ones (upstream's ProxyTerminatingEndpoints
   * fallback, so a rolling update's last pod keeps answering while it drains).
   */
  endpoints: ProxyEndpoint[];
}

/** Services the proxy ignores: no cluster IP to proxy, or another proxy's. */
export function isProxied(svc: Service): boolean {
  const spec = svc.spec;
  if (!spec || spec.type === 'ExternalName') return false;
  if (!spec.clusterIP || spec.clusterIP === 'None') return false;
  if (svc.metadata.labels?.[SERVICE_PROXY_NAME_LABEL] !== undefined) return false;
  return true;
}

const isIPv4 = (ip: string | undefined): ip is string => !!ip && /^\d+\.\d+\.\d+\.\d+$/.test(ip);

/**
 * The ServicePorts of one Service, given the EndpointSlices labelled with its
 * name. `nodeName` decides which endpoints are local.
 */
export function servicePortsOf(svc: Service, slices: EndpointSlice[], nodeName: string): ServicePort[] {
  if (!isProxied(svc)) return [];
  const spec = svc.spec!;
  const clusterIP = [spec.clusterIP, ...(spec.clusterIPs ?? [])].find(isIPv4);
  if (!clusterIP) return [];
  const service = `${svc.metadata.namespace}/${svc.metadata.name}`;
  const externalCapable = spec.type === 'NodePort' || spec.type === 'LoadBalancer';
  const affinitySeconds =
    spec.sessionAffinity === 'ClientIP'
      ? (spec.sessionAffinityConfig?.clientIP?.timeoutSeconds ?? 10800)
      : undefined;
  const loadBalancerIPs =
    spec.type === 'LoadBalancer'
      ? (svc.status?.loadBalancer?.ingress ?? []).map((i) => i.ip).filter(isIPv4)
      : [];
  const out: ServicePort[] = [];
  for (const p of spec.ports ?? []) {
    if (!p.port) continue;
    const protocol = (p.protocol ?? 'TCP') as Protocol;
    const portName = p.name ?? '';
    out.push({
      key: `${service}:${portName}`,
      service,
      portName,
      protocol,
      clusterIP,
      port: p.port,
      nodePort: externalCapable && p.nodePort ? p.nodePort : undefined,
      externalIPs: (spec.externalIPs ?? []).filter(isIPv4),
      loadBalancerIPs,
      affinitySeconds,
      externalPolicyLocal: externalCapable && spec.externalTrafficPolicy === 'Local',
      internalPolicyLocal: spec.internalTrafficPolicy === 'Local',
      endpoints: endpointsFor(slices, portName, protocol, nodeName),
    });
  }
  return out;
}

/**
 * The endpoints of one service port across its slices. A slice port matches
 * by name and protocol (that is how a named targetPort reaches the proxy: the
 * EndpointSlice controller resolved it per pod). An endpoint whose `ready` is
 * unset counts as ready, as the EndpointSlice API says consumers must.
 */
function endpointsFor(
  slices: EndpointSlice[],
  portName: string,
  protocol: Protocol,
  nodeName: string,
): ProxyEndpoint[] {
  const ready = new Map<string, ProxyEndpoint>();
  const terminating = new Map<string, ProxyEndpoint>();
  for (const slice of slices) {
    if (slice.addressType && slice.addressType !== 'IPv4') continue;
    const sp = (slice.ports ?? []).find(
      (p) => (p.name ?? '') === portName && (p.protocol ?? 'TCP') === protocol,
    );
    if (!sp?.port) continue;
    for (const ep of slice.endpoints ?? []) {
      const c = ep.conditions ?? {};
      const isReady = c.ready ?? true;
      const servingTerminating = !isReady && (c.serving ?? false) && (c.terminating ?? false);
      if (!isReady && !servingTerminating) continue;
      for (const ip of ep.addresses ?? []) {
        if (!isIPv4(ip)) continue;
        const e: ProxyEndpoint = { ip, port: sp.port, local: !!ep.nodeName && ep.nodeName === nodeName };
        (isReady ? ready : terminating).set(`${ip}:${sp.port}`, e);
      }
    }
  }
  const chosen = ready.size > 0 ? ready : terminating;
  // Sorted, so the same endpoints always give the same rules (and no rewrite).
  return [...chosen.values()].sort((a, b) => ipToInt(a.ip) - ipToInt(b.ip) || a.port - b.port);
}

/** The endpoints traffic from inside the cluster (cluster IP) may use. */
export function internalEndpoints(sp: ServicePort): ProxyEndpoint[] {
  return sp.internalPolicyLocal ? sp.endpoints.filter((e) => e.local) : sp.endpoints;
}

/** The endpoints external traffic (node ports, external and load balancer IPs) may use. */
export function externalEndpoints(sp: ServicePort): ProxyEndpoint[] {
  return sp.externalPolicyLocal ? sp.endpoints.filter((e) => e.local) : sp.endpoints;
}

/** Does the port take traffic from outside (a node port, external IPs, load balancer IPs)? */
export function hasExternal(sp: ServicePort): boolean {
  return sp.nodePort !== undefined || sp.externalIPs.length > 0 || sp.loadBalancerIPs.length > 0;
}

/** Same rules? Backends compare ports with this to skip what did not change. */
export function samePort(a: ServicePort | undefined, b: ServicePort | undefined): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

export function ipToInt(ip: string): number {
  return ip.split('.').reduce((n, o) => n * 256 + Number(o), 0);
}

/** Is the IPv4 address inside the CIDR? */
export function ipInCIDR(ip: string, cidr: string): boolean {
  const [base, bits] = cidr.split('/');
  const size = 2 ** (32 - Number(bits));
  const start = ipToInt(base!) - (ipToInt(base!) % size);
  const n = ipToInt(ip);
  return n >= start && n < start + size;
}

/**
 * A short stable hash of a name, for chain names (upstream's
 * servicePortChainName hashes the ServicePortName and protocol the same way,
 * so names stay stable across restarts and differ between services).
 */
export function shortHash(s: string, length = 16): string {
  const digest = createHash('sha256').update(s).digest();
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let out = '';
  let bits = 0;
  let value = 0;
  for (const byte of digest) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5 && out.length < length) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    if (out.length >= length) break;
  }
  return out;
}

/** The configuration every backend shares. */
export interface ProxyConfig {
  /** The cluster's pod range: traffic from outside it to a cluster IP is masqueraded (upstream's --cluster-cidr). */
  clusterCIDR: string;
  /** The Service range: traffic to an address in it that no Service holds is rejected. */
  serviceCIDR: string;
}
