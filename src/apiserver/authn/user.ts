// Who a request comes from, once authenticated (upstream's user.Info), and
// the well-known names authorization treats specially.

export interface UserInfo {
  name: string;
  groups: string[];
}

/** Members may do anything (upstream's user.SystemPrivilegedGroup). */
export const SYSTEM_MASTERS = 'system:masters';
/** Every authenticated user is in this group. */
export const SYSTEM_AUTHENTICATED = 'system:authenticated';
export const SYSTEM_UNAUTHENTICATED = 'system:unauthenticated';

/** A ServiceAccount's user name, as upstream's serviceaccount.MakeUsername. */
export const serviceAccountUser = (namespace: string, name: string) =>
  `system:serviceaccount:${namespace}:${name}`;
