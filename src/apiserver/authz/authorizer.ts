// Authorization: what a request asks to do (Attributes), who decides
// (Authorizer), and the 403 a refusal becomes. Upstream's shape
// (k8s.io/apiserver/pkg/authorization/authorizer): each authorizer allows,
// denies or has no opinion; a union asks them in order and the first allow
// or deny wins; no opinion from all of them is a refusal.

import { ApiError } from '../../api/errors.ts';
import type { UserInfo } from '../authn/user.ts';

/** What one request asks to do, as upstream's authorizer.Attributes. */
export interface Attributes {
  user: UserInfo;
  /** get, list, watch, create, update, patch, delete, deletecollection; or the HTTP verb lowercased for paths. */
  verb: string;
  isResourceRequest: boolean;
  /** The path, for non-resource requests (/healthz, /version, /apis). */
  path: string;
  /** '' for the core group. */
  apiGroup: string;
  apiVersion: string;
  /** '' for cluster-scoped resources and requests across namespaces. */
  namespace: string;
  resource: string;
  subresource: string;
  /** '' for collections (list, create, deletecollection). */
  name: string;
}

export type Decision = 'allow' | 'deny' | 'noOpinion';

export interface Authorization {
  decision: Decision;
  /** Why: "RBAC: allowed by ...", or what went wrong looking (a missing role). */
  reason: string;
}

export interface Authorizer {
  authorize(attrs: Attributes): Authorization;
}

/** upstream's union authorizer: the first allow or deny wins; the reasons of the others are kept. */
export function unionAuthorizer(...authorizers: Authorizer[]): Authorizer {
  return {
    authorize(attrs) {
      const reasons: string[] = [];
      for (const a of authorizers) {
        const r = a.authorize(attrs);
        if (r.decision !== 'noOpinion') return r;
        if (r.reason) reasons.push(r.reason);
      }
      return { decision: 'noOpinion', reason: reasons.join('\n') };
    },
  };
}

/** Members of these groups may do anything (upstream's privileged-groups authorizer, first in the chain). */
export function privilegedGroups(...groups: string[]): Authorizer {
  return {
    authorize: ({ user }) =>
      user.groups.some((g) => groups.includes(g))
        ? { decision: 'allow', reason: '' }
        : { decision: 'noOpinion', reason: '' },
  };
}

/** The sentence upstream's responsewriters.forbiddenMessage writes. */
export function forbiddenMessage(attrs: Attributes): string {
  const who = JSON.stringify(attrs.user.name);
  if (!attrs.isResourceRequest) return `User ${who} cannot ${attrs.verb} path ${JSON.stringify(attrs.path)}`;
  const resource = attrs.subresource ? `${attrs.resource}/${attrs.subresource}` : attrs.resource;
  const what = `User ${who} cannot ${attrs.verb} resource ${JSON.stringify(resource)} in API group ${JSON.stringify(attrs.apiGroup)}`;
  return attrs.namespace
    ? `${what} in the namespace ${JSON.stringify(attrs.namespace)}`
    : `${what} at the cluster scope`;
}

/** The 403 Status for a refused request, as upstream's responsewriters.Forbidden and errors.NewForbidden. */
export function forbiddenFor(attrs: Attributes, reason: string): ApiError {
  const msg = reason ? `${forbiddenMessage(attrs)}: ${reason}` : forbiddenMessage(attrs);
  if (!attrs.isResourceRequest) return new ApiError(403, 'Forbidden', `forbidden: ${msg}`, {});
  const qualified = attrs.apiGroup ? `${attrs.resource}.${attrs.apiGroup}` : attrs.resource;
  const subject = attrs.name ? `${qualified} ${JSON.stringify(attrs.name)}` : qualified;
  return new ApiError(403, 'Forbidden', `${subject} is forbidden: ${msg}`, {
    ...(attrs.name ? { name: attrs.name } : {}),
    ...(attrs.apiGroup ? { group: attrs.apiGroup } : {}),
    kind: attrs.resource,
  });
}
