// A namespace's PodSecurity policy from its labels, as upstream's
// api.PolicyToEvaluate: pod-security.kubernetes.io/<mode>[-version] for the
// modes enforce, audit and warn. A missing label falls back to the default
// (privileged:latest for every mode, upstream's default AdmissionConfiguration).
// A bad label is reported, and the policy still resolves: a bad enforce
// level enforces restricted (fail closed), a bad audit or warn level turns
// that mode off (fail open), a bad version means latest.

import type { InvalidCause } from '../../../api/errors.ts';
import type { Level, LevelVersion, Version } from './policy.ts';

export const LABEL_PREFIX = 'pod-security.kubernetes.io/';

export type Mode = 'enforce' | 'audit' | 'warn';

export type Policy = Record<Mode, LevelVersion>;

export const DEFAULT_POLICY: Policy = {
  enforce: { level: 'privileged', version: 'latest' },
  audit: { level: 'privileged', version: 'latest' },
  warn: { level: 'privileged', version: 'latest' },
};

/** One bad label, rendered as upstream's field.Invalid. */
export interface LabelError {
  label: string;
  value: string;
  message: string;
}

/** As a field error (FieldValueInvalid on metadata.labels[<label>]). */
export const labelErrorCause = (e: LabelError): InvalidCause => ({
  type: 'FieldValueInvalid',
  field: `metadata.labels[${e.label}]`,
  message: `Invalid value: ${JSON.stringify(e.value)}: ${e.message}`,
});

export const labelErrorString = (e: LabelError) => {
  const c = labelErrorCause(e);
  return `${c.field}: ${c.message}`;
};

/** Several errors print as upstream's aggregate: `[a, b]`. */
export const labelErrorsString = (errs: readonly LabelError[]) =>
  errs.length === 1 ? labelErrorString(errs[0] as LabelError) : `[${errs.map(labelErrorString).join(', ')}]`;

const LEVELS: readonly Level[] = ['privileged', 'baseline', 'restricted'];
const VERSION = /^v1\.(0|[1-9][0-9]*)$/;

const parseLevel = (value: string): Level | undefined => LEVELS.find((l) => l === value);
const parseVersion = (value: string): Version | undefined =>
  value === 'latest' || VERSION.test(value) ? (value as Version) : undefined;

export function policyFromLabels(
  labels: Record<string, string> | undefined,
  defaults: Policy = DEFAULT_POLICY,
): { policy: Policy; errors: LabelError[] } {
  const policy: Policy = {
    enforce: { ...defaults.enforce },
    audit: { ...defaults.audit },
    warn: { ...defaults.warn },
  };
  const errors: LabelError[] = [];
  for (const mode of ['enforce', 'audit', 'warn'] as const) {
    const levelLabel = `${LABEL_PREFIX}${mode}`;
    const level = labels?.[levelLabel];
    if (level !== undefined) {
      const parsed = parseLevel(level);
      if (!parsed)
        errors.push({ label: levelLabel, value: level, message: `must be one of ${LEVELS.join(', ')}` });
      policy[mode].level = parsed ?? (mode === 'enforce' ? 'restricted' : 'privileged');
    }
    const versionLabel = `${levelLabel}-version`;
    const version = labels?.[versionLabel];
    if (version !== undefined) {
      const parsed = parseVersion(version);
      if (!parsed)
        errors.push({ label: versionLabel, value: version, message: 'must be "latest" or "v1.x"' });
      policy[mode].version = parsed ?? 'latest';
    }
  }
  return { policy, errors };
}

const STRICTNESS: Record<Level, number> = { privileged: 0, baseline: 1, restricted: 2 };

/** <0 if a is less strict than b, 0 if equal, >0 if stricter. */
export const compareLevels = (a: Level, b: Level) => STRICTNESS[a] - STRICTNESS[b];

export const sameLevelVersion = (a: LevelVersion, b: LevelVersion) =>
  a.level === b.level && a.version === b.version;
