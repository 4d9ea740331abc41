// The reason the etcd backend exists: losing a member, even the leader,
// must not lose acknowledged writes or stop the store.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Store, WatchEvent } from '../store.ts';
import { createEtcdStore } from './etcd.ts';
import { type EtcdCluster, startEtcd } from './etcd-harness.ts';

describe('etcd backend on a 3-member cluster', () => {
  let etcd: EtcdCluster;
  let store: Store;

  before(async () => {
    // Short raft timings so the election after the kill takes well under a second.
    etcd = await startEtcd({ members: 3, heartbeatMs: 50, electionMs: 500 });
    // A write the dead leader was about to commit otherwise waits out
    // etcd's own 6 s request timeout before it is retried on a survivor.
    store = await createEtcdStore({
      endpoints: etcd.endpoints,
      prefix: '/cluster-test/',
      requestTimeoutMs: 1500,
    });
  });
  after(async () => {
    await store?.close();
    await etcd?.stop();
  });

  it('keeps writing, reading and watching after the leader is SIGKILLed', async () => {
    const start = await store.currentRevision();
    // Several watches, so that most likely at least one is streaming from
    // the member we kill and has to resume on another.
    const watched: WatchEvent[][] = [[], [], []];
    const watches = watched.map((events) =>
      store.watch('/k/', {
        afterRevision: start,
        onEvents: (batch) => events.push(...batch),
        onError: (err) => assert.fail(err),
      }),
    );

    const before: Record<string, number> = {};
    for (let i = 0; i < 10; i++) before[`/k/${i}`] = (await store.create(`/k/${i}`, `v${i}`)).modRevision;

    const leader = await etcd.leader();
    await etcd.kill(leader, 'SIGKILL');
    assert.equal(etcd.members[leader]!.running, false);

    // Writes of every kind, straight after the kill: the first ones land
    // while the survivors are still electing a new leader.
    for (let i = 10; i < 20; i++) await store.create(`/k/${i}`, `v${i}`);
    const updated = await store.update('/k/0', 'changed', before['/k/0']!);
    assert.equal(updated.value, 'changed');
    const deleted = await store.delete('/k/1', before['/k/1']!);
    assert.equal(deleted.prevKv.value, 'v1');

    // Reads see all of it, including the writes from before the kill.
    assert.equal((await store.get('/k/0'))?.value, 'changed');
    assert.equal(await store.get('/k/1'), undefined);
    assert.equal((await store.get('/k/5'))?.value, 'v5');
    const list = await store.list('/k/');
    assert.equal(list.items.length, 19);
    assert.equal(list.items.find((kv) => kv.key === '/k/19')?.value, 'v19');
    assert.equal(await store.count('/k/'), 19);
    const newLeader = await etcd.leader();
    assert.notEqual(newLeader, leader);

    // Every watch saw every event exactly once, in order, across the failover.
    const last = await store.currentRevision();
    const deadline = Date.now() + 15_000;
    while (watched.some((events) => (events.at(-1)?.revision ?? 0) < last) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    for (const w of watches) w.cancel();
    for (const events of watched) {
      assert.equal(events.length, 22);
      const revs = events.map((e) => e.revision);
      assert.deepEqual(
        revs,
        [...revs].sort((a, b) => a - b),
      );
      assert.equal(new Set(revs).size, revs.length);
      assert.deepEqual(
        events.slice(-2).map((e) => [e.type, e.kv.key]),
        [
          ['update', '/k/0'],
          ['delete', '/k/1'],
        ],
      );
    }
  });
});
