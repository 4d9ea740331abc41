// Reading a container's log file as `kubectl logs` wants it, as upstream's
// kubelet does (pkg/kubelet/kuberuntime/logs/logs.go, ReadLogs).
//
// The runtime writes each container's output in the CRI log format
// (k8s.io/cri-api's container-log design): one record per line,
//
//   <RFC3339Nano time> <stdout|stderr> <P|F> <text>
//
// where P marks a partial record (a long line the runtime split, or output
// without a trailing newline yet) and F the record that ends a line. Reading
// strips the prefix, joins partial records, and applies the PodLogOptions the
// API server passed on: tailLines, sinceTime/sinceSeconds, timestamps,
// limitBytes and follow.

import { open, stat } from 'node:fs/promises';
import { setTimeout as delay } from 'node:timers/promises';

export interface CRILogRecord {
  /** The record's time as written (RFC3339Nano, any offset). */
  time: string;
  /** Nanoseconds since the epoch, for sinceTime comparisons at full precision. */
  timestampNs: bigint;
  stream: 'stdout' | 'stderr';
  /** A P record: the line goes on in the next record. */
  partial: boolean;
  /** The text, with a newline appended to full (F) records. */
  log: Buffer;
}

const TIME = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/;

/** RFC3339 (optionally with nanoseconds) → nanoseconds since the epoch; undefined when malformed. */
export function parseRFC3339Nano(time: string): bigint | undefined {
  const m = TIME.exec(time);
  if (!m) return undefined;
  const ms = Date.parse(`${m[1]}${m[3]}`);
  if (Number.isNaN(ms)) return undefined;
  return BigInt(ms) * 1_000_000n + BigInt((m[2] ?? '').padEnd(9, '0'));
}

/**
 * The timestamp as `kubectl logs --timestamps` prints it: upstream formats the
 * parsed time with RFC3339NanoFixed (always nine fraction digits), keeping
 * the offset it was written with.
 */
export function rfc3339NanoFixed(time: string): string {
  const m = TIME.exec(time);
  if (!m) return time;
  return `${m[1]}.${(m[2] ?? '').padEnd(9, '0')}${m[3]}`;
}

/** Parses one line of a CRI log file (without its newline); undefined for a malformed one. */
export function parseCRILog(line: Buffer): CRILogRecord | undefined {
  const s1 = line.indexOf(0x20);
  const s2 = s1 < 0 ? -1 : line.indexOf(0x20, s1 + 1);
  if (s2 < 0) return undefined;
  const time = line.subarray(0, s1).toString('latin1');
  const timestampNs = parseRFC3339Nano(time);
  const stream = line.subarray(s1 + 1, s2).toString('latin1');
  if (timestampNs === undefined || (stream !== 'stdout' && stream !== 'stderr')) return undefined;
  // The tag field: "P" or "F", possibly with more tags after ':' (reserved by the format).
  const s3 = line.indexOf(0x20, s2 + 1);
  const tagEnd = s3 < 0 ? line.length : s3;
  const tags = line
    .subarray(s2 + 1, tagEnd)
    .toString('latin1')
    .split(':');
  const partial = tags[0] === 'P';
  const text = s3 < 0 ? Buffer.alloc(0) : line.subarray(s3 + 1);
  return { time, timestampNs, stream, partial, log: partial ? text : Buffer.concat([text, NEWLINE]) };
}

const NEWLINE = Buffer.from('\n');

export interface ReadLogsOptions {
  /** Only the last N lines of the file (upstream counts the file's lines, i.e. records). */
  tailLines?: number;
  /** Records older than this are skipped (sinceTime, or now - sinceSeconds). */
  sinceNs?: bigint;
  /** Prefix every line with its RFC3339NanoFixed time and a space. */
  timestamps?: boolean;
  /** Stop after this many bytes of output. */
  limitBytes?: number;
  /** Keep reading as the file grows, until the container stops or the reader goes away. */
  follow?: boolean;
}

export interface FollowHooks {
  /** Whether the container still runs; following ends once it does not and the file is drained. */
  running(): Promise<boolean>;
  /** Aborted when the client goes away. */
  signal?: AbortSignal;
  /** How often to look at the file for new records (default 200 ms). */
  pollMs?: number;
  /** How often to ask whether the container still runs (upstream's stateCheckPeriod is 5 s; default 1 s). */
  stateCheckMs?: number;
}

/** Byte offset of the start of the last `n` lines of buf (upstream tail.FindTailLineStartIndex). */
export function tailStart(buf: Buffer, n: number): number {
  if (n <= 0) return buf.length;
  // A final newline ends the last line rather than starting an empty one.
  let end = buf.length;
  if (end > 0 && buf[end - 1] === 0x0a) end--;
  let pos = end;
  for (let seen = 0; seen < n; seen++) {
    const nl = buf.lastIndexOf(0x0a, pos - 1);
    if (nl < 0) return 0;
    pos = nl;
  }
  return pos + 1;
}

/**
 * Writes the log at `path` to `write`, as upstream's ReadLogs. `write`
 * returns a promise so a slow reader slows the file reading (backpressure).
 * Resolves when done: at end of file, at limitBytes, or (when following)
 * once the container has stopped and everything is written, or on abort.
 */
export async function readLogs(
  path: string,
  opts: ReadLogsOptions,
  write: (chunk: Buffer) => Promise<void> | void,
  hooks?: FollowHooks,
): Promise<void> {
  let file = await open(path, 'r');
  try {
    let position = 0;
    let pending = Buffer.alloc(0);
    if (opts.tailLines !== undefined) position = tailStart(await file.readFile(), opts.tailLines);
    let remaining = opts.limitBytes ?? Number.POSITIVE_INFINITY;
    // A line started by a partial record gets no second timestamp (upstream's logWriter).
    let atLineStart = true;
    const emit = async (rec: CRILogRecord): Promise<boolean> => {
      if (opts.sinceNs !== undefined && rec.timestampNs < opts.sinceNs) return true;
      let out = rec.log;
      if (opts.timestamps && atLineStart)
        out = Buffer.concat([Buffer.from(`${rfc3339NanoFixed(rec.time)} `), out]);
      atLineStart = !rec.partial;
      if (out.length > remaining) out = out.subarray(0, remaining);
      remaining -= out.length;
      if (out.length > 0) await write(out);
      return remaining > 0;
    };
    const chunk = Buffer.alloc(64 * 1024);
    /** Reads and writes every complete record now in the file; false when limitBytes is reached. */
    const drain = async (): Promise<boolean> => {
      for (;;) {
        const { bytesRead } = await file.read(chunk, 0, chunk.length, position);
        if (bytesRead === 0) return true;
        position += bytesRead;
        pending = Buffer.concat([pending, chunk.subarray(0, bytesRead)]);
        let start = 0;
        for (let nl = pending.indexOf(0x0a); nl >= 0; nl = pending.indexOf(0x0a, start)) {
          const rec = parseCRILog(pending.subarray(start, nl));
          start = nl + 1;
          if (rec && !(await emit(rec))) return false;
          if (hooks?.signal?.aborted) return false;
        }
        pending = pending.subarray(start);
      }
    };
    if (!(await drain()) || !opts.follow) return;

    const pollMs = hooks?.pollMs ?? 200;
    const stateCheckMs = hooks?.stateCheckMs ?? 1000;
    let lastStateCheck = Date.now();
    for (;;) {
      if (hooks?.signal?.aborted) return;
      await delay(pollMs, undefined, hooks?.signal ? { signal: hooks.signal } : {}).catch(() => undefined);
      if (hooks?.signal?.aborted) return;
      // Rotated (container-log-manager.ts renamed it and the runtime writes
      // a new file at the path): the rest of the old file, then the new one
      // from its beginning, as upstream's ReadLogs. Truncated: start over.
      const now = await stat(path).catch(() => undefined);
      const current = await file.stat();
      if (now && now.ino !== current.ino) {
        if (!(await drain())) return;
        await file.close();
        file = await open(path, 'r');
        position = 0;
        pending = Buffer.alloc(0);
      } else if ((now?.size ?? position) < position) {
        position = 0;
        pending = Buffer.alloc(0);
      }
      if (!(await drain())) return;
      if (Date.now() - lastStateCheck >= stateCheckMs) {
        lastStateCheck = Date.now();
        if (!(await (hooks?.running() ?? Promise.resolve(false)))) {
          await drain();
          return;
        }
      }
    }
  } finally {
    await file.close();
  }
}
