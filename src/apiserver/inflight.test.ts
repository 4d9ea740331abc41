import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InflightLimit } from './inflight.ts';

const tick = () => new Promise((r) => setImmediate(r));

/** A task the test finishes by hand. */
function task(log: string[], name: string) {
  let finish!: () => void;
  const done = new Promise<void>((r) => {
    finish = r;
  });
  return {
    run: async () => {
      log.push(`start ${name}`);
      await done;
      log.push(`end ${name}`);
      return name;
    },
    finish: () => finish(),
  };
}

describe('InflightLimit', () => {
  it('runs at most max at once and the rest in arrival order', async () => {
    const limit = new InflightLimit(2);
    const log: string[] = [];
    const tasks = ['a', 'b', 'c', 'd'].map((n) => task(log, n));
    const results = tasks.map((t) => limit.run(t.run));
    await tick();
    assert.deepEqual(log, ['start a', 'start b']);
    assert.equal(limit.running, 2);
    assert.equal(limit.waiting, 2);
    tasks[1]!.finish();
    await tick();
    assert.deepEqual(log, ['start a', 'start b', 'end b', 'start c']);
    tasks[0]!.finish();
    tasks[2]!.finish();
    await tick();
    tasks[3]!.finish();
    assert.deepEqual(await Promise.all(results), ['a', 'b', 'c', 'd']);
    assert.equal(limit.running, 0);
    assert.equal(limit.waiting, 0);
  });

  it('passes the turn on when a task throws', async () => {
    const limit = new InflightLimit(1);
    const failing = limit.run(async () => {
      throw new Error('boom');
    });
    const next = limit.run(async () => 'ran');
    await assert.rejects(failing, /boom/);
    assert.equal(await next, 'ran');
    assert.equal(limit.running, 0);
  });

  it('skips a request abandoned while it waited, and gives its turn to the next', async () => {
    const limit = new InflightLimit(1);
    const log: string[] = [];
    const first = task(log, 'first');
    const running = limit.run(first.run);
    let gone = false;
    const abandoned = limit.run(
      async () => {
        log.push('abandoned ran');
      },
      () => gone,
    );
    const third = limit.run(async () => {
      log.push('third ran');
    });
    await tick();
    gone = true;
    first.finish();
    await Promise.all([running, abandoned, third]);
    assert.deepEqual(log, ['start first', 'end first', 'third ran']);
  });

  it('refuses a limit that is not a positive integer', () => {
    assert.throws(() => new InflightLimit(0), /positive integer/);
    assert.throws(() => new InflightLimit(1.5), /positive integer/);
  });
});
