// The classic walkthrough promise, end to end in one process: a
// ReplicationController keeps its pods alive even when their host dies.
// Real API server, every controller, the scheduler and two kubelets on the
// hollow runtime. One kubelet stops (its node goes silent); the node
// lifecycle controller marks the node unreachable and taints it, taint
// eviction removes the pods once their tolerationSeconds pass, and the RC's
// replacements are scheduled onto the surviving node and run there.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ReplicationController } from '../api/types/core-v1.ts';
import { createKubelet, type Kubelet } from '../kubelet/kubelet.ts';
import { HollowRuntime } from '../kubelet/runtime/hollow/hollow.ts';
import { testMachine } from '../kubelet/testing.ts';
import { type RunningScheduler, startScheduler } from '../scheduler/index.ts';
import { createLog } from '../util/log.ts';
import { allControllers } from './index.ts';
import { newNodeLifecycleController } from './nodelifecycle.ts';
import { type ControllerTest, startControllerTest } from './testing.ts';

const GRACE_MS = 4_000;
const quiet = createLog({}, (l) => {
  if (process.env.SKIFF_TEST_LOG) process.stderr.write(l);
});

describe('a node dies', () => {
  let t: ControllerTest;
  let scheduler: RunningScheduler;
  const kubelets = new Map<string, Kubelet>();
  const runtimes: HollowRuntime[] = [];
  const dataDir = mkdtempSync(join(tmpdir(), 'skiff-node-failure-'));

  before(async () => {
    t = await startControllerTest(
      { ...allControllers, nodelifecycle: newNodeLifecycleController({ nodeMonitorPeriodMs: 500 }) },
      { options: { nodeMonitorGracePeriodMs: GRACE_MS } },
    );
    await t.clients.namespaces.create(undefined, { metadata: { name: 'kube-node-lease' } });
    scheduler = await startScheduler({ clients: t.clients, log: quiet });
    for (const [name, ip] of [
      ['node-a', '192.0.2.11'],
      ['node-b', '192.0.2.12'],
    ] as const) {
      let kubelet: Kubelet | undefined;
      const runtime = new HollowRuntime({ podCIDR: () => kubelet?.podCIDR() });
      runtimes.push(runtime);
      kubelet = createKubelet({
        clients: t.clients,
        runtime,
        nodeName: name,
        nodeIP: ip,
        dataDir,
        machine: testMachine,
        log: quiet,
        leaseDurationSeconds: 2,
        nodeStatusUpdateFrequencyMs: 1000,
        plegRelistPeriodMs: 200,
      });
      await kubelet.start();
      kubelets.set(name, kubelet);
    }
  });

  after(async () => {
    const step = async (what: string, p: Promise<unknown>) => {
      const t0 = Date.now();
      await p;
      if (process.env.SKIFF_TEST_LOG) console.error(what, Date.now() - t0);
    };
    for (const k of kubelets.values()) await step('kubelet', k.stop());
    await step('scheduler', scheduler.stop());
    await step('controllers', t.close());
    for (const r of runtimes) await r.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const runningOn = async (node: string) =>
    (await t.clients.pods.list('default', { labelSelector: 'app=guestbook' })).items.filter(
      (p) => p.spec?.nodeName === node && p.status?.phase === 'Running' && !p.metadata.deletionTimestamp,
    );

  it('the ReplicationController brings its pods back on the surviving node', async () => {
    const rc: ReplicationController = {
      metadata: { name: 'guestbook' },
      spec: {
        replicas: 4,
        selector: { app: 'guestbook' },
        template: {
          metadata: { labels: { app: 'guestbook' } },
          spec: {
            containers: [{ name: 'app', image: 'busybox', command: ['sleep', '3600'] }],
            // Instead of DefaultTolerationSeconds' 300 s, so the test is quick.
            tolerations: [
              {
                key: 'node.kubernetes.io/unreachable',
                operator: 'Exists',
                effect: 'NoExecute',
                tolerationSeconds: 1,
              },
              {
                key: 'node.kubernetes.io/not-ready',
                operator: 'Exists',
                effect: 'NoExecute',
                tolerationSeconds: 1,
              },
            ],
          },
        },
      },
    };
    await t.clients.replicationControllers.create('default', rc);
    await t.until(
      'four pods running across both nodes',
      async () => (await runningOn('node-a')).length + (await runningOn('node-b')).length === 4,
      30_000,
    );
    const onA = (await runningOn('node-a')).length;
    assert.ok(onA > 0, 'the scheduler spread the pods over both nodes');

    // node-a's host dies: its kubelet stops renewing the Lease and posting status.
    await kubelets.get('node-a')!.stop();
    kubelets.delete('node-a');
    const node = await t.until(
      'node-a Ready=Unknown and tainted unreachable',
      async () => {
        const n = await t.clients.nodes.get(undefined, 'node-a');
        const ready = n.status?.conditions?.find((c) => c.type === 'Ready');
        const tainted = n.spec?.taints?.some(
          (x) => x.key === 'node.kubernetes.io/unreachable' && x.effect === 'NoExecute',
        );
        return ready?.status === 'Unknown' && tainted ? n : undefined;
      },
      30_000,
    );
    assert.equal(node.status?.conditions?.find((c) => c.type === 'Ready')?.reason, 'NodeStatusUnknown');

    await t.until(
      'all four pods running on node-b',
      async () => (await runningOn('node-b')).length === 4,
      40_000,
    );
    const rcNow = await t.clients.replicationControllers.get('default', 'guestbook');
    assert.equal(rcNow.status?.replicas, 4);
  });
});
