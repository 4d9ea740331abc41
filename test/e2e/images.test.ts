// Offline images end to end, through the real kubectl: `skiff server` with
// its agent running containerd, on a machine with no way out. Unmodified
// upstream usage works: `kubectl run bb --image=busybox` gets upstream's
// default imagePullPolicy Always (the tag is latest), so the kubelet pulls
// the image through CRI PullImage, and containerd gets it from the node's
// embedded mirror of its airgap images (src/agent/mirror.ts). An image nobody
// imported fails at once with ErrImagePull, then backs off with
// ImagePullBackOff, with the kubelet's Failed events saying why.
//
// Needs root and what scripts/setup.sh installs (containerd, runc, CNI
// plugins, Skiff's offline images).

import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { unmountUnder } from '../../src/agent/containerd.ts';
import { podBridgeName } from '../../src/agent/runtime.ts';
import { deleteBridge } from '../../src/network/cni.ts';
import { eventually, ok, type Skiff, startSkiff } from './harness.ts';

// A pod range of this file's own, so this cluster's pods never share
// addresses with another Skiff cluster running on the machine at the same time.
const CLUSTER_CIDR = '10.79.0.0/16';

let skiff: Skiff;
let nodeName = '';
let podCIDR = '';

interface PodJSON {
  spec: { containers: { image: string; imagePullPolicy?: string }[] };
  status: {
    phase?: string;
    podIP?: string;
    containerStatuses?: { state?: { waiting?: { reason: string; message?: string } } }[];
  };
}

const getPod = async (name: string): Promise<PodJSON> =>
  JSON.parse(await ok(skiff, ['get', 'pod', name, '-o', 'json']));
const waitingReason = (p: PodJSON) => p.status.containerStatuses?.[0]?.state?.waiting?.reason;

/** The pod's events as `reason: message`, in kubectl's order. */
async function events(pod: string): Promise<string[]> {
  const out = await ok(skiff, [
    'get',
    'events',
    '--field-selector',
    `involvedObject.name=${pod}`,
    '-o',
    'jsonpath={range .items[*]}{.reason}: {.message}{"\\n"}{end}',
  ]);
  return out.split('\n').filter(Boolean);
}

before(async () => {
  skiff = await startSkiff([
    '--no-disable-agent',
    '--cluster-cidr',
    CLUSTER_CIDR,
    '--service-cidr',
    '10.81.0.0/16',
  ]);
  await eventually(
    'the node Ready with a podCIDR',
    async () => {
      const node = JSON.parse(await ok(skiff, ['get', 'nodes', '-o', 'json'])).items[0];
      const ready = node?.status?.conditions?.find((c: { type: string }) => c.type === 'Ready');
      if (ready?.status !== 'True' || !node.spec.podCIDR) return false;
      nodeName = node.metadata.name;
      podCIDR = node.spec.podCIDR;
      return true;
    },
    120_000,
  ).catch((err) => {
    throw new Error(`${err}\nserver output:\n${skiff.logs()}`);
  });
});

after(async () => {
  if (!skiff) return;
  await skiff.kubectl(['delete', 'pods', '--all', '--grace-period=1', '--wait=true', '--timeout=60s'], {
    timeoutMs: 70_000,
  });
  const dataDir = skiff.dataDir;
  await skiff.stop().catch(async () => {
    // Whatever containerd left mounted (a pod the kubelet could not delete) must not keep the dir.
    await unmountUnder(dataDir);
    rmSync(dataDir, { recursive: true, force: true });
  });
  // The pod bridge of this file's own podCIDR goes with the cluster.
  if (podCIDR) await deleteBridge(podBridgeName(podCIDR));
});

describe('offline images', () => {
  it('kubectl run --image=busybox: imagePullPolicy Always by default, pulled from the node, Running with a pod IP from the podCIDR', async () => {
    await ok(skiff, ['run', 'bb', '--image=busybox', '--', 'sleep', '3600']);
    const created = await getPod('bb');
    assert.equal(
      created.spec.containers[0]?.imagePullPolicy,
      'Always',
      'upstream default for a :latest image',
    );

    const pod = await eventually(
      'pod bb Running',
      async () => {
        const p = await getPod('bb');
        return p.status.phase === 'Running' && p.status.podIP ? p : undefined;
      },
      90_000,
    ).catch(async (err) => {
      throw new Error(`${err}\nevents:\n${(await events('bb')).join('\n')}`);
    });

    const seen = await events('bb');
    assert.ok(seen.includes('Pulling: Pulling image "busybox"'), seen.join('\n'));
    assert.ok(
      seen.some((e) => /^Pulled: Successfully pulled image "busybox" in \d+(\.\d+)?s/.test(e)),
      seen.join('\n'),
    );

    // The pod IP is in the node's podCIDR (a /24: its first three octets).
    const prefix = podCIDR.split('.').slice(0, 3).join('.');
    assert.ok(pod.status.podIP?.startsWith(`${prefix}.`), `${pod.status.podIP} in ${podCIDR}`);
    const wide = await ok(skiff, ['get', 'pods', 'bb', '-o', 'wide']);
    const row = wide.split('\n').find((l) => l.startsWith('bb ')) ?? '';
    const columns = row.split(/\s+/);
    // NAME READY STATUS RESTARTS AGE IP NODE ...
    assert.deepEqual(columns.slice(1, 3), ['1/1', 'Running'], wide);
    assert.equal(columns[5], pod.status.podIP, wide);
    assert.equal(columns[6], nodeName, wide);
  });

  it('kubectl run --image=doesnotexist.invalid/x: ErrImagePull at once, then ImagePullBackOff, with Failed events', async () => {
    await ok(skiff, ['run', 'nope', '--image=doesnotexist.invalid/x']);
    const reasons = new Set<string>();
    await eventually(
      'ErrImagePull, then ImagePullBackOff',
      async () => {
        const reason = waitingReason(await getPod('nope'));
        if (reason) reasons.add(reason);
        return reasons.has('ImagePullBackOff');
      },
      60_000,
    ).catch((err) => {
      throw new Error(`${err}; seen: ${[...reasons].join(', ')}`);
    });
    // kubectl shows the waiting reason as the pod's status.
    const table = await ok(skiff, ['get', 'pod', 'nope']);
    assert.match(table, /^nope\s+0\/1\s+(ErrImagePull|ImagePullBackOff)\s/m, table);

    const seen = await events('nope');
    assert.ok(
      seen.some((e) => e.startsWith('Failed: Failed to pull image "doesnotexist.invalid/x": ')),
      seen.join('\n'),
    );
    assert.ok(seen.includes('Failed: Error: ErrImagePull'), seen.join('\n'));
    assert.ok(seen.includes('BackOff: Back-off pulling image "doesnotexist.invalid/x"'), seen.join('\n'));
  });

  it('an image of a public registry that was never imported is not found on the node, and nothing is fetched from outside', async () => {
    await ok(skiff, ['run', 'gone', '--image=registry.k8s.io/skiff-never/absent:1']);
    const failed = await eventually(
      'the Failed event',
      async () => (await events('gone')).find((e) => e.startsWith('Failed: Failed to pull image')),
      60_000,
    );
    // The node's mirror answered 404: containerd's own words for an image no registry has.
    assert.match(failed, /registry\.k8s\.io\/skiff-never\/absent:1: not found$/, failed);
    assert.match(waitingReason(await getPod('gone')) ?? '', /^(ErrImagePull|ImagePullBackOff)$/);
  });
});
