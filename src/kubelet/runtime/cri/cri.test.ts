// The Runtime contract against a real containerd that the test starts the
// way the agent does (src/agent/runtime.ts), in a temp data dir: Skiff's
// offline images imported, the pod network on a test podCIDR. Needs root and
// the Debian packages scripts/setup.sh installs (containerd, runc,
// containernetworking-plugins; busybox-static, redis-server and gcc for the
// images).

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { unmountUnder } from '../../../agent/containerd.ts';
import { type NodeRuntime, startNodeRuntime } from '../../../agent/runtime.ts';
import { deleteBridge, routeTo } from '../../../network/cni.ts';
import { runtimeContract } from '../runtime.case.ts';
import type { CriRuntime } from './cri.ts';

// A podCIDR inside the default cluster CIDR that no real node is given
// first (the node IPAM allocator hands out 10.42.0.0/24 upward), on a bridge
// of its own.
const POD_CIDR = '10.42.250.0/24';
const BRIDGE = 'skiffcri0';

let dataDir: string;
let node: NodeRuntime | undefined;

/** The node's runtime as the agent starts it: containerd, Skiff's offline images, no pod network yet. */
async function setup(): Promise<{ runtime: CriRuntime; dataDir: string }> {
  dataDir = await mkdtemp('/tmp/skiff-cri-');
  node = await startNodeRuntime({
    dataDir,
    clusterCIDR: '10.42.0.0/16',
    serviceCIDR: '10.43.0.0/16',
    bridge: BRIDGE,
  });
  return { runtime: node.runtime, dataDir };
}

async function teardown(): Promise<void> {
  await node?.stop();
  await unmountUnder(dataDir);
  await deleteBridge(BRIDGE);
  await rm(dataDir, { recursive: true, force: true });
}

// One containerd for the whole file: the checks specific to cri run first,
// then the contract, whose teardown stops containerd and cleans up.
let started: Promise<{ runtime: CriRuntime; dataDir: string }> | undefined;
const setupOnce = () => {
  started ??= setup();
  return started;
};

describe('cri runtime on containerd', () => {
  let rt: CriRuntime;
  let sandboxId = '';
  before(async () => {
    rt = (await setupOnce()).runtime;
  });
  after(async () => {
    if (sandboxId) {
      await rt.stopPodSandbox(sandboxId).catch(() => undefined);
      await rt.removePodSandbox(sandboxId).catch(() => undefined);
    }
  });

  it('has imported the offline images at start, under the names upstream examples use', async () => {
    const tags = (await rt.listImages()).flatMap((i) => i.repoTags);
    for (const name of [
      'localhost/skiff/pause:3.10',
      'docker.io/library/busybox:latest',
      'docker.io/library/redis:latest',
    ]) {
      assert.ok(tags.includes(name), `${name} in ${tags.join(', ')}`);
    }
    // `image: busybox` in a manifest means docker.io/library/busybox:latest.
    assert.ok(await rt.imageStatus({ image: 'busybox' }));
    assert.ok(await rt.imageStatus({ image: 'redis:latest' }));
  });

  it('reports NetworkReady only once the node has its podCIDR', async () => {
    const ready = async () => Object.fromEntries((await rt.status()).map((c) => [c.type, c.status]));
    assert.deepEqual(await ready(), { RuntimeReady: true, NetworkReady: false });
    await node!.setPodCIDR(POD_CIDR);
    // containerd watches its CNI conf dir and reloads by itself.
    const deadline = Date.now() + 30_000;
    while (!(await ready()).NetworkReady && Date.now() < deadline) await delay(100);
    assert.deepEqual(await ready(), { RuntimeReady: true, NetworkReady: true });
  });

  it('routes the pod IP over the bridge, and the rest of the cluster and service ranges nowhere', async () => {
    sandboxId = await rt.runPodSandbox({
      metadata: { name: 'routes', uid: 'routes-uid', namespace: 'cri-test', attempt: 0 },
      hostname: 'routes',
      linux: {},
    });
    const ip = (await rt.podSandboxStatus(sandboxId)).network?.ip ?? '';
    assert.match(await routeTo(ip), new RegExp(`dev ${BRIDGE}\\b`));
    // Another node's podCIDR with no route of its own yet, and an unallocated Service IP.
    for (const unrouted of ['10.42.251.7', '10.43.200.1']) {
      const route = await routeTo(unrouted);
      assert.ok(!/\bvia\b|\bdev\b/.test(route), `${unrouted} must not be routed anywhere (${route})`);
      assert.match(route, /unreachable|No route to host/i);
    }
  });
});

runtimeContract('cri (containerd)', { runsProcesses: true }, async () => {
  const { runtime } = await setupOnce();
  return {
    runtime,
    podCIDR: POD_CIDR,
    busyboxImage: 'busybox',
    // Nothing listens on port 1 of loopback: the pull fails at once, and
    // never reaches out of the machine.
    absentImage: '127.0.0.1:1/skiff/absent:never',
    teardown,
  };
});
