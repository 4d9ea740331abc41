import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startEventTTL } from './event-ttl.ts';
import { startTestServer, type TestServer } from './testing.ts';

let server: TestServer;
before(async () => {
  server = await startTestServer();
});
after(() => server.close());

const event = (name: string, lastTimestamp?: string) => ({
  metadata: { name, namespace: 'default' },
  involvedObject: { kind: 'Pod', name: 'p', namespace: 'default' },
  reason: 'Test',
  message: name,
  type: 'Normal',
  ...(lastTimestamp ? { lastTimestamp, firstTimestamp: lastTimestamp } : {}),
});

describe('event TTL (--event-ttl)', () => {
  it('deletes the events whose last write is older than the TTL, and keeps the rest', async () => {
    const events = server.api.storage('', 'v1', 'events')!;
    await events.create('default', event('old'));
    // Created as long ago as "old", but observed again later: its lastTimestamp keeps it.
    await events.create('default', event('recurring', new Date(Date.now() + 50 * 60_000).toISOString()));
    let clock = Date.now() + 30 * 60_000;
    const ttl = startEventTTL(events, { ttlMs: 60 * 60_000, now: () => clock });
    try {
      assert.equal(await ttl.sweep(), 0, 'half an hour in, nothing has expired');
      clock = Date.now() + 61 * 60_000;
      assert.equal(await ttl.sweep(), 1);
      const names = (await events.list('default', { limit: 0 })).items.map((e) => e.metadata.name);
      assert.deepEqual(names, ['recurring']);
      clock = Date.now() + 111 * 60_000;
      assert.equal(await ttl.sweep(), 1);
      assert.equal(
        (await events.list('default', { limit: 0 })).items.length,
        0,
        'no growth: every event goes',
      );
    } finally {
      ttl.stop();
    }
  });
});
