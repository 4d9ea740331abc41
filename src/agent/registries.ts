// The node's registry configuration: k3s's registries.yaml
// (https://docs.k3s.io/installation/private-registry), read from
// `--private-registry` (default /etc/skiff/registries.yaml as root, as k3s
// reads /etc/rancher/k3s/registries.yaml), checked here with errors that name
// the file and the key, and turned into what containerd reads:
//
//   mirrors:                      # per registry host, as image names spell it
//     docker.io:
//       endpoint: ["https://mirror.example:5000", "http://10.0.0.1:5000"]
//   configs:                      # per endpoint host (or registry host)
//     mirror.example:5000:
//       auth: { username: u, password: p }     # or auth: base64(u:p), or identitytoken
//       tls: { ca_file: ..., cert_file: ..., key_file: ..., insecure_skip_verify: false }
//
// Mirrors and TLS go to containerd's hosts.toml, one file per registry host
// under config_path (`certs.d/<host>/hosts.toml`, containerd docs/hosts.md),
// which containerd reads at every pull; auth goes to the CRI plugin's
// `registry.configs."<host>".auth` in config.toml (hosts.toml has no
// credentials), which containerd 1.6 consults by the host of each endpoint it
// tries (pkg/cri/server/image_pull.go registryHosts), so credentials are keyed
// by endpoint host, as in k3s.
//
// The node's offline mirror (src/agent/mirror.ts) is one mirror among these.
// For the public registries upstream manifests name (PUBLIC_REGISTRIES), it is
// tried first, then the user's endpoints for that registry, in order; and it
// stays the registry's default endpoint too (containerd's `server`), so
// nothing leaves the machine (a closed port there instead would turn the
// mirror's clear "<ref>: not found" into "connection refused"):
//   - an airgap image is served locally, identical to what was imported, even
//     when the user's mirror is down (imagePullPolicy Always pulls it often);
//   - any other image gets the offline mirror's 404, and containerd moves on
//     to the user's mirrors (containerd's resolver goes on after a 404).
// This is the place k3s gives its embedded registry mirror (first, before the
// configured endpoints). `--offline-mirror=false` removes it: public
// registries are then reached as registries.yaml says, or directly.
//
// Every other registry falls back to its own default endpoint
// (https://<host>, registry-1.docker.io for docker.io) after its mirrors,
// as containerd always does, unless `--disable-default-registry-endpoint`
// (k3s's flag): then its last mirror is also its `server`, since containerd
// 1.6 always appends a default host and has no way to say "none".
//
// What Debian's containerd 1.6 cannot do itself:
//   - `rewrite` (k3s's containerd fork reads it from hosts.toml; upstream
//     1.6 does not): applied by a local proxy in front of each endpoint of
//     that mirror (src/agent/rewrite-proxy.ts);
//   - the `*` wildcard (containerd 1.7's `_default` hosts dir): refused here
//     rather than written and silently ignored.

import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';

export interface RegistryMirror {
  /** Endpoints to try in order: `https://host:port[/path]`, or `host:port` (https; http for localhost). */
  endpoint: string[];
  /** Regular expression → replacement on the repository name (k3s); applied by src/agent/rewrite-proxy.ts. */
  rewrite?: Record<string, string>;
}

export interface RegistryAuth {
  username?: string;
  password?: string;
  /** base64 of `username:password`. */
  auth?: string;
  identitytoken?: string;
}

export interface RegistryTLS {
  ca_file?: string;
  cert_file?: string;
  key_file?: string;
  insecure_skip_verify?: boolean;
}

export interface RegistryConfig {
  auth?: RegistryAuth;
  tls?: RegistryTLS;
}

export interface Registries {
  mirrors: Record<string, RegistryMirror>;
  configs: Record<string, RegistryConfig>;
}

export const EMPTY_REGISTRIES: Registries = { mirrors: {}, configs: {} };

/** A node's registry flags, as `skiff server` and `skiff agent` take them. */
export interface NodeRegistryOptions {
  /** `--private-registry`'s registries.yaml, loaded (loadRegistries). */
  registries?: Registries;
  /** `--disable-default-registry-endpoint` (k3s): registries with mirrors are never asked directly. */
  disableDefaultEndpoint?: boolean;
  /** `--disable-offline-mirror` sets this false: the public registries no longer go to the node's offline mirror. */
  offlineMirror?: boolean;
}

/** k3s reads /etc/rancher/k3s/registries.yaml; Skiff's is /etc/skiff/registries.yaml (~/.skiff/ when not root). */
export function defaultRegistriesFile(): string {
  return process.getuid?.() === 0
    ? '/etc/skiff/registries.yaml'
    : join(process.env.HOME ?? '.', '.skiff', 'registries.yaml');
}

/** A registries.yaml that cannot be used, with the file and key in its message. */
export class RegistriesError extends Error {}

/**
 * Reads and checks a registries.yaml. A missing file is no configuration
 * when it is the default one, and an error when it was named (`required`).
 */
export function loadRegistries(file: string, opts: { required?: boolean } = {}): Registries {
  if (!existsSync(file)) {
    if (opts.required) throw new RegistriesError(`${file}: no such file`);
    return EMPTY_REGISTRIES;
  }
  return parseRegistries(readFileSync(file, 'utf8'), file);
}

const AUTH_KEYS = ['username', 'password', 'auth', 'identitytoken'] as const;
const TLS_KEYS = ['ca_file', 'cert_file', 'key_file', 'insecure_skip_verify'] as const;
/** A registry host as image names spell it: a DNS name or address, with an optional port. */
const HOST =
  /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:.]+\])(?::[0-9]{1,5})?$/;

/** Parses registries.yaml text; `file` names it in errors. */
export function parseRegistries(text: string, file: string): Registries {
  const fail = (key: string, why: string): never => {
    throw new RegistriesError(`${file}: ${key ? `${key}: ` : ''}${why}`);
  };
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    return fail('', `not valid YAML: ${(err as Error).message}`);
  }
  if (doc === null || doc === undefined) return EMPTY_REGISTRIES;
  const top = mapping(doc, '', fail);
  unknownKeys(top, ['mirrors', 'configs'], '', fail);

  const mirrors: Record<string, RegistryMirror> = {};
  for (const [host, value] of Object.entries(mapping(top.mirrors ?? {}, 'mirrors', fail))) {
    const key = `mirrors.${host}`;
    registryHost(host, key, fail);
    const m = mapping(value ?? {}, key, fail);
    unknownKeys(m, ['endpoint', 'rewrite'], key, fail);
    const endpoints = m.endpoint ?? [];
    if (!Array.isArray(endpoints) || endpoints.length === 0) {
      fail(`${key}.endpoint`, 'must be a list of at least one endpoint URL');
    }
    const endpoint = (endpoints as unknown[]).map((e, i) => {
      const ekey = `${key}.endpoint[${i}]`;
      if (typeof e !== 'string') return fail(ekey, 'must be a string');
      endpointURL(e, ekey, fail);
      return e;
    });
    const mirror: RegistryMirror = { endpoint };
    if (m.rewrite !== undefined) {
      const rewrite: Record<string, string> = {};
      for (const [pattern, replacement] of Object.entries(mapping(m.rewrite, `${key}.rewrite`, fail))) {
        const rkey = `${key}.rewrite.${JSON.stringify(pattern)}`;
        if (typeof replacement !== 'string') fail(rkey, 'the replacement must be a string');
        try {
          new RegExp(pattern);
        } catch (err) {
          fail(rkey, `not a regular expression: ${(err as Error).message}`);
        }
        rewrite[pattern] = replacement as string;
      }
      mirror.rewrite = rewrite;
    }
    mirrors[host] = mirror;
  }

  const configs: Record<string, RegistryConfig> = {};
  for (const [host, value] of Object.entries(mapping(top.configs ?? {}, 'configs', fail))) {
    const key = `configs.${host}`;
    registryHost(host, key, fail);
    const c = mapping(value ?? {}, key, fail);
    unknownKeys(c, ['auth', 'tls'], key, fail);
    const config: RegistryConfig = {};
    if (c.auth !== undefined) config.auth = registryAuth(c.auth, `${key}.auth`, fail);
    if (c.tls !== undefined) config.tls = registryTLS(c.tls, `${key}.tls`, fail);
    configs[host] = config;
  }
  return { mirrors, configs };
}

type Fail = (key: string, why: string) => never;

function mapping(v: unknown, key: string, fail: Fail): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return fail(key, 'must be a mapping');
  return v as Record<string, unknown>;
}

function unknownKeys(m: Record<string, unknown>, known: readonly string[], key: string, fail: Fail): void {
  for (const k of Object.keys(m)) {
    if (!known.includes(k)) fail(key ? `${key}.${k}` : k, `unknown key (expected ${known.join(', ')})`);
  }
}

function registryHost(host: string, key: string, fail: Fail): void {
  if (host === '*') {
    fail(key, "the '*' wildcard needs containerd 1.7's _default hosts dir; name each registry instead");
  }
  if (!HOST.test(host))
    fail(key, 'must be a registry host name, with an optional :port (no scheme, no path)');
}

function endpointURL(endpoint: string, key: string, fail: Fail): URL {
  let url: URL;
  try {
    url = new URL(endpoint.includes('://') ? endpoint : `scheme-less://${endpoint}`);
  } catch {
    return fail(key, `not a URL: ${JSON.stringify(endpoint)}`);
  }
  if (!['http:', 'https:', 'scheme-less:'].includes(url.protocol)) {
    fail(key, `the scheme must be http or https, not ${url.protocol.slice(0, -1)}`);
  }
  if (!url.host || url.search || url.hash || url.username) {
    fail(key, `must be scheme://host[:port][/path], not ${JSON.stringify(endpoint)}`);
  }
  return url;
}

function registryAuth(v: unknown, key: string, fail: Fail): RegistryAuth {
  const m = mapping(v, key, fail);
  unknownKeys(m, AUTH_KEYS, key, fail);
  const auth: RegistryAuth = {};
  for (const k of AUTH_KEYS) {
    if (m[k] === undefined) continue;
    if (typeof m[k] !== 'string') fail(`${key}.${k}`, 'must be a string');
    auth[k] = m[k] as string;
  }
  if (auth.auth !== undefined && !Buffer.from(auth.auth, 'base64').toString('utf8').includes(':')) {
    fail(`${key}.auth`, 'must be base64 of username:password');
  }
  if ((auth.username === undefined) !== (auth.password === undefined)) {
    fail(key, 'username and password go together');
  }
  if (Object.keys(auth).length === 0) fail(key, `needs one of ${AUTH_KEYS.join(', ')}`);
  return auth;
}

function registryTLS(v: unknown, key: string, fail: Fail): RegistryTLS {
  const m = mapping(v, key, fail);
  unknownKeys(m, TLS_KEYS, key, fail);
  const tls: RegistryTLS = {};
  for (const k of ['ca_file', 'cert_file', 'key_file'] as const) {
    const path = m[k];
    if (path === undefined) continue;
    if (typeof path !== 'string' || path === '') fail(`${key}.${k}`, 'must be a file path');
    if (!existsSync(path as string)) fail(`${key}.${k}`, `${path}: no such file`);
    tls[k] = path as string;
  }
  if ((tls.cert_file === undefined) !== (tls.key_file === undefined)) {
    fail(key, 'cert_file and key_file go together (the client certificate and its key)');
  }
  if (m.insecure_skip_verify !== undefined) {
    if (typeof m.insecure_skip_verify !== 'boolean')
      fail(`${key}.insecure_skip_verify`, 'must be true or false');
    tls.insecure_skip_verify = m.insecure_skip_verify as boolean;
  }
  return tls;
}

// ---- hosts.toml ------------------------------------------------------------

/** One `[host."<url>"]` of hosts.toml, or its root `server`. */
export interface HostEndpoint {
  /** Normalized: scheme://host[:port]/v2, or the user's own path (then overridePath). */
  url: string;
  overridePath?: boolean;
  tls?: RegistryTLS;
}

/** What containerd's hosts.toml for one registry says. */
export interface RegistryHosts {
  /** The registry's default endpoint, tried last (containerd's `server`). */
  server: HostEndpoint;
  /** Tried first, in order, for pulls and resolves. */
  hosts: HostEndpoint[];
}

export interface RegistryHostsOptions {
  /** The offline mirror's endpoint (http://127.0.0.1:<port>), when the node has one. */
  offlineMirror?: string;
  /** The registries the offline mirror stands in for (PUBLIC_REGISTRIES). */
  offlineRegistries?: readonly string[];
  /** k3s's --disable-default-registry-endpoint, for the registries in `mirrors`. */
  disableDefaultEndpoint?: boolean;
}

/** Every registry's hosts.toml, by registry host, per the rules in this file's header. */
export function registryHosts(
  registries: Registries,
  opts: RegistryHostsOptions = {},
): Map<string, RegistryHosts> {
  const offline = opts.offlineMirror ? new Set(opts.offlineRegistries ?? []) : new Set<string>();
  const names = new Set([...offline, ...Object.keys(registries.mirrors), ...Object.keys(registries.configs)]);
  const out = new Map<string, RegistryHosts>();
  for (const registry of [...names].sort()) {
    const withTLS = (e: HostEndpoint): HostEndpoint => {
      const tls = configFor(registries, new URL(e.url).host, registry)?.tls;
      return tls ? { ...e, tls } : e;
    };
    const defaultEndpoint = withTLS(normalizeEndpoint(registry, true));
    const mirrors = (registries.mirrors[registry]?.endpoint ?? []).map((e) => withTLS(normalizeEndpoint(e)));
    const hosts: HostEndpoint[] = [];
    const seen = new Set<string>();
    const add = (e: HostEndpoint) => {
      if (!seen.has(e.url)) hosts.push(e);
      seen.add(e.url);
    };
    let server = defaultEndpoint;
    if (offline.has(registry) && opts.offlineMirror) {
      server = normalizeEndpoint(opts.offlineMirror);
      add(server);
      for (const m of mirrors) add(m);
    } else {
      for (const m of mirrors) add(m);
      const last = hosts[hosts.length - 1];
      if (last && opts.disableDefaultEndpoint) {
        // No default endpoint: the last mirror stands in as containerd's `server`.
        server = last;
        if (hosts.length > 1) hosts.pop();
      } else if (last?.url === server.url) {
        // The default endpoint named as the last mirror is the default endpoint itself (as k3s).
        hosts.pop();
      }
    }
    // Nothing to say: containerd's own defaults do the same.
    if (hosts.length === 0 && !server.tls && !server.overridePath) continue;
    // containerd 1.6 ignores a `server` that no [host] names, so a registry
    // with only TLS settings names its default endpoint as a host too.
    if (hosts.length === 0) hosts.push(server);
    out.set(registry, { server, hosts });
  }
  return out;
}

/** The config for an endpoint host; docker.io's default endpoint also answers to docker.io's. */
function configFor(
  registries: Registries,
  endpointHost: string,
  registry: string,
): RegistryConfig | undefined {
  return (
    registries.configs[endpointHost] ??
    (endpointHost === 'registry-1.docker.io' && registry === 'docker.io'
      ? registries.configs['docker.io']
      : undefined)
  );
}

const isLocalhost = (host: string) => /^(localhost|127(?:\.\d{1,3}){3}|\[::1\])(?::\d+)?$/.test(host);

/**
 * An endpoint as containerd uses it (containerd's remotes/docker/config
 * hosts.go, as k3s's normalizeEndpointAddress): https unless given, http for
 * localhost on a port other than 443; docker.io is registry-1.docker.io; path
 * /v2 unless a path of the endpoint's own is given (override_path).
 */
export function normalizeEndpoint(endpoint: string, isRegistryName = false): HostEndpoint {
  const url = new URL(endpoint.includes('://') ? endpoint : `scheme-less://${endpoint}`);
  let scheme = url.protocol.slice(0, -1);
  if (scheme === 'scheme-less')
    scheme = isLocalhost(url.host) && url.port && url.port !== '443' ? 'http' : 'https';
  const host = isRegistryName && url.host === 'docker.io' ? 'registry-1.docker.io' : url.host;
  const path = url.pathname.replace(/\/+$/, '');
  if (path === '' || path === '/v2') return { url: `${scheme}://${host}/v2` };
  return { url: `${scheme}://${host}${path}`, overridePath: true };
}

const toml = (s: string) => JSON.stringify(s);

/** First line of every hosts.toml Skiff writes: what it may remove when the config changes. */
export const HOSTS_TOML_HEADER =
  '# Written by Skiff (src/agent/registries.ts); rewritten at every agent start.';

/** hosts.toml for one registry (containerd docs/hosts.md). */
export function renderHostsToml(r: RegistryHosts): string {
  const lines = [HOSTS_TOML_HEADER, `server = ${toml(r.server.url)}`, ...endpointLines(r.server, '')];
  for (const h of r.hosts) {
    lines.push(
      '',
      `[host.${toml(h.url)}]`,
      '  capabilities = ["pull", "resolve"]',
      ...endpointLines(h, '  '),
    );
  }
  return `${lines.join('\n')}\n`;
}

function endpointLines(e: HostEndpoint, indent: string): string[] {
  const lines: string[] = [];
  if (e.overridePath) lines.push(`${indent}override_path = true`);
  if (e.tls?.ca_file) lines.push(`${indent}ca = [${toml(e.tls.ca_file)}]`);
  if (e.tls?.cert_file && e.tls.key_file) {
    lines.push(`${indent}client = [[${toml(e.tls.cert_file)}, ${toml(e.tls.key_file)}]]`);
  }
  if (e.tls?.insecure_skip_verify) lines.push(`${indent}skip_verify = true`);
  return lines;
}

/**
 * Writes certs.d/<host>/hosts.toml for every registry, and removes the
 * hosts.toml files an earlier start wrote (by their header) that the config
 * no longer has. A directory the user or another tool made stays.
 */
export async function writeRegistryHosts(
  registryConfigDir: string,
  hosts: Map<string, RegistryHosts>,
): Promise<void> {
  await mkdir(registryConfigDir, { recursive: true });
  for (const dir of await readdir(registryConfigDir)) {
    if (hosts.has(dir)) continue;
    const file = join(registryConfigDir, dir, 'hosts.toml');
    const text = await readFile(file, 'utf8').catch(() => '');
    if (text.startsWith(HOSTS_TOML_HEADER) || text.startsWith('# Written by Skiff')) {
      await rm(join(registryConfigDir, dir), { recursive: true, force: true });
    }
  }
  for (const [host, r] of hosts) {
    // containerd looks a host:port up as host_port_ only on Windows; on Linux the dir is the host itself.
    await mkdir(join(registryConfigDir, host), { recursive: true });
    await writeFile(join(registryConfigDir, host, 'hosts.toml'), renderHostsToml(r));
  }
}

// ---- credentials -------------------------------------------------------------

/**
 * The CRI plugin's per-host credentials for config.toml (containerd 1.6
 * reads them by the host of the endpoint it is about to ask). docker.io's
 * also go to registry-1.docker.io, the host its default endpoint really is.
 */
export function criRegistryAuthToml(registries: Registries): string {
  const cri = 'plugins."io.containerd.grpc.v1.cri"';
  const out: string[] = [];
  for (const [host, config] of Object.entries(registries.configs).sort(([a], [b]) => a.localeCompare(b))) {
    if (!config.auth) continue;
    const hostsFor =
      host === 'docker.io' && !registries.configs['registry-1.docker.io']
        ? [host, 'registry-1.docker.io']
        : [host];
    for (const h of hostsFor) {
      out.push('', `[${cri}.registry.configs.${toml(h)}.auth]`);
      for (const k of AUTH_KEYS) {
        const v = config.auth[k];
        if (v !== undefined) out.push(`  ${k} = ${toml(v)}`);
      }
    }
  }
  return out.length > 0 ? `${out.join('\n')}\n` : '';
}
