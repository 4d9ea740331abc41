// Impersonation (kubectl --as, --as-group, --as-uid), as upstream's
// WithImpersonation filter: after authentication and before authorization,
// Impersonate-User / -Group / -Uid / -Extra-<key> headers make the request
// act as someone else, each part allowed only if the real user may
// `impersonate` it:
//   users/<name> (or serviceaccounts/<name> in its namespace), groups/<name>,
//   uids/<uid> and userextras/<key> (authentication.k8s.io) named <value>.
// Groups, uid or extras without a user are a 400.

import { badRequest } from '../../api/errors.ts';
import { type Attributes, type Authorizer, forbiddenFor } from '../authz/authorizer.ts';
import { SYSTEM_AUTHENTICATED, SYSTEM_UNAUTHENTICATED, type UserInfo } from './user.ts';

const USER = 'impersonate-user';
const UID = 'impersonate-uid';
const GROUP = 'impersonate-group';
const EXTRA_PREFIX = 'impersonate-extra-';
const ANONYMOUS = 'system:anonymous';
const SA_PREFIX = 'system:serviceaccount:';

type Headers = Record<string, string | string[] | undefined>;
type Impersonated = UserInfo & { uid?: string; extra?: Record<string, string[]> };

const values = (v: string | string[] | undefined): string[] =>
  v === undefined ? [] : Array.isArray(v) ? v : [v];

/** Whether the request asks to impersonate anyone (cheap: most requests do not). */
export function wantsImpersonation(headers: Headers): boolean {
  for (const k in headers) if (k.startsWith('impersonate-')) return true;
  return false;
}

/**
 * The user the request acts as: `user` itself without impersonation
 * headers, else the impersonated user once every part is allowed. Throws
 * 403 (not allowed) or 400 (groups without a user).
 */
export function impersonate(headers: Headers, user: UserInfo, authorizer: Authorizer): UserInfo {
  if (!wantsImpersonation(headers)) return user;
  const name = values(headers[USER])[0];
  const groups = values(headers[GROUP])
    .flatMap((g) => g.split(',').map((s) => s.trim()))
    .filter((g) => g);
  const uid = values(headers[UID])[0];
  const extra: Record<string, string[]> = {};
  for (const k in headers)
    if (k.startsWith(EXTRA_PREFIX))
      extra[decodeURIComponent(k.slice(EXTRA_PREFIX.length))] = values(headers[k]).flatMap((v) =>
        v.split(','),
      );
  if (!name) {
    const asked = [...(groups.length ? ['Impersonate-Group'] : []), ...(uid ? ['Impersonate-Uid'] : [])];
    throw badRequest(
      `requested [${[...asked, ...Object.keys(extra).map((k) => `Impersonate-Extra-${k}`)].join(' ')}] without impersonating a user`,
    );
  }

  const check = (attrs: Omit<Attributes, 'user' | 'verb' | 'isResourceRequest' | 'path' | 'apiVersion'>) => {
    const full: Attributes = {
      user,
      verb: 'impersonate',
      isResourceRequest: true,
      path: '',
      apiVersion: '',
      ...attrs,
    };
    const r = authorizer.authorize(full);
    if (r.decision !== 'allow') throw forbiddenFor(full, r.reason);
  };
  const none = { namespace: '', subresource: '' };
  let saNamespace: string | undefined;
  if (name.startsWith(SA_PREFIX)) {
    const [ns, sa] = name.slice(SA_PREFIX.length).split(':');
    if (!ns || !sa) throw badRequest(`invalid service account user name ${JSON.stringify(name)}`);
    saNamespace = ns;
    check({ apiGroup: '', resource: 'serviceaccounts', namespace: ns, subresource: '', name: sa });
  } else check({ apiGroup: '', resource: 'users', name, ...none });
  for (const g of groups) check({ apiGroup: '', resource: 'groups', name: g, ...none });
  if (uid) check({ apiGroup: 'authentication.k8s.io', resource: 'uids', name: uid, ...none });
  for (const [key, vals] of Object.entries(extra))
    for (const v of vals)
      check({
        apiGroup: 'authentication.k8s.io',
        resource: 'userextras',
        subresource: key,
        name: v,
        namespace: '',
      });

  const result: string[] = [...groups];
  if (saNamespace && groups.length === 0)
    result.push('system:serviceaccounts', `system:serviceaccounts:${saNamespace}`);
  if (name === ANONYMOUS) {
    if (!result.includes(SYSTEM_UNAUTHENTICATED)) result.push(SYSTEM_UNAUTHENTICATED);
  } else if (!result.includes(SYSTEM_AUTHENTICATED) && !result.includes(SYSTEM_UNAUTHENTICATED)) {
    result.push(SYSTEM_AUTHENTICATED);
  }
  const out: Impersonated = { name, groups: result };
  if (uid) out.uid = uid;
  if (Object.keys(extra).length > 0) out.extra = extra;
  return out;
}
