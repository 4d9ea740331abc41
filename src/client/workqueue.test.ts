import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FakeClock } from './fake-clock.ts';
import {
  bucketRateLimiter,
  createWorkQueue,
  defaultControllerRateLimiter,
  exponentialFailureRateLimiter,
  maxOfRateLimiter,
  type WorkItem,
  type WorkQueue,
} from './workqueue.ts';

// A broken queue tends to leave a get() or a drain waiting forever; the
// suites' timeouts turn that hang into a failure.
const suite = { timeout: 5000 };

// Lets promise continuations and setImmediate callbacks run; no real waiting.
const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

// Whether a promise has settled by the time the event loop has turned once.
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  void p.then(() => {
    done = true;
  });
  await tick();
  return done;
}

async function take<K>(q: WorkQueue<K>): Promise<K> {
  const item = await q.get();
  assert.equal(item.shutdown, false);
  return (item as { key: K }).key;
}

describe('work queue', suite, () => {
  it('holds a queued key once however often it is added', async () => {
    const q = createWorkQueue({ clock: new FakeClock() });
    q.add('a');
    q.add('a');
    q.add('b');
    q.add('a');
    assert.equal(q.len(), 2);
    assert.equal(await take(q), 'a');
    assert.equal(await take(q), 'b');
    assert.equal(q.len(), 0);
  });

  it('hands keys out in the order they were added', async () => {
    const q = createWorkQueue({ clock: new FakeClock() });
    for (const k of ['c', 'a', 'd', 'b']) q.add(k);
    const got: string[] = [];
    for (let i = 0; i < 4; i++) got.push(await take(q));
    assert.deepEqual(got, ['c', 'a', 'd', 'b']);
  });

  it('never hands out a key being processed; one added meanwhile is requeued by done', async () => {
    const q = createWorkQueue({ clock: new FakeClock() });
    q.add('a');
    assert.equal(await take(q), 'a');

    // Added twice while processing: marked dirty once, not queued.
    q.add('a');
    q.add('a');
    assert.equal(q.len(), 0);
    const second = q.get();
    assert.equal(await settled(second), false, 'a second worker must not get the key in flight');

    q.done('a');
    assert.deepEqual(await second, { key: 'a', shutdown: false });
    q.done('a');
    assert.equal(q.len(), 0, 'a key not re-added is not requeued');
  });

  it('lets other keys through while one is in flight', async () => {
    const q = createWorkQueue({ clock: new FakeClock() });
    q.add('a');
    q.add('b');
    assert.equal(await take(q), 'a');
    q.add('a');
    assert.equal(await take(q), 'b');
    q.done('a');
    assert.equal(await take(q), 'a');
  });

  it('ignores done for a key that is not being processed', async () => {
    const q = createWorkQueue({ clock: new FakeClock() });
    q.add('a');
    q.done('a');
    assert.equal(q.len(), 1, 'a queued key must not be queued twice');
    q.done('never-added');
    assert.equal(q.len(), 1);
  });

  it('wakes waiting getters in the order they asked', async () => {
    const q = createWorkQueue({ clock: new FakeClock() });
    const first = q.get();
    const second = q.get();
    assert.equal(await settled(first), false);
    q.add('x');
    q.add('y');
    assert.deepEqual(await first, { key: 'x', shutdown: false });
    assert.deepEqual(await second, { key: 'y', shutdown: false });
  });

  it('marks a key as processing when it is handed to a waiting getter, not when the getter resumes', async () => {
    const q = createWorkQueue({ clock: new FakeClock() });
    const waiting = q.get();
    q.add('a');
    // The getter has not run yet, but the key is already in flight.
    q.add('a');
    assert.equal(q.len(), 0);
    assert.deepEqual(await waiting, { key: 'a', shutdown: false });
    q.done('a');
    assert.equal(q.len(), 1);
  });
});

describe('addAfter', suite, () => {
  it('adds the key once the delay has passed on the clock', async () => {
    const clock = new FakeClock();
    const q = createWorkQueue({ clock });
    q.addAfter('a', 100);
    assert.equal(q.len(), 0);
    clock.advance(99);
    assert.equal(q.len(), 0);
    clock.advance(1);
    assert.equal(q.len(), 1);
    assert.equal(await take(q), 'a');
  });

  it('adds at once for a zero or negative delay', () => {
    const q = createWorkQueue({ clock: new FakeClock() });
    q.addAfter('a', 0);
    q.addAfter('b', -5);
    assert.equal(q.len(), 2);
  });

  it('keeps one pending delay per key, the soonest', async () => {
    const clock = new FakeClock();
    const q = createWorkQueue({ clock });
    q.addAfter('a', 500);
    q.addAfter('a', 200);
    q.addAfter('a', 300);
    assert.equal(clock.pending(), 1);
    clock.advance(200);
    assert.equal(q.len(), 1);
    assert.equal(await take(q), 'a');
    q.done('a');
    clock.advance(1000);
    assert.equal(q.len(), 0, 'the later requests were folded into the first');
  });

  it('releases delayed keys in the order they become ready', async () => {
    const clock = new FakeClock();
    const q = createWorkQueue({ clock });
    q.addAfter('late', 30);
    q.addAfter('early', 10);
    q.addAfter('middle', 20);
    clock.advance(30);
    assert.deepEqual([await take(q), await take(q), await take(q)], ['early', 'middle', 'late']);
  });

  it('waits out delays longer than a single timer can', () => {
    const clock = new FakeClock();
    const q = createWorkQueue({ clock });
    const thirtyDays = 30 * 24 * 3600 * 1000;
    q.addAfter('a', thirtyDays);
    clock.advance(2 ** 31 - 1);
    assert.equal(q.len(), 0);
    assert.equal(clock.pending(), 1, 're-armed for the rest of the delay');
    clock.advance(thirtyDays - (2 ** 31 - 1));
    assert.equal(q.len(), 1);
  });

  it('is ignored after shutdown, and shutdown drops pending delays', () => {
    const clock = new FakeClock();
    const q = createWorkQueue({ clock });
    q.addAfter('a', 100);
    q.shutDown();
    assert.equal(clock.pending(), 0);
    q.addAfter('b', 100);
    assert.equal(clock.pending(), 0);
    clock.advance(1000);
    assert.equal(q.len(), 0);
  });
});

describe('exponentialFailureRateLimiter', suite, () => {
  it('doubles the delay per failure of a key, up to the cap', () => {
    const rl = exponentialFailureRateLimiter(1, 100);
    const delays = Array.from({ length: 10 }, () => rl.when('a'));
    assert.deepEqual(delays, [1, 2, 4, 8, 16, 32, 64, 100, 100, 100]);
    assert.equal(rl.numRequeues('a'), 10);
  });

  it('defaults to 5 ms doubling up to 1000 s', () => {
    const rl = exponentialFailureRateLimiter();
    assert.deepEqual([rl.when('a'), rl.when('a'), rl.when('a')], [5, 10, 20]);
    for (let i = 0; i < 30; i++) rl.when('a');
    assert.equal(rl.when('a'), 1000_000);
  });

  it('stays at the cap however many failures there are', () => {
    const rl = exponentialFailureRateLimiter(5, 1000);
    for (let i = 0; i < 5000; i++) rl.when('a');
    assert.equal(rl.when('a'), 1000);
    const zero = exponentialFailureRateLimiter(0, 1000);
    for (let i = 0; i < 5000; i++) zero.when('a');
    assert.equal(zero.when('a'), 0, 'a zero base must not become NaN');
  });

  it('tracks keys separately and starts over after forget', () => {
    const rl = exponentialFailureRateLimiter(10, 10_000);
    rl.when('a');
    rl.when('a');
    assert.equal(rl.when('a'), 40);
    assert.equal(rl.when('b'), 10);
    rl.forget('a');
    assert.equal(rl.numRequeues('a'), 0);
    assert.equal(rl.when('a'), 10);
    assert.equal(rl.numRequeues('b'), 1);
  });
});

describe('bucketRateLimiter', suite, () => {
  it('lets a burst through, then spaces requests at the rate', () => {
    const clock = new FakeClock();
    const rl = bucketRateLimiter(10, 3, clock);
    const delays = Array.from({ length: 6 }, (_, i) => rl.when(`k${i}`));
    // Each request past the burst reserves the next token, 100 ms apart.
    assert.deepEqual(delays, [0, 0, 0, 100, 200, 300]);
  });

  it('refills at the rate, up to the burst', () => {
    const clock = new FakeClock();
    const rl = bucketRateLimiter(10, 3, clock);
    for (let i = 0; i < 3; i++) rl.when('k');
    clock.advance(100);
    assert.equal(rl.when('k'), 0, 'one token back after 100 ms');
    assert.equal(rl.when('k'), 100);
    clock.advance(10_000);
    // However long it was idle, at most `burst` go through at once.
    assert.deepEqual([rl.when('k'), rl.when('k'), rl.when('k'), rl.when('k')], [0, 0, 0, 100]);
  });

  it('defaults to 10 qps with a burst of 100, and counts no requeues', () => {
    const clock = new FakeClock();
    const rl = bucketRateLimiter(undefined, undefined, clock);
    for (let i = 0; i < 100; i++) assert.equal(rl.when('k'), 0);
    assert.equal(rl.when('k'), 100);
    assert.equal(rl.numRequeues('k'), 0);
  });

  it('rejects a rate or burst that could never admit anything', () => {
    assert.throws(() => bucketRateLimiter(0, 10), RangeError);
    assert.throws(() => bucketRateLimiter(10, 0), RangeError);
  });
});

describe('maxOfRateLimiter and defaultControllerRateLimiter', suite, () => {
  it('takes the longest delay, the highest count, and forgets in all', () => {
    const clock = new FakeClock();
    const rl = maxOfRateLimiter(exponentialFailureRateLimiter(5, 1000), bucketRateLimiter(10, 1, clock));
    assert.equal(rl.when('a'), 5, 'backoff is longer while the bucket has tokens');
    assert.equal(rl.when('a'), 100, 'the empty bucket is longer than the backoff');
    assert.equal(rl.numRequeues('a'), 2);
    rl.forget('a');
    assert.equal(rl.numRequeues('a'), 0);
  });

  it('is per-key backoff from 5 ms plus an overall 10 qps after a burst of 100', () => {
    const clock = new FakeClock();
    const rl = defaultControllerRateLimiter(clock);
    for (let i = 0; i < 100; i++) assert.equal(rl.when(`k${i}`), 5);
    assert.equal(rl.when('k100'), 100, 'the 101st failure in a burst waits for the bucket');
    assert.equal(rl.numRequeues('k0'), 1);

    const fresh = defaultControllerRateLimiter(clock);
    for (let i = 0; i < 40; i++) {
      fresh.when('hot');
      clock.advance(1000_000); // keep the bucket full so only backoff counts
    }
    assert.equal(fresh.when('hot'), 1000_000);
  });
});

describe('addRateLimited', suite, () => {
  it('delays the key by the limiter, and forget resets its count', async () => {
    const clock = new FakeClock();
    const q = createWorkQueue({ clock, rateLimiter: exponentialFailureRateLimiter(10, 1000) });
    q.addRateLimited('a');
    assert.equal(q.numRequeues('a'), 1);
    clock.advance(9);
    assert.equal(q.len(), 0);
    clock.advance(1);
    assert.equal(await take(q), 'a');

    // The usual worker pattern: requeue on failure before done().
    q.addRateLimited('a');
    q.done('a');
    clock.advance(19);
    assert.equal(q.len(), 0);
    clock.advance(1);
    assert.equal(await take(q), 'a');
    q.forget('a');
    q.done('a');
    assert.equal(q.numRequeues('a'), 0);
  });

  it('uses the default controller limiter on the queue clock', () => {
    const clock = new FakeClock();
    const q = createWorkQueue({ name: 'test', clock });
    assert.equal(q.name, 'test');
    q.addRateLimited('a');
    clock.advance(4);
    assert.equal(q.len(), 0);
    clock.advance(1);
    assert.equal(q.len(), 1);
  });

  it('does not count a failure after shutdown', () => {
    const q = createWorkQueue({ clock: new FakeClock() });
    q.shutDown();
    q.addRateLimited('a');
    assert.equal(q.numRequeues('a'), 0);
  });
});

describe('shutdown', suite, () => {
  it('wakes every waiting getter with shutdown and refuses new keys', async () => {
    const q = createWorkQueue({ clock: new FakeClock() });
    const waiting = [q.get(), q.get(), q.get()];
    assert.equal(q.shuttingDown(), false);
    q.shutDown();
    assert.equal(q.shuttingDown(), true);
    assert.deepEqual(await Promise.all(waiting), [
      { shutdown: true },
      { shutdown: true },
      { shutdown: true },
    ]);
    q.add('a');
    assert.equal(q.len(), 0);
    assert.deepEqual(await q.get(), { shutdown: true });
  });

  it('still hands out the keys queued before shutdown, as client-go does', async () => {
    const q = createWorkQueue({ clock: new FakeClock() });
    q.add('a');
    q.shutDown();
    assert.deepEqual(await q.get(), { key: 'a', shutdown: false });
    assert.deepEqual(await q.get(), { shutdown: true });
  });

  it('shutDownWithDrain waits until every key in flight is done', async () => {
    const q = createWorkQueue({ clock: new FakeClock() });
    q.add('a');
    q.add('b');
    await take(q);
    await take(q);
    const drained = q.shutDownWithDrain();
    assert.equal(q.shuttingDown(), true);
    assert.equal(await settled(drained), false);
    q.done('a');
    assert.equal(await settled(drained), false);
    q.done('b');
    assert.equal(await settled(drained), true);
  });

  it('shutDownWithDrain resolves at once when nothing is in flight', async () => {
    const q = createWorkQueue({ clock: new FakeClock() });
    assert.equal(await settled(q.shutDownWithDrain()), true);
  });

  it('shutDown cuts a waiting drain short', async () => {
    const q = createWorkQueue({ clock: new FakeClock() });
    q.add('a');
    await take(q);
    const first = q.shutDownWithDrain();
    const second = q.shutDownWithDrain();
    assert.equal(await settled(first), false, 'a second drain must not release the first');
    q.shutDown();
    assert.equal(await settled(first), true);
    assert.equal(await settled(second), true);
  });
});

describe('many workers', suite, () => {
  it('never process one key twice at once, and process every key after its last add', async () => {
    // A small deterministic PRNG (mulberry32) so a failure can be replayed.
    let seed = 0x5eed;
    const random = () => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
    };

    const clock = new FakeClock();
    const q = createWorkQueue({ clock, rateLimiter: exponentialFailureRateLimiter(1, 8) });
    const keys = Array.from({ length: 40 }, (_, i) => `ns/obj-${i}`);
    const inFlight = new Set<string>();
    const lastAdd = new Map<string, number>();
    const lastStart = new Map<string, number>();
    let seq = 0;
    let processed = 0;
    let retries = 0;
    let maxConcurrent = 0;

    const worker = async () => {
      for (;;) {
        const item: WorkItem<string> = await q.get();
        if (item.shutdown) return;
        const { key } = item;
        assert.ok(!inFlight.has(key), `${key} handed to two workers at once`);
        inFlight.add(key);
        maxConcurrent = Math.max(maxConcurrent, inFlight.size);
        lastStart.set(key, ++seq);
        processed++;
        for (let n = Math.floor(random() * 4); n > 0; n--) await tick();
        inFlight.delete(key);
        // One in ten reconciles fails and is retried with backoff.
        if (random() < 0.1) {
          retries++;
          q.addRateLimited(key);
        } else q.forget(key);
        q.done(key);
      }
    };
    const workers = Array.from({ length: 8 }, worker);

    for (let i = 0; i < 2000; i++) {
      const key = keys[Math.floor(random() * keys.length)]!;
      q.add(key);
      lastAdd.set(key, ++seq);
      // Bursts of adds between yields, as a relist or a busy watch produces.
      if (random() < 0.05) await tick();
      if (random() < 0.1) clock.advance(1);
    }
    // Let the workers and the delayed retries run out.
    while (q.len() > 0 || inFlight.size > 0 || clock.pending() > 0) {
      clock.advance(10);
      await tick();
    }
    await q.shutDownWithDrain();
    await Promise.all(workers);

    assert.ok(maxConcurrent > 1, 'the workers really ran concurrently');
    assert.ok(processed - retries < 1000, 'repeated adds of a queued key were folded together');
    for (const [key, added] of lastAdd) {
      assert.ok((lastStart.get(key) ?? 0) > added, `${key} was not processed after its last add`);
    }
  });
});
