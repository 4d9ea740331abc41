// Join tokens: how a machine becomes a node of this cluster with one string,
// as k3s's (docs.k3s.io/cli/token, "Secure" format):
//
//   K10<sha256 of the cluster CA certificate, hex>::node:<secret>
//
// The hash lets the joining agent authenticate the server before it sends
// anything secret: it fetches the CA from /cacerts without trusting the
// connection, and goes on only if the CA's hash is the token's. The
// credentials (user `node`, the secret) then authenticate the agent to the
// server, over TLS verified against that CA, and buy it a client
// certificate for `system:node:<nodeName>` in group `system:nodes`, from
// /v1-skiff/client-kubelet.crt (k3s: /v1-k3s/client-kubelet.crt). From then
// on the agent talks to the API with that certificate, like any kubelet.
//
// The server keeps the secret in <data-dir>/server/token and writes the full
// token to <data-dir>/node-token at every start, so the token stays the same
// across restarts and follows the CA if that is ever remade.
//
// The token is shared by every node, so on its own it would buy a
// certificate for ANY node name. As k3s does (pkg/nodepassword, the
// `<node>.node-password.k3s` Secret and the Node-Password header), each agent
// also sends a random password of its own (<data-dir>/agent/node-password);
// the first successful join of a name stores a salted hash of it in the
// Secret kube-system/<name>.node-password.skiff, and later requests for that
// name must bring the same password. The server writes that Secret for its
// own node at start, so the server's node name cannot be taken either.

import { createHash, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { isApiError } from '../api/errors.ts';
import type { KubeObject } from '../api/meta.ts';
import { isDNS1123Subdomain } from '../api/validation.ts';
import type { Log } from '../util/log.ts';

export const TOKEN_PREFIX = 'K10';
/** The only user a join token names: the nodes' shared credential. */
export const NODE_TOKEN_USER = 'node';
/** Served to anyone: a CA certificate is public; the token's hash is what makes it trusted. */
export const CACERTS_PATH = '/cacerts';
/** Issues a node's client certificate to a caller holding the token's secret. */
export const CLIENT_KUBELET_PATH = '/v1-skiff/client-kubelet.crt';
/** The node's service proxy, as system:kube-proxy (k3s: /v1-k3s/client-kube-proxy.crt). */
export const CLIENT_KUBE_PROXY_PATH = '/v1-skiff/client-kube-proxy.crt';
/** The node's cluster DNS server, as system:skiff-dns (bound to the system:coredns role). */
export const CLIENT_DNS_PATH = '/v1-skiff/client-dns.crt';
/**
 * The node's NetworkPolicy controller, as system:skiff-network-policy: it
 * lists and watches every pod, namespace and policy, which the Node
 * authorizer rightly refuses a kubelet (k3s: the system:k3s-controller user).
 */
export const CLIENT_NETWORK_POLICY_PATH = '/v1-skiff/client-network-policy.crt';
/**
 * The node's ingress controller, as system:skiff-ingress: it reads every
 * Ingress, Service, EndpointSlice and TLS Secret, and writes Ingress status
 * (k3s: Traefik's own ServiceAccount).
 */
export const CLIENT_INGRESS_PATH = '/v1-skiff/client-ingress.crt';
/**
 * A hollow fleet (`skiff agent --hollow-nodes N`): one credential for all
 * its nodes, as kubemark's hollow nodes share one. It is not a node user,
 * so the Node authorizer does not narrow it; its role (system:skiff-hollow-node)
 * is what hollow kubelets do, for any node, and reads no Secret or ConfigMap.
 */
export const CLIENT_HOLLOW_FLEET_PATH = '/v1-skiff/client-hollow-fleet.crt';
/**
 * What every node of the cluster must agree on, as JSON (ClusterConfig),
 * to a holder of the token: k3s's /v1-k3s/config, from which its agents
 * take the server's --flannel-backend.
 */
export const CONFIG_PATH = '/v1-skiff/config';

/** The answer of CONFIG_PATH. */
export interface ClusterConfig {
  /** The server's --flannel-backend: an agent without one of its own uses it. */
  flannelBackend: string;
  /** The server's --disable ingress: no node runs the ingress proxy (k3s's --disable traefik is cluster-wide). */
  disableIngress?: boolean;
}
export const KUBE_PROXY_USER = 'system:kube-proxy';
export const DNS_USER = 'system:skiff-dns';
export const NETWORK_POLICY_USER = 'system:skiff-network-policy';
export const INGRESS_USER = 'system:skiff-ingress';
export const HOLLOW_FLEET_USER = 'system:skiff-hollow-fleet';
/**
 * The user of <data-dir>/agent-kubeconfig.yaml: a bootstrap credential, as
 * upstream's bootstrap kubeconfig. It may only ask the join endpoints for
 * the credentials above, as the token may; RBAC grants it nothing.
 */
export const AGENT_BOOTSTRAP_USER = 'system:skiff-agent';

/** Who each join endpoint's certificate names (the node name is the caller's). */
export interface CertificateSubject {
  commonName: string;
  organizations: string[];
}

const JOIN_CREDENTIALS: Record<string, (nodeName: string) => CertificateSubject> = {
  [CLIENT_KUBELET_PATH]: (node) => ({ commonName: `system:node:${node}`, organizations: ['system:nodes'] }),
  [CLIENT_KUBE_PROXY_PATH]: () => ({ commonName: KUBE_PROXY_USER, organizations: [] }),
  [CLIENT_DNS_PATH]: () => ({ commonName: DNS_USER, organizations: [] }),
  [CLIENT_NETWORK_POLICY_PATH]: () => ({ commonName: NETWORK_POLICY_USER, organizations: [] }),
  [CLIENT_INGRESS_PATH]: () => ({ commonName: INGRESS_USER, organizations: [] }),
  [CLIENT_HOLLOW_FLEET_PATH]: () => ({ commonName: HOLLOW_FLEET_USER, organizations: [] }),
};
/** The request header naming the node the certificate is for (k3s: K3s-Node-Name). */
export const NODE_NAME_HEADER = 'skiff-node-name';
/** The request header carrying the node's own password (k3s: K3s-Node-Password). */
export const NODE_PASSWORD_HEADER = 'skiff-node-password';
/** The type of the Secrets holding node password hashes (k3s: k3s.cattle.io/node-password). */
export const NODE_PASSWORD_SECRET_TYPE = 'skiff.io/node-password';
export const nodePasswordSecretName = (nodeName: string): string => `${nodeName}.node-password.skiff`;

export interface NodeToken {
  /** sha256 of the CA certificate's PEM bytes, lower-case hex. */
  caHash: string;
  user: string;
  secret: string;
}

/** sha256 of the CA certificate exactly as served (the PEM bytes), as k3s hashes a self-signed CA. */
export const caHashOf = (caPem: string | Buffer): string => createHash('sha256').update(caPem).digest('hex');

export const formatToken = (t: NodeToken): string => `${TOKEN_PREFIX}${t.caHash}::${t.user}:${t.secret}`;

/** Parses a full token; throws an Error saying what is wrong with it. */
export function parseToken(token: string): NodeToken {
  const t = token.trim();
  const m = /^K10([0-9a-fA-F]{64})::([^:]+):(.+)$/.exec(t);
  if (!m) {
    throw new Error(
      `the token is not a Skiff join token: expected ${TOKEN_PREFIX}<sha256 of the cluster CA>::node:<secret>` +
        ` (copy it from <server-data-dir>/node-token)`,
    );
  }
  return { caHash: m[1]!.toLowerCase(), user: m[2]!, secret: m[3]! };
}

/**
 * The cluster's join token: the secret kept in <dataDir>/server/token (made
 * on first start), the hash of the CA given. Writes <dataDir>/node-token.
 */
export function ensureNodeToken(dataDir: string, caPem: string): NodeToken {
  const secretFile = join(dataDir, 'server', 'token');
  let secret = existsSync(secretFile) ? readFileSync(secretFile, 'utf8').trim() : '';
  if (!secret) {
    secret = randomBytes(24).toString('hex');
    writeFileSync(secretFile, `${secret}\n`, { mode: 0o600 });
  }
  const token = { caHash: caHashOf(caPem), user: NODE_TOKEN_USER, secret };
  writeFileSync(join(dataDir, 'node-token'), `${formatToken(token)}\n`, { mode: 0o600 });
  return token;
}

/** The Secrets a node password is checked against: kube-system's, through the API server's storage. */
export interface NodePasswordSecrets {
  get(namespace: string, name: string): Promise<KubeObject>;
  create(namespace: string, obj: KubeObject): Promise<KubeObject>;
}

const scryptAsync = (password: string, salt: Buffer): Promise<Buffer> =>
  new Promise((resolve, reject) =>
    scrypt(password, salt, 32, (err, key) => (err ? reject(err) : resolve(key))),
  );

/** `scrypt$<salt>$<key>`, both base64: the salt makes equal passwords hash differently. */
async function hashNodePassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  return `scrypt$${salt.toString('base64')}$${(await scryptAsync(password, salt)).toString('base64')}`;
}

async function nodePasswordMatches(password: string, stored: string): Promise<boolean> {
  const [scheme, salt, key] = stored.split('$');
  if (scheme !== 'scrypt' || !salt || !key) return false;
  const want = Buffer.from(key, 'base64');
  const given = await scryptAsync(password, Buffer.from(salt, 'base64'));
  return given.length === want.length && timingSafeEqual(given, want);
}

/** Why a node password was refused, in words meant for whoever runs the agent. */
export const nodePasswordMismatch = (nodeName: string): string =>
  `node password for ${nodeName} does not match; delete Secret kube-system/` +
  `${nodePasswordSecretName(nodeName)} if the node was reinstalled`;

/**
 * Checks a node's password against its Secret, creating the Secret on the
 * name's first join (as k3s's nodepassword.Ensure). Returns undefined if the
 * password is the node's, otherwise the reason it is not.
 */
export async function ensureNodePassword(
  secrets: NodePasswordSecrets,
  nodeName: string,
  password: string,
): Promise<string | undefined> {
  const name = nodePasswordSecretName(nodeName);
  for (;;) {
    let secret: KubeObject | undefined;
    try {
      secret = await secrets.get('kube-system', name);
    } catch (err) {
      if (!(isApiError(err) && err.code === 404)) throw err;
    }
    if (secret) {
      const stored = Buffer.from(String((secret.data as Record<string, string>)?.hash ?? ''), 'base64');
      return (await nodePasswordMatches(password, stored.toString('utf8')))
        ? undefined
        : nodePasswordMismatch(nodeName);
    }
    try {
      await secrets.create('kube-system', {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name, namespace: 'kube-system' },
        type: NODE_PASSWORD_SECRET_TYPE,
        immutable: true,
        data: { hash: Buffer.from(await hashNodePassword(password)).toString('base64') },
      });
      return undefined;
    } catch (err) {
      // Another join of the same name created it first: check against that one.
      if (!(isApiError(err) && err.code === 409)) throw err;
    }
  }
}

export interface JoinEndpointOptions {
  token: NodeToken;
  caPem: string;
  /** Where the node password hashes live (kube-system Secrets). */
  secrets: NodePasswordSecrets;
  /** Signs a client certificate for a subject (JOIN_CREDENTIALS). */
  issue(subject: CertificateSubject): { cert: string; key: string };
  /** Whether the request's connection carries the agent bootstrap certificate (AGENT_BOOTSTRAP_USER). */
  bootstrapCertificate?(req: IncomingMessage): boolean;
  /** What CONFIG_PATH answers. */
  config: ClusterConfig;
  log?: Log;
}

/**
 * The join endpoints, served by the API server's HTTPS listener outside
 * /api and /apis. Returns a request handler that answers /cacerts and the
 * JOIN_CREDENTIALS paths, and returns false for anything else.
 */
export function joinEndpoints(
  opts: JoinEndpointOptions,
): (req: IncomingMessage, res: ServerResponse) => boolean {
  const want = createHash('sha256').update(`${opts.token.user}:${opts.token.secret}`).digest();
  // Comparing digests of equal length in constant time: a wrong secret
  // learns nothing from how long the refusal took.
  const authorized = (header: string | undefined): boolean => {
    const m = /^Basic\s+(\S+)$/i.exec(header ?? '');
    if (!m) return false;
    const given = createHash('sha256').update(Buffer.from(m[1]!, 'base64').toString('utf8')).digest();
    return timingSafeEqual(given, want);
  };
  const send = (res: ServerResponse, code: number, body: string, type = 'text/plain; charset=utf-8') => {
    res.writeHead(code, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };

  return (req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path === CACERTS_PATH) {
      if (req.method !== 'GET') send(res, 405, 'Method Not Allowed\n');
      else send(res, 200, opts.caPem, 'application/x-pem-file');
      return true;
    }
    const subjectFor = path === undefined ? undefined : JOIN_CREDENTIALS[path];
    if (!subjectFor && path !== CONFIG_PATH) return false;
    // Authentication comes first: without the secret, every answer is the same 401.
    if (!authorized(req.headers.authorization) && !opts.bootstrapCertificate?.(req)) {
      opts.log?.warn('join refused: wrong or missing token', { remote: req.socket.remoteAddress });
      res.setHeader('www-authenticate', 'Basic realm="skiff"');
      send(res, 401, 'Unauthorized\n');
      return true;
    }
    if (req.method !== 'GET') {
      send(res, 405, 'Method Not Allowed\n');
      return true;
    }
    if (!subjectFor) {
      send(res, 200, `${JSON.stringify(opts.config)}\n`, 'application/json');
      return true;
    }
    const nodeName = String(req.headers[NODE_NAME_HEADER] ?? '');
    const invalid = isDNS1123Subdomain(nodeName);
    if (invalid.length > 0) {
      send(res, 400, `invalid node name ${JSON.stringify(nodeName)}: ${invalid.join('; ')}\n`);
      return true;
    }
    // Only the kubelet's certificate names the node, so only it is held to the node's password.
    const password = String(req.headers[NODE_PASSWORD_HEADER] ?? '');
    if (path === CLIENT_KUBELET_PATH && !password) {
      send(res, 400, `missing the node's password (header ${NODE_PASSWORD_HEADER}); upgrade the agent\n`);
      return true;
    }
    void (async () => {
      try {
        const refused =
          path === CLIENT_KUBELET_PATH
            ? await ensureNodePassword(opts.secrets, nodeName, password)
            : undefined;
        if (refused) {
          opts.log?.warn('join refused: wrong node password', {
            node: nodeName,
            remote: req.socket.remoteAddress,
          });
          send(res, 403, `${refused}\n`);
          return;
        }
        const subject = subjectFor(nodeName);
        const { cert, key } = opts.issue(subject);
        opts.log?.('node client certificate issued', {
          node: nodeName,
          user: subject.commonName,
          remote: req.socket.remoteAddress,
        });
        // One PEM bundle, certificate then key, as k3s answers client-kubelet.crt.
        send(res, 200, `${cert.trimEnd()}\n${key.trimEnd()}\n`, 'application/x-pem-file');
      } catch (err) {
        opts.log?.error('node client certificate not issued', { node: nodeName, error: String(err) });
        if (!res.headersSent) send(res, 500, 'could not issue the certificate\n');
      }
    })();
    return true;
  };
}
