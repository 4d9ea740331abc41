// API errors as Kubernetes Status objects (meta/v1 Status), with the codes and
// reasons upstream's apimachinery/pkg/api/errors produces, so clients that
// branch on reason (kubectl's "AlreadyExists", client-go's IsConflict) work.

export type StatusReason =
  | 'BadRequest'
  | 'Unauthorized'
  | 'Forbidden'
  | 'NotFound'
  | 'AlreadyExists'
  | 'Conflict'
  | 'Gone'
  | 'Expired'
  | 'Invalid'
  | 'MethodNotAllowed'
  | 'NotAcceptable'
  | 'RequestEntityTooLarge'
  | 'UnsupportedMediaType'
  | 'TooManyRequests'
  | 'InternalError'
  | 'ServiceUnavailable'
  | 'Timeout';

export interface StatusCause {
  reason?: string;
  message?: string;
  field?: string;
}

export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  uid?: string;
  causes?: StatusCause[];
  retryAfterSeconds?: number;
}

export interface Status {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: { resourceVersion?: string; continue?: string };
  status: 'Success' | 'Failure';
  message?: string;
  reason?: StatusReason | '';
  details?: StatusDetails;
  code: number;
}

/** Thrown anywhere in request handling; the server writes its Status as the response. */
export class ApiError extends Error {
  readonly status: Status;

  constructor(code: number, reason: StatusReason, message: string, details?: StatusDetails) {
    super(message);
    this.name = 'ApiError';
    this.status = {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message,
      reason,
      ...(details ? { details } : {}),
      code,
    };
  }

  get code(): number {
    return this.status.code;
  }

  get reason(): StatusReason | '' | undefined {
    return this.status.reason;
  }
}

export const isApiError = (err: unknown, reason?: StatusReason): err is ApiError =>
  err instanceof ApiError && (reason === undefined || err.reason === reason);

/** A group/resource as upstream prints it in messages: `pods`, `deployments.apps`. */
export interface GroupResource {
  group: string;
  resource: string;
}

const grString = (gr: GroupResource) => (gr.group ? `${gr.resource}.${gr.group}` : gr.resource);
const detailsFor = (gr: GroupResource, name: string): StatusDetails => ({
  name,
  group: gr.group,
  kind: gr.resource,
});

export const notFound = (gr: GroupResource, name: string) =>
  new ApiError(404, 'NotFound', `${grString(gr)} "${name}" not found`, detailsFor(gr, name));

export const alreadyExists = (gr: GroupResource, name: string) =>
  new ApiError(409, 'AlreadyExists', `${grString(gr)} "${name}" already exists`, detailsFor(gr, name));

export const conflict = (gr: GroupResource, name: string, why: string) =>
  new ApiError(
    409,
    'Conflict',
    `Operation cannot be fulfilled on ${grString(gr)} "${name}": ${why}`,
    detailsFor(gr, name),
  );

export const optimisticLockConflict = (gr: GroupResource, name: string) =>
  conflict(
    gr,
    name,
    'the object has been modified; please apply your changes to the latest version and try again',
  );

export interface InvalidCause {
  /** FieldValueInvalid, FieldValueRequired, ... */
  type: string;
  field: string;
  /** The error body without the field: `Invalid value: "X": must be ...`. */
  message: string;
}

/**
 * 422 Invalid: `Kind.group "name" is invalid: [cause, cause]` (upstream's
 * NewInvalid names the GroupKind: `Deployment.apps`, core kinds bare), one
 * StatusCause per field error.
 */
export const invalid = (group: string, kind: string, name: string, causes: InvalidCause[]) => {
  const parts = causes.map((c) => (c.field ? `${c.field}: ${c.message}` : c.message));
  const summary = parts.length === 1 ? parts[0] : `[${parts.join(', ')}]`;
  const qualified = group ? `${kind}.${group}` : kind;
  return new ApiError(422, 'Invalid', `${qualified} "${name}" is invalid: ${summary}`, {
    name,
    group,
    kind,
    causes: causes.map((c) => ({ reason: c.type, message: c.message, field: c.field })),
  });
};

export const badRequest = (message: string) => new ApiError(400, 'BadRequest', message);

export const methodNotAllowed = (verb: string, what: string) =>
  new ApiError(405, 'MethodNotAllowed', `${verb} is not supported on resources of kind "${what}"`);

/**
 * 405 for a method no route serves on the path (PROPFIND, or PUT on a
 * collection): what go-restful answers through upstream's service error
 * handler. The API server and the HTTPS server (for methods Node's parser
 * refuses) both send it.
 */
export const methodNotRouted = () =>
  new ApiError(
    405,
    'MethodNotAllowed',
    'the server does not allow this method on the requested resource',
    {},
  );

/** 410 for a watch or list from a resourceVersion that has been compacted. */
export const expired = (message: string) => new ApiError(410, 'Expired', message);

export const gone = (message: string) => new ApiError(410, 'Gone', message);

export const unauthorized = (message = 'Unauthorized') => new ApiError(401, 'Unauthorized', message);

export const forbidden = (message: string) => new ApiError(403, 'Forbidden', message);

export const unsupportedMediaType = (contentType: string) =>
  new ApiError(
    415,
    'UnsupportedMediaType',
    `the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml (got "${contentType}")`,
  );

export const notAcceptable = (accept: string) =>
  new ApiError(
    406,
    'NotAcceptable',
    `only the following media types are accepted: application/json, application/yaml (got "${accept}")`,
  );

export const tooLarge = (limit: number) =>
  new ApiError(413, 'RequestEntityTooLarge', `Request entity too large: limit is ${limit}`);

export const internalError = (message: string) =>
  new ApiError(500, 'InternalError', `Internal error occurred: ${message}`);

export const timeout = (message: string) => new ApiError(504, 'Timeout', message);

export const successStatus = (details?: StatusDetails): Status => ({
  kind: 'Status',
  apiVersion: 'v1',
  metadata: {},
  status: 'Success',
  ...(details ? { details } : {}),
  code: 200,
});
