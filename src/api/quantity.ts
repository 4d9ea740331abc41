// resource.Quantity: exact fixed-point numbers with SI / binary suffixes, as
// apimachinery's api/resource. A quantity is unscaled × 10^scale with a
// BigInt unscaled part, so "100m", "1.5Gi" and "0.1" stay exact.
//
// Where this departs from upstream, on purpose:
// - A decimal exponent beyond ±MAX_EXPONENT is rejected (upstream takes any
//   int32 and silently wraps larger ones); this bounds the powers of ten any
//   arithmetic has to build.
// - value/milliValue/scaledValue return an exact bigint (upstream's int64
//   overflows silently) and round negatives away from zero (upstream's
//   int64 and big-decimal paths disagree with each other on negatives).
// - A BinarySI value of 1024Ei or more prints with an "Ei" suffix and a
//   larger mantissa; upstream finds no suffix and drops the magnitude. Such
//   values only come from arithmetic, since parsing caps BinarySI at 2^63-1.

export type QuantityFormat = 'DecimalExponent' | 'BinarySI' | 'DecimalSI';

export type QuantityErrorCode = 'format' | 'numeric' | 'suffix';

export class QuantityParseError extends Error {
  override name = 'QuantityParseError';
  readonly code: QuantityErrorCode;

  constructor(code: QuantityErrorCode, message?: string) {
    super(message ?? quantityErrorMessages[code]);
    this.code = code;
  }
}

// Upstream's ErrFormatWrong, ErrNumeric and ErrSuffix.
const quantityErrorMessages: Record<QuantityErrorCode, string> = {
  format: "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
  numeric: 'unable to parse numeric part of quantity',
  suffix: "unable to parse quantity's suffix",
};

export const MAX_EXPONENT = 100_000;

/** Immutable; build one with parseQuantity or the new* helpers. */
export class Quantity {
  /** The value is unscaled × 10^scale. */
  readonly unscaled: bigint;
  readonly scale: number;
  readonly format: QuantityFormat;
  /**
   * The text it was parsed from, when upstream would keep and re-emit that
   * text verbatim (see formatQuantity).
   */
  readonly parsed: string | undefined;

  constructor(unscaled: bigint, scale: number, format: QuantityFormat, parsed?: string) {
    this.unscaled = unscaled;
    this.scale = scale;
    this.format = format;
    this.parsed = parsed;
    Object.freeze(this);
  }

  toString(): string {
    return formatQuantity(this);
  }

  toJSON(): string {
    return formatQuantity(this);
  }
}

const decimalSuffixes: Record<string, number> = {
  n: -9,
  u: -6,
  m: -3,
  '': 0,
  k: 3,
  M: 6,
  G: 9,
  T: 12,
  P: 15,
  E: 18,
};
const binarySuffixes: Record<string, number> = { Ki: 10, Mi: 20, Gi: 30, Ti: 40, Pi: 50, Ei: 60 };
const decimalSuffixByExponent = new Map(Object.entries(decimalSuffixes).map(([s, e]) => [e, s]));
const binarySuffixByPower = ['', 'Ki', 'Mi', 'Gi', 'Ti', 'Pi', 'Ei'];

const isDigit = (c: string | undefined) => c !== undefined && c >= '0' && c <= '9';
const suffixChars = 'eEinumkKMGTP';

const int64Max = 2n ** 63n - 1n;
const nanoScale = -9;

function pow10(n: number): bigint {
  return 10n ** BigInt(n);
}

function abs(v: bigint): bigint {
  return v < 0n ? -v : v;
}

interface Scanned {
  positive: boolean;
  num: string;
  denom: string;
  suffix: string;
  /** Whether the number part had any digit at all ("Ki" and "." have none). */
  hasDigits: boolean;
}

// Upstream's hand-written scanner, including its tolerances: "1.", ".5",
// "-" and "+" are numbers, and a bare suffix reads as zero.
function scan(str: string): Scanned {
  const end = str.length;
  let pos = 0;
  let positive = true;
  if (str[0] === '-') {
    positive = false;
    pos++;
  } else if (str[0] === '+') {
    pos++;
  }
  const zerosStart = pos;
  while (pos < end && str[pos] === '0') pos++;
  if (pos >= end) return { positive, num: '0', denom: '', suffix: '', hasDigits: pos > zerosStart };
  let hasDigits = pos > zerosStart;
  const numStart = pos;
  while (isDigit(str[pos])) pos++;
  let num = str.slice(numStart, pos);
  if (num) hasDigits = true;
  if (!num) num = '0';
  let denom = '';
  if (str[pos] === '.') {
    pos++;
    const denomStart = pos;
    while (isDigit(str[pos])) pos++;
    denom = str.slice(denomStart, pos);
    if (denom) hasDigits = true;
  }
  const suffixStart = pos;
  while (pos < end && suffixChars.includes(str[pos] as string)) pos++;
  if (str[pos] === '-' || str[pos] === '+') pos++;
  while (isDigit(str[pos])) pos++;
  if (pos < end) throw new QuantityParseError('format');
  return { positive, num, denom, suffix: str.slice(suffixStart), hasDigits };
}

function interpretSuffix(suffix: string): { base: 2 | 10; exponent: number; format: QuantityFormat } {
  if (Object.hasOwn(decimalSuffixes, suffix)) {
    return { base: 10, exponent: decimalSuffixes[suffix] as number, format: 'DecimalSI' };
  }
  if (Object.hasOwn(binarySuffixes, suffix)) {
    return { base: 2, exponent: binarySuffixes[suffix] as number, format: 'BinarySI' };
  }
  if (suffix.length > 1 && (suffix[0] === 'e' || suffix[0] === 'E')) {
    const digits = suffix.slice(1);
    if (!/^[+-]?[0-9]+$/.test(digits)) throw new QuantityParseError('suffix');
    const exponent = Number(digits);
    if (Math.abs(exponent) > MAX_EXPONENT) {
      throw new QuantityParseError(
        'suffix',
        `quantity exponent must be between -${MAX_EXPONENT} and ${MAX_EXPONENT}`,
      );
    }
    return { base: 10, exponent, format: 'DecimalExponent' };
  }
  throw new QuantityParseError('suffix');
}

// Quantities are immutable and the same few strings ("100m", "64Mi") come
// back on every pod, through defaulting, validation and admission: parse
// each once. Bounded: cleared when full, so odd inputs cannot grow it.
const parsedQuantities = new Map<string, Quantity>();
const PARSED_QUANTITIES_MAX = 4096;

/** resource.ParseQuantity. Throws QuantityParseError. */
export function parseQuantity(str: string): Quantity {
  let q = parsedQuantities.get(str);
  if (q === undefined) {
    q = parseQuantityText(str);
    if (parsedQuantities.size >= PARSED_QUANTITIES_MAX) parsedQuantities.clear();
    parsedQuantities.set(str, q);
  }
  return q;
}

function parseQuantityText(str: string): Quantity {
  if (str.length === 0) throw new QuantityParseError('format');
  if (str === '0') return new Quantity(0n, 0, 'DecimalSI', str);

  const { positive, num, denom, suffix, hasDigits } = scan(str);
  const { base, exponent, format: parsedFormat } = interpretSuffix(suffix);
  let format = parsedFormat;

  // Upstream has an int64 fast path for short inputs, and only on that path
  // does it keep the input text for re-emitting; mirror exactly when.
  let keepText = false;
  let fastPath = false;
  const precision =
    base === 10
      ? 18 - (num.length + denom.length)
      : denom === ''
        ? 15 - num.length - (exponent * 3) / 10 - 1
        : -1;
  if (precision >= 0 && (base === 10 ? exponent : 0) - denom.length >= nanoScale) {
    fastPath = true;
    const shifted = num + denom;
    if (base === 2) {
      keepText = (BigInt(shifted) & 7n) !== 0n;
    } else {
      const scale = exponent - denom.length;
      keepText = scale % 3 === 0 && !shifted.endsWith('000') && shifted[0] !== '0';
    }
  }
  if (!fastPath && !hasDigits) throw new QuantityParseError('numeric');

  const digits = BigInt(num + denom);
  let unscaled = base === 10 ? digits : digits << BigInt(exponent);
  let scale = base === 10 ? exponent - denom.length : -denom.length;

  // Anything finer than nano is rounded away from zero, so a request for a
  // tiny non-zero amount never becomes zero.
  if (scale < nanoScale && unscaled !== 0n) {
    const divisor = pow10(nanoScale - scale);
    const q = unscaled / divisor;
    unscaled = unscaled % divisor === 0n ? q : q + 1n;
    scale = nanoScale;
  }
  if (format === 'BinarySI') {
    if (compareParts(unscaled, scale, int64Max, 0) > 0) {
      unscaled = int64Max;
      scale = 0;
    }
    // Binary suffixes cannot express a fraction of one.
    if (unscaled !== 0n && compareParts(unscaled, scale, 1n, 0) < 0) format = 'DecimalSI';
  }
  return new Quantity(positive ? unscaled : -unscaled, scale, format, keepText ? str : undefined);
}

function compareParts(ua: bigint, sa: number, ub: bigint, sb: number): -1 | 0 | 1 {
  const min = Math.min(sa, sb);
  const a = ua * pow10(sa - min);
  const b = ub * pow10(sb - min);
  return a < b ? -1 : a > b ? 1 : 0;
}

function align(a: Quantity, b: Quantity): [bigint, bigint, number] {
  const min = Math.min(a.scale, b.scale);
  return [a.unscaled * pow10(a.scale - min), b.unscaled * pow10(b.scale - min), min];
}

export function compareQuantity(a: Quantity, b: Quantity): -1 | 0 | 1 {
  // Signs first: avoids building large powers of ten for the common case.
  const sa = signOf(a.unscaled);
  const sb = signOf(b.unscaled);
  if (sa !== sb) return sa < sb ? -1 : 1;
  if (sa === 0) return 0;
  return compareParts(a.unscaled, a.scale, b.unscaled, b.scale);
}

export function equalQuantity(a: Quantity, b: Quantity): boolean {
  return compareQuantity(a, b) === 0;
}

function signOf(v: bigint): -1 | 0 | 1 {
  return v < 0n ? -1 : v > 0n ? 1 : 0;
}

export function quantitySign(q: Quantity): -1 | 0 | 1 {
  return signOf(q.unscaled);
}

export function isZeroQuantity(q: Quantity): boolean {
  return q.unscaled === 0n;
}

/** a + b; the result keeps a's format unless a is zero (upstream Add). */
export function addQuantity(a: Quantity, b: Quantity): Quantity {
  const [x, y, scale] = align(a, b);
  return new Quantity(x + y, scale, a.unscaled === 0n ? b.format : a.format);
}

/** a − b; the result keeps a's format unless a is zero (upstream Sub). */
export function subQuantity(a: Quantity, b: Quantity): Quantity {
  const [x, y, scale] = align(a, b);
  return new Quantity(x - y, scale, a.unscaled === 0n ? b.format : a.format);
}

export function negQuantity(q: Quantity): Quantity {
  return new Quantity(-q.unscaled, q.scale, q.format);
}

export function mulQuantity(q: Quantity, factor: bigint | number): Quantity {
  return new Quantity(q.unscaled * toBigInt(factor), q.scale, q.format);
}

function toBigInt(v: bigint | number): bigint {
  if (typeof v === 'bigint') return v;
  if (!Number.isSafeInteger(v)) throw new RangeError(`${v} is not a safe integer`);
  return BigInt(v);
}

/** value × 10^scale, in the given format (upstream NewScaledQuantity uses DecimalSI). */
export function newScaledQuantity(
  value: bigint | number,
  scale: number,
  format: QuantityFormat = 'DecimalSI',
): Quantity {
  return new Quantity(toBigInt(value), scale, format);
}

export function newQuantity(value: bigint | number, format: QuantityFormat): Quantity {
  return new Quantity(toBigInt(value), 0, format);
}

export function newMilliQuantity(value: bigint | number, format: QuantityFormat): Quantity {
  return new Quantity(toBigInt(value), -3, format);
}

/** The nearest float; exact input digits are converted once, so rounding is correct. */
export function quantityToNumber(q: Quantity): number {
  return Number(`${q.unscaled}e${q.scale}`);
}

/** q / 10^scale as an integer, rounded away from zero (upstream ScaledValue). */
export function scaledValue(q: Quantity, scale: number): bigint {
  const shift = q.scale - scale;
  if (shift >= 0) return q.unscaled * pow10(shift);
  const divisor = pow10(-shift);
  const quotient = q.unscaled / divisor;
  return q.unscaled % divisor === 0n ? quotient : quotient + BigInt(signOf(q.unscaled));
}

/** The value rounded up to an integer (upstream Value). */
export function value(q: Quantity): bigint {
  return scaledValue(q, 0);
}

/** ceil(q × 1000) (upstream MilliValue). */
export function milliValue(q: Quantity): bigint {
  return scaledValue(q, -3);
}

/**
 * upstream Quantity.String(): the parsed text when upstream keeps it
 * (integers already in canonical form, but also, as upstream does,
 * inputs like "+1", "01" or "1.500" whose fraction has 3n digits), else
 * the canonical form.
 */
export function formatQuantity(q: Quantity): string {
  return q.parsed ?? canonicalQuantityString(q);
}

/**
 * The canonical form, always recomputed: no fractional digits, the largest
 * suffix that loses nothing, and the format's suffix family.
 */
export function canonicalQuantityString(q: Quantity): string {
  if (q.unscaled === 0n) return '0';
  let format = q.format;
  if (format === 'BinarySI') {
    const small = compareParts(abs(q.unscaled), q.scale, 1024n, 0) < 0;
    const integral = q.scale >= 0 || q.unscaled % pow10(-q.scale) === 0n;
    // Binary suffixes cannot show a fraction or anything under 1Ki.
    if (small || !integral) format = 'DecimalSI';
  }
  if (format === 'BinarySI') {
    let v = q.scale >= 0 ? q.unscaled * pow10(q.scale) : q.unscaled / pow10(-q.scale);
    let power = 0;
    while (power < binarySuffixByPower.length - 1 && v % 1024n === 0n) {
      v /= 1024n;
      power++;
    }
    return `${v}${binarySuffixByPower[power]}`;
  }
  let m = q.unscaled;
  let e = q.scale;
  while (m % 10n === 0n) {
    m /= 10n;
    e++;
  }
  // Suffixes step by thousands, so the exponent goes down to a multiple of 3.
  while (e % 3 !== 0) {
    m *= 10n;
    e--;
  }
  if (format === 'DecimalSI') {
    const suffix = decimalSuffixByExponent.get(e);
    // Beyond "E" (or below "n") there is no suffix: use exponent notation
    // rather than losing the magnitude.
    return suffix !== undefined ? `${m}${suffix}` : `${m}e${e}`;
  }
  return e === 0 ? `${m}` : `${m}e${e}`;
}
