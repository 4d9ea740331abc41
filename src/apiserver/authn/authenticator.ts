// Request authentication, as kube-apiserver's union of authenticators:
// the client certificate first (x509), then a bearer token, tried by the
// static token file, ServiceAccount JWTs and bootstrap tokens in turn. The
// first that knows the credential decides. A bearer token none of them
// accepts is a 401 (upstream answers the same), even with no other
// authenticator left to ask; a request with no credential at all is
// anonymous, which Skiff refuses as k3s does (--anonymous-auth=false).
//
// A bearer token's answer is cached for a few seconds (upstream caches
// successful token authentications for 10 s), so a busy client does not pay
// for a signature check and a store lookup on every request.

import type { IncomingMessage } from 'node:http';
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
    return undefined;
  };
}
