// The server's own etcd member (`skiff server --cluster-init`, or joining
// with `--server URL --token T`), as k3s's embedded etcd: Debian's etcd
// binary (etcd-server), run and supervised by the server, with its data
// under <data-dir>/server/db/etcd and client and peer TLS from the cluster
// CA (certificates under server/tls/etcd/, k3s's names). The server is its
// member's only client, over TLS with a client certificate; members talk
// to each other over mutual TLS.
//
// etcd runs under a small sh wrapper that holds a pipe from the server: when
// the server exits, even by SIGKILL, the pipe closes and the wrapper stops
// etcd, so a member never outlives its server (k3s runs etcd in its own
// process for the same effect).
//
// Joining: the new server asks the cluster's etcd to add it as a member
// (MemberAdd, with the client certificate it made from the cluster's CA,
// which it got with the token), then starts its member with
// --initial-cluster-state existing and the member list etcd returned. A
// restarted member finds its data dir and rejoins on its own.

import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { ensureLeaf, type KeyPair } from '../pki/pki.ts';
import { hostAddress } from '../util/host-address.ts';
import type { Log } from '../util/log.ts';

const ETCD_BIN = process.env['SKIFF_ETCD_BIN'] ?? '/usr/bin/etcd';
const ETCDCTL_BIN = process.env['SKIFF_ETCDCTL_BIN'] ?? 'etcdctl';
export const DEFAULT_ETCD_CLIENT_PORT = 2379;
export const DEFAULT_ETCD_PEER_PORT = 2380;

export interface EtcdTLS {
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
}

export interface EmbeddedEtcdOptions {
  dataDir: string;
  /** The member's name: the node name (unique per server). */
  name: string;
  /** Where other members and this server reach the member. */
  advertiseIP: string;
  clientPort?: number;
  peerPort?: number;
  ca: KeyPair;
  /** A joining member: the cluster's members as `name=peerURL`, this one included. */
  initialCluster?: string;
  log: Log;
  startTimeoutMs?: number;
  /** --cluster-reset: etcd's --force-new-cluster, the member forgets its peers. */
  forceNewCluster?: boolean;
}

export interface EmbeddedEtcd {
  readonly clientURL: string;
  readonly peerURL: string;
  /** The server's client credentials for its member. */
  readonly tls: EtcdTLS;
  /** Stops the member (SIGTERM through the wrapper) and waits for it. */
  stop(): Promise<void>;
}

export const etcdDataDir = (dataDir: string): string => join(dataDir, 'server', 'db', 'etcd');

/** The address the member advertises: --advertise-address, else this machine's (not loopback). */
export const memberAdvertiseIP = (advertise: string | undefined): string =>
  advertise && advertise !== '127.0.0.1' ? advertise : (hostAddress() ?? '127.0.0.1');

/**
 * --cluster-reset --cluster-reset-restore-path on embedded etcd: the
 * snapshot becomes this member's data, as a cluster of one (etcdctl
 * snapshot restore). The old data dir is kept beside it.
 */
export function restoreEtcdSnapshot(
  file: string,
  dataDir: string,
  name: string,
  peerURL: string,
  now = new Date(),
): { kept?: string } {
  if (!existsSync(file)) throw new Error(`--cluster-reset-restore-path ${file}: no such file`);
  const target = etcdDataDir(dataDir);
  const fresh = `${target}.restoring`;
  rmSync(fresh, { recursive: true, force: true });
  try {
    execFileSync(
      ETCDCTL_BIN,
      [
        'snapshot',
        'restore',
        file,
        `--name=${name}`,
        `--data-dir=${fresh}`,
        `--initial-cluster=${name}=${peerURL}`,
        `--initial-advertise-peer-urls=${peerURL}`,
        '--initial-cluster-token=skiff-etcd',
      ],
      { env: { ...process.env, ETCDCTL_API: '3' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
  } catch (err) {
    const e = err as { stderr?: Buffer; code?: string };
    if (e.code === 'ENOENT')
      throw new Error('etcdctl not found: install it with `apt-get install etcd-client`');
    throw new Error(`etcdctl snapshot restore failed: ${e.stderr?.toString() ?? String(err)}`);
  }
  let kept: string | undefined;
  if (existsSync(target)) {
    kept = `${target}.before-restore-${Math.floor(now.getTime() / 1000)}`;
    renameSync(target, kept);
  }
  renameSync(fresh, target);
  return kept ? { kept } : {};
}

const url = (ip: string, port: number) => `https://${ip.includes(':') ? `[${ip}]` : ip}:${port}`;

/** The member's certificates from the cluster CA (made once, reissued near expiry as every leaf). */
export function etcdCertificates(dataDir: string, ca: KeyPair, advertiseIP: string) {
  const dir = join(dataDir, 'server', 'tls', 'etcd');
  const ips = [...new Set([advertiseIP, '127.0.0.1'])];
  const server = ensureLeaf(ca, dir, 'server-client', {
    commonName: 'etcd-server',
    usage: 'both',
    dnsNames: ['localhost'],
    ips,
  });
  const peer = ensureLeaf(ca, dir, 'peer-server-client', {
    commonName: 'etcd-peer',
    usage: 'both',
    dnsNames: ['localhost'],
    ips,
  });
  const client = ensureLeaf(ca, dir, 'client', { commonName: 'etcd-client', usage: 'client' });
  return { server, peer, client };
}

/** Whether this data dir already holds a member (a restart, not a first start). */
export const hasEtcdMember = (dataDir: string): boolean => existsSync(join(etcdDataDir(dataDir), 'member'));

export async function startEmbeddedEtcd(opts: EmbeddedEtcdOptions): Promise<EmbeddedEtcd> {
  const clientPort = opts.clientPort ?? DEFAULT_ETCD_CLIENT_PORT;
  const peerPort = opts.peerPort ?? DEFAULT_ETCD_PEER_PORT;
  const clientURL = url(opts.advertiseIP, clientPort);
  const peerURL = url(opts.advertiseIP, peerPort);
  const certs = etcdCertificates(opts.dataDir, opts.ca, opts.advertiseIP);
  const data = etcdDataDir(opts.dataDir);
  mkdirSync(data, { recursive: true, mode: 0o700 });
  const listenClient = [...new Set([clientURL, url('127.0.0.1', clientPort)])].join(',');
  const args = [
    `--name=${opts.name}`,
    `--data-dir=${data}`,
    `--listen-client-urls=${listenClient}`,
    `--advertise-client-urls=${clientURL}`,
    `--listen-peer-urls=${peerURL}`,
    `--initial-advertise-peer-urls=${peerURL}`,
    `--initial-cluster=${opts.initialCluster ?? `${opts.name}=${peerURL}`}`,
    `--initial-cluster-state=${opts.initialCluster ? 'existing' : 'new'}`,
    '--initial-cluster-token=skiff-etcd',
    `--cert-file=${certs.server.certFile}`,
    `--key-file=${certs.server.keyFile}`,
    `--trusted-ca-file=${opts.ca.certFile}`,
    '--client-cert-auth',
    `--peer-cert-file=${certs.peer.certFile}`,
    `--peer-key-file=${certs.peer.keyFile}`,
    `--peer-trusted-ca-file=${opts.ca.certFile}`,
    '--peer-client-cert-auth',
    '--logger=zap',
    '--log-outputs=stderr',
    ...(opts.forceNewCluster ? ['--force-new-cluster'] : []),
  ];
  // The wrapper: etcd in the background; when stdin (the server's pipe)
  // closes, or on SIGTERM, it stops etcd and waits for it.
  const script =
    'etcd_bin=$1; shift; "$etcd_bin" "$@" </dev/null & pid=$!; trap \'kill -TERM $pid\' TERM; read _; kill -TERM $pid 2>/dev/null; wait $pid';
  const proc: ChildProcess = spawn('/bin/sh', ['-c', script, 'sh', ETCD_BIN, ...args], {
    stdio: ['pipe', 'ignore', 'pipe'],
  });
  let tail = '';
  proc.stderr?.on('data', (d: Buffer) => {
    tail = (tail + d.toString()).slice(-4000);
  });
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  let running = true;
  void exited.then((code) => {
    running = false;
    if (!stopping) opts.log.error('the embedded etcd member exited', { code, output: tail.slice(-1500) });
  });
  let stopping = false;
  const tls: EtcdTLS = {
    ca: Buffer.from(opts.ca.cert),
    cert: Buffer.from(certs.client.cert),
    key: Buffer.from(certs.client.key),
  };
  opts.log('starting the embedded etcd member', { name: opts.name, clientURL, peerURL, dataDir: data });
  const deadline = Date.now() + (opts.startTimeoutMs ?? 60_000);
  for (;;) {
    if (!running) throw new Error(`etcd exited while starting:\n${tail.slice(-2000)}`);
    if (await healthy(url('127.0.0.1', clientPort), tls)) break;
    if (Date.now() > deadline) {
      proc.stdin?.end();
      throw new Error(`etcd did not become healthy in time:\n${tail.slice(-2000)}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  opts.log('embedded etcd member healthy', { name: opts.name, clientURL });
  return {
    clientURL,
    peerURL,
    tls,
    async stop() {
      if (!running) return;
      stopping = true;
      proc.stdin?.end();
      await exited;
    },
  };
}

/** etcd's /health over TLS with the client certificate. */
function healthy(base: string, tls: EtcdTLS): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(
      `${base}/health`,
      { ca: tls.ca, cert: tls.cert, key: tls.key, timeout: 2_000 },
      (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve(res.statusCode === 200 && /"health":\s*"true"/.test(body)));
      },
    );
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

/**
 * Adds a member to the cluster at `clientURLs` (MemberAdd), unless one with
 * this peer URL is there already (a join that failed halfway). Returns the
 * --initial-cluster the new member starts with.
 */
export async function addEtcdMember(
  clientURLs: string[],
  tls: EtcdTLS,
  name: string,
  peerURL: string,
  log: Log,
): Promise<string> {
  const { Etcd3 } = await import('etcd3');
  // A client per attempt: the etcd3 client's circuit breaker stays open after failures.
  const withClient = async <T>(fn: (c: InstanceType<typeof Etcd3>) => Promise<T>): Promise<T> => {
    const client = new Etcd3({
      hosts: clientURLs,
      credentials: { rootCertificate: tls.ca, privateKey: tls.key, certChain: tls.cert },
    });
    try {
      return await fn(client);
    } finally {
      client.close();
    }
  };
  const { members } = await withClient((c) => c.cluster.memberList({}));
  if (!members.some((m) => m.peerURLs.includes(peerURL))) {
    // etcd refuses a new member while one added just before is not yet
    // connected ("unhealthy cluster"): wait for it, as k3s retries.
    for (let attempt = 1; ; attempt++) {
      try {
        await withClient((c) => c.cluster.memberAdd({ peerURLs: [peerURL] }));
        break;
      } catch (err) {
        const msg = String((err as Error)?.message ?? err);
        if (!/unhealthy cluster|not enough started members|circuit breaker/i.test(msg) || attempt >= 60)
          throw err;
        log('etcd cannot add a member yet; retrying', { error: msg, attempt });
        await new Promise((r) => setTimeout(r, 1_000));
      }
    }
    log('added this server as an etcd member', { name, peerURL });
  }
  const after = (await withClient((c) => c.cluster.memberList({}))).members;
  // The new member has no name until it starts: it is this one.
  return after
    .map((m) => `${m.peerURLs.includes(peerURL) ? name : m.name}=${m.peerURLs.join(',')}`)
    .filter((entry) => !entry.startsWith('='))
    .join(',');
}

/** The cluster's client URLs, from any member. */
export async function etcdClientURLs(clientURLs: string[], tls: EtcdTLS): Promise<string[]> {
  const { Etcd3 } = await import('etcd3');
  const client = new Etcd3({
    hosts: clientURLs,
    credentials: { rootCertificate: tls.ca, privateKey: tls.key, certChain: tls.cert },
  });
  try {
    const { members } = await client.cluster.memberList({});
    return members.flatMap((m) => m.clientURLs);
  } finally {
    client.close();
  }
}
