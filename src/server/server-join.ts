// Joining a server to a cluster with embedded etcd (`skiff server --server
// https://FIRST:6443 --token T`), as k3s's server join: the new server
// fetches the cluster's bootstrap data (CA, ServiceAccount key, token
// secret, encryption config) from any server, authenticated with the token,
// and learns where the etcd members are; it then adds itself as a member
// (embedded-etcd.ts).
//
// Over the wire the data stays sealed with the token (bootstrap-data.ts),
// and the caller proves the token's secret (HTTP basic auth, user
// `server`, k3s's). With a full K10 token the CA is first checked against
// the token's hash, as an agent does, so the secret is only ever sent to
// the cluster; a bare secret has no hash to check (k3s warns the same way).

import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type Answer, get, JoinError, verifiedCA } from '../agent/join.ts';
import type { Store } from '../storage/store.ts';
import type { Log } from '../util/log.ts';
import { bootstrapKey, tokenSecret, writeBootstrapFiles } from './bootstrap-data.ts';
import { parseToken } from './node-token.ts';

export const SERVER_BOOTSTRAP_PATH = '/v1-skiff/server-bootstrap';
export const SERVER_TOKEN_USER = 'server';

export interface ServerBootstrapAnswer {
  sealed: string;
  etcdClientURLs: string[];
}

/** The endpoint: true when it handled the request. */
export function serverBootstrapEndpoint(opts: {
  secret: string;
  store: Store;
  etcdClientURLs: () => Promise<string[]>;
  log: Log;
}): (req: IncomingMessage, res: ServerResponse) => boolean {
  const want = Buffer.from(`${SERVER_TOKEN_USER}:${opts.secret}`);
  return (req, res) => {
    if ((req.url ?? '').split('?')[0] !== SERVER_BOOTSTRAP_PATH) return false;
    const answer = (code: number, body: unknown) => {
      res.writeHead(code, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    const auth = req.headers.authorization ?? '';
    const given = auth.startsWith('Basic ') ? Buffer.from(auth.slice(6), 'base64') : Buffer.alloc(0);
    if (given.length !== want.length || !timingSafeEqual(given, want)) {
      answer(401, {
        kind: 'Status',
        apiVersion: 'v1',
        status: 'Failure',
        reason: 'Unauthorized',
        code: 401,
        message: 'Unauthorized',
      });
      return true;
    }
    void (async () => {
      try {
        const kv = await opts.store.get(bootstrapKey(opts.secret));
        if (!kv) throw new Error('no bootstrap data stored yet');
        answer(200, {
          sealed: kv.value,
          etcdClientURLs: await opts.etcdClientURLs(),
        } satisfies ServerBootstrapAnswer);
        opts.log('served bootstrap data to a joining server', { remote: req.socket.remoteAddress });
      } catch (err) {
        answer(503, {
          kind: 'Status',
          apiVersion: 'v1',
          status: 'Failure',
          reason: 'ServiceUnavailable',
          code: 503,
          message: `bootstrap data unavailable: ${(err as Error).message}`,
        });
      }
    })();
    return true;
  };
}

/** The joining side: writes the cluster's files into dataDir; returns where the etcd members are. */
export async function fetchServerBootstrap(
  server: string,
  token: string,
  dataDir: string,
  log: Log,
): Promise<{ etcdClientURLs: string[]; secret: string }> {
  let base: URL;
  try {
    base = new URL(server);
  } catch {
    throw new JoinError(`--server ${server} is not a URL (https://HOST:6443)`);
  }
  const secret = tokenSecret(token);
  let full: ReturnType<typeof parseToken> | undefined;
  try {
    full = parseToken(token);
  } catch {}
  let ca: string | undefined;
  if (full) ca = await verifiedCA(base, full.caHash, log);
  else
    log.warn(
      'the token is a bare secret: the server’s CA cannot be checked against it (use the full K10 token from node-token)',
    );
  let res: Answer;
  try {
    res = await get(
      new URL(SERVER_BOOTSTRAP_PATH, base),
      ca ? { ca, rejectUnauthorized: true } : { rejectUnauthorized: false },
      { authorization: `Basic ${Buffer.from(`${SERVER_TOKEN_USER}:${secret}`).toString('base64')}` },
    );
  } catch (err) {
    throw new JoinError(`cannot reach ${base.origin}: ${(err as Error).message}`, { unreachable: true });
  }
  if (res.status === 401)
    throw new JoinError(`${base.origin} refused the token (401): is it this cluster's?`);
  if (res.status !== 200)
    throw new JoinError(
      `${base.origin}${SERVER_BOOTSTRAP_PATH} answered HTTP ${res.status}: ${res.body.toString().slice(0, 300)}`,
    );
  const answer = JSON.parse(res.body.toString()) as ServerBootstrapAnswer;
  const changed = writeBootstrapFiles(dataDir, answer.sealed, secret);
  log('joined: bootstrap data received', {
    server: base.origin,
    files: changed,
    etcd: answer.etcdClientURLs,
  });
  return { etcdClientURLs: answer.etcdClientURLs, secret };
}
