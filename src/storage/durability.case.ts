// The durability check shared by the persistent backends: a writer process
// (durability-writer.ts) is SIGKILLed mid-stream, and every write it had
// been told was committed must then be in the store, whole.
//
// A backend's test file supplies how to start the writer against it and how
// to open the store afterwards, e.g. for sqlite:
//
//   durabilityContract('sqlite', {
//     spawnWriter: () => spawnDurabilityWriter('sqlite', { path }),
//     open: () => createSqliteStore({ path }),
//   });

import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import {
  DURABILITY_PREFIX,
  durabilityIndex,
  durabilityValue,
  WRITER_SCRIPT,
  type WriterBackend,
} from './durability-writer.ts';
import type { Store } from './store.ts';

export interface DurabilityHarness {
  /** Starts a writer against a fresh store; spawnDurabilityWriter does the work. */
  spawnWriter(): ChildProcess;
  /**
   * Runs after the writer died and before the store is reopened. A backend
   * whose data lives in another process (etcd) crashes that process here
   * too, so the test covers the server's durability, not just its memory.
   */
  afterWriterKilled?(): Promise<void>;
  /** Opens the store the writer wrote to. */
  open(): Promise<Store>;
}

export interface DurabilityOptions {
  /** Kill the writer once it has acknowledged this many writes (default 300). */
  acks?: number;
  /** Fail if the writer has not got that far within this long (default 30 s). */
  timeoutMs?: number;
}

/** Starts durability-writer.ts for one backend, with stdout piped for acknowledgements. */
export function spawnDurabilityWriter(kind: WriterBackend, options: object, concurrency = 4): ChildProcess {
  return spawn(process.execPath, [WRITER_SCRIPT, kind, JSON.stringify(options), String(concurrency)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/**
 * Collects acknowledged keys until there are `acks` of them, then SIGKILLs
 * the writer. Lines still in the pipe at that moment count too: each was
 * printed after its write was acknowledged.
 */
function runUntilKilled(
  child: ChildProcess,
  acks: number,
  timeoutMs: number,
): Promise<{ acked: string[]; signal: NodeJS.Signals | null }> {
  return new Promise((resolve, reject) => {
    const acked: string[] = [];
    let partial = '';
    let stderr = '';
    let killed = false;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`writer acknowledged only ${acked.length} writes in ${timeoutMs} ms\n${stderr}`));
    }, timeoutMs);
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop()!;
      for (const line of lines) if (line) acked.push(line);
      if (!killed && acked.length >= acks) {
        killed = true;
        child.kill('SIGKILL');
      }
    });
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-8000);
    });
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    // 'close' rather than 'exit': it waits for stdout to drain, so no
    // acknowledgement is missed.
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (killed) resolve({ acked, signal });
      else
        reject(new Error(`writer exited before it was killed (code ${code}, signal ${signal}):\n${stderr}`));
    });
  });
}

export function durabilityContract(
  name: string,
  harness: DurabilityHarness,
  opts: DurabilityOptions = {},
): void {
  const acks = opts.acks ?? 300;
  describe(`Durability: ${name}`, () => {
    it(`keeps every acknowledged write, whole, when the writer is SIGKILLed after ${acks}`, async () => {
      const { acked, signal } = await runUntilKilled(harness.spawnWriter(), acks, opts.timeoutMs ?? 30_000);
      assert.equal(signal, 'SIGKILL');
      assert.ok(acked.length >= acks);
      await harness.afterWriterKilled?.();

      const store = await harness.open();
      try {
        // Report problems as short descriptions: an assert diff of 8 KiB
        // values would bury the one that matters.
        const problems: string[] = [];
        const describeValue = (v: string | undefined) =>
          v === undefined ? 'missing' : `${v.length} chars, starting ${JSON.stringify(v.slice(0, 20))}`;
        for (const key of acked) {
          const i = durabilityIndex(key);
          if (i === undefined) {
            problems.push(`writer printed a line that is not a key: ${JSON.stringify(key.slice(0, 80))}`);
            continue;
          }
          const kv = await store.get(key);
          if (kv?.value !== durabilityValue(i))
            problems.push(`acknowledged ${key}: ${describeValue(kv?.value)}`);
        }
        // Writes in flight at the kill may or may not have landed; either
        // way, none may be torn.
        const all = await store.list(DURABILITY_PREFIX);
        for (const kv of all.items) {
          const i = durabilityIndex(kv.key);
          if (i === undefined || kv.value !== durabilityValue(i)) {
            problems.push(`unexpected ${kv.key}: ${describeValue(kv.value)}`);
          }
        }
        assert.deepEqual(problems.slice(0, 20), [], `${problems.length} problems`);
        assert.ok(all.items.length >= new Set(acked).size);
      } finally {
        await store.close();
      }
    });
  });
}
