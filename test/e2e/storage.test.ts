// Persistent storage with real containers, through the real kubectl:
// `skiff server` with its agent running containerd, and the built-in
// local-path provisioner as the default StorageClass. A claim on the default
// class and a busybox pod writing a file: the scheduler picks the node, the
// provisioner makes a volume there, the kubelet makes its directory and
// bind-mounts it. The pod is deleted and made again, and the file is still
// there. The claim is deleted (reclaim Delete): the volume goes, and the
// node's agent removes its directory.
//
// Needs root and what scripts/setup.sh installs (containerd, runc, CNI
// plugins, Skiff's offline images). Traffic stays on this machine.

import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { eventually, ok, type Skiff, startSkiff } from './harness.ts';

const CLUSTER_CIDR = '10.82.0.0/16';
let skiff: Skiff;

before(async () => {
  skiff = await startSkiff([
    '--no-disable-agent',
    '--cluster-cidr',
    CLUSTER_CIDR,
    '--service-cidr',
    '10.84.0.0/16',
  ]);
  await eventually(
    'the node Ready',
    async () => {
      const node = JSON.parse(await ok(skiff, ['get', 'nodes', '-o', 'json'])).items[0];
      return node?.status?.conditions?.find((c: { type: string }) => c.type === 'Ready')?.status === 'True';
    },
    120_000,
  ).catch((err) => {
    throw new Error(`${err}\nserver output:\n${skiff.logs()}`);
  });
});
after(async () => {
  await skiff?.stop();
});

const apply = (yaml: string) => ok(skiff, ['apply', '-f', '-'], { input: yaml });
const json = async (args: string[]) => JSON.parse(await ok(skiff, [...args, '-o', 'json']));

const pod = (name: string, script: string) => `apiVersion: v1
kind: Pod
metadata:
  name: ${name}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: busybox
    command: [sh, -c, ${JSON.stringify(script)}]
    volumeMounts:
    - name: data
      mountPath: /data
  volumes:
  - name: data
    persistentVolumeClaim:
      claimName: data
`;

async function running(name: string) {
  return eventually(
    `pod ${name} Running`,
    async () => {
      const p = await json(['get', 'pod', name]);
      return p.status?.phase === 'Running' ? p : undefined;
    },
    90_000,
  ).catch(async (err) => {
    const described = await skiff.kubectl(['describe', 'pod', name]);
    throw new Error(`${err}\n${described.stdout}\nserver output:\n${skiff.logs().slice(-20_000)}`);
  });
}

describe('persistent storage on the built-in local-path provisioner', () => {
  let dir = '';

  it('provisions a claim on the default class on the node the pod was scheduled to', async () => {
    const sc = await ok(skiff, ['get', 'sc']);
    assert.match(
      sc,
      /^NAME\s+PROVISIONER\s+RECLAIMPOLICY\s+VOLUMEBINDINGMODE\s+ALLOWVOLUMEEXPANSION\s+AGE$/m,
      sc,
    );
    assert.match(
      sc,
      /^local-path \(default\)\s+rancher\.io\/local-path\s+Delete\s+WaitForFirstConsumer\s+false\s/m,
      sc,
    );

    await apply(`apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: data
spec:
  accessModes: [ReadWriteOnce]
  resources:
    requests:
      storage: 128Mi
`);
    // No pod yet: the claim waits for its first consumer.
    const pending = await json(['get', 'pvc', 'data']);
    assert.equal(pending.spec.storageClassName, 'local-path');
    assert.deepEqual(pending.metadata.finalizers, ['kubernetes.io/pvc-protection']);
    await eventually(
      'the WaitForFirstConsumer event',
      async () =>
        (await ok(skiff, ['get', 'events', '--field-selector', 'involvedObject.name=data'])).includes(
          'WaitForFirstConsumer',
        ) || undefined,
    );
    assert.equal((await json(['get', 'pvc', 'data'])).status.phase, 'Pending');

    await apply(pod('writer', 'echo hello > /data/hello; sleep 3600'));
    const p = await running('writer');
    const claim = await eventually('the claim Bound', async () => {
      const c = await json(['get', 'pvc', 'data']);
      return c.status?.phase === 'Bound' ? c : undefined;
    });
    assert.equal(claim.metadata.annotations['volume.kubernetes.io/selected-node'], p.spec.nodeName);
    const pvName = `pvc-${claim.metadata.uid}`;
    assert.equal(claim.spec.volumeName, pvName);
    const pv = await json(['get', 'pv', pvName]);
    dir = join(skiff.dataDir, 'storage', `${pvName}_default_data`);
    assert.equal(pv.spec.hostPath.path, dir);
    assert.equal(pv.metadata.annotations['pv.kubernetes.io/provisioned-by'], 'rancher.io/local-path');
    assert.deepEqual(pv.spec.nodeAffinity.required.nodeSelectorTerms[0].matchExpressions[0].values, [
      p.spec.nodeName,
    ]);
    await eventually('the file on the node', async () => existsSync(join(dir, 'hello')) || undefined);
    assert.equal(readFileSync(join(dir, 'hello'), 'utf8'), 'hello\n');

    const tables = await ok(skiff, ['get', 'pv,pvc']);
    assert.match(
      tables,
      /^NAME\s+CAPACITY\s+ACCESS MODES\s+RECLAIM POLICY\s+STATUS\s+CLAIM\s+STORAGECLASS\s+VOLUMEATTRIBUTESCLASS\s+REASON\s+AGE$/m,
      tables,
    );
    assert.match(
      tables,
      new RegExp(
        `^persistentvolume/${pvName}\\s+128Mi\\s+RWO\\s+Delete\\s+Bound\\s+default/data\\s+local-path\\s+<none>\\s`,
        'm',
      ),
      tables,
    );
    assert.match(
      tables,
      /^NAME\s+STATUS\s+VOLUME\s+CAPACITY\s+ACCESS MODES\s+STORAGECLASS\s+VOLUMEATTRIBUTESCLASS\s+AGE$/m,
      tables,
    );
    assert.match(
      tables,
      new RegExp(
        `^persistentvolumeclaim/data\\s+Bound\\s+${pvName}\\s+128Mi\\s+RWO\\s+local-path\\s+<none>\\s`,
        'm',
      ),
      tables,
    );
  });

  it('keeps the data when the pod is deleted and made again', async () => {
    await ok(skiff, ['delete', 'pod', 'writer', '--wait=true', '--timeout=60s'], { timeoutMs: 70_000 });
    await apply(pod('reader', 'cat /data/hello > /data/seen; sleep 3600'));
    await running('reader');
    await eventually("the second pod read the first one's file", async () =>
      existsSync(join(dir, 'seen')) && readFileSync(join(dir, 'seen'), 'utf8') === 'hello\n'
        ? true
        : undefined,
    );
  });

  it('keeps a claim in use until its pod is gone; then deletes the volume and its directory on the node', async () => {
    await ok(skiff, ['delete', 'pvc', 'data', '--wait=false']);
    const deleting = await json(['get', 'pvc', 'data']);
    assert.ok(deleting.metadata.deletionTimestamp, 'the claim is being deleted');
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal((await json(['get', 'pvc', 'data'])).status.phase, 'Bound', 'a claim in use stays');
    assert.ok(existsSync(join(dir, 'seen')));

    await ok(skiff, ['delete', 'pod', 'reader', '--wait=true', '--timeout=60s'], { timeoutMs: 70_000 });
    await eventually(
      'the claim and its volume gone',
      async () => {
        const left = await ok(skiff, ['get', 'pv,pvc', '-o', 'name']);
        return left.trim() === '' ? true : undefined;
      },
      60_000,
    );
    await eventually(
      'the directory gone from the node',
      async () => (!existsSync(dir) ? true : undefined),
      30_000,
    );
  });
});
