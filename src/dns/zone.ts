// The cluster's DNS zone: the records of Kubernetes' DNS-based service
// discovery specification, computed from Services, EndpointSlices and
// Namespaces, as CoreDNS's kubernetes plugin serves them.
// https://github.com/kubernetes/dns/blob/master/docs/specification.md
// https://github.com/coredns/coredns/tree/master/plugin/kubernetes
//
//   <service>.<ns>.svc.<zone>                A/AAAA: the ClusterIPs; for a headless
//                                            service, each ready endpoint's address;
//                                            CNAME for an ExternalName service
//   <hostname>.<service>.<ns>.svc.<zone>     A/AAAA of that endpoint (its hostname, or
//                                            its address with dashes, as CoreDNS)
//   _<port>._<proto>.<service>.<ns>.svc.<zone>  SRV per named port (headless:
//                                            per ready endpoint and named port)
//   <a>-<b>-<c>-<d>.<ns>.pod.<zone>          A <a>.<b>.<c>.<d> (CoreDNS `pods insecure`)
//   <reversed ip>.in-addr.arpa / ip6.arpa    PTR for ClusterIPs and ready endpoints
//   dns-version.<zone>                       TXT: the schema version
//
// Negative answers are as CoreDNS's: a name that exists with no record of
// the asked type is NOERROR with an empty answer (NODATA); a name that does
// not exist is NXDOMAIN; both carry the zone's SOA in the authority section
// (RFC 2308), whose minimum is the records' TTL. A headless service with no
// ready endpoint is NXDOMAIN, as the specification says. Reverse names of
// addresses the cluster does not know are not ours: they go upstream, as
// CoreDNS's `fallthrough in-addr.arpa ip6.arpa`.
//
// Comparisons are case-insensitive (the specification's §2.1); answers echo
// the question's own spelling of the name.

import type { Namespace, Service } from '../api/types/core-v1.ts';
import type { Endpoint, EndpointSlice } from '../api/types/discovery-v1.ts';
import { canonicalName, parseIPv6, type Question, RCODE, type ResourceRecord, TYPE } from './message.ts';

/** The schema version of the specification served (its §1). */
export const DNS_SCHEMA_VERSION = '1.1.0';

/** Reads of the cluster's state: informer caches in the node agent. */
export interface ClusterState {
  service(namespace: string, name: string): Service | undefined;
  /** The EndpointSlices of a service (label kubernetes.io/service-name). */
  endpointSlices(namespace: string, service: string): EndpointSlice[];
  namespace(name: string): Namespace | undefined;
  services(): Service[];
  allEndpointSlices(): EndpointSlice[];
}

export interface ZoneOptions {
  /** The cluster domain (kubelet --cluster-domain), default cluster.local. */
  clusterDomain?: string;
  /** The records' TTL in seconds (CoreDNS's kubernetes plugin: 5). */
  ttl?: number;
  /** The cluster DNS address, answered for ns.dns.<zone> (the SOA's and NS's name server). */
  dnsIP?: string;
  /** Wall-clock ms, for the SOA serial. */
  now?: () => number;
}

export interface ZoneAnswer {
  rcode: number;
  answers: ResourceRecord[];
  authority: ResourceRecord[];
  additional: ResourceRecord[];
}

export interface ClusterZone {
  readonly domain: string;
  /** The answer for a question, or undefined when the name is not the cluster's (forward it). */
  lookup(q: Question): ZoneAnswer | undefined;
  /** Called on every change to the state: the SOA serial moves, the reverse index is rebuilt. */
  changed(): void;
  /** Bumped by changed(): answers cached under an older generation are stale. */
  readonly generation: number;
}

export function createClusterZone(state: ClusterState, opts: ZoneOptions = {}): ClusterZone {
  const domain = canonicalName(opts.clusterDomain ?? 'cluster.local');
  const ttl = opts.ttl ?? 5;
  const now = opts.now ?? Date.now;
  const nsName = `ns.dns.${domain}`;
  let generation = 0;
  // CoreDNS's serial is the time of the last change it saw, in seconds.
  let serial = Math.floor(now() / 1000) >>> 0;
  let reverse: Map<string, string[]> | undefined;

  const soa = (): ResourceRecord => ({
    name: domain,
    ttl,
    type: TYPE.SOA,
    mname: nsName,
    rname: `hostmaster.${domain}`,
    serial,
    refresh: 7200,
    retry: 1800,
    expire: 86400,
    minimum: ttl,
  });
  const answer = (answers: ResourceRecord[], additional: ResourceRecord[] = []): ZoneAnswer => ({
    rcode: RCODE.NOERROR,
    answers,
    authority: [],
    additional,
  });
  const nodata = (): ZoneAnswer => ({
    rcode: RCODE.NOERROR,
    answers: [],
    authority: [soa()],
    additional: [],
  });
  const nxdomain = (): ZoneAnswer => ({
    rcode: RCODE.NXDOMAIN,
    answers: [],
    authority: [soa()],
    additional: [],
  });
  /** The records of a name that exists, filtered to the asked type (NODATA when none is left). */
  const filtered = (qtype: number, records: ResourceRecord[], additional: ResourceRecord[] = []) => {
    const matching = qtype === TYPE.ANY ? records : records.filter((r) => r.type === qtype);
    return matching.length ? answer(matching, additional) : nodata();
  };
  const address = (name: string, ip: string): ResourceRecord =>
    ip.includes(':') ? { name, ttl, type: TYPE.AAAA, address: ip } : { name, ttl, type: TYPE.A, address: ip };

  function lookup(q: Question): ZoneAnswer | undefined {
    const name = canonicalName(q.name);
    if (name.endsWith('.in-addr.arpa') || name.endsWith('.ip6.arpa')) return reverseLookup(q, name);
    if (name !== domain && !name.endsWith(`.${domain}`)) return undefined;
    const labels = name === domain ? [] : name.slice(0, -domain.length - 1).split('.');
    const last = labels.at(-1);
    if (labels.length === 0) {
      return filtered(q.type, [soa(), { name: q.name, ttl, type: TYPE.NS, target: nsName }]);
    }
    if (name === `dns-version.${domain}`) {
      return filtered(q.type, [{ name: q.name, ttl, type: TYPE.TXT, texts: [DNS_SCHEMA_VERSION] }]);
    }
    if (name === nsName) {
      return filtered(q.type, opts.dnsIP ? [address(q.name, opts.dnsIP)] : []);
    }
    if (name === `dns.${domain}`) return nodata(); // an empty non-terminal above ns.dns
    if (last === 'svc') return serviceLookup(q, labels.slice(0, -1));
    if (last === 'pod') return podLookup(q, labels.slice(0, -1));
    return nxdomain();
  }

  // --- <...>.svc.<zone> ---------------------------------------------------

  function serviceLookup(q: Question, labels: string[]): ZoneAnswer {
    if (labels.length === 0) return nodata(); // svc.<zone>
    const ns = labels.at(-1)!;
    if (!state.namespace(ns)) return nxdomain();
    if (labels.length === 1) return nodata(); // <ns>.svc.<zone>
    const svc = state.service(ns, labels.at(-2)!);
    if (!svc) return nxdomain();
    const rest = labels.slice(0, -2);
    if (rest.length === 0) return serviceRecords(q, svc);
    if (rest.length === 1) return endpointRecords(q, svc, rest[0]!);
    if (rest.length === 2 && rest[0]!.startsWith('_') && rest[1]!.startsWith('_')) {
      return srvRecords(q, svc, rest[0]!.slice(1), rest[1]!.slice(1));
    }
    return nxdomain();
  }

  const fqdn = (svc: Service) => `${svc.metadata.name}.${svc.metadata.namespace}.svc.${domain}`;
  const isHeadless = (svc: Service) => svc.spec?.clusterIP === 'None';
  const clusterIPs = (svc: Service) =>
    (svc.spec?.clusterIPs?.length ? svc.spec.clusterIPs : [svc.spec?.clusterIP ?? '']).filter(
      (ip) => ip && ip !== 'None',
    );

  /** Ready endpoints (all, with publishNotReadyAddresses) and their slice, first address each. */
  function readyEndpoints(svc: Service): { ep: Endpoint; ip: string; slice: EndpointSlice }[] {
    const all = svc.spec?.publishNotReadyAddresses === true;
    const out: { ep: Endpoint; ip: string; slice: EndpointSlice }[] = [];
    const seen = new Set<string>();
    const slices = state.endpointSlices(svc.metadata.namespace ?? '', svc.metadata.name ?? '');
    for (const slice of slices) {
      if (slice.addressType !== 'IPv4' && slice.addressType !== 'IPv6') continue;
      for (const ep of slice.endpoints ?? []) {
        // A nil ready condition means ready (EndpointConditions' contract).
        if (!all && ep.conditions?.ready === false) continue;
        // Consumers use the first address (EndpointSlice API: the others are for future use).
        const ip = ep.addresses?.[0];
        if (!ip || seen.has(ip)) continue;
        seen.add(ip);
        out.push({ ep, ip, slice });
      }
    }
    return out;
  }

  /** An endpoint's DNS label: its hostname, else its address with dashes (CoreDNS endpointHostname). */
  const endpointHostname = (ep: Endpoint, ip: string) =>
    (ep.hostname || ip.replaceAll(ip.includes(':') ? ':' : '.', '-')).toLowerCase();

  function serviceRecords(q: Question, svc: Service): ZoneAnswer {
    if (svc.spec?.type === 'ExternalName') {
      const target = svc.spec.externalName;
      if (!target) return nxdomain();
      return answer([{ name: q.name, ttl, type: TYPE.CNAME, target: canonicalName(target) }]);
    }
    if (isHeadless(svc)) {
      const eps = readyEndpoints(svc);
      if (eps.length === 0) return nxdomain();
      if (q.type === TYPE.SRV) return srvRecords(q, svc, undefined, undefined);
      return filtered(
        q.type,
        eps.map((e) => address(q.name, e.ip)),
      );
    }
    if (q.type === TYPE.SRV) return srvRecords(q, svc, undefined, undefined);
    return filtered(
      q.type,
      clusterIPs(svc).map((ip) => address(q.name, ip)),
    );
  }

  function endpointRecords(q: Question, svc: Service, host: string): ZoneAnswer {
    const records = readyEndpoints(svc)
      .filter((e) => endpointHostname(e.ep, e.ip) === host)
      .map((e) => address(q.name, e.ip));
    return records.length ? filtered(q.type, records) : nxdomain();
  }

  /**
   * SRV for `_<port>._<proto>` (or, asked on the service name itself, every
   * named port, as CoreDNS): a ClusterIP service points at its own name and
   * service port; a headless one at each ready endpoint's name and the
   * endpoint port. The targets' addresses go in the additional section.
   */
  function srvRecords(q: Question, svc: Service, port?: string, proto?: string): ZoneAnswer {
    const matches = (p: { name?: string; protocol?: string }) =>
      !!p.name &&
      (port === undefined || p.name.toLowerCase() === port) &&
      (proto === undefined || (p.protocol ?? 'TCP').toLowerCase() === proto);
    const answers: Extract<ResourceRecord, { type: typeof TYPE.SRV }>[] = [];
    const additional: ResourceRecord[] = [];
    if (isHeadless(svc)) {
      const eps = readyEndpoints(svc);
      for (const e of eps) {
        const target = `${endpointHostname(e.ep, e.ip)}.${fqdn(svc)}`;
        const ports = (e.slice.ports ?? []).filter(matches);
        for (const p of ports) {
          answers.push({
            name: q.name,
            ttl,
            type: TYPE.SRV,
            priority: 0,
            weight: 0,
            port: p.port ?? 0,
            target,
          });
        }
        if (ports.length) additional.push(address(target, e.ip));
      }
    } else if (svc.spec?.type !== 'ExternalName') {
      for (const p of (svc.spec?.ports ?? []).filter(matches)) {
        answers.push({
          name: q.name,
          ttl,
          type: TYPE.SRV,
          priority: 0,
          weight: 0,
          port: p.port ?? 0,
          target: fqdn(svc),
        });
      }
      if (answers.length) additional.push(...clusterIPs(svc).map((ip) => address(fqdn(svc), ip)));
    }
    // Equal shares of weight among the targets, as CoreDNS (RFC 2782: 0 priority, weights sum to 100).
    for (const a of answers) a.weight = Math.floor(100 / answers.length);
    if (answers.length === 0) return port === undefined ? nodata() : nxdomain();
    return filtered(q.type, answers, additional);
  }

  // --- <a-b-c-d>.<ns>.pod.<zone> -------------------------------------------

  function podLookup(q: Question, labels: string[]): ZoneAnswer {
    if (labels.length === 0) return nodata(); // pod.<zone>
    const ns = labels.at(-1)!;
    if (!state.namespace(ns)) return nxdomain();
    if (labels.length === 1) return nodata();
    if (labels.length !== 2) return nxdomain();
    const ip = ipFromDashes(labels[0]!);
    if (!ip) return nxdomain();
    return filtered(q.type, [address(q.name, ip)]);
  }

  // --- PTR ---------------------------------------------------------------

  function reverseIndex(): Map<string, string[]> {
    if (reverse) return reverse;
    const index = new Map<string, string[]>();
    const add = (ip: string, target: string) => {
      const key = reverseName(ip);
      if (!key) return;
      const list = index.get(key) ?? [];
      if (!list.includes(target)) list.push(target);
      index.set(key, list);
    };
    for (const svc of state.services()) {
      for (const ip of clusterIPs(svc)) add(ip, fqdn(svc));
    }
    for (const slice of state.allEndpointSlices()) {
      const svc = state.service(
        slice.metadata.namespace ?? '',
        slice.metadata.labels?.['kubernetes.io/service-name'] ?? '',
      );
      if (!svc) continue;
      for (const e of readyEndpoints(svc)) {
        if (e.slice !== slice) continue;
        add(e.ip, `${endpointHostname(e.ep, e.ip)}.${fqdn(svc)}`);
      }
    }
    reverse = index;
    return index;
  }

  function reverseLookup(q: Question, name: string): ZoneAnswer | undefined {
    const targets = reverseIndex().get(name);
    if (!targets) return undefined;
    return filtered(
      q.type,
      targets.map((target) => ({ name: q.name, ttl, type: TYPE.PTR, target })),
    );
  }

  return {
    domain,
    lookup,
    changed() {
      generation++;
      reverse = undefined;
      serial = Math.max(serial + 1, Math.floor(now() / 1000)) >>> 0;
    },
    get generation() {
      return generation;
    },
  };
}

/** 10-42-0-5 → 10.42.0.5; undefined unless four octets. */
function ipFromDashes(label: string): string | undefined {
  const parts = label.split('-');
  if (parts.length !== 4 || !parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255)) return undefined;
  return parts.map(Number).join('.');
}

/** The reverse-lookup name of an address (RFC 1035 §3.5, RFC 3596 §2.5), lower case, no trailing dot. */
export function reverseName(ip: string): string | undefined {
  if (ip.includes(':')) {
    let bytes: Buffer;
    try {
      bytes = parseIPv6(ip);
    } catch {
      return undefined;
    }
    const nibbles = [...bytes.toString('hex')].reverse();
    return `${nibbles.join('.')}.ip6.arpa`;
  }
  const octets = ip.split('.');
  if (octets.length !== 4) return undefined;
  return `${octets.reverse().join('.')}.in-addr.arpa`;
}
