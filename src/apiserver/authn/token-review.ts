// TokenReview (authentication.k8s.io/v1): "who is this bearer token?", as
// webhook authenticators and aggregated API servers ask it. The token goes
// through the same bearer authenticators as a request's would
// (authenticator.ts); nothing is stored.
//
// Audiences: a review naming none is for the API server's own. One that
// names some is answered for those of them the API server serves: the
// token must be meant for the API server and the caller must expect it.

import type { Authentication } from './authenticator.ts';
import type { UserInfo } from './user.ts';

export type TokenReviewer = (token: string) => Promise<Authentication>;

type ReviewedUser = UserInfo & { uid?: string; extra?: Record<string, string[]> };

export async function answerTokenReview(
  body: Record<string, unknown>,
  review: TokenReviewer,
  apiAudiences: string[],
): Promise<object> {
  const spec = (body.spec ?? {}) as { token?: string; audiences?: string[] };
  const wanted = spec.audiences?.length ? spec.audiences : apiAudiences;
  const audiences = wanted.filter((a) => apiAudiences.includes(a));
  const answer = (status: object) => ({
    kind: 'TokenReview',
    apiVersion: 'authentication.k8s.io/v1',
    metadata: { ...((body.metadata as object | undefined) ?? {}), creationTimestamp: null },
    spec,
    status,
  });
  const result = spec.token ? await review(spec.token) : undefined;
  if (!result || 'error' in result) return answer({ user: {}, error: result?.error ?? 'token is required' });
  if (audiences.length === 0)
    return answer({
      user: {},
      error: `token audiences ${JSON.stringify(apiAudiences)} is invalid for the target audiences ${JSON.stringify(wanted)}`,
    });
  const user = result.user as ReviewedUser;
  return answer({
    authenticated: true,
    user: {
      username: user.name,
      ...(user.uid ? { uid: user.uid } : {}),
      groups: user.groups,
      ...(user.extra && Object.keys(user.extra).length > 0 ? { extra: user.extra } : {}),
    },
    audiences,
  });
}
