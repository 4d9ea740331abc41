// Structured logging: one JSON object per line on stderr, like klog's JSON
// format, so a server's output can be read by people and by tools.

export type Level = 'debug' | 'info' | 'warn' | 'error';

export interface Log {
  (msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  debug(msg: string, fields?: Record<string, unknown>): void;
  with(fields: Record<string, unknown>): Log;
}

export function createLog(
  base: Record<string, unknown> = {},
  write: (line: string) => void = (l) => process.stderr.write(l),
  minLevel: Level = (process.env.SKIFF_LOG_LEVEL as Level | undefined) ?? 'info',
): Log {
  const order: Record<Level, number> = { debug: 0, info: 1, warn: 2, error: 3 };
  const emit = (level: Level, msg: string, fields?: Record<string, unknown>) => {
    if (order[level] < order[minLevel]) return;
    write(`${JSON.stringify({ ts: new Date().toISOString(), level, msg, ...base, ...fields })}\n`);
  };
  const log = ((msg: string, fields?: Record<string, unknown>) => emit('info', msg, fields)) as Log;
  log.warn = (msg, fields) => emit('warn', msg, fields);
  log.error = (msg, fields) => emit('error', msg, fields);
  log.debug = (msg, fields) => emit('debug', msg, fields);
  log.with = (fields) => createLog({ ...base, ...fields }, write, minLevel);
  return log;
}
