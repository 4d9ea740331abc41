// Go's duration syntax ("30s", "1m30s", "500ms", "1.5h"), read as
// time.ParseDuration reads it: CronJob's "@every" schedules and the
// apiserver's ?timeout= parameter both take it.

/** Go's time.ParseDuration: the error for s (Go's own text), or its value in milliseconds. */
export function parseGoDuration(s: string): { error: string } | { ms: number } {
  const quoted = JSON.stringify(s);
  const negative = s.startsWith('-');
  let rest = s.replace(/^[-+]/, '');
  if (rest === '0') return { ms: 0 };
  if (rest === '') return { error: `time: invalid duration ${quoted}` };
  const unitMs: Record<string, number> = {
    ns: 1e-6,
    us: 1e-3,
    µs: 1e-3,
    μs: 1e-3,
    ms: 1,
    s: 1000,
    m: 60_000,
    h: 3_600_000,
  };
  let ms = 0;
  while (rest !== '') {
    const m = /^([0-9]*)(\.[0-9]*)?/.exec(rest) as RegExpExecArray;
    const [whole, intPart = '', frac = ''] = m;
    if (intPart === '' && frac.length <= 1) return { error: `time: invalid duration ${quoted}` };
    rest = rest.slice(whole.length);
    const unit = /^[^0-9.]*/.exec(rest)?.[0] ?? '';
    if (unit === '') return { error: `time: missing unit in duration ${quoted}` };
    const scale = unitMs[unit];
    if (scale === undefined)
      return { error: `time: unknown unit ${JSON.stringify(unit)} in duration ${quoted}` };
    ms += Number(`${intPart || '0'}${frac}`) * scale;
    rest = rest.slice(unit.length);
  }
  return { ms: negative ? -ms : ms };
}
