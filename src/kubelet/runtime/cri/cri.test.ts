// The Runtime contract against a real containerd that the test starts itself
// (src/agent/containerd.ts), in a temp data dir, with Skiff's offline pause
// and busybox images and the pod network on a test podCIDR. Needs root and
// the Debian packages scripts/setup.sh installs (containerd, runc,
// containernetworking-plugins, busybox-static, gcc).

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import {
  type Containerd,
  containerdPaths,
  startContainerd,
  unmountUnder,
} from '../../../agent/containerd.ts';
import { importImage } from '../../../agent/images.ts';
import { deleteBridge, ensureSafetyRoutes, routeTo, writePodNetworkConfig } from '../../../network/cni.ts';
import { runtimeContract } from '../runtime.case.ts';
import { type CriRuntime, criRuntime } from './cri.ts';

const run = promisify(execFile);
const repo = fileURLToPath(new URL('../../../../', import.meta.url));
const builtImages = join(repo, '.tools', 'images');

// A podCIDR inside the default cluster CIDR that no real node is given
// first (the node IPAM allocator hands out 10.42.0.0/24 upward), on a bridge
// of its own.
const POD_CIDR = '10.42.250.0/24';
const BRIDGE = 'skiffcri0';
const CLUSTER_CIDR = '10.42.0.0/16';
const SERVICE_CIDR = '10.43.0.0/16';

let dataDir: string;
let containerd: Containerd | undefined;

async function setup(): Promise<{ runtime: CriRuntime; dataDir: string }> {
  // Cached by content: a no-op unless the images' inputs changed.
  await run('bash', [join(repo, 'images', 'build.sh'), builtImages, 'pause', 'busybox']);
  dataDir = await mkdtemp('/tmp/skiff-cri-');
  const paths = containerdPaths(dataDir);
  await writePodNetworkConfig(paths.cniConfDir, {
    podCIDR: POD_CIDR,
    bridge: BRIDGE,
    name: 'skiff-cri-test',
    ipamDataDir: join(dataDir, 'agent', 'cni', 'networks'),
  });
  await ensureSafetyRoutes([CLUSTER_CIDR, SERVICE_CIDR]);
  containerd = await startContainerd({ dataDir });
  for (const image of ['pause', 'busybox'])
    await importImage(containerd.endpoint, join(builtImages, `${image}.tar`));
  return { runtime: criRuntime(containerd.endpoint), dataDir };
}

async function teardown(runtime: CriRuntime): Promise<void> {
  await runtime.close();
  await containerd?.stop();
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

  it('reports RuntimeReady and NetworkReady once the CNI config is loaded', async () => {
    const conditions = await rt.status();
    const byType = Object.fromEntries(conditions.map((c) => [c.type, c.status]));
    assert.deepEqual(byType, { RuntimeReady: true, NetworkReady: true });
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
    teardown: () => teardown(runtime),
  };
});
