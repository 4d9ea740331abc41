// Request authentication, as kube-apiserver's union of authenticators:
// the client certificate first (x509), then a bearer token, tried by the
// static token file, ServiceAccount JWTs and bootstrap tokens in turn. The
// first that knows the credential decides. A bearer token none of them
// accepts is a 401 (upstream answers the same), even with no other
// authenticator left to ask; a request with no credential at all is
// anonymous, which Skiff refuses as k3s does (--anonymous-auth=false).
//
// A browser cannot set headers on a WebSocket, so as upstream
// (k8s.io/apiserver pkg/authentication/request/websocket/protocol.go) a
// WebSocket request may carry its bearer token as a subprotocol,
// base64url.bearer.authorization.k8s.io.<base64url of the token>, beside the
// real one (v5.channel.k8s.io); once accepted, that entry is removed from the
// header, so the token is never echoed back nor passed on.
//
// A bearer token's answer is cached for a few seconds (upstream caches
// successful token authentications for 10 s), so a busy client does not pay
// for a signature check and a store lookup on every request.

import type { IncomingMessage } from 'node:http';
import { isWebSocketRequest, offeredProtocols } from '../../util/websocket.ts';
import type { UserInfo } from './user.ts';

/** One bearer-token authenticator: a user, undefined when the token is not its kind, or throws when it is but is invalid. */
export interface TokenAuthenticator {
  authenticate(token: string): Promise<UserInfo | undefined> | UserInfo | undefined;
}

export type Authentication =
  | { user: UserInfo }
  /** The request brought a credential that does not check out: 401. */
  | { error: string }
  /** No credential at all. */
  | undefined;

export interface AuthenticatorOptions {
  /** The user a verified client certificate on the connection names, or null. */
  certificateUser(req: IncomingMessage): UserInfo | null;
  tokens: TokenAuthenticator[];
  /** How long a token's answer is kept (ms); 10 s as upstream's token cache. */
  cacheTtlMs?: number;
  now?: () => number;
}

const CACHE_LIMIT = 4096;

/** The bearer token of an Authorization header (RFC 6750; upstream's bearertoken.Authenticator), or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return m?.[1];
}

export const WEBSOCKET_BEARER_PROTOCOL_PREFIX = 'base64url.bearer.authorization.k8s.io.';

/**
 * The bearer token a WebSocket request offers as a subprotocol, with the
 * subprotocols left once it is taken out; an error for a malformed one, as
 * upstream's ProtocolAuthenticator; undefined when there is none.
 */
export function websocketBearerToken(
  req: IncomingMessage,
): { token: string; otherProtocols: string[] } | { error: string } | undefined {
  if (!isWebSocketRequest(req)) return undefined;
  let token: string | undefined;
  const otherProtocols: string[] = [];
  for (const protocol of offeredProtocols(req)) {
    if (!protocol.startsWith(WEBSOCKET_BEARER_PROTOCOL_PREFIX)) {
      otherProtocols.push(protocol);
      continue;
    }
    if (token !== undefined) return { error: 'multiple base64.bearer.authorization tokens specified' };
    const encoded = protocol.slice(WEBSOCKET_BEARER_PROTOCOL_PREFIX.length);
    if (!/^[A-Za-z0-9_-]*$/.test(encoded))
      return { error: 'invalid base64.bearer.authorization token encoding' };
    token = Buffer.from(encoded, 'base64url').toString('utf8');
  }
  if (!token) return undefined;
  // One real subprotocol must remain, for the server to answer with.
  if (otherProtocols.length === 0) return { error: 'missing additional subprotocol' };
  return { token, otherProtocols };
}

export function createAuthenticator(
  opts: AuthenticatorOptions,
): (req: IncomingMessage) => Promise<Authentication> {
  const ttl = opts.cacheTtlMs ?? 10_000;
  const now = opts.now ?? Date.now;
  const cache = new Map<string, { at: number; result: Authentication }>();

  const fromToken = async (token: string): Promise<Authentication> => {
    const hit = cache.get(token);
    if (hit && now() - hit.at < ttl) return hit.result;
    let result: Authentication = { error: 'invalid bearer token' };
    for (const a of opts.tokens) {
      try {
        const user = await a.authenticate(token);
        if (user) {
          result = { user };
          break;
        }
      } catch (err) {
        result = { error: String((err as Error)?.message ?? err) };
        break;
      }
    }
    // Only answers worth repeating are kept; the map is bounded, oldest first out.
    if (cache.size >= CACHE_LIMIT) cache.delete(cache.keys().next().value!);
    cache.set(token, { at: now(), result });
    return result;
  };

  return async (req) => {
    const cert = opts.certificateUser(req);
    if (cert) return { user: cert };
    const token = bearerToken(req.headers.authorization);
    if (token !== undefined) return fromToken(token);
    const ws = websocketBearerToken(req);
    if (!ws || 'error' in ws) return ws;
    const result = await fromToken(ws.token);
    if (result && 'user' in result) req.headers['sec-websocket-protocol'] = ws.otherProtocols.join(', ');
    return result;
  };
}
