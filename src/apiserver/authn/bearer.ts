// The bearer-token authenticators of a cluster, in upstream's order: the
// static token file, ServiceAccount JWTs, bootstrap tokens. The server and
// the test server build theirs here, so both authenticate alike.

import type { IncomingMessage } from 'node:http';
import { isApiError } from '../../api/errors.ts';
import type { KubeObject } from '../../api/meta.ts';
import type { Secret } from '../../api/types/core-v1.ts';
import type { TokenIssuer } from '../token-request.ts';
import { createAuthenticator, type TokenAuthenticator } from './authenticator.ts';
import { authenticateBootstrapToken } from './bootstrap-token.ts';
import { type ObjectLookup, ServiceAccountAuthenticator } from './serviceaccount-authenticator.ts';
import { publicKeyOf, TokenSigner, TokenVerifier } from './serviceaccount-token.ts';
import { TokenFileAuthenticator, type TokenUser } from './token-file.ts';
import type { TokenReviewer } from './token-review.ts';

export interface BearerOptions {
  /** The ServiceAccount signing key, PKCS#8 PEM. */
  serviceAccountKey: string;
  /** --service-account-issuer; also the API's audience. */
  issuer: string;
  /** Reads an object of the cluster; throws the store's 404 when it is missing. */
  get(resource: string, namespace: string, name: string): Promise<KubeObject>;
  /** --token-auth-file's tokens, parsed. */
  tokenFile?: Map<string, TokenUser>;
}

export interface BearerAuthentication {
  authenticators: TokenAuthenticator[];
  /** TokenRequest's signer and audiences, and TokenReview's reviewer (ApiServerOptions.tokens). */
  tokens: TokenIssuer & { review: TokenReviewer };
}

export function bearerAuthentication(opts: BearerOptions): BearerAuthentication {
  const lookup: ObjectLookup = async (resource, namespace, name) => {
    try {
      return await opts.get(resource, namespace, name);
    } catch (err) {
      if (isApiError(err) && err.code === 404) return undefined;
      throw err;
    }
  };
  const audiences = [opts.issuer];
  const authenticators: TokenAuthenticator[] = [
    ...(opts.tokenFile ? [new TokenFileAuthenticator(opts.tokenFile)] : []),
    new ServiceAccountAuthenticator(
      new TokenVerifier([publicKeyOf(opts.serviceAccountKey)], opts.issuer, audiences),
      opts.issuer,
      lookup,
    ),
    {
      // <id>.<secret>, checked against the Secret kube-system/bootstrap-token-<id>.
      authenticate: async (token) => {
        const id = /^([a-z0-9]{6})\.[a-z0-9]{16}$/.exec(token)?.[1];
        if (!id) return undefined;
        const secret = (await lookup('secrets', 'kube-system', `bootstrap-token-${id}`)) as
          | Secret
          | undefined;
        return authenticateBootstrapToken(token, () => secret);
      },
    },
  ];
  const reviewer = createAuthenticator({ certificateUser: () => null, tokens: authenticators });
  return {
    authenticators,
    tokens: {
      signer: new TokenSigner(opts.serviceAccountKey, opts.issuer),
      audiences,
      review: (token) => reviewer({ headers: { authorization: `Bearer ${token}` } } as IncomingMessage),
    },
  };
}
