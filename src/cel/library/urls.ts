// Kubernetes' URL library (k8s.io/apiserver pkg/cel/library/urls.go):
// url("https://example.com:80/path?q=1"), isURL, and on a URL: getScheme,
// getHost, getHostname, getPort, getEscapedPath, getQuery. As upstream
// (Go's url.ParseRequestURI), a URL is absolute, or an absolute path.

import type { Environment } from '@marcbachmann/cel-js';

export class URL_ {
  readonly scheme: string;
  readonly host: string;
  readonly path: string;
  readonly rawQuery: string;
  constructor(scheme: string, host: string, path: string, rawQuery: string) {
    this.scheme = scheme;
    this.host = host;
    this.path = path;
    this.rawQuery = rawQuery;
  }
}

const ABSOLUTE = /^([a-zA-Z][a-zA-Z0-9+.-]*):(?:\/\/([^/?#]*))?([^?#]*)(?:\?([^#]*))?$/;

function parseURL(s: string): URL_ | undefined {
  if (
    s.includes('#') ||
    /\s/.test(s) ||
    [...s].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f)
  )
    return undefined;
  if (s.startsWith('/')) {
    const [path, query = ''] = splitOnce(s, '?');
    return new URL_('', '', path, query);
  }
  const m = ABSOLUTE.exec(s);
  if (!m) return undefined;
  const [, scheme, host = '', path = '', query = ''] = m;
  if (!validHost(host)) return undefined;
  return new URL_(scheme!, host, path, query);
}

function splitOnce(s: string, sep: string): [string, string?] {
  const at = s.indexOf(sep);
  return at < 0 ? [s] : [s.slice(0, at), s.slice(at + 1)];
}

function validHost(host: string): boolean {
  const at = host.lastIndexOf('@');
  const hostport = at >= 0 ? host.slice(at + 1) : host;
  if (hostport.startsWith('[')) return /^\[[0-9a-fA-F:.]+(%[^\]]+)?\](:\d*)?$/.test(hostport);
  return /^[^:[\]]*(:\d*)?$/.test(hostport);
}

function hostname(u: URL_): string {
  const hostport = u.host.slice(u.host.lastIndexOf('@') + 1);
  if (hostport.startsWith('[')) return hostport.slice(1, hostport.indexOf(']'));
  const colon = hostport.indexOf(':');
  return colon < 0 ? hostport : hostport.slice(0, colon);
}

function port(u: URL_): string {
  const hostport = u.host.slice(u.host.lastIndexOf('@') + 1);
  const after = hostport.startsWith('[') ? hostport.slice(hostport.indexOf(']') + 1) : hostport;
  const colon = after.indexOf(':');
  return colon < 0 ? '' : after.slice(colon + 1);
}

/** Go's EscapedPath: the path with the characters a path may not hold percent-encoded. */
function escapedPath(u: URL_): string {
  return u.path.replace(/[^A-Za-z0-9\-._~!$&'()*+,;=:@/%]/gu, (c) => encodeURIComponent(c));
}

function query(u: URL_): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const part of u.rawQuery.split(/[&]/)) {
    if (part === '') continue;
    const [k, v = ''] = splitOnce(part, '=');
    const key = decode(k);
    const list = out.get(key) ?? [];
    list.push(decode(v));
    out.set(key, list);
  }
  return out;
}

function decode(s: string): string {
  try {
    return decodeURIComponent(s.replaceAll('+', ' '));
  } catch {
    return s;
  }
}

export function registerURLs(env: Environment): void {
  env.registerType('URL', URL_);
  env.registerFunction('url(string): URL', (s: string) => {
    const u = parseURL(s);
    if (!u)
      throw new Error(
        `URL parse error during conversion from string: parse ${JSON.stringify(s)}: invalid URI for request`,
      );
    return u;
  });
  env.registerFunction('isURL(string): bool', (s: string) => parseURL(s) !== undefined);
  env.registerFunction('URL.getScheme(): string', (u: URL_) => u.scheme);
  env.registerFunction('URL.getHost(): string', (u: URL_) => u.host.slice(u.host.lastIndexOf('@') + 1));
  env.registerFunction('URL.getHostname(): string', hostname);
  env.registerFunction('URL.getPort(): string', port);
  env.registerFunction('URL.getEscapedPath(): string', escapedPath);
  env.registerFunction('URL.getQuery(): map<string, list<string>>', query);
}
