// Where every request is authorized: after authentication and impersonation,
// before the handler (upstream's WithAuthorization filter). The request's
// attributes (attributes.ts) go to the server's Authorizer, the union that
// server/authorization.ts builds from --authorization-mode (Node, RBAC:
// node.ts, rbac.ts); anything but allow is a 403 with upstream's message.

import type { AuditRecord } from '../audit/audit.ts';
import type { UserInfo } from '../authn/user.ts';
import type { RequestInfo } from '../request-info.ts';
import { requestAttributes } from './attributes.ts';
import { type Authorizer, forbiddenFor } from './authorizer.ts';

/** Throws 403 unless `authorizer` allows the request; the decision goes on the audit record. */
export function authorizeRequest(
  authorizer: Authorizer,
  info: RequestInfo,
  user: UserInfo,
  query: URLSearchParams,
  audit?: AuditRecord,
): void {
  const attrs = requestAttributes(info, user, query);
  const r = authorizer.authorize(attrs);
  audit?.authorized(r.decision === 'allow' ? 'allow' : 'forbid', r.reason);
  if (r.decision !== 'allow') throw forbiddenFor(attrs, r.reason);
}
