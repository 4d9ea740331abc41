import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createInProcessTransport } from '../apiserver/in-process.ts';
import { startTestServer, type TestServer } from '../apiserver/testing.ts';
import { type Clientset, createClientset } from '../client/clientset.ts';
import { FakeClock } from '../client/fake-clock.ts';
import { createNodeLease, NODE_LEASE_NAMESPACE } from './lease.ts';

let server: TestServer;
let clients: Clientset;
before(async () => {
  server = await startTestServer();
  await server.api
    .storage('', 'v1', 'namespaces')!
    .create(undefined, { metadata: { name: NODE_LEASE_NAMESPACE } });
  clients = createClientset(createInProcessTransport(server.api, { name: 'system:skiff-agent', groups: [] }));
});
after(() => server.close());

const settle = () => new Promise((r) => setTimeout(r, 50));

describe('node lease phase (hollow nodes renew spread over the interval)', () => {
  it('renews at once, then at its phase of the 10 s interval, then every 10 s', async () => {
    const clock = new FakeClock();
    clock.advance(3_000); // the nodes start at some arbitrary time
    const epoch = Date.UTC(2026, 0, 1);
    const now = () => new Date(epoch + clock.now());
    const names = ['early', 'late'];
    const leases = names.map((nodeName, i) =>
      createNodeLease({ clients, nodeName, nodeUID: () => undefined, clock, now, phase: [0.25, 0.75][i]! }),
    );
    const renewals: Record<string, number[]> = { early: [], late: [] };
    const record = async () => {
      for (const name of names) {
        const lease = await clients.leases.get(NODE_LEASE_NAMESPACE, name);
        const at = Date.parse(lease.spec?.renewTime ?? '') - epoch;
        if (renewals[name]!.at(-1) !== at) renewals[name]!.push(at);
      }
    };
    for (const lease of leases) lease.start();
    await settle();
    await record();
    // A second at a time through 25 s of the clock.
    for (let i = 0; i < 25; i++) {
      clock.advance(1_000);
      await settle();
      await record();
    }
    for (const lease of leases) lease.stop();
    // The first renewal at start (3 s); then at 2.5 s, and 7.5 s, past each 10 s of the clock.
    assert.deepEqual(renewals.early, [3_000, 12_500, 22_500]);
    assert.deepEqual(renewals.late, [3_000, 7_500, 17_500, 27_500]);
  });
});
