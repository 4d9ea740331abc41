import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer } from './testing.ts';

let on: TestServer;
let off: TestServer;
before(async () => {
  on = await startTestServer(undefined, { profiling: true });
  off = await startTestServer();
});
after(async () => {
  await on.close();
  await off.close();
});

describe('profiling (--enable-pprof)', () => {
  it('takes a CPU profile of the given seconds, in V8 .cpuprofile form', async () => {
    const r = await on.request('GET', '/debug/pprof/profile?seconds=1');
    assert.equal(r.status, 200);
    const profile = r.body as { nodes: unknown[]; startTime: number; endTime: number; samples: number[] };
    assert.ok(profile.nodes.length > 0);
    // Microseconds: a second of profile, give or take the timer.
    assert.ok(profile.endTime - profile.startTime >= 900_000, String(profile.endTime - profile.startTime));
  });

  it('takes a heap snapshot', async () => {
    const r = await on.request('GET', '/debug/pprof/heap');
    assert.equal(r.status, 200);
    const snapshot = r.body as { snapshot: { node_count: number } };
    assert.ok(snapshot.snapshot.node_count > 1000);
  });

  it('refuses bad seconds with a 400 Status, and is not served without the switch', async () => {
    const bad = await on.request('GET', '/debug/pprof/profile?seconds=999');
    assert.equal(bad.status, 400);
    assert.match((bad.body as { message: string }).message, /seconds must be a number from 1 to 50/);
    assert.equal((await off.request('GET', '/debug/pprof/profile?seconds=1')).status, 404);
  });
});
