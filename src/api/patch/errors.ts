// One error type for every patch format, so the apiserver can turn any
// rejected patch into a Status without knowing which engine produced it.

/** A patch that is malformed, or that cannot apply to the document it was sent for. */
export class PatchError extends Error {
  override name = 'PatchError';
}
