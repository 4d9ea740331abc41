// Field-error plumbing and the name/label/annotation rules of apimachinery's
// util/validation, api/validation and util/validation/field. Messages are
// byte-for-byte upstream's: clients, kubectl and users' scripts match on
// them, and a Status cause's message is exactly upstream's ErrorBody().

export type FieldErrorType =
  | 'FieldValueRequired'
  | 'FieldValueInvalid'
  | 'FieldValueDuplicate'
  | 'FieldValueNotSupported'
  | 'FieldValueForbidden'
  | 'FieldValueTooLong'
  | 'FieldValueTooMany';

export interface FieldError {
  type: FieldErrorType;
  /** Field path, e.g. `spec.containers[0].image`. */
  field: string;
  /** Upstream's ErrorBody(): `<Type string>[: <value>][: <detail>]`. */
  message: string;
  /** The detail alone, without the type and value. */
  detail: string;
  badValue?: unknown;
}

const typeStrings: Record<FieldErrorType, string> = {
  FieldValueRequired: 'Required value',
  FieldValueInvalid: 'Invalid value',
  FieldValueDuplicate: 'Duplicate value',
  FieldValueNotSupported: 'Unsupported value',
  FieldValueForbidden: 'Forbidden',
  FieldValueTooLong: 'Too long',
  FieldValueTooMany: 'Too many',
};

// Upstream never prints the bad value for these types.
const valuelessTypes = new Set<FieldErrorType>([
  'FieldValueRequired',
  'FieldValueForbidden',
  'FieldValueTooLong',
]);

function makeError(
  type: FieldErrorType,
  field: string,
  badValue: unknown,
  detail: string,
  showValue = true,
): FieldError {
  let message = typeStrings[type];
  if (showValue && !valuelessTypes.has(type)) message += `: ${formatBadValue(badValue)}`;
  if (detail) message += `: ${detail}`;
  return { type, field, message, detail, badValue };
}

export function required(field: string, detail = ''): FieldError {
  return makeError('FieldValueRequired', field, '', detail);
}

export function invalid(field: string, value: unknown, detail: string): FieldError {
  return makeError('FieldValueInvalid', field, value, detail);
}

export function notSupported(field: string, value: unknown, allowed: readonly string[]): FieldError {
  const detail = allowed.length > 0 ? `supported values: ${allowed.map(goQuote).join(', ')}` : '';
  return makeError('FieldValueNotSupported', field, value, detail);
}

export function forbidden(field: string, detail: string): FieldError {
  return makeError('FieldValueForbidden', field, '', detail);
}

export function duplicate(field: string, value: unknown): FieldError {
  return makeError('FieldValueDuplicate', field, value, '');
}

/** The value is never echoed back (it may be huge); a negative max omits the limit. */
export function tooLong(field: string, _value: unknown, maxLength: number): FieldError {
  const detail =
    maxLength >= 0
      ? `may not be more than ${maxLength} ${maxLength === 1 ? 'byte' : 'bytes'}`
      : 'value is too long';
  return makeError('FieldValueTooLong', field, '<value omitted>', detail);
}

/** A negative `actual` leaves the count out of the message, as upstream. */
export function tooMany(field: string, actual: number, max: number): FieldError {
  const detail = max >= 0 ? `must have at most ${max} ${max === 1 ? 'item' : 'items'}` : 'has too many items';
  return actual >= 0
    ? makeError('FieldValueTooMany', field, actual, detail)
    : makeError('FieldValueTooMany', field, undefined, detail, false);
}

/** `<field>: <ErrorBody>`, as upstream's field.Error.Error(). */
export function formatFieldError(e: Pick<FieldError, 'field' | 'message'>): string {
  return `${e.field}: ${e.message}`;
}

/**
 * The text of errs.ToAggregate().Error(): duplicates dropped, one error
 * alone, several in brackets. This is what follows `Pod "x" is invalid: `.
 */
export function formatFieldErrors(errs: readonly Pick<FieldError, 'field' | 'message'>[]): string {
  const msgs = [...new Set(errs.map(formatFieldError))];
  if (msgs.length === 1) return msgs[0] as string;
  return msgs.length === 0 ? '' : `[${msgs.join(', ')}]`;
}

// ---- field paths (upstream field.Path.String()) ----

export function childPath(parent: string, ...names: string[]): string {
  // Validation builds a path for every field it looks at, errors or not.
  let out = parent;
  for (const n of names) if (n !== '') out = out === '' ? n : `${out}.${n}`;
  return out;
}

export function indexPath(parent: string, index: number): string {
  return `${parent}[${index}]`;
}

export function keyPath(parent: string, key: string): string {
  return `${parent}[${key}]`;
}

// ---- value rendering, as Go's fmt/json would render it ----

/** Renders a bad value as upstream's ErrorBody: %q for strings, %v for scalars, JSON otherwise. */
export function formatBadValue(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return goQuote(value);
    case 'number':
      return goFloat(value);
    case 'bigint':
    case 'boolean':
      return String(value);
    case 'undefined':
      return 'null';
    default:
      if (value === null) return 'null';
      return goJSON(value);
  }
}

// Go's %v for a float64: shortest digits, exponent form outside [1e-4, 1e21).
function goFloat(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (!Number.isFinite(v)) return v > 0 ? '+Inf' : '-Inf';
  if (v === 0) return Object.is(v, -0) ? '-0' : '0';
  const [mant = '', expStr = '0'] = v.toExponential().split('e');
  const exp = Number(expStr);
  if (exp < -4 || exp >= 21) {
    const sign = exp < 0 ? '-' : '+';
    return `${mant}e${sign}${String(Math.abs(exp)).padStart(2, '0')}`;
  }
  return String(v);
}

// encoding/json output: sorted map keys, and <, >, & escaped for HTML safety.
function goJSON(value: unknown): string {
  let out: string | undefined;
  try {
    out = JSON.stringify(value, (_k, v: unknown) => {
      if (typeof v === 'bigint') return Number(v);
      if (v && typeof v === 'object' && !Array.isArray(v)) {
        const sorted: Record<string, unknown> = {};
        for (const k of Object.keys(v).sort()) sorted[k] = (v as Record<string, unknown>)[k];
        return sorted;
      }
      return v;
    });
  } catch {
    out = undefined;
  }
  if (out === undefined) return String(value);
  return out
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

const printable = /^[\p{L}\p{M}\p{N}\p{P}\p{S} ]$/u;

/** Go's strconv.Quote: printable Unicode kept, everything else escaped. */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0) as number;
    switch (ch) {
      case '"':
        out += '\\"';
        continue;
      case '\\':
        out += '\\\\';
        continue;
      case '\x07':
        out += '\\a';
        continue;
      case '\b':
        out += '\\b';
        continue;
      case '\f':
        out += '\\f';
        continue;
      case '\n':
        out += '\\n';
        continue;
      case '\r':
        out += '\\r';
        continue;
      case '\t':
        out += '\\t';
        continue;
      case '\v':
        out += '\\v';
        continue;
    }
    if (cp >= 0xd800 && cp <= 0xdfff) {
      // A lone surrogate is what Go would see as invalid UTF-8.
      out += '\\ufffd';
    } else if (printable.test(ch)) {
      out += ch;
    } else if (cp < 0x80) {
      out += `\\x${cp.toString(16).padStart(2, '0')}`;
    } else if (cp < 0x10000) {
      out += `\\u${cp.toString(16).padStart(4, '0')}`;
    } else {
      out += `\\U${cp.toString(16).padStart(8, '0')}`;
    }
  }
  return `${out}"`;
}

// ---- string rules (util/validation) ----

// Upstream measures lengths in bytes (Go's len), not UTF-16 units.
function byteLength(s: string): number {
  let n = 0;
  for (const ch of s) {
    const cp = ch.codePointAt(0) as number;
    n += cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
  }
  return n;
}

export function maxLenError(length: number): string {
  return `must be no more than ${length} characters`;
}

export function emptyError(): string {
  return 'must be non-empty';
}

export function regexError(msg: string, fmt: string, ...examples: string[]): string {
  if (examples.length === 0) return `${msg} (regex used for validation is '${fmt}')`;
  return `${msg} (e.g. ${examples.map((e) => `'${e}', `).join(' or ')}regex used for validation is '${fmt}')`;
}

export function inclusiveRangeError(lo: number, hi: number): string {
  return `must be between ${lo} and ${hi}, inclusive`;
}

const qnameCharFmt = '[A-Za-z0-9]';
const qnameExtCharFmt = '[-A-Za-z0-9_.]';
const qualifiedNameFmt = `(${qnameCharFmt}${qnameExtCharFmt}*)?${qnameCharFmt}`;
const qualifiedNameErrMsg =
  "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const qualifiedNameMaxLength = 63;
const qualifiedNameRegexp = new RegExp(`^${qualifiedNameFmt}$`);

const labelValueFmt = `(${qualifiedNameFmt})?`;
const labelValueErrMsg =
  "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
export const LabelValueMaxLength = 63;
const labelValueRegexp = new RegExp(`^${labelValueFmt}$`);

const dns1123LabelFmt = '[a-z0-9]([-a-z0-9]*[a-z0-9])?';
const dns1123LabelErrMsg =
  "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
export const DNS1123LabelMaxLength = 63;
const dns1123LabelRegexp = new RegExp(`^${dns1123LabelFmt}$`);

const dns1123SubdomainFmt = `${dns1123LabelFmt}(\\.${dns1123LabelFmt})*`;
const dns1123SubdomainErrorMsg =
  "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
export const DNS1123SubdomainMaxLength = 253;
const dns1123SubdomainRegexp = new RegExp(`^${dns1123SubdomainFmt}$`);

const dns1035LabelFmt = '[a-z]([-a-z0-9]*[a-z0-9])?';
const dns1035LabelErrMsg =
  "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character";
export const DNS1035LabelMaxLength = 63;
const dns1035LabelRegexp = new RegExp(`^${dns1035LabelFmt}$`);

/** Label and annotation keys: `[prefix/]name`, prefix a DNS subdomain. */
export function isQualifiedName(value: string): string[] {
  const errs: string[] = [];
  const parts = value.split('/');
  let name: string;
  if (parts.length === 1) {
    name = parts[0] as string;
  } else if (parts.length === 2) {
    const prefix = parts[0] as string;
    name = parts[1] as string;
    if (prefix.length === 0) {
      errs.push(`prefix part ${emptyError()}`);
    } else {
      for (const msg of isDNS1123Subdomain(prefix)) errs.push(`prefix part ${msg}`);
    }
  } else {
    return [
      `a qualified name ${regexError(qualifiedNameErrMsg, qualifiedNameFmt, 'MyName', 'my.name', '123-abc')}` +
        " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
    ];
  }
  if (name.length === 0) {
    errs.push(`name part ${emptyError()}`);
  } else if (byteLength(name) > qualifiedNameMaxLength) {
    errs.push(`name part ${maxLenError(qualifiedNameMaxLength)}`);
  }
  if (!qualifiedNameRegexp.test(name)) {
    errs.push(
      `name part ${regexError(qualifiedNameErrMsg, qualifiedNameFmt, 'MyName', 'my.name', '123-abc')}`,
    );
  }
  return errs;
}

export function isValidLabelValue(value: string): string[] {
  const errs: string[] = [];
  if (byteLength(value) > LabelValueMaxLength) errs.push(maxLenError(LabelValueMaxLength));
  if (!labelValueRegexp.test(value)) {
    errs.push(regexError(labelValueErrMsg, labelValueFmt, 'MyValue', 'my_value', '12345'));
  }
  return errs;
}

export function isDNS1123Label(value: string): string[] {
  const errs: string[] = [];
  if (byteLength(value) > DNS1123LabelMaxLength) errs.push(maxLenError(DNS1123LabelMaxLength));
  if (!dns1123LabelRegexp.test(value)) {
    // A valid subdomain that is not a valid label can only be failing on dots,
    // and saying so is clearer than the regex.
    if (dns1123SubdomainRegexp.test(value)) errs.push('must not contain dots');
    else errs.push(regexError(dns1123LabelErrMsg, dns1123LabelFmt, 'my-name', '123-abc'));
  }
  return errs;
}

export function isDNS1123Subdomain(value: string): string[] {
  const errs: string[] = [];
  if (byteLength(value) > DNS1123SubdomainMaxLength) errs.push(maxLenError(DNS1123SubdomainMaxLength));
  if (!dns1123SubdomainRegexp.test(value)) {
    errs.push(regexError(dns1123SubdomainErrorMsg, dns1123SubdomainFmt, 'example.com'));
  }
  return errs;
}

export function isDNS1035Label(value: string): string[] {
  const errs: string[] = [];
  if (byteLength(value) > DNS1035LabelMaxLength) errs.push(maxLenError(DNS1035LabelMaxLength));
  if (!dns1035LabelRegexp.test(value)) {
    errs.push(regexError(dns1035LabelErrMsg, dns1035LabelFmt, 'my-name', 'abc-123'));
  }
  return errs;
}

/** IANA service names (RFC 6335), lower case only. */
export function isValidPortName(port: string): string[] {
  const errs: string[] = [];
  if (byteLength(port) > 15) errs.push(maxLenError(15));
  if (!/^[-a-z0-9]+$/.test(port)) {
    errs.push('must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)');
  }
  if (!/[a-z]/.test(port)) errs.push('must contain at least one letter (a-z)');
  if (port.includes('--')) errs.push('must not contain consecutive hyphens');
  if (port.startsWith('-') || port.endsWith('-')) errs.push('must not begin or end with a hyphen');
  return errs;
}

export function isValidPortNum(port: number): string[] {
  return Number.isInteger(port) && port >= 1 && port <= 65535 ? [] : [inclusiveRangeError(1, 65535)];
}

const percentFmt = '[0-9]+%';
const percentRegexp = new RegExp(`^${percentFmt}$`);

export function isValidPercent(percent: string): string[] {
  if (percentRegexp.test(percent)) return [];
  return [
    regexError(
      "a valid percent string must be a numeric string followed by an ending '%'",
      percentFmt,
      '1%',
      '93%',
    ),
  ];
}

// ---- IP addresses, as k8s.io/utils/net's "sloppy" parsers ----

// The sloppy IPv4 parser (Go before 1.17) reads each octet as decimal and
// tolerates leading zeros ("010.1.1.1" is 10.1.1.1), which upstream keeps
// accepting for compatibility with objects already stored.
function parseIPv4Sloppy(s: string): boolean {
  const parts = s.split('.');
  if (parts.length !== 4) return false;
  return parts.every((p) => /^[0-9]{1,3}$/.test(p) && Number(p) <= 255);
}

function parseIPv6(s: string): boolean {
  if (s.includes('%')) return false;
  let groups = 0;
  let rest = s;
  // A trailing embedded IPv4 counts as two groups.
  const lastColon = rest.lastIndexOf(':');
  if (lastColon >= 0 && rest.slice(lastColon + 1).includes('.')) {
    if (!parseIPv4Sloppy(rest.slice(lastColon + 1))) return false;
    rest = `${rest.slice(0, lastColon + 1)}0`;
    groups = 1;
  }
  const halves = rest.split('::');
  if (halves.length > 2) return false;
  const parseHalf = (h: string): number => {
    if (h === '') return 0;
    const gs = h.split(':');
    return gs.every((g) => /^[0-9a-fA-F]{1,4}$/.test(g)) ? gs.length : -1;
  };
  const counts = halves.map(parseHalf);
  if (counts.some((c) => c < 0)) return false;
  const total = counts.reduce((a, b) => a + b, 0) + groups;
  return halves.length === 2 ? total <= 7 : total === 8;
}

function ipVersion(s: string): 4 | 6 | 0 {
  if (parseIPv4Sloppy(s)) return 4;
  if (s.includes(':') && parseIPv6(s)) return 6;
  return 0;
}

export function isValidIP(value: string): string[] {
  return ipVersion(value) ? [] : ['must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)'];
}

export function isCIDR(value: string): string[] {
  const bad = ['must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)'];
  const slash = value.indexOf('/');
  if (slash < 0) return bad;
  const version = ipVersion(value.slice(0, slash));
  const prefix = value.slice(slash + 1);
  if (!version || !/^[0-9]+$/.test(prefix)) return bad;
  return Number(prefix) <= (version === 4 ? 32 : 128) ? [] : bad;
}

export const isValidCIDR = isCIDR;

// ---- metadata rules (api/validation, apimachinery/pkg/api/validation) ----

export const TotalAnnotationSizeLimitB = 256 * 1024;

export function validateLabels(
  labels: Record<string, string> | null | undefined,
  fieldPath: string,
): FieldError[] {
  const errs: FieldError[] = [];
  if (!labels) return errs;
  // Sorted so the error order is stable (upstream walks a Go map).
  for (const k of Object.keys(labels).sort()) {
    for (const msg of isQualifiedName(k)) errs.push(invalid(fieldPath, k, msg));
    for (const msg of isValidLabelValue(labels[k] as string)) errs.push(invalid(fieldPath, labels[k], msg));
  }
  return errs;
}

export function validateAnnotations(
  annotations: Record<string, string> | null | undefined,
  fieldPath: string,
): FieldError[] {
  const errs: FieldError[] = [];
  if (!annotations) return errs;
  let total = 0;
  for (const k of Object.keys(annotations).sort()) {
    // Annotation keys are qualified names whose case does not matter.
    for (const msg of isQualifiedName(k.toLowerCase())) errs.push(invalid(fieldPath, k, msg));
    total += byteLength(k) + byteLength(annotations[k] ?? '');
  }
  if (total > TotalAnnotationSizeLimitB) errs.push(tooLong(fieldPath, '', TotalAnnotationSizeLimitB));
  return errs;
}

/** Upstream's ValidateNameFunc; `prefix` is set when checking a generateName. */
export type NameRule = (name: string, prefix: boolean) => string[];

// A generateName gets a random suffix appended, so a trailing dash is fine.
// Upstream drops the last *two* characters before appending "a"; kept as is
// because it decides which prefixes are accepted.
function maskTrailingDash(name: string): string {
  return name.length > 1 && name.endsWith('-') ? `${name.slice(0, -2)}a` : name;
}

export const nameIsDNSSubdomain: NameRule = (name, prefix) =>
  isDNS1123Subdomain(prefix ? maskTrailingDash(name) : name);

export const nameIsDNSLabel: NameRule = (name, prefix) =>
  isDNS1123Label(prefix ? maskTrailingDash(name) : name);

export const nameIsDNS1035Label: NameRule = (name, prefix) =>
  isDNS1035Label(prefix ? maskTrailingDash(name) : name);

export const validateNamespaceName: NameRule = nameIsDNSLabel;

/** What every name must satisfy to be usable as a URL path segment. */
export const validatePathSegmentName: NameRule = (name, prefix) => {
  if (!prefix && (name === '.' || name === '..')) return [`may not be '${name}'`];
  return ['/', '%'].filter((c) => name.includes(c)).map((c) => `may not contain '${c}'`);
};

export interface ObjectMetaNames {
  name?: string | null;
  generateName?: string | null;
  namespace?: string | null;
}

/**
 * The name, generateName and namespace part of upstream's
 * ValidateObjectMetaAccessor.
 */
export function validateObjectMetaName(
  meta: ObjectMetaNames,
  namespaced: boolean,
  nameRule: NameRule,
  fieldPath = 'metadata',
): FieldError[] {
  const errs: FieldError[] = [];
  const generateName = meta.generateName ?? '';
  const name = meta.name ?? '';
  const namespace = meta.namespace ?? '';
  if (generateName) {
    for (const msg of nameRule(generateName, true)) {
      errs.push(invalid(childPath(fieldPath, 'generateName'), generateName, msg));
    }
  }
  if (!name) {
    errs.push(required(childPath(fieldPath, 'name'), 'name or generateName is required'));
  } else {
    for (const msg of nameRule(name, false)) errs.push(invalid(childPath(fieldPath, 'name'), name, msg));
  }
  if (namespaced) {
    if (!namespace) {
      errs.push(required(childPath(fieldPath, 'namespace')));
    } else {
      for (const msg of validateNamespaceName(namespace, false)) {
        errs.push(invalid(childPath(fieldPath, 'namespace'), namespace, msg));
      }
    }
  } else if (namespace) {
    errs.push(forbidden(childPath(fieldPath, 'namespace'), 'not allowed on this type'));
  }
  return errs;
}
