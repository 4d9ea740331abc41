// CronJob schedule and time zone checks. Upstream validates a schedule by
// parsing it with github.com/robfig/cron/v3's standard parser and reports
// that parser's error text, so this is a small re-implementation of just
// its parsing rules and messages (it computes no schedule). Time zones are
// checked against the IANA database that Intl carries, standing in for Go's
// time.LoadLocation.

interface Bounds {
  min: number;
  max: number;
  names?: Record<string, number>;
}

const months: Record<string, number> = {
  jan: 1,
  feb: 2,
  mar: 3,
  apr: 4,
  may: 5,
  jun: 6,
  jul: 7,
  aug: 8,
  sep: 9,
  oct: 10,
  nov: 11,
  dec: 12,
};
const days: Record<string, number> = { sun: 0, mon: 1, tue: 2, wed: 3, thu: 4, fri: 5, sat: 6 };

// second, minute, hour, day of month, month, day of week
const fieldBounds: Bounds[] = [
  { min: 0, max: 59 },
  { min: 0, max: 59 },
  { min: 0, max: 23 },
  { min: 1, max: 31 },
  { min: 1, max: 12, names: months },
  { min: 0, max: 6, names: days },
];

const descriptors = new Set([
  '@yearly',
  '@annually',
  '@monthly',
  '@weekly',
  '@daily',
  '@midnight',
  '@hourly',
]);

class CronError extends Error {}

// Go's strconv.Quote, enough for the short tokens quoted here.
const goQuote = (s: string) => JSON.stringify(s);

const int64Max = 2n ** 63n - 1n;

// strconv.Atoi, then robfig's non-negative check.
function mustParseInt(expr: string): bigint {
  let err = '';
  if (!/^[+-]?[0-9]+$/.test(expr)) err = 'invalid syntax';
  else {
    const v = BigInt(expr);
    if (v > int64Max || v < -int64Max - 1n) err = 'value out of range';
    else if (v < 0n) throw new CronError(`negative number (${v}) not allowed: ${expr}`);
    else return v;
  }
  throw new CronError(`failed to parse int from ${expr}: strconv.Atoi: parsing ${goQuote(expr)}: ${err}`);
}

function parseIntOrName(expr: string, names: Record<string, number> | undefined): bigint {
  const named = names && Object.hasOwn(names, expr.toLowerCase()) ? names[expr.toLowerCase()] : undefined;
  return named !== undefined ? BigInt(named) : mustParseInt(expr);
}

function checkRange(expr: string, r: Bounds): void {
  const rangeAndStep = expr.split('/');
  const lowAndHigh = (rangeAndStep[0] as string).split('-');
  const singleDigit = lowAndHigh.length === 1;
  let start: bigint;
  let end: bigint;
  // robfig ignores anything after "*-", so "*-5" is simply "*".
  if (lowAndHigh[0] === '*' || lowAndHigh[0] === '?') {
    start = BigInt(r.min);
    end = BigInt(r.max);
  } else {
    start = parseIntOrName(lowAndHigh[0] as string, r.names);
    if (lowAndHigh.length === 1) end = start;
    else if (lowAndHigh.length === 2) end = parseIntOrName(lowAndHigh[1] as string, r.names);
    else throw new CronError(`too many hyphens: ${expr}`);
  }
  let step = 1n;
  if (rangeAndStep.length === 2) {
    step = mustParseInt(rangeAndStep[1] as string);
    if (singleDigit) end = BigInt(r.max);
  } else if (rangeAndStep.length > 2) {
    throw new CronError(`too many slashes: ${expr}`);
  }
  if (start < BigInt(r.min))
    throw new CronError(`beginning of range (${start}) below minimum (${r.min}): ${expr}`);
  if (end > BigInt(r.max)) throw new CronError(`end of range (${end}) above maximum (${r.max}): ${expr}`);
  if (start > end) throw new CronError(`beginning of range (${start}) beyond end of range (${end}): ${expr}`);
  if (step === 0n) throw new CronError(`step of range should be a positive number: ${expr}`);
}

// Go's time.ParseDuration grammar (the value itself does not matter here).
function durationError(s: string): string | undefined {
  const quoted = goQuote(s);
  let rest = s.replace(/^[-+]/, '');
  if (rest === '0') return undefined;
  if (rest === '') return `time: invalid duration ${quoted}`;
  while (rest !== '') {
    const m = /^([0-9]*)(\.[0-9]*)?/.exec(rest) as RegExpExecArray;
    const [whole, intPart = '', frac = ''] = m;
    if (intPart === '' && frac.length <= 1) return `time: invalid duration ${quoted}`;
    rest = rest.slice(whole.length);
    const unit = /^[^0-9.]*/.exec(rest)?.[0] ?? '';
    if (unit === '') return `time: missing unit in duration ${quoted}`;
    if (!['ns', 'us', 'µs', 'μs', 'ms', 's', 'm', 'h'].includes(unit))
      return `time: unknown unit ${goQuote(unit)} in duration ${quoted}`;
    rest = rest.slice(unit.length);
  }
  return undefined;
}

/** The error robfig/cron's ParseStandard reports for spec, or undefined if it parses. */
export function cronScheduleError(spec: string): string | undefined {
  if (spec.length === 0) return 'empty spec string';
  let rest = spec;
  if (rest.startsWith('TZ=') || rest.startsWith('CRON_TZ=')) {
    const space = rest.indexOf(' ');
    const loc = rest.slice(rest.indexOf('=') + 1, space < 0 ? undefined : space);
    const locErr = timeZoneLoadError(loc);
    if (locErr) return `provided bad location ${loc}: ${locErr}`;
    rest = space < 0 ? '' : rest.slice(space).trim();
  }
  if (rest.startsWith('@')) {
    if (descriptors.has(rest)) return undefined;
    if (rest.startsWith('@every ')) {
      const err = durationError(rest.slice('@every '.length));
      return err ? `failed to parse duration ${rest}: ${err}` : undefined;
    }
    return `unrecognized descriptor: ${rest}`;
  }
  const fields = rest.split(/\s+/).filter((f) => f !== '');
  if (fields.length !== 5) return `expected exactly 5 fields, found ${fields.length}: [${fields.join(' ')}]`;
  try {
    ['0', ...fields].forEach((field, i) => {
      for (const expr of field.split(',').filter((e) => e !== '')) checkRange(expr, fieldBounds[i] as Bounds);
    });
  } catch (err) {
    if (err instanceof CronError) return err.message;
    throw err;
  }
  return undefined;
}

let zoneSet: Set<string> | undefined;

/** time.LoadLocation's error for name, or undefined when Go would load it. */
export function timeZoneLoadError(name: string): string | undefined {
  if (name === '' || name === 'UTC' || name === 'Local') return undefined;
  if (name.split('/').includes('..') || name.startsWith('/') || name.startsWith('\\'))
    return 'time: invalid location name';
  const unknown = `unknown time zone ${name}`;
  // Intl also takes UTC offsets, which are not IANA names.
  if (/^[+-]/.test(name)) return unknown;
  let resolved: string;
  try {
    resolved = new Intl.DateTimeFormat('en-US', { timeZone: name }).resolvedOptions().timeZone;
  } catch {
    return unknown;
  }
  zoneSet ??= new Set(Intl.supportedValuesOf('timeZone'));
  if (zoneSet.has(name) || resolved === name) return undefined;
  // Intl matches names case-insensitively; the tz database files do not.
  // (An alias Intl resolved to another canonical name is taken as given.)
  return resolved.toLowerCase() === name.toLowerCase() ? unknown : undefined;
}

const validTimeZoneCharacters = /^[A-Za-z.\-_0-9+]{1,14}$/;

/** Upstream's validateTimeZone detail messages for a CronJob's timeZone. */
export function timeZoneErrors(tz: string): string[] {
  if (tz.length === 0) return ['timeZone must be nil or non-empty string'];
  for (const part of tz.split('/')) {
    if (part === '.' || part === '..' || part.startsWith('-') || !validTimeZoneCharacters.test(part))
      return [`unknown time zone ${tz}`];
  }
  const errs: string[] = [];
  if (tz.toLowerCase() === 'local')
    errs.push('timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones');
  const err = timeZoneLoadError(tz);
  if (err) errs.push(err);
  return errs;
}
