// Kubernetes' IP and CIDR libraries (k8s.io/apiserver pkg/cel/library/ip.go,
// cidr.go): ip("10.0.0.1"), isIP, ip.isCanonical, and on an IP: family,
// isUnspecified, isLoopback, isLinkLocalMulticast, isLinkLocalUnicast,
// isGlobalUnicast; cidr("10.0.0.0/8"), isCIDR, and on a CIDR: containsIP,
// containsCIDR, ip, masked, prefixLength; string() of either. As upstream,
// IPv4-mapped IPv6 addresses and zones are refused.

import type { Environment } from '@marcbachmann/cel-js';

export class IP {
  readonly family: 4 | 6;
  /** The address as a 32- or 128-bit integer. */
  readonly bits: bigint;
  constructor(family: 4 | 6, bits: bigint) {
    this.family = family;
    this.bits = bits;
  }
  get width(): number {
    return this.family === 4 ? 32 : 128;
  }
  toString(): string {
    return this.family === 4 ? formatV4(this.bits) : formatV6(this.bits);
  }
}

export class CIDR {
  readonly ip: IP;
  readonly prefix: number;
  constructor(ip: IP, prefix: number) {
    this.ip = ip;
    this.prefix = prefix;
  }
  toString(): string {
    return `${this.ip}/${this.prefix}`;
  }
}

function parseV4(s: string): bigint | undefined {
  const parts = s.split('.');
  if (parts.length !== 4) return undefined;
  let v = 0n;
  for (const p of parts) {
    // Go's netip refuses leading zeros, which some parsers read as octal.
    if (!/^(0|[1-9]\d{0,2})$/.test(p) || Number(p) > 255) return undefined;
    v = (v << 8n) | BigInt(p);
  }
  return v;
}

function parseV6(s: string): bigint | undefined {
  if (s.includes('%')) return undefined;
  let head = s;
  let tailV4: bigint | undefined;
  const lastColon = s.lastIndexOf(':');
  if (s.slice(lastColon + 1).includes('.')) {
    tailV4 = parseV4(s.slice(lastColon + 1));
    if (tailV4 === undefined) return undefined;
    head = `${s.slice(0, lastColon + 1)}0:0`;
  }
  const halves = head.split('::');
  if (halves.length > 2) return undefined;
  const groups = (h: string) => (h === '' ? [] : h.split(':'));
  const left = groups(halves[0]!);
  const right = halves.length === 2 ? groups(halves[1]!) : [];
  const missing = 8 - left.length - right.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  let v = 0n;
  for (const g of [...left, ...Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...right]) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
    v = (v << 16n) | BigInt(`0x${g}`);
  }
  if (tailV4 !== undefined) v = (v & ~0xffffffffn) | tailV4;
  return v;
}

const MAPPED_PREFIX = 0xffffn << 32n;

/** The address, or why it is not one (upstream's messages). */
function parseIP(s: string): IP | string {
  if (s.includes(':')) {
    const v = parseV6(s);
    if (v === undefined) return `IP Address ${JSON.stringify(s)} parse error during conversion from string`;
    if (v >> 32n === 0xffffn && (v & ~0xffffffffn) === MAPPED_PREFIX)
      return 'IPv4-mapped IPv6 address is not allowed';
    return new IP(6, v);
  }
  const v = parseV4(s);
  return v === undefined
    ? `IP Address ${JSON.stringify(s)} parse error during conversion from string`
    : new IP(4, v);
}

function parseCIDR(s: string): CIDR | string {
  const slash = s.indexOf('/');
  if (slash < 0)
    return `network address parse error during conversion from string: netip.ParsePrefix(${JSON.stringify(s)}): no '/'`;
  const ip = parseIP(s.slice(0, slash));
  const bits = s.slice(slash + 1);
  if (typeof ip === 'string') return `network address parse error during conversion from string: ${ip}`;
  if (!/^(0|[1-9]\d*)$/.test(bits) || Number(bits) > ip.width)
    return `network address parse error during conversion from string: netip.ParsePrefix(${JSON.stringify(s)}): bad bits after slash: ${JSON.stringify(bits)}`;
  return new CIDR(ip, Number(bits));
}

function orThrow<T>(v: T | string): T {
  if (typeof v === 'string') throw new Error(v);
  return v;
}

function formatV4(v: bigint): string {
  return [24n, 16n, 8n, 0n].map((s) => String((v >> s) & 0xffn)).join('.');
}

/** RFC 5952: lower case, no leading zeros, the longest run of two or more zero groups as "::". */
function formatV6(v: bigint): string {
  const g = Array.from({ length: 8 }, (_, i) => Number((v >> BigInt(112 - 16 * i)) & 0xffffn));
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j;
  }
  const hex = g.map((x) => x.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

function mask(width: number, prefix: number): bigint {
  const all = (1n << BigInt(width)) - 1n;
  return (all >> BigInt(width - prefix)) << BigInt(width - prefix);
}

function contains(c: CIDR, ip: IP): boolean {
  if (ip.family !== c.ip.family) return false;
  const m = mask(ip.width, c.prefix);
  return (ip.bits & m) === (c.ip.bits & m);
}

function within(v: bigint, family: 4 | 6, cidr: string): boolean {
  const c = orThrow(parseCIDR(cidr));
  return contains(c, new IP(family, v));
}

export function registerIP(env: Environment): void {
  env.registerType('net.IP', IP);
  env.registerType('net.CIDR', CIDR);
  env.registerFunction('ip(string): net.IP', (s: string) => orThrow(parseIP(s)));
  env.registerFunction('isIP(string): bool', (s: string) => typeof parseIP(s) !== 'string');
  env.registerFunction('string(net.IP): string', (ip: IP) => ip.toString());
  env.registerFunction('net.IP.family(): int', (ip: IP) => BigInt(ip.family));
  env.registerFunction('net.IP.isUnspecified(): bool', (ip: IP) => ip.bits === 0n);
  env.registerFunction('net.IP.isLoopback(): bool', (ip: IP) =>
    ip.family === 4 ? within(ip.bits, 4, '127.0.0.0/8') : ip.bits === 1n,
  );
  env.registerFunction('net.IP.isLinkLocalMulticast(): bool', (ip: IP) =>
    ip.family === 4 ? within(ip.bits, 4, '224.0.0.0/24') : within(ip.bits, 6, 'ff02::/16'),
  );
  env.registerFunction('net.IP.isLinkLocalUnicast(): bool', (ip: IP) =>
    ip.family === 4 ? within(ip.bits, 4, '169.254.0.0/16') : within(ip.bits, 6, 'fe80::/10'),
  );
  env.registerFunction('net.IP.isGlobalUnicast(): bool', (ip: IP) => {
    // Go's IsGlobalUnicast: not unspecified, loopback, multicast, link-local or the IPv4 broadcast.
    if (ip.bits === 0n) return false;
    if (ip.family === 4)
      return !['127.0.0.0/8', '224.0.0.0/4', '169.254.0.0/16', '255.255.255.255/32'].some((c) =>
        within(ip.bits, 4, c),
      );
    return ip.bits !== 1n && !['ff00::/8', 'fe80::/10'].some((c) => within(ip.bits, 6, c));
  });
  env.registerFunction('cidr(string): net.CIDR', (s: string) => orThrow(parseCIDR(s)));
  env.registerFunction('isCIDR(string): bool', (s: string) => typeof parseCIDR(s) !== 'string');
  env.registerFunction('string(net.CIDR): string', (c: CIDR) => c.toString());
  env.registerFunction('net.CIDR.containsIP(net.IP): bool', contains);
  env.registerFunction('net.CIDR.containsIP(string): bool', (c: CIDR, s: string) =>
    contains(c, orThrow(parseIP(s))),
  );
  env.registerFunction(
    'net.CIDR.containsCIDR(net.CIDR): bool',
    (c: CIDR, o: CIDR) => o.prefix >= c.prefix && contains(c, o.ip),
  );
  env.registerFunction('net.CIDR.containsCIDR(string): bool', (c: CIDR, s: string) => {
    const o = orThrow(parseCIDR(s));
    return o.prefix >= c.prefix && contains(c, o.ip);
  });
  env.registerFunction('net.CIDR.ip(): net.IP', (c: CIDR) => c.ip);
  env.registerFunction(
    'net.CIDR.masked(): net.CIDR',
    (c: CIDR) => new CIDR(new IP(c.ip.family, c.ip.bits & mask(c.ip.width, c.prefix)), c.prefix),
  );
  env.registerFunction('net.CIDR.prefixLength(): int', (c: CIDR) => BigInt(c.prefix));
  env.registerOperator('net.IP == net.IP', (a: IP, b: IP) => a.family === b.family && a.bits === b.bits);
  env.registerOperator(
    'net.CIDR == net.CIDR',
    (a: CIDR, b: CIDR) => a.prefix === b.prefix && a.ip.family === b.ip.family && a.ip.bits === b.ip.bits,
  );
}
