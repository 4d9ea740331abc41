// Garbage collection against a real containerd, started the way the agent
// starts it (as runtime/cri/cri.test.ts), with Skiff's offline images: dead
// containers go by upstream's policy, the previous instance of a running
// pod's container stays, and image GC removes unused images, never one a
// container uses nor the pause image; and container logs rotate through
// CRI ReopenContainerLog, with a follower reading on across the rotation.
// Host network sandboxes, so no pod
// network is needed. Needs root and what scripts/setup.sh installs.

import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { gunzipSync } from 'node:zlib';
import { unmountUnder } from '../../agent/containerd.ts';
import { type NodeRuntime, startNodeRuntime } from '../../agent/runtime.ts';
import { PAUSE_IMAGE } from '../../node/paths.ts';
import { KUBERNETES_CONTAINER_NAME_LABEL, KUBERNETES_POD_UID_LABEL } from '../labels.ts';
import { createContainerLogManager } from '../logs/container-log-manager.ts';
import type { PodSandboxConfig } from '../runtime/runtime.ts';
import { readLogs } from '../server/logs.ts';
import { createContainerGC } from './container-gc.ts';
import { createImageGC } from './image-gc.ts';

let dataDir: string;
let node: NodeRuntime;
const BUSYBOX = 'docker.io/library/busybox:latest';

before(async () => {
  dataDir = await mkdtemp('/tmp/skiff-gc-cri-');
  node = await startNodeRuntime({
    dataDir,
    clusterCIDR: '10.42.0.0/16',
    serviceCIDR: '10.43.0.0/16',
    bridge: 'skiffgc0',
  });
});

after(async () => {
  for (const s of await node.runtime.listPodSandbox()) {
    for (const c of await node.runtime.listContainers({ podSandboxId: s.id })) {
      await node.runtime.stopContainer(c.id, 0).catch(() => undefined);
      await node.runtime.removeContainer(c.id).catch(() => undefined);
    }
    await node.runtime.stopPodSandbox(s.id).catch(() => undefined);
    await node.runtime.removePodSandbox(s.id).catch(() => undefined);
  }
  await node.stop();
  await unmountUnder(dataDir);
  await rm(dataDir, { recursive: true, force: true });
});

const sandbox = (uid: string): PodSandboxConfig => ({
  metadata: { name: `gc-${uid}`, namespace: 'default', uid, attempt: 0 },
  logDirectory: `${dataDir}/pods/${uid}`,
  labels: { [KUBERNETES_POD_UID_LABEL]: uid },
  linux: { securityContext: { namespaceOptions: { network: 'NODE' } } },
});

/** Runs `command` to completion `times` times as container `name` of the sandbox; returns the ids, oldest first. */
async function exitedContainers(
  sbId: string,
  sb: PodSandboxConfig,
  name: string,
  times: number,
): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < times; i++) {
    const id = await node.runtime.createContainer(
      sbId,
      {
        metadata: { name, attempt: i },
        image: { image: BUSYBOX },
        command: ['true'],
        labels: { [KUBERNETES_POD_UID_LABEL]: sb.metadata.uid, [KUBERNETES_CONTAINER_NAME_LABEL]: name },
        logPath: `${name}/${i}.log`,
      },
      sb,
    );
    await node.runtime.startContainer(id);
    for (let j = 0; (await node.runtime.containerStatus(id)).state !== 'CONTAINER_EXITED'; j++) {
      if (j > 200) assert.fail('container did not exit');
      await delay(50);
    }
    ids.push(id);
  }
  return ids;
}

describe('garbage collection on containerd', () => {
  it('keeps the newest dead container per pod container, and removes all of a pod that is gone', async () => {
    const active = sandbox('active-pod');
    const gone = sandbox('gone-pod');
    const activeId = await node.runtime.runPodSandbox(active);
    const goneId = await node.runtime.runPodSandbox(gone);
    const a = await exitedContainers(activeId, active, 'app', 3);
    const g = await exitedContainers(goneId, gone, 'app', 2);
    await node.runtime.stopPodSandbox(goneId);
    const gc = createContainerGC({
      runtime: node.runtime,
      podActive: (uid) => uid === 'active-pod',
      now: Date.now,
    });

    // MinAge not reached: nothing goes.
    assert.deepEqual(await gc.collect({ minAgeMs: 3_600_000, maxPerPodContainer: 1, maxContainers: -1 }), {
      containers: 0,
      sandboxes: 0,
    });
    const result = await gc.collect({ minAgeMs: 0, maxPerPodContainer: 1, maxContainers: -1 });
    assert.deepEqual(result, { containers: 2 + 2, sandboxes: 1 });
    const left = (await node.runtime.listContainers()).map((c) => c.id);
    assert.deepEqual(left, [a[2]]);
    assert.ok(!left.some((id) => g.includes(id)));
    assert.deepEqual(
      (await node.runtime.listPodSandbox()).map((s) => s.id),
      [activeId],
    );
    // Under disk pressure every dead container goes, the active pod's too.
    assert.deepEqual(await gc.collect({ minAgeMs: 0, maxPerPodContainer: 1, maxContainers: -1 }, true), {
      containers: 1,
      sandboxes: 0,
    });
    assert.equal((await node.runtime.listContainers()).length, 0);
  });

  it('removes unused images least recently used first, never the pause image or one in use', async () => {
    const images = await node.runtime.listImages();
    const tags = images.flatMap((i) => i.repoTags);
    assert.ok(tags.includes(BUSYBOX) && tags.includes(PAUSE_IMAGE), tags.join(' '));
    const unused = images.filter((i) => !i.repoTags.includes(BUSYBOX) && !i.repoTags.includes(PAUSE_IMAGE));
    assert.ok(unused.length > 0, 'an image nobody uses (the offline images include others)');
    // busybox is in use by a container (exited counts too).
    const sb = sandbox('image-user');
    const sbId = await node.runtime.runPodSandbox(sb);
    await exitedContainers(sbId, sb, 'app', 1);

    let t = Date.now();
    const gc = createImageGC({
      runtime: node.runtime,
      pinned: [PAUSE_IMAGE],
      imagefsPath: dataDir,
      now: () => t,
    });
    await gc.detect();
    // Below the high threshold: nothing is removed.
    assert.equal(
      await gc.garbageCollect({ highThresholdPercent: 100, lowThresholdPercent: 100, minAgeMs: 0 }),
      0,
    );
    // Above it, but the images are younger than the minimum age.
    assert.equal(
      await gc.garbageCollect({ highThresholdPercent: 0, lowThresholdPercent: 0, minAgeMs: 60_000 }),
      0,
    );
    t += 120_000;
    const freed = await gc.garbageCollect({
      highThresholdPercent: 0,
      lowThresholdPercent: 0,
      minAgeMs: 60_000,
    });
    assert.equal(
      freed,
      unused.reduce((n, i) => n + Number(i.size), 0),
    );
    const after = (await node.runtime.listImages()).flatMap((i) => i.repoTags);
    assert.ok(after.includes(BUSYBOX) && after.includes(PAUSE_IMAGE), after.join(' '));
    for (const i of unused) for (const tag of i.repoTags) assert.ok(!after.includes(tag), `${tag} removed`);
  });

  it('rotates a running container log past the max size, keeps max files, and a follower reads on', async () => {
    const sb = sandbox('logger');
    const sbId = await node.runtime.runPodSandbox(sb);
    // A numbered line every 10 ms, about 30 bytes of CRI log each.
    const id = await node.runtime.createContainer(
      sbId,
      {
        metadata: { name: 'logger', attempt: 0 },
        image: { image: BUSYBOX },
        command: ['sh', '-c', 'i=0; while true; do i=$((i+1)); echo line-$i; sleep 0.01; done'],
        labels: { [KUBERNETES_POD_UID_LABEL]: 'logger', [KUBERNETES_CONTAINER_NAME_LABEL]: 'logger' },
        logPath: 'logger/0.log',
      },
      sb,
    );
    await node.runtime.startContainer(id);
    const path = (await node.runtime.containerStatus(id)).logPath;
    // A follower from the start: it must see every line, across the rotations.
    const seen: string[] = [];
    const abort = new AbortController();
    const following = readLogs(
      path,
      { follow: true },
      (chunk) => {
        seen.push(...chunk.toString().split('\n').filter(Boolean));
      },
      { running: async () => true, signal: abort.signal, pollMs: 50 },
    );
    let t = new Date('2026-12-01T10:00:00Z');
    const logs = createContainerLogManager({
      runtime: node.runtime,
      policy: { maxSizeBytes: 2048, maxFiles: 3 },
      now: () => t,
    });
    for (let round = 0; round < 4; round++) {
      for (let i = 0; (await stat(path)).size < 2048; i++) {
        if (i > 200) assert.fail('the container did not log');
        await delay(50);
      }
      assert.deepEqual(await logs.rotateLogs(), [id]);
      t = new Date(t.getTime() + 60_000);
    }
    const files = (await readdir(`${dataDir}/pods/logger/logger`)).sort();
    // At most 3 files: the live one, the newest rotated, and an older one compressed.
    assert.deepEqual(files, ['0.log', '0.log.20261201-100200.gz', '0.log.20261201-100300']);
    // The runtime writes the live file again after the reopen.
    for (let i = 0; (await stat(path)).size === 0; i++) {
      if (i > 100) assert.fail('nothing written after the reopen');
      await delay(50);
    }
    const compressed = gunzipSync(
      await readFile(`${dataDir}/pods/logger/logger/0.log.20261201-100200.gz`),
    ).toString();
    assert.match(compressed, /stdout F line-\d+/);
    await delay(300);
    abort.abort();
    await following;
    // The follower saw consecutive lines from 1 on, through four rotations:
    // at least up to the last line of the newest rotated file (how many
    // lines that is depends on how busy the machine is).
    const numbers = seen.map((l) => Number(l.replace('line-', '')));
    const rotated = await readFile(`${dataDir}/pods/logger/logger/0.log.20261201-100300`, 'utf8');
    const lastRotated = Number(/line-(\d+)\n?$/.exec(rotated.trimEnd())?.[1]);
    assert.ok(lastRotated > 0, rotated.slice(-200));
    assert.ok(
      numbers.length >= lastRotated,
      `${numbers.length} lines, the rotated files up to line ${lastRotated}`,
    );
    assert.deepEqual(
      numbers,
      numbers.map((_, i) => i + 1),
    );
  });
});
