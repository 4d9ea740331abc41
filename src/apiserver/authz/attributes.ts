// What a request asks to do, for the authorizers: upstream's
// WithRequestInfo + GetAuthorizerAttributes, from Skiff's RequestInfo.

import { parseFieldSelector } from '../../api/fields.ts';
import type { UserInfo } from '../authn/user.ts';
import type { RequestInfo } from '../request-info.ts';
import type { NodeAttributes } from './node.ts';

/**
 * The attributes of one request. A list or watch narrowed to one object by
 * `fieldSelector=metadata.name=X` is authorized as that object (upstream's
 * RequestInfo does the same), so a role limited by resourceNames, or a node
 * allowed one Secret, may watch it.
 */
export function requestAttributes(info: RequestInfo, user: UserInfo, query: URLSearchParams): NodeAttributes {
  const raw = query.get('fieldSelector') ?? '';
  let fieldSelector: NodeAttributes['fieldSelector'] = [];
  try {
    fieldSelector = raw ? parseFieldSelector(raw).requirements : [];
  } catch {
    // The handler answers a malformed selector with its own 400; for authorization it narrows nothing.
  }
  let name = info.name;
  if (name === '' && (info.verb === 'list' || info.verb === 'watch')) {
    const pinned = fieldSelector.find((r) => r.field === 'metadata.name' && r.op === '=');
    if (pinned) name = pinned.value;
  }
  return {
    user,
    verb: info.verb,
    isResourceRequest: info.isResourceRequest,
    path: info.path,
    apiGroup: info.group,
    apiVersion: info.version,
    namespace: info.namespace ?? '',
    resource: info.resource,
    // pods/proxy/some/path is the subresource "proxy" (upstream's RequestInfo keeps one segment).
    subresource: info.subresource.split('/')[0] ?? '',
    name,
    fieldSelector,
  };
}
