// Field selectors as apimachinery's fields.ParseSelector: comma-separated
// `field=value`, `field==value` or `field!=value` terms, where a value may
// escape `\`, `,` and `=` with a backslash.

export class FieldSelectorParseError extends Error {
  override name = 'FieldSelectorParseError';
}

export interface FieldRequirement {
  readonly field: string;
  /** `==` parses to `=`, as upstream's Requirements() reports it. */
  readonly op: '=' | '!=';
  readonly value: string;
}

export interface FieldSelector {
  readonly requirements: readonly FieldRequirement[];
  /** A missing field reads as "" (upstream Fields.Get). */
  matches(fields: Readonly<Record<string, string>>): boolean;
  empty(): boolean;
  toString(): string;
  /** The value `field` must equal, if an `=` term pins it. */
  requiresExactMatch(field: string): string | undefined;
  /** Fields used that are not in `allowed`, each once, in selector order. */
  unsupportedFields(allowed: ReadonlySet<string>): string[];
  /**
   * Rewrites every term (upstream Transform), e.g. to map a legacy field
   * name; returning undefined drops the term.
   */
  transform(fn: (field: string, value: string) => readonly [string, string] | undefined): FieldSelector;
}

/** Escapes a value for use in a selector string (upstream EscapeValue). */
export function escapeValue(s: string): string {
  return s.replace(/[\\,=]/g, (c) => `\\${c}`);
}

/** Undoes escapeValue; unescaped `,` or `=`, or an unknown escape, is an error. */
export function unescapeValue(s: string): string {
  if (!/[\\,=]/.test(s)) return s;
  let out = '';
  let inSlash = false;
  for (const c of s) {
    if (inSlash) {
      if (c !== '\\' && c !== ',' && c !== '=') {
        throw new FieldSelectorParseError(`invalid field selector: invalid escape sequence: \\${c}`);
      }
      out += c;
      inSlash = false;
    } else if (c === '\\') {
      inSlash = true;
    } else if (c === ',' || c === '=') {
      // Upstream prints the rune's code point (e.g. 61); the character reads better.
      throw new FieldSelectorParseError(`invalid field selector: unescaped character in value: ${c}`);
    } else {
      out += c;
    }
  }
  if (inSlash) throw new FieldSelectorParseError('invalid field selector: invalid escape sequence: \\');
  return out;
}

// Splits on commas not preceded by a backslash; the escapes stay in place.
function splitTerms(s: string): string[] {
  if (s === '') return [];
  const terms: string[] = [];
  let start = 0;
  let inSlash = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (inSlash) inSlash = false;
    else if (c === '\\') inSlash = true;
    else if (c === ',') {
      terms.push(s.slice(start, i));
      start = i + 1;
    }
  }
  terms.push(s.slice(start));
  return terms;
}

// The field name cannot be escaped, so the first operator found splits the
// term; "!=" and "==" are tried before "=" so no "=" is left on the value.
function splitTerm(term: string): [string, '!=' | '==' | '=', string] | undefined {
  for (let i = 0; i < term.length; i++) {
    for (const op of ['!=', '==', '='] as const) {
      if (term.startsWith(op, i)) return [term.slice(0, i), op, term.slice(i + op.length)];
    }
  }
  return undefined;
}

class Terms implements FieldSelector {
  readonly requirements: readonly FieldRequirement[];

  constructor(reqs: FieldRequirement[]) {
    this.requirements = Object.freeze(reqs.map((r) => Object.freeze({ ...r })));
  }

  matches(fields: Readonly<Record<string, string>>): boolean {
    return this.requirements.every((r) => {
      const actual = Object.hasOwn(fields, r.field) ? fields[r.field] : '';
      return r.op === '=' ? actual === r.value : actual !== r.value;
    });
  }

  empty(): boolean {
    return this.requirements.length === 0;
  }

  toString(): string {
    return this.requirements.map((r) => `${r.field}${r.op}${escapeValue(r.value)}`).join(',');
  }

  requiresExactMatch(field: string): string | undefined {
    return this.requirements.find((r) => r.field === field && r.op === '=')?.value;
  }

  unsupportedFields(allowed: ReadonlySet<string>): string[] {
    return [...new Set(this.requirements.map((r) => r.field).filter((f) => !allowed.has(f)))];
  }

  transform(fn: (field: string, value: string) => readonly [string, string] | undefined): FieldSelector {
    const out: FieldRequirement[] = [];
    for (const r of this.requirements) {
      const t = fn(r.field, r.value);
      if (t) out.push({ field: t[0], op: r.op, value: t[1] });
    }
    return new Terms(out);
  }
}

export function everythingFields(): FieldSelector {
  return new Terms([]);
}

/** Matches exactly the given field values. */
export function fieldSelectorFromSet(set: Readonly<Record<string, string>>): FieldSelector {
  return new Terms(
    Object.keys(set).map((field) => ({ field, op: '=' as const, value: set[field] as string })),
  );
}

/** fields.ParseSelector. Terms are sorted (as raw text) so equal selectors print equal. */
export function parseFieldSelector(selector: string): FieldSelector {
  const parts = splitTerms(selector).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const reqs: FieldRequirement[] = [];
  for (const part of parts) {
    if (part === '') continue;
    const split = splitTerm(part);
    if (!split)
      throw new FieldSelectorParseError(`invalid selector: '${selector}'; can't understand '${part}'`);
    const [field, op, rhs] = split;
    reqs.push({ field, op: op === '!=' ? '!=' : '=', value: unescapeValue(rhs) });
  }
  return new Terms(reqs);
}
