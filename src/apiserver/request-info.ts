// Parses a request path into what it addresses, as upstream's
// RequestInfoFactory does: API group, version, namespace, resource, name,
// subresource, and the verb (get/list/watch/create/...).

export interface RequestInfo {
  /** False for /version, /healthz, /openapi/..., discovery roots. */
  isResourceRequest: boolean;
  path: string;
  /** '' for the core group. */
  group: string;
  version: string;
  namespace: string | undefined;
  resource: string;
  subresource: string;
  name: string;
  verb: string;
  /** Path segments after the API prefix (for discovery routing). */
  parts: string[];
  /** 'api' or 'apis' or '' */
  prefix: string;
}

const collectionVerbs: Record<string, string> = {
  GET: 'list',
  POST: 'create',
  DELETE: 'deletecollection',
};

const itemVerbs: Record<string, string> = {
  GET: 'get',
  PUT: 'update',
  PATCH: 'patch',
  DELETE: 'delete',
  POST: 'create', // subresources such as binding and eviction
};

/** A malformed escape is left as it is (the lookup then finds nothing). */
function decodeSegment(s: string): string {
  // Nearly every segment has nothing to decode.
  if (!s.includes('%')) return s;
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

export function parseRequestInfo(method: string, path: string, query: URLSearchParams): RequestInfo {
  // Segments are percent-decoded, as Go's URL.Path is: client-go sends
  // system:node:n1 as system%3Anode%3An1.
  const segments = path
    .split('/')
    .filter((s) => s !== '')
    .map(decodeSegment);
  const info: RequestInfo = {
    isResourceRequest: false,
    path,
    group: '',
    version: '',
    namespace: undefined,
    resource: '',
    subresource: '',
    name: '',
    verb: method.toLowerCase(),
    parts: [],
    prefix: '',
  };
  const head = segments[0];
  if (head !== 'api' && head !== 'apis') return info;
  info.prefix = head;
  let rest = segments.slice(1);
  if (head === 'apis') {
    if (rest.length === 0) return info;
    info.group = rest[0]!;
    rest = rest.slice(1);
  }
  if (rest.length === 0) return info;
  info.version = rest[0]!;
  rest = rest.slice(1);
  if (rest.length === 0) return info;
  info.isResourceRequest = true;
  // The deprecated /watch/ prefix: GET /api/v1/watch/namespaces/ns/pods.
  let watchPrefix = false;
  if (rest[0] === 'watch') {
    watchPrefix = true;
    rest = rest.slice(1);
  }
  // namespaces/<ns>/<resource>... but not the namespaces resource itself
  // (/api/v1/namespaces/<name> and /api/v1/namespaces/<name>/status).
  if (rest[0] === 'namespaces' && rest.length >= 3 && !['status', 'finalize'].includes(rest[2]!)) {
    info.namespace = rest[1];
    rest = rest.slice(2);
  } else if (rest[0] === 'namespaces' && rest.length >= 2) {
    info.namespace = undefined;
  }
  info.parts = rest;
  info.resource = rest[0] ?? '';
  info.name = rest[1] ?? '';
  info.subresource = rest.slice(2).join('/');
  const watch = watchPrefix || isTrue(query.get('watch'));
  if (info.name === '') {
    info.verb = watch && method === 'GET' ? 'watch' : (collectionVerbs[method] ?? method.toLowerCase());
  } else {
    info.verb = itemVerbs[method] ?? method.toLowerCase();
    if (watch && method === 'GET') info.verb = 'watch';
  }
  return info;
}

// Upstream decodes the boolean options of a request (watch, force,
// orphanDependents, follow, ...) with runtime.Convert_Slice_string_To_bool:
// only "0" and "false" in any case are false; any other value, even "yes" or
// an empty one, is true, and none is an error. So the official Python
// client's watch=True is a watch.
/** A boolean query parameter as upstream's parameter codec reads it; absent is false. */
export const isTrue = (v: string | null): boolean => v !== null && v !== '0' && v.toLowerCase() !== 'false';

/**
 * Whether a response is indented, as upstream's isPrettyPrint: ?pretty as
 * Go's strconv.ParseBool reads it (an invalid value is false, not an error),
 * else by default for curl, Wget and browsers.
 */
export function isPrettyPrint(query: URLSearchParams, userAgent: string | undefined): boolean {
  const pretty = query.get('pretty');
  if (pretty) return ['1', 't', 'T', 'TRUE', 'true', 'True'].includes(pretty);
  return /^(curl|Wget|Mozilla\/5\.0)/.test(userAgent ?? '');
}

// The methods go-restful routes for each kind of resource path; any other
// gets its 405. Subresources take every method their handlers might serve
// (nodes/proxy forwards them all) and refuse the rest themselves.
const COLLECTION_METHODS = new Set(['GET', 'POST', 'DELETE']);
const ITEM_METHODS = new Set(['GET', 'PUT', 'PATCH', 'DELETE']);
const SUBRESOURCE_METHODS = new Set(['GET', 'PUT', 'PATCH', 'POST', 'DELETE', 'HEAD', 'OPTIONS']);
const NON_RESOURCE_METHODS = new Set(['GET', 'HEAD']);

/** Whether upstream has a route for this method on the path the request addresses. */
export function isRoutedMethod(info: RequestInfo, method: string): boolean {
  if (!info.isResourceRequest) return NON_RESOURCE_METHODS.has(method);
  if (info.subresource) return SUBRESOURCE_METHODS.has(method);
  return (info.name ? ITEM_METHODS : COLLECTION_METHODS).has(method);
}
