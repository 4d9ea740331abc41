// CronJob schedules and time zones. Upstream validates a schedule by parsing
// it with github.com/robfig/cron/v3's standard parser and reports that
// parser's error text, and the CronJob controller asks the same parsed
// schedule for its next activation. This is a small re-implementation of
// just those parsing rules, messages and the Next() search. Time zones are
// checked against the IANA database that Intl carries, standing in for Go's
// time.LoadLocation, and schedule times are computed in a zone's wall clock
// through Intl as well.

import { parseGoDuration } from '../duration.ts';

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

/** The bits a range expression sets, as robfig's getRange (bit i = value i; STAR_BIT for "*" / "?"). */
function getRange(expr: string, r: Bounds): bigint {
  const rangeAndStep = expr.split('/');
  const lowAndHigh = (rangeAndStep[0] as string).split('-');
  const singleDigit = lowAndHigh.length === 1;
  let start: bigint;
  let end: bigint;
  let extra = 0n;
  // robfig ignores anything after "*-", so "*-5" is simply "*".
  if (lowAndHigh[0] === '*' || lowAndHigh[0] === '?') {
    start = BigInt(r.min);
    end = BigInt(r.max);
    extra = STAR_BIT;
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
    // "*/2" is not a star for the day-of-month/day-of-week rule below.
    if (step > 1n) extra = 0n;
  } else if (rangeAndStep.length > 2) {
    throw new CronError(`too many slashes: ${expr}`);
  }
  if (start < BigInt(r.min))
    throw new CronError(`beginning of range (${start}) below minimum (${r.min}): ${expr}`);
  if (end > BigInt(r.max)) throw new CronError(`end of range (${end}) above maximum (${r.max}): ${expr}`);
  if (start > end) throw new CronError(`beginning of range (${start}) beyond end of range (${end}): ${expr}`);
  if (step === 0n) throw new CronError(`step of range should be a positive number: ${expr}`);
  let bits = extra;
  for (let v = start; v <= end; v += step) bits |= 1n << v;
  return bits;
}

/** Set for "*" and "?" (not "*\/2"): robfig's starBit, which changes how days match. */
const STAR_BIT = 1n << 63n;

const all = (r: Bounds): bigint => {
  let bits = STAR_BIT;
  for (let v = r.min; v <= r.max; v++) bits |= 1n << BigInt(v);
  return bits;
};
const only = (v: number): bigint => 1n << BigInt(v);

interface SpecFields {
  second: bigint;
  minute: bigint;
  hour: bigint;
  dom: bigint;
  month: bigint;
  dow: bigint;
}

// robfig's descriptors, spelled as the fields they stand for.
function descriptorFields(d: string): SpecFields | undefined {
  const [, , hour, dom, month, dow] = fieldBounds as [Bounds, Bounds, Bounds, Bounds, Bounds, Bounds];
  const midnight = { second: only(0), minute: only(0), hour: only(0) };
  switch (d) {
    case '@yearly':
    case '@annually':
      return { ...midnight, dom: only(1), month: only(1), dow: all(dow) };
    case '@monthly':
      return { ...midnight, dom: only(1), month: all(month), dow: all(dow) };
    case '@weekly':
      return { ...midnight, dom: all(dom), month: all(month), dow: only(0) };
    case '@daily':
    case '@midnight':
      return { ...midnight, dom: all(dom), month: all(month), dow: all(dow) };
    case '@hourly':
      return {
        second: only(0),
        minute: only(0),
        hour: all(hour),
        dom: all(dom),
        month: all(month),
        dow: all(dow),
      };
  }
  return undefined;
}

/** A parsed schedule: robfig's Schedule interface. */
export interface CronSchedule {
  /**
   * The first activation strictly after `after`, or undefined when there is
   * none within five years (a spec such as "0 0 30 2 *" never fires).
   */
  next(after: Date): Date | undefined;
}

type Parsed = { error: string } | { schedule: CronSchedule };

/**
 * Parses spec as robfig/cron's ParseStandard does: five fields or a
 * descriptor, optionally prefixed with TZ=<zone>. Wall-clock fields are
 * read in `timeZone` (upstream: the CronJob's spec.timeZone, else the
 * controller manager's local zone).
 */
function parseStandard(spec: string, timeZone: string): Parsed {
  if (spec.length === 0) return { error: 'empty spec string' };
  let rest = spec;
  let zone = timeZone;
  if (rest.startsWith('TZ=') || rest.startsWith('CRON_TZ=')) {
    const space = rest.indexOf(' ');
    const loc = rest.slice(rest.indexOf('=') + 1, space < 0 ? undefined : space);
    const locErr = timeZoneLoadError(loc);
    if (locErr) return { error: `provided bad location ${loc}: ${locErr}` };
    zone = loc;
    rest = space < 0 ? '' : rest.slice(space).trim();
  }
  if (rest.startsWith('@')) {
    const fields = descriptorFields(rest);
    if (fields) return { schedule: specSchedule(fields, zone) };
    if (rest.startsWith('@every ')) {
      const d = parseGoDuration(rest.slice('@every '.length));
      if ('error' in d) return { error: `failed to parse duration ${rest}: ${d.error}` };
      return { schedule: constantDelaySchedule(d.ms) };
    }
    return { error: `unrecognized descriptor: ${rest}` };
  }
  const fields = rest.split(/\s+/).filter((f) => f !== '');
  if (fields.length !== 5)
    return { error: `expected exactly 5 fields, found ${fields.length}: [${fields.join(' ')}]` };
  try {
    const bits = ['0', ...fields].map((field, i) => {
      let b = 0n;
      for (const expr of field.split(',').filter((e) => e !== ''))
        b |= getRange(expr, fieldBounds[i] as Bounds);
      return b;
    }) as [bigint, bigint, bigint, bigint, bigint, bigint];
    const [second, minute, hour, dom, month, dow] = bits;
    return { schedule: specSchedule({ second, minute, hour, dom, month, dow }, zone) };
  } catch (err) {
    if (err instanceof CronError) return { error: err.message };
    throw err;
  }
}

/** The error robfig/cron's ParseStandard reports for spec, or undefined if it parses. */
export function cronScheduleError(spec: string): string | undefined {
  const parsed = parseStandard(spec, 'UTC');
  return 'error' in parsed ? parsed.error : undefined;
}

/** Parses a schedule for computing activations; throws with robfig's error text. */
export function parseCronSchedule(spec: string, timeZone = 'UTC'): CronSchedule {
  const parsed = parseStandard(spec, timeZone);
  if ('error' in parsed) throw new Error(parsed.error);
  return parsed.schedule;
}

// "@every 90s": a fixed delay, rounded down to whole seconds and at least
// one second, counted from the given time (robfig's ConstantDelaySchedule).
function constantDelaySchedule(ms: number): CronSchedule {
  const delay = Math.max(1000, ms - (ms % 1000));
  return { next: (after) => new Date(Math.floor(after.getTime() / 1000) * 1000 + delay) };
}

const has = (bits: bigint, v: number) => (bits & (1n << BigInt(v))) !== 0n;

// robfig's SpecSchedule.Next, walked in the zone's wall clock: find the
// first wall time after `after` whose month, day, hour, minute and second
// all match, moving the first field that does not match to its next value
// (and zeroing the smaller ones), then turn that wall time into an instant.
// Searching stops five years out, as robfig's does.
function specSchedule(f: SpecFields, timeZone: string): CronSchedule {
  // Day of month and day of week: if either is a star, both must match;
  // otherwise either may ("0 0 1,15 * 1" is the 1st, the 15th and Mondays).
  const dayMatches = (d: Date) => {
    const domMatch = has(f.dom, d.getUTCDate());
    const dowMatch = has(f.dow, d.getUTCDay());
    if ((f.dom & STAR_BIT) !== 0n || (f.dow & STAR_BIT) !== 0n) return domMatch && dowMatch;
    return domMatch || dowMatch;
  };
  return {
    next(after) {
      const afterMs = after.getTime();
      // Wall clock as a UTC Date: its UTC fields are the zone's local fields.
      let w = wallClock(Math.floor(afterMs / 1000) * 1000, timeZone) + 1000;
      const yearLimit = new Date(w).getUTCFullYear() + 5;
      for (;;) {
        const d = new Date(w);
        const [y, mo, day, h, mi, s] = [
          d.getUTCFullYear(),
          d.getUTCMonth(),
          d.getUTCDate(),
          d.getUTCHours(),
          d.getUTCMinutes(),
          d.getUTCSeconds(),
        ];
        if (y > yearLimit) return undefined;
        if (!has(f.month, mo + 1)) w = Date.UTC(y, mo + 1, 1);
        else if (!dayMatches(d)) w = Date.UTC(y, mo, day + 1);
        else if (!has(f.hour, h)) w = Date.UTC(y, mo, day, h + 1);
        else if (!has(f.minute, mi)) w = Date.UTC(y, mo, day, h, mi + 1);
        else if (!has(f.second, s)) w = Date.UTC(y, mo, day, h, mi, s + 1);
        else {
          const t = instantOf(w, timeZone);
          // A wall time repeated when clocks go back may map to before `after`.
          if (t > afterMs) return new Date(t);
          w += 1000;
        }
      }
    },
  };
}

const wallFormats = new Map<string, Intl.DateTimeFormat>();

/** The wall-clock time in timeZone at instant ms, expressed as milliseconds of a UTC Date. */
export function wallClock(ms: number, timeZone: string): number {
  if (timeZone === 'UTC') return ms;
  let fmt = wallFormats.get(timeZone);
  if (!fmt) {
    fmt = new Intl.DateTimeFormat('en-US', {
      timeZone: timeZone === 'Local' ? undefined : timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    wallFormats.set(timeZone, fmt);
  }
  const p: Record<string, number> = {};
  for (const part of fmt.formatToParts(ms)) if (part.type !== 'literal') p[part.type] = Number(part.value);
  return (
    Date.UTC(p.year ?? 1970, (p.month ?? 1) - 1, p.day ?? 1, p.hour ?? 0, p.minute ?? 0, p.second ?? 0) +
    (((ms % 1000) + 1000) % 1000)
  );
}

/** The zone's offset from UTC at instant ms, in milliseconds (east positive). */
export function zoneOffset(ms: number, timeZone: string): number {
  return wallClock(ms, timeZone) - ms;
}

// The instant whose wall clock in timeZone is w. When clocks go back the
// earlier of the two instants is taken; in the hour skipped when they go
// forward, the wall time is read with the offset from before the change
// (02:30 becomes 03:30), which is what Go's time.Date does.
function instantOf(w: number, timeZone: string): number {
  const a = w - zoneOffset(w, timeZone);
  const b = w - zoneOffset(a, timeZone);
  const fits = [a, b].filter((t) => wallClock(t, timeZone) === w).sort((x, y) => x - y);
  return fits[0] ?? Math.max(a, b);
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
