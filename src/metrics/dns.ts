// The cluster DNS's metrics, as CoreDNS's prometheus plugin names them
// (plugin/metrics/vars): coredns_dns_requests_total,
// coredns_dns_responses_total and coredns_dns_request_duration_seconds, so
// the CoreDNS dashboards read Skiff's DNS. One server, one zone (".").

import type { DnsHandler } from '../dns/server.ts';
import { FastCounter, FastHistogram } from './fast.ts';
import type { Registry } from './prometheus.ts';

/** The query types CoreDNS reports by name; the rest are "other". */
const TYPES: Record<number, string> = {
  1: 'A',
  2: 'NS',
  5: 'CNAME',
  6: 'SOA',
  12: 'PTR',
  15: 'MX',
  16: 'TXT',
  28: 'AAAA',
  33: 'SRV',
  35: 'NAPTR',
  43: 'DS',
  48: 'DNSKEY',
  64: 'SVCB',
  65: 'HTTPS',
  255: 'ANY',
};

const RCODES = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED'];

/** The question's type in a raw query (after the 12-byte header and the name); undefined when malformed. */
export function queryType(raw: Buffer): number | undefined {
  let i = 12;
  while (i < raw.length) {
    const len = raw[i]!;
    if (len === 0) return i + 3 <= raw.length ? raw.readUInt16BE(i + 1) : undefined;
    if (len & 0xc0) return undefined; // no compression in a question
    i += len + 1;
  }
  return undefined;
}

/** The handler, with each query and its answer counted and timed. */
export function instrumentDnsHandler(handler: DnsHandler, registry: Registry, server: string): DnsHandler {
  const requests = new FastCounter({
    name: 'coredns_dns_requests_total',
    help: 'Counter of DNS requests made per zone, protocol and family.',
    labelNames: ['server', 'zone', 'view', 'proto', 'family', 'type'],
    registry,
  });
  const responses = new FastCounter({
    name: 'coredns_dns_responses_total',
    help: 'Counter of response status codes.',
    labelNames: ['server', 'zone', 'view', 'rcode', 'plugin'],
    registry,
  });
  const durations = new FastHistogram({
    name: 'coredns_dns_request_duration_seconds',
    help: 'Histogram of the time (in seconds) each request took per zone.',
    labelNames: ['server', 'zone', 'view', 'type'],
    // CoreDNS's: 0.25 ms doubling 16 times.
    buckets: Array.from({ length: 16 }, (_, i) => 0.00025 * 2 ** i),
    registry,
  });
  return {
    async handle(query, protocol) {
      const started = performance.now();
      const code = queryType(query);
      const type = code === undefined ? 'other' : (TYPES[code] ?? 'other');
      requests.child(server, '.', '', protocol, '1', type).inc();
      const answer = await handler.handle(query, protocol);
      durations.child(server, '.', '', type).observe((performance.now() - started) / 1000);
      if (answer && answer.length >= 4) {
        const rcode = answer[3]! & 0x0f;
        responses.child(server, '.', '', RCODES[rcode] ?? String(rcode), '').inc();
      }
      return answer;
    },
  };
}
