// The options of a write, validated as upstream's metav1 validation
// (ValidateCreateOptions, ValidateUpdateOptions, ValidatePatchOptions,
// ValidateDeleteOptions) does: a bad dryRun, fieldManager, fieldValidation,
// force or propagationPolicy is 422 Invalid on the options kind, every error
// at once, as in `PatchOptions.meta.k8s.io "" is invalid: force: Forbidden: ...`.

import { ApiError } from '../api/errors.ts';
import {
  type FieldError,
  forbidden,
  formatFieldErrors,
  invalid,
  notSupported,
  required,
  tooLong,
} from '../api/validation.ts';

export type WriteOptionsKind = 'CreateOptions' | 'UpdateOptions' | 'PatchOptions' | 'DeleteOptions';

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
  if (errs.length > 0) throw invalidOptions(kind, errs);
}

/** The DeleteOptions of a delete or deletecollection, decoded from the body or the query. */
export function validateDeleteOptions(options: {
  propagationPolicy?: unknown;
  orphanDependents?: unknown;
  dryRun: unknown[];
}): void {
  const errs: FieldError[] = [];
  const policy = options.propagationPolicy;
  if (policy != null && options.orphanDependents != null) {
    errs.push(
      invalid('propagationPolicy', policy, 'orphanDependents and deletionPropagation cannot be both set'),
    );
  }
  if (policy != null && !['Foreground', 'Background', 'Orphan'].includes(policy as string)) {
    errs.push(notSupported('propagationPolicy', policy, ['Foreground', 'Background', 'Orphan', 'nil']));
  }
  if (options.dryRun.some((v) => v !== 'All')) errs.push(notSupported('dryRun', options.dryRun, ['All']));
  if (errs.length > 0) throw invalidOptions('DeleteOptions', errs);
}

function invalidOptions(kind: WriteOptionsKind, errs: FieldError[]): ApiError {
  return new ApiError(422, 'Invalid', `${kind}.meta.k8s.io "" is invalid: ${formatFieldErrors(errs)}`, {
    group: 'meta.k8s.io',
    kind,
    causes: errs.map((e) => ({ reason: e.type, message: e.message, field: e.field })),
  });
}
