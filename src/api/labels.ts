// Label selectors with the grammar, validation, matching and canonical
// string form of apimachinery's labels.Parse and metav1.LabelSelector.
// Error texts are upstream's, since clients surface them verbatim.

import {
  type FieldError,
  formatFieldErrors,
  invalid,
  isQualifiedName,
  isValidLabelValue,
  notSupported,
} from './validation.ts';

/** selection.Operator values. */
export type Operator = 'in' | 'notin' | '=' | '==' | '!=' | 'exists' | '!' | 'gt' | 'lt';

const binaryOperators: Operator[] = ['in', 'notin', '=', '==', '!=', 'gt', 'lt'];
const validOperators: Operator[] = [...binaryOperators, 'exists', '!'];

export interface Requirement {
  readonly key: string;
  readonly operator: Operator;
  readonly values: readonly string[];
}

export class SelectorParseError extends Error {
  override name = 'SelectorParseError';
}

export interface Selector {
  readonly requirements: readonly Requirement[];
  matches(labels: Readonly<Record<string, string>> | null | undefined): boolean;
  /** True when the selector does not restrict anything. */
  empty(): boolean;
  toString(): string;
  /** The single value `label` must equal, if the selector pins one. */
  requiresExactMatch(label: string): string | undefined;
  /** A new selector with these requirements added (re-sorted by key). */
  add(...reqs: Requirement[]): Selector;
}

const int64Min = -(2n ** 63n);
const int64Max = 2n ** 63n - 1n;

// strconv.ParseInt(s, 10, 64)
function parseInt64(s: string): bigint | undefined {
  if (!/^[+-]?[0-9]+$/.test(s)) return undefined;
  const v = BigInt(s);
  return v < int64Min || v > int64Max ? undefined : v;
}

function keyErrors(key: string, path: string): FieldError[] {
  const errs = isQualifiedName(key);
  return errs.length ? [invalid(path, key, errs.join('; '))] : [];
}

function valueErrors(key: string, value: string, path: string): FieldError[] {
  const errs = isValidLabelValue(value);
  return errs.length ? [invalid(`${path}[${key}]`, value, errs.join('; '))] : [];
}

/** labels.NewRequirement: validates and throws SelectorParseError on any violation. */
export function newRequirement(key: string, operator: Operator, values: readonly string[] = []): Requirement {
  const errs: FieldError[] = [...keyErrors(key, 'key')];
  const vals = [...values];
  switch (operator) {
    case 'in':
    case 'notin':
      if (vals.length === 0)
        errs.push(invalid('values', vals, "for 'in', 'notin' operators, values set can't be empty"));
      break;
    case '=':
    case '==':
    case '!=':
      if (vals.length !== 1)
        errs.push(invalid('values', vals, 'exact-match compatibility requires one single value'));
      break;
    case 'exists':
    case '!':
      if (vals.length !== 0)
        errs.push(invalid('values', vals, 'values set must be empty for exists and does not exist'));
      break;
    case 'gt':
    case 'lt':
      if (vals.length !== 1) {
        errs.push(invalid('values', vals, "for 'Gt', 'Lt' operators, exactly one value is required"));
      }
      vals.forEach((v, i) => {
        if (parseInt64(v) === undefined) {
          errs.push(invalid(`values[${i}]`, v, "for 'Gt', 'Lt' operators, the value must be an integer"));
        }
      });
      break;
    default:
      errs.push(notSupported('operator', operator, validOperators));
  }
  vals.forEach((v, i) => {
    errs.push(...valueErrors(key, v, `values[${i}]`));
  });
  if (errs.length > 0) throw new SelectorParseError(formatFieldErrors(errs));
  return Object.freeze({ key, operator, values: Object.freeze(vals) });
}

function sortedCopy(values: readonly string[]): string[] {
  return [...values].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

export function requirementToString(r: Requirement): string {
  const prefix = r.operator === '!' ? '!' : '';
  switch (r.operator) {
    case 'exists':
    case '!':
      return prefix + r.key;
  }
  const op = { in: ' in ', notin: ' notin ', '=': '=', '==': '==', '!=': '!=', gt: '>', lt: '<' }[r.operator];
  // Values print sorted so equal selectors print equal, whatever the input order.
  const vals = r.values.length === 1 ? (r.values[0] as string) : sortedCopy(r.values).join(',');
  const set = r.operator === 'in' || r.operator === 'notin';
  return `${r.key}${op}${set ? `(${vals})` : vals}`;
}

export function requirementMatches(r: Requirement, labels: Readonly<Record<string, string>>): boolean {
  const has = Object.hasOwn(labels, r.key);
  const value = has ? labels[r.key] : undefined;
  switch (r.operator) {
    case 'in':
    case '=':
    case '==':
      return has && r.values.includes(value as string);
    case 'notin':
    case '!=':
      return !has || !r.values.includes(value as string);
    case 'exists':
      return has;
    case '!':
      return !has;
    case 'gt':
    case 'lt': {
      if (!has || r.values.length !== 1) return false;
      const actual = parseInt64(value as string);
      const bound = parseInt64(r.values[0] as string);
      if (actual === undefined || bound === undefined) return false;
      return r.operator === 'gt' ? actual > bound : actual < bound;
    }
    default:
      return false;
  }
}

function byKey(reqs: Requirement[]): Requirement[] {
  // Stable, so same-key requirements keep their written order.
  return reqs.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

class RequirementsSelector implements Selector {
  readonly requirements: readonly Requirement[];

  constructor(reqs: Requirement[]) {
    this.requirements = Object.freeze(reqs);
  }

  matches(labels: Readonly<Record<string, string>> | null | undefined): boolean {
    const ls = labels ?? {};
    return this.requirements.every((r) => requirementMatches(r, ls));
  }

  empty(): boolean {
    return this.requirements.length === 0;
  }

  toString(): string {
    return this.requirements.map(requirementToString).join(',');
  }

  requiresExactMatch(label: string): string | undefined {
    const r = this.requirements.find((x) => x.key === label);
    if (!r) return undefined;
    const exact = r.operator === '=' || r.operator === '==' || r.operator === 'in';
    return exact && r.values.length === 1 ? r.values[0] : undefined;
  }

  add(...reqs: Requirement[]): Selector {
    return new RequirementsSelector(byKey([...this.requirements, ...reqs]));
  }
}

const nothingSelector: Selector = Object.freeze({
  requirements: Object.freeze([]) as readonly Requirement[],
  matches: () => false,
  // Upstream: "nothing" is not empty, yet prints as "".
  empty: () => false,
  toString: () => '',
  requiresExactMatch: () => undefined,
  add(): Selector {
    return nothingSelector;
  },
});

const everythingSelector: Selector = new RequirementsSelector([]);

export function everything(): Selector {
  return everythingSelector;
}

export function nothing(): Selector {
  return nothingSelector;
}

/** Matches exactly the given labels; no validation (upstream SelectorFromSet). */
export function selectorFromSet(set: Readonly<Record<string, string>> | null | undefined): Selector {
  if (!set) return everythingSelector;
  const reqs = Object.keys(set).map(
    (k): Requirement =>
      Object.freeze({ key: k, operator: '=' as const, values: Object.freeze([set[k] as string]) }),
  );
  return new RequirementsSelector(byKey(reqs));
}

/** Like selectorFromSet, but rejects invalid keys and values. */
export function validatedSelectorFromSet(set: Readonly<Record<string, string>> | null | undefined): Selector {
  if (!set) return everythingSelector;
  return new RequirementsSelector(
    byKey(Object.keys(set).map((k) => newRequirement(k, '=', [set[k] as string]))),
  );
}

export type LabelSelectorOperator = 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';

export interface LabelSelectorRequirement {
  key: string;
  operator: LabelSelectorOperator | string;
  values?: string[] | null;
}

export interface LabelSelector {
  matchLabels?: Record<string, string> | null;
  matchExpressions?: LabelSelectorRequirement[] | null;
}

/**
 * metav1.LabelSelectorAsSelector: a missing selector selects nothing, an
 * empty one everything.
 */
export function selectorFromLabelSelector(ls: LabelSelector | null | undefined): Selector {
  if (ls == null) return nothingSelector;
  const matchLabels = ls.matchLabels ?? {};
  const exprs = ls.matchExpressions ?? [];
  if (Object.keys(matchLabels).length + exprs.length === 0) return everythingSelector;
  const reqs: Requirement[] = [];
  for (const k of Object.keys(matchLabels)) reqs.push(newRequirement(k, '=', [matchLabels[k] as string]));
  const ops: Record<string, Operator> = { In: 'in', NotIn: 'notin', Exists: 'exists', DoesNotExist: '!' };
  for (const e of exprs) {
    const op = Object.hasOwn(ops, e.operator) ? ops[e.operator] : undefined;
    if (!op)
      throw new SelectorParseError(`${JSON.stringify(e.operator)} is not a valid label selector operator`);
    reqs.push(newRequirement(e.key, op, e.values ?? []));
  }
  return new RequirementsSelector(byKey(reqs));
}

// ---- the parser, token for token as upstream's lexer and parser ----

type Token =
  | 'error'
  | 'eos'
  | ')'
  | ','
  | '!'
  | '=='
  | '='
  | '>'
  | 'identifier'
  | 'in'
  | '<'
  | '!='
  | 'notin'
  | '(';

const literalTokens: Record<string, Token> = {
  ')': ')',
  ',': ',',
  '!': '!',
  '==': '==',
  '=': '=',
  '>': '>',
  in: 'in',
  '<': '<',
  '!=': '!=',
  notin: 'notin',
  '(': '(',
};

interface Item {
  tok: Token;
  lit: string;
}

const isWhitespace = (ch: string) => ch === ' ' || ch === '\t' || ch === '\r' || ch === '\n';
const isSpecial = (ch: string) => '=!(),><'.includes(ch) && ch !== '';

// Upstream reads bytes and treats a NUL like the end of input; reading at the
// end does not advance, but reading a NUL does.
function lex(s: string): Item[] {
  let pos = 0;
  const read = (): string => (pos < s.length ? (s[pos++] as string) : '\0');
  const items: Item[] = [];
  for (;;) {
    let ch = read();
    while (isWhitespace(ch)) ch = read();
    if (ch === '\0') {
      items.push({ tok: 'eos', lit: '' });
      return items;
    }
    pos--;
    if (isSpecial(ch)) {
      // Longest operator wins: "!=" over "!", "==" over "=".
      let buf = '';
      let last: Item | undefined;
      for (;;) {
        const c = read();
        if (c === '\0') break;
        if (!isSpecial(c)) {
          pos--;
          break;
        }
        buf += c;
        const tok = Object.hasOwn(literalTokens, buf) ? literalTokens[buf] : undefined;
        if (tok) {
          last = { tok, lit: buf };
        } else if (last) {
          pos--;
          break;
        }
      }
      items.push(last ?? { tok: 'error', lit: `error expected: keyword found '${buf}'` });
    } else {
      let buf = '';
      for (;;) {
        const c = read();
        if (c === '\0') break;
        if (isSpecial(c) || isWhitespace(c)) {
          pos--;
          break;
        }
        buf += c;
      }
      const tok = Object.hasOwn(literalTokens, buf) ? literalTokens[buf] : undefined;
      items.push({ tok: tok ?? 'identifier', lit: buf });
    }
  }
}

class Parser {
  private pos = 0;
  private readonly items: Item[];

  constructor(items: Item[]) {
    this.items = items;
  }

  // In value position the keywords "in" and "notin" are plain identifiers.
  lookahead(values: boolean): Item {
    const it = this.items[this.pos] as Item;
    return values && (it.tok === 'in' || it.tok === 'notin') ? { tok: 'identifier', lit: it.lit } : it;
  }

  consume(values: boolean): Item {
    const it = this.lookahead(values);
    this.pos++;
    return it;
  }

  parse(): Requirement[] {
    const reqs: Requirement[] = [];
    for (;;) {
      const { tok, lit } = this.lookahead(true);
      if (tok === 'eos') return reqs;
      if (tok !== 'identifier' && tok !== '!') {
        throw new SelectorParseError(`found '${lit}', expected: !, identifier, or 'end of string'`);
      }
      try {
        reqs.push(this.parseRequirement());
      } catch (err) {
        throw new SelectorParseError(`unable to parse requirement: ${(err as Error).message}`);
      }
      const next = this.consume(true);
      if (next.tok === 'eos') return reqs;
      if (next.tok !== ',')
        throw new SelectorParseError(`found '${next.lit}', expected: ',' or 'end of string'`);
      const after = this.lookahead(true);
      if (after.tok !== 'identifier' && after.tok !== '!') {
        throw new SelectorParseError(`found '${after.lit}', expected: identifier after ','`);
      }
    }
  }

  parseRequirement(): Requirement {
    let op: Operator | undefined;
    let { tok, lit } = this.consume(true);
    if (tok === '!') {
      op = '!';
      ({ tok, lit } = this.consume(true));
    }
    if (tok !== 'identifier') throw new Error(`found '${lit}', expected: identifier`);
    const key = lit;
    const keyErrs = isQualifiedName(key);
    // Upstream reports this one against a nil field path.
    if (keyErrs.length) throw new Error(formatFieldErrors([invalid('<nil>', key, keyErrs.join('; '))]));
    const next = this.lookahead(true).tok;
    if (next === 'eos' || next === ',') op ??= 'exists';
    // "!key" followed by anything but the end: the caller rejects what follows.
    if (op === 'exists' || op === '!') return newRequirement(key, op, []);

    const opItem = this.consume(false);
    const opMap: Partial<Record<Token, Operator>> = {
      in: 'in',
      '=': '=',
      '==': '==',
      '>': 'gt',
      '<': 'lt',
      notin: 'notin',
      '!=': '!=',
    };
    op = opMap[opItem.tok];
    if (!op) throw new Error(`found '${opItem.lit}', expected: ${binaryOperators.join(', ')}`);
    const values = op === 'in' || op === 'notin' ? this.parseValues() : this.parseExactValue();
    return newRequirement(key, op, sortedCopy([...values]));
  }

  parseValues(): Set<string> {
    const open = this.consume(true);
    if (open.tok !== '(') throw new Error(`found '${open.lit}' expected: '('`);
    const { tok, lit } = this.lookahead(true);
    if (tok === 'identifier' || tok === ',') {
      const set = this.parseIdentifiersList();
      if (this.consume(true).tok !== ')') throw new Error(`found '${lit}', expected: ')'`);
      return set;
    }
    if (tok === ')') {
      this.consume(true);
      return new Set(['']);
    }
    throw new Error(`found '${lit}', expected: ',', ')' or identifier`);
  }

  // Empty entries are allowed: "(,a)", "(a,)" and "(a,,b)" all hold "".
  parseIdentifiersList(): Set<string> {
    const set = new Set<string>();
    for (;;) {
      const { tok, lit } = this.consume(true);
      if (tok === 'identifier') {
        set.add(lit);
        const next = this.lookahead(true);
        if (next.tok === ',') continue;
        if (next.tok === ')') return set;
        throw new Error(`found '${next.lit}', expected: ',' or ')'`);
      }
      if (tok !== ',') throw new Error(`found '${lit}', expected: ',', or identifier`);
      if (set.size === 0) set.add('');
      const next = this.lookahead(true).tok;
      if (next === ')') {
        set.add('');
        return set;
      }
      if (next === ',') {
        this.consume(true);
        set.add('');
      }
    }
  }

  parseExactValue(): Set<string> {
    const next = this.lookahead(true).tok;
    if (next === 'eos' || next === ',') return new Set(['']);
    const { tok, lit } = this.consume(true);
    if (tok === 'identifier') return new Set([lit]);
    throw new Error(`found '${lit}', expected: identifier`);
  }
}

/**
 * labels.Parse. Grammar: comma-separated requirements, each `key`, `!key`,
 * `key=v`, `key==v`, `key!=v`, `key>n`, `key<n`, `key in (a,b)` or
 * `key notin (a,b)`. Requirements come back sorted by key.
 */
export function parseSelector(s: string): Selector {
  return new RequirementsSelector(byKey(new Parser(lex(s)).parse()));
}
