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
//      on, as k3s's agents send theirs (K3s-Node-Password); then the same for
//      the node's service proxy (client-kube-proxy.crt, system:kube-proxy)
//      and cluster DNS (client-dns.crt, system:skiff-dns): each component
//      talks to the API as its own least-privilege user;
//   4. write them, with the CA, to <data-dir>/agent/{kubelet,kube-proxy,dns}.kubeconfig:
//      the agent talks to the API with those from then on.
//
// With a bootstrap kubeconfig (`--kubeconfig agent-kubeconfig.yaml`) instead
// of a token, steps 1 and 2 are the kubeconfig's CA, and step 3 proves its
// client certificate (system:skiff-agent) instead of the secret.
//
// The token format and the server's side are in src/server/node-token.ts.

import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import {
  CACERTS_PATH,
  CLIENT_DNS_PATH,
  CLIENT_HOLLOW_FLEET_PATH,
  CLIENT_INGRESS_PATH,
  CLIENT_KUBE_PROXY_PATH,
  CLIENT_KUBELET_PATH,
  CLIENT_NETWORK_POLICY_PATH,
  type ClusterConfig,
  CONFIG_PATH,
  caHashOf,
  HOLLOW_FLEET_USER,
  NODE_NAME_HEADER,
  NODE_PASSWORD_HEADER,
  parseToken,
} from '../server/node-token.ts';
import type { Log } from '../util/log.ts';

/** Why a join failed, in words meant for the person running `skiff agent`. */
export class JoinError extends Error {
  /** The server could not be reached at all (refused, unroutable, timed out): worth trying again. */
  readonly unreachable: boolean;
  constructor(message: string, opts: { unreachable?: boolean } = {}) {
    super(message);
    this.unreachable = opts.unreachable ?? false;
  }
}

export interface JoinOptions {
  server: string;
  /** The join token (K10...::node:<secret>); or `bootstrap`. */
  token?: string;
  /** The credentials of a bootstrap kubeconfig (<server-data-dir>/agent-kubeconfig.yaml). */
  bootstrap?: { caPem: string; cert: string; key: string };
  nodeName: string;
  dataDir: string;
  /** A hollow fleet (--hollow-nodes): one shared credential for all its nodes, and no proxy or DNS. */
  hollowFleet?: boolean;
  log?: Log;
}

export interface Answer {
  status: number;
  body: Buffer;
}

export function get(
  url: URL,
  tls: { ca?: string; rejectUnauthorized: boolean; cert?: string; key?: string },
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

/** The kubeconfigs a join wrote, one per component of the node, each its own user. */
export interface AgentCredentials {
  /** The kubelet's: system:node:<name>, or the hollow fleet's. */
  kubelet: string;
  /** The service proxy's (system:kube-proxy); none for a hollow fleet. */
  proxy?: string;
  /** The cluster DNS server's (system:skiff-dns); none for a hollow fleet. */
  dns?: string;
  /** The NetworkPolicy controller's (system:skiff-network-policy); none for a hollow fleet. */
  networkPolicy?: string;
  /** The ingress controller's (system:skiff-ingress); none for a hollow fleet. */
  ingress?: string;
  /** What the server says every node uses (CONFIG_PATH); none with a plain kubeconfig, or from an older server. */
  config?: ClusterConfig;
}

/** What a join authenticates with: the token's secret, or the bootstrap certificate of agent-kubeconfig.yaml. */
type Proof = { basic: string } | { cert: string; key: string };

/** Joins the cluster; returns the paths of the kubeconfigs holding the node's new credentials. */
export async function joinCluster(opts: JoinOptions): Promise<AgentCredentials> {
  let base: URL;
  try {
    base = new URL(opts.server);
  } catch {
    throw new JoinError(`--server ${opts.server} is not a URL (https://HOST:6443)`);
  }
  if (base.protocol !== 'https:') throw new JoinError(`--server must be an https:// URL, not ${opts.server}`);

  let caPem: string;
  let proof: Proof;
  if (opts.bootstrap) {
    // A bootstrap kubeconfig brings its CA: nothing to verify by hash.
    caPem = opts.bootstrap.caPem;
    proof = { cert: opts.bootstrap.cert, key: opts.bootstrap.key };
  } else {
    let token: ReturnType<typeof parseToken>;
    try {
      token = parseToken(opts.token ?? '');
    } catch (err) {
      throw new JoinError((err as Error).message);
    }
    caPem = await verifiedCA(base, token.caHash, opts.log);
    proof = { basic: Buffer.from(`${token.user}:${token.secret}`).toString('base64') };
  }

  // 3: the proof, over TLS verified against that CA, for each component's certificate.
  const dir = join(opts.dataDir, 'agent');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const fetchOne = async (path: string, file: string, what: string): Promise<string> => {
    const { cert, key } = await issued(base, caPem, proof, path, opts, what);
    // 4: a kubeconfig like any other kubelet's.
    const out = join(dir, file);
    writeFileSync(out, kubeletKubeconfig(base.origin, caPem, cert, key), { mode: 0o600 });
    return out;
  };
  let credentials: AgentCredentials;
  if (opts.hollowFleet) {
    credentials = {
      kubelet: await fetchOne(CLIENT_HOLLOW_FLEET_PATH, 'kubelet.kubeconfig', 'hollow fleet certificate'),
    };
  } else {
    // The kubelet's first: it is the one the node's password is checked for.
    const kubelet = await fetchOne(CLIENT_KUBELET_PATH, 'kubelet.kubeconfig', 'node certificate');
    credentials = {
      kubelet,
      proxy: await fetchOne(CLIENT_KUBE_PROXY_PATH, 'kube-proxy.kubeconfig', 'kube-proxy certificate'),
      dns: await fetchOne(CLIENT_DNS_PATH, 'dns.kubeconfig', 'DNS certificate'),
      networkPolicy: await fetchOne(
        CLIENT_NETWORK_POLICY_PATH,
        'network-policy.kubeconfig',
        'network policy certificate',
      ),
      ingress: await fetchOne(CLIENT_INGRESS_PATH, 'ingress.kubeconfig', 'ingress certificate'),
    };
  }
  const config = await clusterConfig(base, caPem, proof);
  if (config) credentials.config = config;
  opts.log?.('joined the cluster', {
    server: base.origin,
    user: opts.hollowFleet ? HOLLOW_FLEET_USER : `system:node:${opts.nodeName}`,
    kubeconfig: credentials.kubelet,
  });
  return credentials;
}

/** The server's CONFIG_PATH, over TLS verified against the CA, with the same proof as the certificates. */
async function clusterConfig(base: URL, caPem: string, proof: Proof): Promise<ClusterConfig | undefined> {
  let answer: Answer;
  try {
    answer = await get(
      new URL(CONFIG_PATH, base),
      { ca: caPem, rejectUnauthorized: true, ...('cert' in proof ? proof : {}) },
      'basic' in proof ? { authorization: `Basic ${proof.basic}` } : {},
    );
  } catch (err) {
    throw new JoinError(`cannot reach ${base.origin}: ${(err as Error).message}`, { unreachable: true });
  }
  if (answer.status === 404) return undefined; // a server from before CONFIG_PATH
  if (answer.status !== 200)
    throw new JoinError(`${base.origin}${CONFIG_PATH} answered HTTP ${answer.status}: ${answer.body}`);
  try {
    return JSON.parse(answer.body.toString('utf8')) as ClusterConfig;
  } catch {
    throw new JoinError(`${base.origin}${CONFIG_PATH} answered something other than JSON`);
  }
}

/** Steps 1 and 2: the CA, trusted only if its hash is the token's. */
export async function verifiedCA(base: URL, caHash: string, log: Log | undefined): Promise<string> {
  let ca: Answer;
  try {
    ca = await get(new URL(CACERTS_PATH, base), { rejectUnauthorized: false });
  } catch (err) {
    throw new JoinError(`cannot reach ${base.origin}: ${(err as Error).message}`, { unreachable: true });
  }
  if (ca.status !== 200) {
    throw new JoinError(`${base.origin}${CACERTS_PATH} answered HTTP ${ca.status}: is this a Skiff server?`);
  }
  const served = caHashOf(ca.body);
  if (served !== caHash) {
    throw new JoinError(
      `the server's CA certificate does not match the token: the token expects sha256 ${caHash}, ` +
        `${base.origin} serves one with sha256 ${served}. This is not the cluster the token belongs to ` +
        `(or someone is in between); the token's secret was not sent.`,
    );
  }
  log?.('cluster CA verified against the token', { server: base.origin, caHash: served });
  return ca.body.toString('utf8');
}

/** One certificate and key from a join endpoint, or a JoinError saying why not. */
async function issued(
  base: URL,
  caPem: string,
  proof: Proof,
  path: string,
  opts: JoinOptions,
  what: string,
): Promise<{ cert: string; key: string }> {
  let answer: Answer;
  try {
    answer = await get(
      new URL(path, base),
      { ca: caPem, rejectUnauthorized: true, ...('cert' in proof ? proof : {}) },
      {
        ...('basic' in proof ? { authorization: `Basic ${proof.basic}` } : {}),
        [NODE_NAME_HEADER]: opts.nodeName,
        [NODE_PASSWORD_HEADER]: ensureNodePasswordFile(opts.dataDir),
      },
    );
  } catch (err) {
    const e = err as Error & { code?: string };
    if (/CERT|TLS|SELF_SIGNED|ALTNAME/.test(e.code ?? ''))
      throw new JoinError(
        `the server's certificate does not verify against the cluster CA (${e.message}); use an address ` +
          `the server's certificate names`,
      );
    throw new JoinError(`cannot reach ${base.origin}: ${e.message}`, { unreachable: true });
  }
  if (answer.status === 401) {
    throw new JoinError(
      'basic' in proof
        ? `the server refused the token (401 Unauthorized): its secret is not this cluster's; ` +
            `copy the token again from <server-data-dir>/node-token`
        : `the server refused the kubeconfig's certificate (401 Unauthorized): give the agent ` +
            `<server-data-dir>/agent-kubeconfig.yaml, or a join token`,
    );
  }
  if (answer.status === 403) {
    // Another machine holds this node name (or this one was reinstalled): the server says which.
    throw new JoinError(answer.body.toString('utf8').trim());
  }
  if (answer.status !== 200) {
    throw new JoinError(
      `the server did not issue a ${what} (HTTP ${answer.status}): ${answer.body.toString('utf8').trim()}`,
    );
  }
  const bundle = answer.body.toString('utf8');
  const [cert] = pemBlocks(bundle, /CERTIFICATE/);
  const [key] = pemBlocks(bundle, /PRIVATE KEY/);
  if (!cert || !key) throw new JoinError('the server answered without a certificate and key');
  return { cert, key };
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
