import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  CLASS_IN,
  DnsFormatError,
  decodeMessage,
  encodeMessage,
  labelsOf,
  newMessage,
  parseIPv6,
  RCODE,
  type ResourceRecord,
  TYPE,
  truncatedCopy,
} from './message.ts';

const q = (name: string, type: number = TYPE.A) => ({ name, type, class: CLASS_IN });

describe('DNS message encoding', () => {
  it('round-trips every record type the cluster zone uses', () => {
    const records: ResourceRecord[] = [
      { name: 'web.default.svc.cluster.local', ttl: 5, type: TYPE.A, address: '10.43.0.20' },
      { name: 'web.default.svc.cluster.local', ttl: 5, type: TYPE.AAAA, address: 'fd00:10:43::14' },
      { name: 'ext.default.svc.cluster.local', ttl: 5, type: TYPE.CNAME, target: 'example.org' },
      { name: '20.0.43.10.in-addr.arpa', ttl: 5, type: TYPE.PTR, target: 'web.default.svc.cluster.local' },
      {
        name: '_http._tcp.web.default.svc.cluster.local',
        ttl: 5,
        type: TYPE.SRV,
        priority: 0,
        weight: 100,
        port: 80,
        target: 'web.default.svc.cluster.local',
      },
      { name: 'dns-version.cluster.local', ttl: 5, type: TYPE.TXT, texts: ['1.1.0', ''] },
      { name: 'x.example', ttl: 60, type: 99, data: Buffer.from([1, 2, 3]) },
    ];
    const soa: ResourceRecord = {
      name: 'cluster.local',
      ttl: 5,
      type: TYPE.SOA,
      mname: 'ns.dns.cluster.local',
      rname: 'hostmaster.cluster.local',
      serial: 1_700_000_000,
      refresh: 7200,
      retry: 1800,
      expire: 86400,
      minimum: 5,
    };
    const msg = newMessage({
      id: 0xbeef,
      response: true,
      authoritative: true,
      recursionDesired: true,
      recursionAvailable: true,
      questions: [q('web.default.svc.cluster.local')],
      answers: records,
      authority: [soa],
      edns: { udpPayloadSize: 1232, version: 0, dnssecOk: true, options: Buffer.from([0, 10, 0, 2, 9, 9]) },
    });
    const back = decodeMessage(encodeMessage(msg));
    assert.equal(back.id, 0xbeef);
    assert.equal(back.response, true);
    assert.equal(back.authoritative, true);
    assert.equal(back.recursionDesired, true);
    assert.equal(back.recursionAvailable, true);
    assert.equal(back.truncated, false);
    assert.deepEqual(back.questions, msg.questions);
    assert.deepEqual(
      back.answers,
      records.map((r) => ({ ...r, class: CLASS_IN })),
    );
    assert.deepEqual(back.authority, [{ ...soa, class: CLASS_IN }]);
    assert.deepEqual(back.edns, msg.edns);
  });

  it('compresses repeated name suffixes with pointers to earlier names', () => {
    const name = 'web.default.svc.cluster.local';
    const msg = newMessage({
      response: true,
      questions: [q(name)],
      answers: [
        { name, ttl: 5, type: TYPE.A, address: '10.0.0.1' },
        { name, ttl: 5, type: TYPE.A, address: '10.0.0.2' },
        { name: `api.${name.slice(4)}`, ttl: 5, type: TYPE.CNAME, target: `x.${name}` },
      ],
    });
    const wire = encodeMessage(msg);
    // The question's name is written once in full (31 bytes); each answer's
    // owner is a two-byte pointer to offset 12, where the question's name starts.
    const nameBytes = name.length + 2;
    assert.equal(wire.readUInt16BE(12 + nameBytes + 4), 0xc000 | 12);
    // api.default.svc.cluster.local: one label, then a pointer to "default...".
    // x.web.default...: one label, then a pointer to the question's name.
    const expected = 12 + (nameBytes + 4) + 2 * (2 + 10 + 4) + (4 + 2 + 10) + (2 + 2);
    assert.equal(wire.length, expected);
    assert.deepEqual(
      decodeMessage(wire).answers.map((r) => r.name),
      [name, name, 'api.default.svc.cluster.local'],
    );
  });

  it('reads compression pointers in names and record data as other servers write them', () => {
    // A hand-made answer: "a.example" at 12, "b" + pointer to "example" in a CNAME's data.
    const wire = Buffer.from([
      0x12,
      0x34,
      0x81,
      0x80,
      0,
      1,
      0,
      1,
      0,
      0,
      0,
      0,
      1,
      0x61,
      7,
      ...Buffer.from('example'),
      0,
      0,
      1,
      0,
      1,
      0xc0,
      12,
      0,
      5,
      0,
      1,
      0,
      0,
      0,
      60,
      0,
      4,
      1,
      0x62,
      0xc0,
      14,
    ]);
    const msg = decodeMessage(wire);
    assert.equal(msg.id, 0x1234);
    assert.deepEqual(msg.questions, [q('a.example')]);
    assert.deepEqual(msg.answers, [
      { name: 'a.example', ttl: 60, class: 1, type: TYPE.CNAME, target: 'b.example' },
    ]);
  });

  it('rejects pointer loops, forward pointers and truncated messages', () => {
    const header = [0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    // A pointer to itself.
    assert.throws(() => decodeMessage(Buffer.from([...header, 0xc0, 12, 0, 1, 0, 1])), DnsFormatError);
    // A pointer forwards, to a later name pointing back at it.
    assert.throws(
      () => decodeMessage(Buffer.from([...header, 0xc0, 18, 0, 1, 0, 1, 0xc0, 12])),
      DnsFormatError,
    );
    assert.throws(() => decodeMessage(Buffer.from([...header, 3, 0x61])), DnsFormatError);
    assert.throws(() => decodeMessage(Buffer.from([0, 1, 0])), DnsFormatError);
  });

  it('keeps dots and backslashes inside labels', () => {
    assert.deepEqual(labelsOf('a\\.b.c'), ['a.b', 'c']);
    const msg = newMessage({ questions: [q('a\\.b.c')] });
    assert.deepEqual(decodeMessage(encodeMessage(msg)).questions, [q('a\\.b.c')]);
  });

  it('truncates to the size limit: additional records go quietly, answers set TC', () => {
    const answers: ResourceRecord[] = Array.from({ length: 40 }, (_, i) => ({
      name: 'headless.default.svc.cluster.local',
      ttl: 5,
      type: TYPE.A,
      address: `10.42.0.${i + 1}`,
    }));
    const msg = newMessage({ response: true, questions: [q('headless.default.svc.cluster.local')], answers });
    const small = encodeMessage(msg, 512);
    assert.ok(small.length <= 512);
    const back = decodeMessage(small);
    assert.equal(back.truncated, true);
    assert.ok(back.answers.length > 0 && back.answers.length < 40);
    assert.equal(decodeMessage(encodeMessage(msg)).answers.length, 40);

    // Only additional records cut: no TC (RFC 2181 §9). The OPT record always stays.
    const withExtra = newMessage({
      response: true,
      questions: [q('_http._tcp.web.default.svc.cluster.local', TYPE.SRV)],
      answers: answers.slice(0, 2),
      additional: answers,
      edns: { udpPayloadSize: 1232, version: 0, dnssecOk: false, options: Buffer.alloc(0) },
    });
    const cut = decodeMessage(encodeMessage(withExtra, 512));
    assert.equal(cut.truncated, false);
    assert.equal(cut.answers.length, 2);
    assert.ok(cut.additional.length < 40);
    assert.ok(cut.edns);
  });

  it('carries the extended RCODE of EDNS0 (BADVERS) in the OPT record', () => {
    const msg = newMessage({
      response: true,
      rcode: RCODE.BADVERS,
      questions: [q('x.cluster.local')],
      edns: { udpPayloadSize: 1232, version: 0, dnssecOk: false, options: Buffer.alloc(0) },
    });
    const wire = encodeMessage(msg);
    assert.equal(wire.readUInt16BE(2) & 0xf, 0); // 16's low four bits
    assert.equal(decodeMessage(wire).rcode, RCODE.BADVERS);
  });

  it('cuts a forwarded answer down to its header and question with TC', () => {
    const msg = newMessage({
      id: 7,
      response: true,
      questions: [q('example.org')],
      answers: [{ name: 'example.org', ttl: 60, type: TYPE.A, address: '192.0.2.1' }],
    });
    const cut = decodeMessage(truncatedCopy(encodeMessage(msg)));
    assert.equal(cut.id, 7);
    assert.equal(cut.truncated, true);
    assert.deepEqual(cut.questions, [q('example.org')]);
    assert.equal(cut.answers.length, 0);
  });

  it('parses IPv6 addresses in their short forms', () => {
    assert.equal(parseIPv6('::1').toString('hex'), `${'0'.repeat(30)}01`);
    assert.equal(parseIPv6('fd00::a:1').toString('hex'), 'fd0000000000000000000000000a0001');
    assert.equal(parseIPv6('::ffff:10.0.0.1').toString('hex'), '00000000000000000000ffff0a000001');
    assert.throws(() => parseIPv6('1::2::3'));
  });
});
