// Joining a cluster with a token (`skiff agent --server URL --token T`), as
// k3s's agent bootstraps TLS (docs.k3s.io/cli/token, "TLS Bootstrapping"):
//
//   1. fetch the CA from <server>/cacerts without verifying the connection
//      (the agent has nothing to verify it with yet);
//   2. refuse to go on unless the CA's sha256 is the token's hash: otherwise
//      this is another cluster, or someone in between, and the secret must
//      not be sent;
//   3. with TLS now verified against that CA, prove the secret (HTTP basic
//      auth node:<secret>) to <server>/v1-skiff/client-kubelet.crt, which
//      answers with a client certificate and key for system:node:<nodeName>;
//      with it goes this node's own password (<data-dir>/agent/node-password,
//      made once), which the server holds the name to from the first join
//      on, as k3s's agents send theirs (K3s-Node-Password);
//   4. write them, with the CA, to <data-dir>/agent/kubelet.kubeconfig: the
//      agent talks to the API with that from then on.
//
// The token format and the server's side are in src/server/node-token.ts.

import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import {
  CACERTS_PATH,
  CLIENT_KUBELET_PATH,
  caHashOf,
  NODE_NAME_HEADER,
  NODE_PASSWORD_HEADER,
  parseToken,
} from '../server/node-token.ts';
import type { Log } from '../util/log.ts';

/** Why a join failed, in words meant for the person running `skiff agent`. */
export class JoinError extends Error {}

export interface JoinOptions {
  server: string;
  token: string;
  nodeName: string;
  dataDir: string;
  log?: Log;
}

interface Answer {
  status: number;
  body: Buffer;
}

function get(
  url: URL,
  tls: { ca?: string; rejectUnauthorized: boolean },
  headers: Record<string, string> = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: url.hostname,
        port: url.port || 443,
        path: url.pathname,
        method: 'GET',
        headers: { 'user-agent': 'skiff-agent/v0', ...headers },
        ...tls,
        // A fresh connection each time: the first one was not verified.
        agent: false,
        timeout: 30_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out after 30 s')));
    req.on('error', reject);
    req.end();
  });
}

const pemBlocks = (text: string, label: RegExp): string[] =>
  [...text.matchAll(/-----BEGIN ([A-Z ]+)-----[\s\S]+?-----END \1-----\n?/g)]
    .filter((m) => label.test(m[1] ?? ''))
    .map((m) => m[0].trimEnd() + '\n');

/**
 * This node's password, from <dataDir>/agent/node-password: made on first
 * use and never changed, since the server refuses the node's name to any
 * other password from then on (k3s keeps it in /etc/rancher/node/password).
 */
export function ensureNodePasswordFile(dataDir: string): string {
  const dir = join(dataDir, 'agent');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const path = join(dir, 'node-password');
  try {
    // 'wx': never overwrite one that exists, even if two processes race here.
    writeFileSync(path, `${randomBytes(24).toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const password = readFileSync(path, 'utf8').trim();
  if (!password) throw new JoinError(`${path} is empty: delete it to make a new node password`);
  return password;
}

/** Joins the cluster; returns the path of the kubeconfig holding the node's new credentials. */
export async function joinCluster(opts: JoinOptions): Promise<string> {
  let token: ReturnType<typeof parseToken>;
  try {
    token = parseToken(opts.token);
  } catch (err) {
    throw new JoinError((err as Error).message);
  }
  let base: URL;
  try {
    base = new URL(opts.server);
  } catch {
    throw new JoinError(`--server ${opts.server} is not a URL (https://HOST:6443)`);
  }
  if (base.protocol !== 'https:') throw new JoinError(`--server must be an https:// URL, not ${opts.server}`);

  // 1 and 2: the CA, trusted only if its hash is the token's.
  let ca: Answer;
  try {
    ca = await get(new URL(CACERTS_PATH, base), { rejectUnauthorized: false });
  } catch (err) {
    throw new JoinError(`cannot reach ${base.origin}: ${(err as Error).message}`);
  }
  if (ca.status !== 200) {
    throw new JoinError(`${base.origin}${CACERTS_PATH} answered HTTP ${ca.status}: is this a Skiff server?`);
  }
  const caPem = ca.body.toString('utf8');
  const served = caHashOf(ca.body);
  if (served !== token.caHash) {
    throw new JoinError(
      `the server's CA certificate does not match the token: the token expects sha256 ${token.caHash}, ` +
        `${base.origin} serves one with sha256 ${served}. This is not the cluster the token belongs to ` +
        `(or someone is in between); the token's secret was not sent.`,
    );
  }
  opts.log?.('cluster CA verified against the token', { server: base.origin, caHash: served });

  // 3: the secret, over TLS verified against that CA, for a node certificate.
  const credentials = Buffer.from(`${token.user}:${token.secret}`).toString('base64');
  let issued: Answer;
  try {
    issued = await get(
      new URL(CLIENT_KUBELET_PATH, base),
      { ca: caPem, rejectUnauthorized: true },
      {
        authorization: `Basic ${credentials}`,
        [NODE_NAME_HEADER]: opts.nodeName,
        [NODE_PASSWORD_HEADER]: ensureNodePasswordFile(opts.dataDir),
      },
    );
  } catch (err) {
    const e = err as Error & { code?: string };
    throw new JoinError(
      /CERT|TLS|SELF_SIGNED|ALTNAME/.test(e.code ?? '')
        ? `the server's certificate does not verify against the cluster CA (${e.message}); use an address ` +
            `the server's certificate names`
        : `cannot reach ${base.origin}: ${e.message}`,
    );
  }
  if (issued.status === 401) {
    throw new JoinError(
      `the server refused the token (401 Unauthorized): its secret is not this cluster's; ` +
        `copy the token again from <server-data-dir>/node-token`,
    );
  }
  if (issued.status === 403) {
    // Another machine holds this node name (or this one was reinstalled): the server says which.
    throw new JoinError(issued.body.toString('utf8').trim());
  }
  if (issued.status !== 200) {
    throw new JoinError(
      `the server did not issue a node certificate (HTTP ${issued.status}): ${issued.body.toString('utf8').trim()}`,
    );
  }
  const bundle = issued.body.toString('utf8');
  const [cert] = pemBlocks(bundle, /CERTIFICATE/);
  const [key] = pemBlocks(bundle, /PRIVATE KEY/);
  if (!cert || !key) throw new JoinError('the server answered without a certificate and key');

  // 4: a kubeconfig like any other kubelet's.
  const dir = join(opts.dataDir, 'agent');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const path = join(dir, 'kubelet.kubeconfig');
  writeFileSync(path, kubeletKubeconfig(base.origin, caPem, cert, key), { mode: 0o600 });
  opts.log?.('joined the cluster', {
    server: base.origin,
    user: `system:node:${opts.nodeName}`,
    kubeconfig: path,
  });
  return path;
}

function kubeletKubeconfig(server: string, caPem: string, certPem: string, keyPem: string): string {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  return `apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority-data: ${b64(caPem)}
    server: ${server}
  name: skiff
contexts:
- context:
    cluster: skiff
    user: kubelet
  name: skiff
current-context: skiff
preferences: {}
users:
- name: kubelet
  user:
    client-certificate-data: ${b64(certPem)}
    client-key-data: ${b64(keyPem)}
`;
}
