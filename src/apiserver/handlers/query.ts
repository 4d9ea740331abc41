// The query parameters every handler reads the same way, as upstream's
// parameter codec decodes them: list options, dryRun, includeObject, and the
// Accept header's media types.

import { badRequest, notAcceptable } from '../../api/errors.ts';
import type { ListQuery } from '../rest.ts';
import { type IncludeObject, parseAccept } from '../tables.ts';

export function checkAcceptable(accept: string | undefined): void {
  if (!accept) return;
  const types = parseAccept(accept);
  const ok = types.some(
    (m) =>
      m.type === 'application/json' ||
      m.type === '*/*' ||
      m.type === 'application/*' ||
      m.type === 'application/yaml' ||
      m.type === 'application/json;stream=watch',
  );
  if (!ok) throw notAcceptable(accept);
}

export function listQuery(query: URLSearchParams): ListQuery {
  const q: ListQuery = {};
  const label = query.get('labelSelector');
  const field = query.get('fieldSelector');
  const limit = query.get('limit');
  const cont = query.get('continue');
  const rv = query.get('resourceVersion');
  const rvm = query.get('resourceVersionMatch');
  if (label) q.labelSelector = label;
  if (field) q.fieldSelector = field;
  if (limit) {
    const n = Number(limit);
    if (!Number.isInteger(n) || n < 0) throw badRequest(`invalid limit: ${limit}`);
    q.limit = n;
  }
  // An int64 of ListOptions, as upstream's parameter codec decodes it.
  const timeoutSeconds = query.get('timeoutSeconds');
  if (timeoutSeconds && !/^[-+]?[0-9]+$/.test(timeoutSeconds)) {
    throw badRequest(`strconv.ParseInt: parsing ${JSON.stringify(timeoutSeconds)}: invalid syntax`);
  }
  if (cont) q.continue = cont;
  if (rv !== null) q.resourceVersion = rv;
  if (rvm) q.resourceVersionMatch = rvm;
  return q;
}

export function includeObject(query: URLSearchParams): IncludeObject {
  const v = query.get('includeObject');
  return v === 'None' || v === 'Object' ? v : 'Metadata';
}

export function isDryRun(query: URLSearchParams): boolean {
  const values = query.getAll('dryRun');
  for (const v of values) {
    if (v !== 'All') throw badRequest(`dryRun: Unsupported value: "${v}": supported values: "All"`);
  }
  return values.length > 0;
}
