// The server's certificates, as `k3s certificate check|rotate`
// (docs.k3s.io/cli/certificate):
//
// - check: every certificate under <data-dir>/server/tls and the agent's
//   kubeconfigs, with its subject, usages, expiry and status (OK, WARNING
//   within 90 days, EXPIRED).
// - rotate [--service NAME]: leaf certificates reissued in place from the
//   same CA, with the same subject and SANs, for a year; the old files kept
//   in server/tls/rotated-<unix seconds>/. The CA is not touched, so every
//   client that trusts it goes on trusting the new certificates. A running
//   server notices its new serving certificate within seconds and serves
//   it to new connections (connections already open, such as a kubectl
//   watch, carry on): no restart, no downtime. The admin and agent
//   kubeconfigs are rewritten with their new certificates.
// - Warning Events (reason CertificateExpirationWarning, as k3s's) on the
//   server's Node for certificates within 90 days of expiry, at start and
//   daily. k3s reissues leaf certificates within 90 days of expiry at start,
//   and so does ensureLeaf (pki.ts).
//
// k3s-io/k3s#10865: a cluster whose certificates expired after a year. A
// server restart renews its leaves; agents fetch fresh ones at every start.

import { X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { KubeObject } from '../api/meta.ts';
import { rfc3339 } from '../api/meta.ts';
import { kubeconfigYaml } from '../pki/kubeconfig.ts';
import { ensureLeaf, type KeyPair, type LeafOptions } from '../pki/pki.ts';

export const EXPIRY_WARNING_DAYS = 90;
const DAY_MS = 24 * 3600 * 1000;

/** `--service` names (k3s's where they match) and the files each covers in server/tls. */
export const CERTIFICATE_SERVICES: Record<string, string[]> = {
  'api-server': ['serving-kube-apiserver', 'client-kube-apiserver-kubelet'],
  admin: ['client-admin'],
  agent: ['client-agent'],
  // The embedded etcd member's: etcd reads its certificate files again for
  // every new connection, so the member serves the new ones at once.
  etcd: ['etcd/server-client', 'etcd/peer-server-client', 'etcd/client'],
};

/** The kubeconfig (in the data dir) that embeds each client certificate. */
const KUBECONFIGS: Record<string, string> = {
  'client-admin': 'kubeconfig.yaml',
  'client-agent': 'agent-kubeconfig.yaml',
};

export type CertificateStatus = 'OK' | 'WARNING' | 'EXPIRED';

export interface CertificateInfo {
  file: string;
  subject: string;
  usages: string[];
  notAfter: Date;
  daysLeft: number;
  status: CertificateStatus;
  isCA: boolean;
}

function describe(file: string, pem: string, now: Date): CertificateInfo {
  const cert = new X509Certificate(pem);
  const notAfter = new Date(cert.validTo);
  const left = notAfter.getTime() - now.getTime();
  return {
    file,
    subject: cert.subject.replace(/\n/g, ', '),
    usages: (cert.keyUsage ?? []).map(
      (u) => ({ '1.3.6.1.5.5.7.3.1': 'ServerAuth', '1.3.6.1.5.5.7.3.2': 'ClientAuth' })[u] ?? u,
    ),
    notAfter,
    daysLeft: Math.floor(left / DAY_MS),
    status: left <= 0 ? 'EXPIRED' : left < EXPIRY_WARNING_DAYS * DAY_MS ? 'WARNING' : 'OK',
    isCA: cert.ca,
  };
}

/** The client certificate a kubeconfig embeds (client-certificate-data), if any. */
function kubeconfigCert(path: string): string | undefined {
  try {
    const doc = parseYaml(readFileSync(path, 'utf8')) as { users?: { user?: Record<string, string> }[] };
    const data = doc.users?.[0]?.user?.['client-certificate-data'];
    return data ? Buffer.from(data, 'base64').toString('utf8') : undefined;
  } catch {
    return undefined;
  }
}

/** Every certificate of this data dir: the server's, then the agent's kubeconfigs. */
export function checkCertificates(dataDir: string, now = new Date()): CertificateInfo[] {
  const out: CertificateInfo[] = [];
  const tls = join(dataDir, 'server', 'tls');
  // The server's, then the embedded etcd member's (server/tls/etcd).
  for (const dir of [tls, join(tls, 'etcd')]) {
    if (!existsSync(dir)) continue;
    for (const f of readdirSync(dir).sort()) {
      if (!f.endsWith('.crt')) continue;
      out.push(describe(join(dir, f), readFileSync(join(dir, f), 'utf8'), now));
    }
  }
  const agent = join(dataDir, 'agent');
  if (existsSync(agent)) {
    for (const f of readdirSync(agent).sort()) {
      if (!f.endsWith('.kubeconfig')) continue;
      const pem = kubeconfigCert(join(agent, f));
      if (pem) out.push(describe(join(agent, f), pem, now));
    }
  }
  return out;
}

/** What ensureLeaf needs to issue the same certificate again, read from the certificate. */
export function leafOptionsOf(pem: string): LeafOptions {
  const cert = new X509Certificate(pem);
  const fields = cert.subject.split('\n');
  const commonName = fields.find((f) => f.startsWith('CN='))?.slice(3) ?? '';
  const organizations = fields.filter((f) => f.startsWith('O=')).map((f) => f.slice(2));
  const sans = (cert.subjectAltName ?? '').split(', ').filter(Boolean);
  const usages = cert.keyUsage ?? [];
  const server = usages.includes('1.3.6.1.5.5.7.3.1');
  const client = usages.includes('1.3.6.1.5.5.7.3.2');
  return {
    commonName,
    organizations,
    dnsNames: sans.filter((s) => s.startsWith('DNS:')).map((s) => s.slice(4)),
    ips: sans.filter((s) => s.startsWith('IP Address:')).map((s) => s.slice(11).toLowerCase()),
    usage: server && client ? 'both' : server ? 'server' : 'client',
  };
}

/**
 * Reissues the services' leaf certificates (all when none named). Returns
 * the files reissued and where the old ones went.
 */
export function rotateCertificates(
  dataDir: string,
  services: string[] = Object.keys(CERTIFICATE_SERVICES),
  now = new Date(),
): { rotated: string[]; backup: string } {
  for (const s of services) {
    if (!CERTIFICATE_SERVICES[s])
      throw new Error(
        `unknown service ${JSON.stringify(s)}: use one of ${Object.keys(CERTIFICATE_SERVICES).join(', ')}`,
      );
  }
  const tls = join(dataDir, 'server', 'tls');
  const caFile = join(tls, 'ca.crt');
  if (!existsSync(caFile)) throw new Error(`no server certificates in ${tls}: give the server's --data-dir`);
  const ca: KeyPair = {
    cert: readFileSync(caFile, 'utf8'),
    key: readFileSync(join(tls, 'ca.key'), 'utf8'),
    certFile: caFile,
    keyFile: join(tls, 'ca.key'),
  };
  const backup = join(tls, `rotated-${Math.floor(now.getTime() / 1000)}`);
  const rotated: string[] = [];
  for (const name of services.flatMap((s) => CERTIFICATE_SERVICES[s]!)) {
    const crt = join(tls, `${name}.crt`);
    if (!existsSync(crt)) continue;
    const opts = leafOptionsOf(readFileSync(crt, 'utf8'));
    mkdirSync(backup, { recursive: true, mode: 0o700 });
    // The key is made anew too; the new pair is written before the old is moved, then swapped in.
    const fresh = ensureLeaf(ca, dirname(join(backup, 'new', name)), basename(name), opts);
    mkdirSync(dirname(join(backup, name)), { recursive: true, mode: 0o700 });
    renameSync(crt, join(backup, `${name}.crt`));
    if (existsSync(join(tls, `${name}.key`)))
      renameSync(join(tls, `${name}.key`), join(backup, `${name}.key`));
    writeFileSync(join(tls, `${name}.key`), fresh.key, { mode: 0o600 });
    writeFileSync(crt, fresh.cert, { mode: 0o600 });
    rotated.push(crt);
    const kubeconfig = KUBECONFIGS[name] && join(dataDir, KUBECONFIGS[name]);
    if (kubeconfig && existsSync(kubeconfig)) {
      const doc = parseYaml(readFileSync(kubeconfig, 'utf8')) as {
        clusters?: { cluster?: { server?: string } }[];
        users?: { name?: string }[];
      };
      const server = doc.clusters?.[0]?.cluster?.server;
      if (server)
        writeFileSync(
          kubeconfig,
          kubeconfigYaml(server, ca.cert, fresh.cert, fresh.key, doc.users?.[0]?.name),
          {
            mode: 0o600,
          },
        );
    }
  }
  rmSync(join(backup, 'new'), { recursive: true, force: true });
  return { rotated, backup };
}

/**
 * The Warning Event on the server's Node for certificates near expiry, as
 * k3s's (reason CertificateExpirationWarning). Returns the event written,
 * or undefined when every certificate is OK.
 */
export function certificateExpiryEvent(
  certs: CertificateInfo[],
  nodeName: string,
  now = new Date(),
): KubeObject | undefined {
  const near = certs.filter((c) => c.status !== 'OK');
  if (!near.length) return undefined;
  const list = near
    .map((c) => `${c.file}: ${c.status === 'EXPIRED' ? 'expired' : 'expires'} ${c.notAfter.toISOString()}`)
    .join(', ');
  const stamp = rfc3339(now);
  return {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { name: `${nodeName}.cert-expiry.${Math.floor(now.getTime() / 1000)}`, namespace: 'default' },
    involvedObject: { apiVersion: 'v1', kind: 'Node', name: nodeName },
    reason: 'CertificateExpirationWarning',
    message: `Node certificates require attention - restart skiff on this node to trigger automatic rotation, or run skiff certificate rotate: ${list}`,
    type: 'Warning',
    source: { component: 'skiff-server', host: nodeName },
    firstTimestamp: stamp,
    lastTimestamp: stamp,
    count: 1,
  } as KubeObject;
}
