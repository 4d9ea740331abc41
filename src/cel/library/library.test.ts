// Kubernetes' CEL libraries, table-driven: each expression and the value
// (or error) that upstream's library tests (k8s.io/apiserver
// pkg/cel/library/*_test.go) expect of it.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { celEnv, compile } from '../cel.ts';

const env = celEnv({ variables: {} });

type Case = [expr: string, expected: unknown] | [expr: string, expected: { error: string }];

function run(cases: Case[]): void {
  for (const [expr, expected] of cases) {
    it(expr, () => {
      const c = compile(expr, env);
      assert.ok(c.ok, `${expr}: ${!c.ok && c.errors.map((e) => e.message).join('; ')}`);
      const r = c.program.eval({});
      if (expected && typeof expected === 'object' && 'error' in expected) {
        assert.equal(r.ok, false, `${expr} should fail`);
        assert.match(!r.ok ? r.error : '', new RegExp((expected as { error: string }).error));
      } else {
        assert.ok(r.ok, `${expr}: ${!r.ok && r.error}`);
        assert.deepEqual(r.value, expected);
      }
    });
  }
}

describe('lists', () => {
  run([
    ['[1, 2, 3].isSorted()', true],
    ['[3, 1].isSorted()', false],
    ['["a", "b"].isSorted()', true],
    ['[].isSorted()', true],
    ['[1, 2, 3].sum()', 6],
    ['[1.5, 2.5].sum()', 4],
    ['[].sum()', 0],
    ['[3, 1, 2].min()', 1],
    ['[3, 1, 2].max()', 3],
    ['["b", "a"].min()', 'a'],
    ['[].min()', { error: 'min called on empty list' }],
    ['[1, 2, 2, 3].indexOf(2)', 1],
    ['[1, 2, 2, 3].lastIndexOf(2)', 2],
    ['[1, 2].indexOf(9)', -1],
    ['[[1], [2]].indexOf([2])', 1],
  ]);
});

describe('strings', () => {
  run([
    ['"hello".charAt(4)', 'o'],
    ['"hello".charAt(5)', ''],
    ['"hello".charAt(6)', { error: 'index out of range' }],
    ['"hello hello".replace("he", "we")', 'wello wello'],
    ['"hello hello".replace("he", "we", 1)', 'wello hello'],
    ['"hello hello".replace("he", "we", 0)', 'hello hello'],
    ['"gums".reverse()', 'smug'],
    ['"¢a".reverse()', 'a¢'],
    ['strings.quote("first\\nsecond")', '"first\\nsecond"'],
    ['strings.quote("a \\"quote\\"")', '"a \\"quote\\""'],
    ['"TacoCat".lowerAscii()', 'tacocat'],
    ['"a,b".split(",")', ['a', 'b']],
  ]);
});

describe('regex', () => {
  run([
    ['"abc 123".find("[0-9]+")', '123'],
    ['"abc".find("[0-9]+")', ''],
    ['"123 abc 456".findAll("[0-9]+")', ['123', '456']],
    ['"123 abc 456".findAll("[0-9]+", 1)', ['123']],
    ['"abc".findAll("[0-9]+")', []],
    ['"abc".find("[")', { error: 'invalid regex' }],
  ]);
});

describe('quantity', () => {
  run([
    ['quantity("50M").isInteger()', true],
    ['quantity("50m").isInteger()', false],
    ['quantity("50k").asInteger()', 50000],
    ['quantity("50m").asInteger()', { error: 'cannot convert value to integer' }],
    ['quantity("50.5").asApproximateFloat()', 50.5],
    ['quantity("-1").sign()', -1],
    ['quantity("0").sign()', 0],
    ['quantity("1Gi").isGreaterThan(quantity("1G"))', true],
    ['quantity("200M").isLessThan(quantity("0.3G"))', true],
    ['quantity("200M").compareTo(quantity("0.2G"))', 0],
    ['quantity("50k").add(quantity("20")).asInteger()', 50020],
    ['quantity("50k").add(20).asInteger()', 50020],
    ['quantity("50k").sub(20).asInteger()', 49980],
    ['quantity("1") == quantity("1000m")', true],
    ['isQuantity("20")', true],
    ['isQuantity("20x")', false],
    ['quantity("20x")', { error: 'quantities must match' }],
  ]);
});

describe('urls', () => {
  run([
    ['url("https://user:pass@example.com:80/path?query=val#fragment").getScheme()', { error: 'invalid URI' }],
    ['url("https://example.com:80/path?query=val").getScheme()', 'https'],
    ['url("https://example.com:80/path").getHost()', 'example.com:80'],
    ['url("https://[::1]:80/path").getHost()', '[::1]:80'],
    ['url("https://[::1]:80/path").getHostname()', '::1'],
    ['url("https://example.com:80/path").getPort()', '80'],
    ['url("https://example.com/path").getPort()', ''],
    ['url("https://example.com/path with spaces/").getEscapedPath()', { error: 'invalid URI' }],
    ['url("https://example.com/path%20with%20spaces/").getEscapedPath()', '/path%20with%20spaces/'],
    ['url("https://example.com").getEscapedPath()', ''],
    ['url("https://example.com/?k=a&k=b&x=1").getQuery()', { k: ['a', 'b'], x: ['1'] }],
    ['url("/absolute-path").getEscapedPath()', '/absolute-path'],
    ['isURL("https://example.com/path")', true],
    ['isURL("relative/path")', false],
    ['isURL("ht tp://example.com")', false],
  ]);
});

describe('ip and cidr', () => {
  run([
    ['isIP("192.168.0.1")', true],
    ['isIP("192.168.0.01")', false],
    ['isIP("2001:db8::abcd")', true],
    ['isIP("::ffff:192.168.0.1")', false],
    ['isIP("fe80::1%eth0")', false],
    ['ip("::ffff:1.2.3.4")', { error: 'IPv4-mapped IPv6 address is not allowed' }],
    ['ip("192.168.0.1").family()', 4],
    ['ip("::1").family()', 6],
    ['ip("127.0.0.1").isLoopback()', true],
    ['ip("::1").isLoopback()', true],
    ['ip("0.0.0.0").isUnspecified()', true],
    ['ip("::").isUnspecified()', true],
    ['ip("224.0.0.1").isLinkLocalMulticast()', true],
    ['ip("ff02::1").isLinkLocalMulticast()', true],
    ['ip("169.254.169.254").isLinkLocalUnicast()', true],
    ['ip("fe80::1").isLinkLocalUnicast()', true],
    ['ip("192.168.0.1").isGlobalUnicast()', true],
    ['ip("255.255.255.255").isGlobalUnicast()', false],
    ['ip("2001:db8::abcd").isGlobalUnicast()', true],
    ['string(ip("2001:0db8:0000::abcd"))', '2001:db8::abcd'],
    ['string(ip("1:0:0:1:0:0:0:1"))', '1:0:0:1::1'],
    ['ip("192.168.0.1") == ip("192.168.0.1")', true],
    ['isCIDR("192.168.0.0/24")', true],
    ['isCIDR("192.168.0.0/33")', false],
    ['isCIDR("192.168.0.0")', false],
    ['cidr("192.168.0.0/24").containsIP(ip("192.168.0.1"))', true],
    ['cidr("192.168.0.0/24").containsIP("192.168.1.1")', false],
    ['cidr("192.168.0.0/24").containsIP("::1")', false],
    ['cidr("2001:db8::/32").containsIP("2001:db8::1")', true],
    ['cidr("192.168.0.0/16").containsCIDR("192.168.10.0/24")', true],
    ['cidr("192.168.0.0/24").containsCIDR(cidr("192.168.0.0/16"))', false],
    ['cidr("192.168.0.1/24").masked() == cidr("192.168.0.0/24")', true],
    ['string(cidr("192.168.0.1/24").masked())', '192.168.0.0/24'],
    ['cidr("192.168.0.1/24").prefixLength()', 24],
    ['string(cidr("192.168.0.1/24").ip())', '192.168.0.1'],
  ]);
});
