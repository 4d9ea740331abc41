// The PLEG tells the kubelet which pods' sandboxes and containers changed, and
// what it saw of them, in the same form the kubelet records after a sync, so
// the kubelet can tell a change it already reported from a new one.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KUBERNETES_POD_UID_LABEL } from './labels.ts';
import { createPLEG, podRuntimeFingerprint } from './pleg.ts';
import { HollowRuntime } from './runtime/hollow/hollow.ts';
import type { PodSandboxConfig } from './runtime/runtime.ts';

const uid = 'uid-1';
const sandboxConfig: PodSandboxConfig = {
  metadata: { name: 'p', namespace: 'default', uid, attempt: 0 },
  logDirectory: '/tmp/pleg-test',
  labels: { [KUBERNETES_POD_UID_LABEL]: uid },
};

/** A PLEG on a hollow runtime, with the (uid, fingerprint) pairs each relist reported. */
function setup() {
  const runtime = new HollowRuntime({ images: ['docker.io/library/busybox:latest'] });
  const reported: [string, string][] = [];
  const pleg = createPLEG({ runtime, onPodChanged: (u, fp) => reported.push([u, fp]) });
  return { runtime, pleg, reported };
}

/** What the kubelet records after a sync: the fingerprint of the pod's statuses. */
async function statusFingerprint(runtime: HollowRuntime): Promise<string> {
  const selector = { labelSelector: { [KUBERNETES_POD_UID_LABEL]: uid } };
  const sandboxes = await Promise.all(
    (await runtime.listPodSandbox(selector)).map((s) => runtime.podSandboxStatus(s.id)),
  );
  const containers = await Promise.all(
    (await runtime.listContainers(selector)).map((c) => runtime.containerStatus(c.id)),
  );
  return podRuntimeFingerprint([...sandboxes, ...containers]);
}

describe('PLEG', () => {
  it('reports a changed pod with the fingerprint the kubelet computes from its statuses', async () => {
    const { runtime, pleg, reported } = setup();
    const sandboxId = await runtime.runPodSandbox(sandboxConfig);
    const id = await runtime.createContainer(sandboxId, {
      metadata: { name: 'app', attempt: 0 },
      image: { image: 'busybox' },
      command: ['sleep', '3600'],
      labels: { [KUBERNETES_POD_UID_LABEL]: uid },
      logPath: 'app/0.log',
    });
    await runtime.startContainer(id);
    await pleg.relist();
    assert.deepEqual(reported, [[uid, await statusFingerprint(runtime)]]);
    assert.match(reported[0]![1], /=CONTAINER_RUNNING/);
    assert.match(reported[0]![1], /=SANDBOX_READY/);

    // Nothing changed: nothing reported.
    await pleg.relist();
    assert.equal(reported.length, 1);

    // The container stops: a new fingerprint, again the statuses'.
    await runtime.stopContainer(id, 0);
    await pleg.relist();
    assert.equal(reported.length, 2);
    assert.notEqual(reported[1]![1], reported[0]![1]);
    assert.equal(reported[1]![1], await statusFingerprint(runtime));
    await runtime.close();
  });

  it('reports a pod whose sandbox and containers are gone with an empty fingerprint', async () => {
    const { runtime, pleg, reported } = setup();
    const sandboxId = await runtime.runPodSandbox(sandboxConfig);
    await pleg.relist();
    await runtime.stopPodSandbox(sandboxId);
    await runtime.removePodSandbox(sandboxId);
    await pleg.relist();
    assert.deepEqual(reported.at(-1), [uid, '']);
    await runtime.close();
  });
});
