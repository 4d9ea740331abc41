// Decoding CRI log files as upstream's kubelet ReadLogs does, against real
// files in the format containerd writes.

import assert from 'node:assert/strict';
import { appendFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseCRILog, parseRFC3339Nano, type ReadLogsOptions, readLogs, tailStart } from './logs.ts';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'skiff-logs-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const FILE = [
  '2026-01-02T03:04:05.000000001Z stdout F first line',
  '2026-01-02T03:04:06.5Z stderr F an error',
  '2026-01-02T03:04:07.123456789Z stdout P a long li',
  '2026-01-02T03:04:07.223456789Z stdout F ne, joined',
  '2026-01-02T03:04:08+00:00 stdout F last line',
  '',
].join('\n');

async function read(opts: ReadLogsOptions, content = FILE): Promise<string> {
  const path = join(dir, `${Math.random().toString(36).slice(2)}.log`);
  await writeFile(path, content);
  const out: Buffer[] = [];
  await readLogs(path, opts, (c) => {
    out.push(c);
  });
  return Buffer.concat(out).toString();
}

describe('CRI log format', () => {
  it('parses time, stream, the partial tag and the text', () => {
    const rec = parseCRILog(Buffer.from('2026-01-02T03:04:07.123456789Z stdout P a long li'));
    assert.equal(rec?.stream, 'stdout');
    assert.equal(rec?.partial, true);
    assert.equal(rec?.log.toString(), 'a long li');
    assert.equal(rec?.timestampNs, BigInt(Date.parse('2026-01-02T03:04:07Z')) * 1_000_000n + 123456789n);
    const full = parseCRILog(Buffer.from('2026-01-02T03:04:05Z stderr F'));
    assert.equal(full?.log.toString(), '\n', 'an empty full record is an empty line');
    assert.equal(parseCRILog(Buffer.from('not a log line')), undefined);
    assert.equal(
      parseRFC3339Nano('2026-01-02T03:04:05+01:00'),
      BigInt(Date.parse('2026-01-02T02:04:05Z')) * 1_000_000n,
    );
  });

  it('finds where the last N lines start', () => {
    const buf = Buffer.from('a\nb\nc\n');
    assert.equal(tailStart(buf, 1), 4);
    assert.equal(tailStart(buf, 2), 2);
    assert.equal(tailStart(buf, 10), 0);
    assert.equal(tailStart(buf, 0), buf.length);
  });
});

describe('readLogs', () => {
  it('strips the prefix and joins partial records into one line', async () => {
    assert.equal(await read({}), 'first line\nan error\na long line, joined\nlast line\n');
  });

  it('timestamps: RFC3339NanoFixed once per line, not again after a partial record', async () => {
    assert.equal(
      await read({ timestamps: true }),
      [
        '2026-01-02T03:04:05.000000001Z first line',
        '2026-01-02T03:04:06.500000000Z an error',
        '2026-01-02T03:04:07.123456789Z a long line, joined',
        '2026-01-02T03:04:08.000000000+00:00 last line',
        '',
      ].join('\n'),
    );
  });

  it('tailLines counts the last records of the file', async () => {
    assert.equal(await read({ tailLines: 1 }), 'last line\n');
    assert.equal(await read({ tailLines: 3 }), 'a long line, joined\nlast line\n');
    assert.equal(await read({ tailLines: 0 }), '');
  });

  it('sinceNs skips older records', async () => {
    const since = BigInt(Date.parse('2026-01-02T03:04:06Z')) * 1_000_000n;
    assert.equal(await read({ sinceNs: since }), 'an error\na long line, joined\nlast line\n');
  });

  it('limitBytes cuts the output short, mid-line if need be', async () => {
    assert.equal(await read({ limitBytes: 14 }), 'first line\nan ');
  });

  it('follow: new records arrive until the container stops', async () => {
    const path = join(dir, 'follow.log');
    await writeFile(path, '2026-01-02T03:04:05Z stdout F one\n');
    let running = true;
    const out: string[] = [];
    const done = readLogs(path, { follow: true }, (c) => void out.push(c.toString()), {
      running: async () => running,
      pollMs: 20,
      stateCheckMs: 50,
    });
    await waitFor(() => out.join('') === 'one\n');
    // A record written in two steps is only read once its newline is there.
    await appendFile(path, '2026-01-02T03:04:06Z stdout F tw');
    await appendFile(path, 'o\n');
    await waitFor(() => out.join('') === 'one\ntwo\n');
    await appendFile(path, '2026-01-02T03:04:07Z stdout F three\n');
    running = false;
    await done;
    assert.equal(out.join(''), 'one\ntwo\nthree\n');
  });

  it('follow ends when the reader goes away', async () => {
    const path = join(dir, 'abort.log');
    await writeFile(path, '2026-01-02T03:04:05Z stdout F one\n');
    const abort = new AbortController();
    const done = readLogs(path, { follow: true }, () => abort.abort(), {
      running: async () => true,
      signal: abort.signal,
      pollMs: 20,
    });
    await done;
  });
});

async function waitFor(check: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}
