// A private registry for tests: Debian's docker-registry (distribution 2.8)
// on a free port, on loopback or inside a test host (a network namespace of
// src/hosts, on every address it has), from a temp config dir, with TLS
// (a CA, a server certificate and a client certificate it requires, made
// here by src/pki) and basic auth (htpasswd; distribution accepts bcrypt
// entries only, which apache2-utils' `htpasswd -B` writes). Never a system
// service: the process is the test's, and goes with it.
//
// pushImage uploads an OCI image over the distribution API itself
// (https://github.com/opencontainers/distribution-spec/blob/main/spec.md#push):
// each blob by POST then PUT ?digest=, then the manifest by tag.

import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ensureCA, ensureLeaf, type KeyPair } from '../../src/pki/pki.ts';

const run = promisify(execFile);

export interface TestRegistry {
  /** `<first address>:<port>` */
  address: string;
  port: number;
  dir: string;
  ca: KeyPair;
  /** The client certificate the registry requires (clientcas). */
  client: KeyPair;
  username: string;
  password: string;
  /** A request to the registry with its TLS (CA and client certificate) and the right credentials. */
  fetch(
    method: string,
    path: string,
    body?: Buffer,
    headers?: Record<string, string>,
  ): Promise<RegistryResponse>;
  /** The same request without credentials. */
  anonymous(method: string, path: string): Promise<RegistryResponse>;
  stop(): Promise<void>;
}

export interface RegistryResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

export async function startTestRegistry(opts: {
  port: number;
  username: string;
  password: string;
  /**
   * A host to run in: its network namespace and its addresses (the server
   * certificate names them all). Default: the machine's loopback.
   */
  host?: { netns: string; ips: string[] };
}): Promise<TestRegistry> {
  const dir = await mkdtemp(join(tmpdir(), 'skiff-e2e-registry-'));
  const ips = opts.host?.ips ?? ['127.0.0.1'];
  const address = `${ips[0]}:${opts.port}`;
  const ca = ensureCA(join(dir, 'pki'), 'skiff-e2e-registry-ca');
  const server = ensureLeaf(ca, join(dir, 'pki'), 'server', {
    commonName: 'skiff-e2e-registry',
    dnsNames: ['localhost'],
    ips,
    usage: 'server',
  });
  const client = ensureLeaf(ca, join(dir, 'pki'), 'client', {
    commonName: 'skiff-e2e-node',
    usage: 'client',
  });
  const htpasswd = join(dir, 'htpasswd');
  await run('htpasswd', ['-Bbc', htpasswd, opts.username, opts.password]);
  const config = join(dir, 'config.yml');
  await writeFile(
    config,
    JSON.stringify({
      version: 0.1,
      log: { level: 'error' },
      storage: { filesystem: { rootdirectory: join(dir, 'data') } },
      http: {
        // In a host, every address of its namespace.
        addr: opts.host ? `0.0.0.0:${opts.port}` : address,
        tls: { certificate: server.certFile, key: server.keyFile, clientcas: [ca.certFile] },
      },
      auth: { htpasswd: { realm: 'skiff-e2e', path: htpasswd } },
    }),
  );
  let output = '';
  // `ip netns exec` execs the registry itself, so the child is the registry.
  const [command, args] = opts.host
    ? ['ip', ['netns', 'exec', opts.host.netns, 'docker-registry', 'serve', config]]
    : ['docker-registry', ['serve', config]];
  const proc: ChildProcess = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stdout?.on('data', (d) => (output += d));
  proc.stderr?.on('data', (d) => (output += d));

  const send = (method: string, path: string, body?: Buffer, headers: Record<string, string> = {}) =>
    new Promise<RegistryResponse>((resolve, reject) => {
      const req = request(
        {
          host: ips[0],
          port: opts.port,
          method,
          path,
          ca: ca.cert,
          cert: client.cert,
          key: client.key,
          headers: { ...headers, ...(body ? { 'Content-Length': String(body.length) } : {}) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
          );
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  const basic = `Basic ${Buffer.from(`${opts.username}:${opts.password}`).toString('base64')}`;

  const stop = async () => {
    if (proc.exitCode === null) {
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      await exited;
    }
    await rm(dir, { recursive: true, force: true });
  };
  // Up when it answers /v2/ over TLS with its 401 challenge.
  for (let i = 0; ; i++) {
    const res = await send('GET', '/v2/').catch(() => undefined);
    if (res?.status === 401) break;
    if (proc.exitCode !== null || i > 300) {
      await stop();
      throw new Error(`docker-registry did not come up on ${address}:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    address,
    port: opts.port,
    dir,
    ca,
    client,
    username: opts.username,
    password: opts.password,
    fetch: (method, path, body, headers = {}) =>
      send(method, path, body, { Authorization: basic, ...headers }),
    anonymous: (method, path) => send(method, path),
    stop,
  };
}

export const sha256 = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** Uploads one blob (monolithic: POST for an upload URL, then PUT ?digest=). */
export async function pushBlob(registry: TestRegistry, repository: string, blob: Buffer): Promise<string> {
  const digest = sha256(blob);
  const start = await registry.fetch('POST', `/v2/${repository}/blobs/uploads/`);
  const location = start.headers.location;
  if (start.status !== 202 || typeof location !== 'string') {
    throw new Error(`blob upload refused: ${start.status} ${start.body}`);
  }
  const url = new URL(location, `https://${registry.address}`);
  url.searchParams.set('digest', digest);
  const put = await registry.fetch('PUT', `${url.pathname}${url.search}`, blob, {
    'Content-Type': 'application/octet-stream',
  });
  if (put.status !== 201) throw new Error(`blob ${digest} not stored: ${put.status} ${put.body}`);
  return digest;
}

/** Uploads a manifest under a tag. */
export async function pushManifest(
  registry: TestRegistry,
  repository: string,
  tag: string,
  manifest: Buffer,
  mediaType: string,
): Promise<void> {
  const res = await registry.fetch('PUT', `/v2/${repository}/manifests/${tag}`, manifest, {
    'Content-Type': mediaType,
  });
  if (res.status !== 201)
    throw new Error(`manifest ${repository}:${tag} not stored: ${res.status} ${res.body}`);
}
