import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { decodeMessage, encodeMessage, newMessage, RCODE } from '../dns/message.ts';
import { instrumentDnsHandler, queryType } from './dns.ts';
import { parseExposition, sumOf } from './exposition.ts';

const query = (name: string, type: number) =>
  encodeMessage(newMessage({ id: 7, recursionDesired: true, questions: [{ name, type, class: 1 }] }));

describe('DNS metrics, as CoreDNS names them', () => {
  it('read the question type from a raw query', () => {
    assert.equal(queryType(query('web.default.svc.cluster.local', 28)), 28);
    assert.equal(queryType(Buffer.alloc(5)), undefined);
  });

  it('count requests by protocol and type, answers by rcode, and time them', async () => {
    const registry = new Registry();
    const handler = instrumentDnsHandler(
      {
        async handle(raw) {
          const q = decodeMessage(raw);
          const nx = q.questions[0]!.name.startsWith('nope');
          return encodeMessage({ ...q, response: true, rcode: nx ? RCODE.NXDOMAIN : RCODE.NOERROR });
        },
      },
      registry,
      'dns://:53',
    );
    await handler.handle(query('web.default.svc.cluster.local', 1), 'udp');
    await handler.handle(query('web.default.svc.cluster.local', 28), 'udp');
    await handler.handle(query('nope.default.svc.cluster.local', 1), 'tcp');
    const s = parseExposition(await registry.metrics());
    const base = { server: 'dns://:53', zone: '.', view: '' };
    assert.equal(
      sumOf(s, 'coredns_dns_requests_total', { ...base, proto: 'udp', family: '1', type: 'A' }),
      1,
    );
    assert.equal(sumOf(s, 'coredns_dns_requests_total', { ...base, proto: 'udp', type: 'AAAA' }), 1);
    assert.equal(sumOf(s, 'coredns_dns_requests_total', { ...base, proto: 'tcp', type: 'A' }), 1);
    assert.equal(sumOf(s, 'coredns_dns_responses_total', { ...base, rcode: 'NOERROR', plugin: '' }), 2);
    assert.equal(sumOf(s, 'coredns_dns_responses_total', { rcode: 'NXDOMAIN' }), 1);
    assert.equal(sumOf(s, 'coredns_dns_request_duration_seconds_count', { type: 'A' }), 2);
  });
});
