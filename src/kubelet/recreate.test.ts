// A pod force-deleted and created again under the same name is a new pod
// (new uid): the old one's termination must not touch the new one's containers.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { KUBERNETES_POD_UID_LABEL } from './labels.ts';
import { type KubeletTest, startKubeletTest } from './testing.ts';

let t: KubeletTest;
before(async () => {
  t = await startKubeletTest();
});
after(() => t.close());

describe('kubelet: same name, new pod', () => {
  it('keeps the new pod running while the old one with that name is cleaned up', async () => {
    const old = await t.pod('reborn', { containers: [{ name: 'app', image: 'busybox' }] });
    await t.until('old Running', async () => (await t.getPod('reborn'))?.status?.phase === 'Running');
    await t.clients.pods.delete('default', 'reborn', { gracePeriodSeconds: 0 });
    const fresh = await t.pod('reborn', { containers: [{ name: 'app', image: 'busybox' }] });
    assert.notEqual(fresh.metadata.uid, old.metadata.uid);
    const running = await t.until('new Running', async () => {
      const p = await t.getPod('reborn');
      return p?.metadata.uid === fresh.metadata.uid && p?.status?.phase === 'Running' ? p : undefined;
    });
    const id = running.status?.containerStatuses?.[0]?.containerID;
    // Let housekeeping and the old pod's worker run their course.
    for (let i = 0; i < 10; i++) {
      await t.advance(1000);
      await new Promise((r) => setTimeout(r, 50));
    }
    const now = await t.getPod('reborn');
    assert.equal(now?.metadata.uid, fresh.metadata.uid);
    assert.equal(now?.status?.phase, 'Running');
    assert.equal(now?.status?.containerStatuses?.[0]?.containerID, id, 'the new container was not replaced');
    assert.equal(now?.status?.containerStatuses?.[0]?.restartCount, 0);
    const oldLeft = await t.runtime.listContainers({
      labelSelector: { [KUBERNETES_POD_UID_LABEL]: old.metadata.uid! },
    });
    assert.equal(oldLeft.filter((c) => c.state === 'CONTAINER_RUNNING').length, 0);
  });
});
