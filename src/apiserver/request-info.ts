// Parses a request path into what it addresses, as upstream's
// RequestInfoFactory does: API group, version, namespace, resource, name,
// subresource, and the verb (get/list/watch/create/...).

import { badRequest } from '../api/errors.ts';

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

// Upstream decodes every boolean query parameter with Go's strconv.ParseBool,
// so the official Python client's `watch=True` is a watch, and `watch=yes` is
// a 400 (see checkBooleanParams).
const TRUE_VALUES = new Set(['1', 't', 'T', 'TRUE', 'true', 'True']);
const FALSE_VALUES = new Set(['0', 'f', 'F', 'FALSE', 'false', 'False']);

/** A boolean query parameter as Go's strconv.ParseBool reads it; absent (or invalid, refused earlier) is false. */
export const isTrue = (v: string | null): boolean => v !== null && TRUE_VALUES.has(v);

/** The boolean query parameters of upstream's ListOptions, GetOptions, DeleteOptions, PatchOptions and the pod subresources. */
const BOOLEAN_PARAMS = [
  'watch',
  'allowWatchBookmarks',
  'sendInitialEvents',
  'force',
  'orphanDependents',
  'pretty',
  'follow',
  'previous',
  'timestamps',
  'insecureSkipTLSVerifyBackend',
  'stdin',
  'stdout',
  'stderr',
  'tty',
];

/** Throws 400 BadRequest, as upstream's query decoding does, for a boolean parameter ParseBool refuses. */
export function checkBooleanParams(query: URLSearchParams): void {
  for (const name of BOOLEAN_PARAMS) {
    for (const v of query.getAll(name)) {
      if (!TRUE_VALUES.has(v) && !FALSE_VALUES.has(v))
        throw badRequest(
          `invalid boolean value for ${name}: strconv.ParseBool: parsing ${JSON.stringify(v)}: invalid syntax`,
        );
    }
  }
}
