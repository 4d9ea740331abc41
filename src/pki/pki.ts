// The cluster's PKI: a CA, the apiserver's serving certificate, and client
// certificates (the admin's, later the kubelets'). Made with the openssl
// command (Debian's openssl package), which every Debian machine has: it
// keeps X.509 and ASN.1 out of our code and out of our dependencies.
//
// Keys are ECDSA P-256, like k3s. Certificates are written once and reused
// on restart; the serving certificate is remade when its SANs no longer
// cover this machine's addresses.

import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';

export interface KeyPair {
  cert: string;
  key: string;
  certFile: string;
  keyFile: string;
}

export interface ClientIdentity {
  /** The user name: the certificate's CN. */
  user: string;
  /** The groups: the certificate's O entries. */
  groups: string[];
}

function openssl(args: string[], input?: string): string {
  try {
    return execFileSync('openssl', args, { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { stderr?: string; code?: string };
    if (e.code === 'ENOENT') throw new Error('openssl not found: install it with `apt-get install openssl`');
    throw new Error(`openssl ${args[0]} failed: ${e.stderr ?? String(err)}`);
  }
}

const load = (certFile: string, keyFile: string): KeyPair => ({
  cert: readFileSync(certFile, 'utf8'),
  key: readFileSync(keyFile, 'utf8'),
  certFile,
  keyFile,
});

/** Loads the CA in dir, creating it on first use. */
export function ensureCA(dir: string, commonName = 'skiff-ca'): KeyPair {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const certFile = join(dir, 'ca.crt');
  const keyFile = join(dir, 'ca.key');
  if (!existsSync(certFile) || !existsSync(keyFile)) {
    openssl([
      'req',
      '-x509',
      '-new',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      keyFile,
      '-out',
      certFile,
      '-days',
      '3650',
      '-subj',
      `/CN=${commonName}@${Math.floor(Date.now() / 1000)}`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,digitalSignature,keyEncipherment,keyCertSign',
    ]);
  }
  return load(certFile, keyFile);
}

export interface LeafOptions {
  commonName: string;
  organizations?: string[];
  dnsNames?: string[];
  ips?: string[];
  usage: 'server' | 'client' | 'both';
  days?: number;
}

/** Issues a certificate signed by ca into dir/<name>.crt and .key, unless a valid one is there. */
export function ensureLeaf(ca: KeyPair, dir: string, name: string, opts: LeafOptions): KeyPair {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  if (existsSync(certFile) && existsSync(keyFile) && covers(readFileSync(certFile, 'utf8'), ca, opts)) {
    return load(certFile, keyFile);
  }
  const subject = [...(opts.organizations ?? []).map((o) => `/O=${o}`), `/CN=${opts.commonName}`].join('');
  const csr = openssl([
    'req',
    '-new',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    keyFile,
    '-subj',
    subject,
  ]);
  const usages = { server: 'serverAuth', client: 'clientAuth', both: 'serverAuth,clientAuth' }[opts.usage];
  const sans = [...(opts.dnsNames ?? []).map((d) => `DNS:${d}`), ...(opts.ips ?? []).map((ip) => `IP:${ip}`)];
  const extFile = join(dir, `${name}.ext`);
  writeFileSync(
    extFile,
    [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      `extendedKeyUsage=${usages}`,
      ...(sans.length > 0 ? [`subjectAltName=${sans.join(',')}`] : []),
    ].join('\n'),
  );
  try {
    const cert = openssl(
      [
        'x509',
        '-req',
        '-CA',
        ca.certFile,
        '-CAkey',
        ca.keyFile,
        '-set_serial',
        `0x${BigInt(Date.now()).toString(16)}${Math.floor(Math.random() * 0xffff).toString(16)}`,
        '-days',
        String(opts.days ?? 365),
        '-extfile',
        extFile,
      ],
      csr,
    );
    writeFileSync(certFile, cert, { mode: 0o600 });
  } finally {
    rmSync(extFile, { force: true });
  }
  return load(certFile, keyFile);
}

/**
 * Issues a fresh certificate and key signed by ca, kept nowhere: for a
 * joining node, whose key is the node's business once it has it.
 */
export function issueLeaf(ca: KeyPair, opts: LeafOptions): { cert: string; key: string } {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-leaf-'));
  try {
    const { cert, key } = ensureLeaf(ca, dir, 'leaf', opts);
    return { cert, key };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// A certificate is reused when the CA signed it, it is not about to expire,
// and it carries every SAN asked for (the machine may have a new address).
function covers(pem: string, ca: KeyPair, opts: LeafOptions): boolean {
  try {
    const cert = new X509Certificate(pem);
    if (!cert.verify(new X509Certificate(ca.cert).publicKey)) return false;
    // Within 90 days of expiry it is reissued, as k3s renews its leaves at start.
    if (new Date(cert.validTo).getTime() - Date.now() < 90 * 24 * 3600 * 1000) return false;
    const have = new Set((cert.subjectAltName ?? '').split(', '));
    const want = [
      ...(opts.dnsNames ?? []).map((d) => `DNS:${d}`),
      ...(opts.ips ?? []).map((ip) => `IP Address:${normalizeIP(ip)}`),
    ];
    return want.every((s) => have.has(s));
  } catch {
    return false;
  }
}

// X509Certificate prints IPv6 SANs fully expanded and upper-case.
function normalizeIP(ip: string): string {
  if (!ip.includes(':')) return ip;
  const [head = '', tail = ''] = ip.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const fill = ip.includes('::') ? Array(8 - h.length - t.length).fill('0') : [];
  return [...h, ...fill, ...t].map((p) => p.toUpperCase().replace(/^0+(?=.)/, '')).join(':');
}

/** Every address of this machine, for the serving certificate's SANs. */
export function localAddresses(): string[] {
  const out = new Set<string>(['127.0.0.1', '::1']);
  for (const addrs of Object.values(networkInterfaces())) {
    for (const a of addrs ?? []) if (!a.address.startsWith('fe80')) out.add(a.address);
  }
  return [...out];
}

export const localHostname = (): string => hostname();

/** The identity a verified client certificate carries (CN = user, O = groups). */
export function identityOf(
  subject: { CN?: string | string[]; O?: string | string[] } | undefined,
): ClientIdentity {
  const list = (v: string | string[] | undefined) => (v === undefined ? [] : Array.isArray(v) ? v : [v]);
  return { user: list(subject?.CN)[0] ?? '', groups: list(subject?.O) };
}
