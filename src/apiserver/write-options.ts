// The query options of a write, validated as upstream's metav1 validation
// (ValidateCreateOptions, ValidateUpdateOptions, ValidatePatchOptions) does
// before it reads the body: a bad dryRun, fieldManager, fieldValidation or
// force is 422 Invalid on the options kind, every error at once, as in
// `PatchOptions.meta.k8s.io "" is invalid: force: Forbidden: ...`.

import { ApiError } from '../api/errors.ts';
import {
  type FieldError,
  forbidden,
  formatFieldErrors,
  notSupported,
  required,
  tooLong,
} from '../api/validation.ts';

export type WriteOptionsKind = 'CreateOptions' | 'UpdateOptions' | 'PatchOptions';

const FIELD_MANAGER_MAX_LENGTH = 128;
const APPLY_PATCH = 'application/apply-patch+yaml';

/** Throws 422 Invalid for options upstream refuses; patchType only for PatchOptions. */
export function validateWriteOptions(
  kind: WriteOptionsKind,
  query: URLSearchParams,
  patchType?: string,
): void {
  const errs: FieldError[] = [];
  const manager = query.get('fieldManager');
  if (kind === 'PatchOptions') {
    if (patchType === APPLY_PATCH) {
      if (!manager) errs.push(required('fieldManager', 'is required for apply patch'));
    } else if (query.has('force')) {
      errs.push(forbidden('force', 'may not be specified for non-apply patch'));
    }
  }
  if (manager !== null && Buffer.byteLength(manager) > FIELD_MANAGER_MAX_LENGTH) {
    errs.push(tooLong('fieldManager', manager, FIELD_MANAGER_MAX_LENGTH));
  }
  const dryRun = query.getAll('dryRun');
  if (dryRun.some((v) => v !== 'All')) errs.push(notSupported('dryRun', dryRun, ['All']));
  const validation = query.get('fieldValidation');
  if (validation && !['Ignore', 'Strict', 'Warn'].includes(validation)) {
    errs.push(notSupported('fieldValidation', validation, ['Ignore', 'Strict', 'Warn']));
  }
  if (errs.length === 0) return;
  throw new ApiError(422, 'Invalid', `${kind}.meta.k8s.io "" is invalid: ${formatFieldErrors(errs)}`, {
    group: 'meta.k8s.io',
    kind,
    causes: errs.map((e) => ({ reason: e.type, message: e.message, field: e.field })),
  });
}
