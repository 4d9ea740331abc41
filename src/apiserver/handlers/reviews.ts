// The review kinds (TokenReview, SubjectAccessReview and its kin,
// SelfSubjectReview): a create that asks a question of authentication or
// authorization and gets the answer back.

import { ApiError, methodNotAllowed } from '../../api/errors.ts';
import type { ResourceType } from '../../api/registry.ts';
import { answerTokenReview } from '../authn/token-review.ts';
import { answerReview } from '../authz/reviews.ts';
import { writeJSON } from '../http.ts';
import { readObject } from './body.ts';
import type { HandlerContext, RequestScope } from './context.ts';

/** A POST of a review kind: answered from the authorizer (or the token reviewer), never stored. */
export async function review(ctx: HandlerContext, s: RequestScope, rt: ResourceType): Promise<void> {
  const { req, res, info, user } = s;
  if (info.verb !== 'create' || info.name !== '') throw methodNotAllowed(req.method ?? '', rt.kind);
  const body = await readObject(ctx, s, rt);
  if (rt.plural === 'tokenreviews') {
    if (!ctx.tokens) throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
    const { review, audiences } = ctx.tokens;
    return writeJSON(res, 201, await answerTokenReview(body as Record<string, unknown>, review, audiences));
  }
  const answer = answerReview(rt.plural, body as unknown as Record<string, unknown>, {
    user,
    namespace: info.namespace ?? '',
    authorizer: ctx.authorizer,
    resolver: ctx.ruleResolver,
  });
  return writeJSON(res, 201, answer);
}
