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
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
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
      /^local-path \(default\)\s+rancher\.io\/local-path\s+Delete\s+WaitForFirstConsumer\s+true\s/m,
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

  it('grows a claim: the volume first, then the claim once a pod of it is (re)started on the node', async () => {
    const pvName = (await json(['get', 'pvc', 'data'])).spec.volumeName;
    // Smaller than what the claim has: refused by validation, as upstream.
    const shrink = await skiff.kubectl([
      'patch',
      'pvc',
      'data',
      '-p',
      '{"spec":{"resources":{"requests":{"storage":"64Mi"}}}}',
    ]);
    assert.notEqual(shrink.code, 0);
    assert.match(
      shrink.stderr,
      /spec.resources.requests.storage: Forbidden: field can not be less than status.capacity/,
    );

    await ok(skiff, [
      'patch',
      'pvc',
      'data',
      '-p',
      '{"spec":{"resources":{"requests":{"storage":"256Mi"}}}}',
    ]);
    const pending = await eventually('the volume grown, the claim waiting for its node', async () => {
      const [pv, c] = [await json(['get', 'pv', pvName]), await json(['get', 'pvc', 'data'])];
      const cond = (c.status.conditions ?? []).find(
        (x: { type: string }) => x.type === 'FileSystemResizePending',
      );
      return pv.spec.capacity.storage === '256Mi' && cond?.status === 'True' ? c : undefined;
    });
    assert.equal(pending.status.capacity.storage, '128Mi');
    assert.deepEqual(pending.status.allocatedResources, { storage: '256Mi' });
    assert.deepEqual(pending.status.allocatedResourceStatuses, { storage: 'NodeResizePending' });

    // As the condition's message says: (re)start a pod of the claim, and its node finishes the resize.
    await ok(skiff, ['delete', 'pod', 'reader', '--wait=true', '--timeout=60s'], { timeoutMs: 70_000 });
    await apply(pod('reader', 'cat /data/hello > /data/seen; sleep 3600'));
    await running('reader');
    const grown = await eventually('the claim at its new size', async () => {
      const c = await json(['get', 'pvc', 'data']);
      return c.status.capacity.storage === '256Mi' ? c : undefined;
    });
    assert.deepEqual(
      (grown.status.conditions ?? []).map((x: { type: string }) => x.type),
      [],
    );
    assert.equal(grown.status.allocatedResourceStatuses, undefined);
    assert.match(
      await ok(skiff, ['get', 'events', '--field-selector', 'involvedObject.name=reader']),
      /FileSystemResizeSuccessful/,
    );
    assert.match(await ok(skiff, ['get', 'pvc', 'data']), /\sBound\s+\S+\s+256Mi\s/);
  });

  it("reports the claim's volume in the kubelet's /stats/summary: what it uses, what its filesystem has", async () => {
    const nodeName = (await json(['get', 'pod', 'reader'])).spec.nodeName;
    const volume = await eventually("the reader pod's volume in /stats/summary", async () => {
      const summary = JSON.parse(
        await ok(skiff, ['get', '--raw', `/api/v1/nodes/${nodeName}/proxy/stats/summary`]),
      );
      const p = summary.pods.find((x: { podRef: { name: string } }) => x.podRef.name === 'reader');
      return p?.volume?.find((v: { name: string }) => v.name === 'data');
    });
    assert.deepEqual(volume.pvcRef, { name: 'data', namespace: 'default' });
    // The directory, hello and seen.
    assert.ok(volume.inodesUsed >= 3, JSON.stringify(volume));
    assert.ok(volume.usedBytes > 0 && volume.capacityBytes > volume.availableBytes, JSON.stringify(volume));
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

describe('a StatefulSet with volumeClaimTemplates on local-path', () => {
  const ns = 'storage-sts';
  const n = (args: string[]) => [...args, '-n', ns];
  const claim = (ordinal: number) => json(n(['get', 'pvc', `data-web-${ordinal}`]));
  const dirOf = (c: { metadata: { uid: string; name: string } }) =>
    join(skiff.dataDir, 'storage', `pvc-${c.metadata.uid}_${ns}_${c.metadata.name}`);
  const boots = (c: { metadata: { uid: string; name: string } }) => {
    const f = join(dirOf(c), 'boots');
    return existsSync(f) ? readFileSync(f, 'utf8') : '';
  };
  const podUid = async (name: string) => (await json(n(['get', 'pod', name]))).metadata.uid as string;
  async function membersRunning(count: number) {
    return eventually(
      `${count} members Running`,
      async () => {
        const pods = (await json(n(['get', 'pods', '-l', 'app=web']))).items as {
          metadata: { name: string; deletionTimestamp?: string };
          status?: { phase?: string };
        }[];
        const running = pods.filter((p) => p.status?.phase === 'Running' && !p.metadata.deletionTimestamp);
        return running.length === count && pods.length === count ? pods : undefined;
      },
      120_000,
    ).catch(async (err) => {
      const described = await skiff.kubectl(n(['describe', 'pods']));
      throw new Error(`${err}\n${described.stdout}\nserver output:\n${skiff.logs().slice(-20_000)}`);
    });
  }
  const scale = (replicas: number) => ok(skiff, n(['scale', 'statefulset', 'web', `--replicas=${replicas}`]));

  after(async () => {
    await skiff?.kubectl(['delete', 'namespace', ns, '--wait=true', '--timeout=60s'], { timeoutMs: 70_000 });
  });

  it('gives each ordinal its own claim, and keeps the data when the pods are deleted', async () => {
    await ok(skiff, ['create', 'namespace', ns]);
    await apply(`apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
  namespace: ${ns}
spec:
  replicas: 2
  serviceName: web
  podManagementPolicy: Parallel
  persistentVolumeClaimRetentionPolicy:
    whenScaled: Delete
    whenDeleted: Retain
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: app
        image: busybox
        command: [sh, -c, 'hostname >> /data/boots; sleep 3600']
        volumeMounts:
        - {name: data, mountPath: /data}
  volumeClaimTemplates:
  - metadata:
      name: data
    spec:
      accessModes: [ReadWriteOnce]
      resources:
        requests:
          storage: 64Mi
`);
    await membersRunning(2);
    const claims = [await claim(0), await claim(1)];
    for (const [i, c] of claims.entries()) {
      assert.equal(c.status.phase, 'Bound');
      assert.equal(c.spec.storageClassName, 'local-path');
      assert.equal(
        c.metadata.ownerReferences,
        undefined,
        'whenDeleted Retain: the set does not own the claim',
      );
      await eventually(`web-${i} wrote to its volume`, async () =>
        boots(c) === `web-${i}\n` ? true : undefined,
      );
    }

    const before = [await podUid('web-0'), await podUid('web-1')];
    await ok(skiff, n(['delete', 'pods', '-l', 'app=web', '--wait=true', '--timeout=60s']), {
      timeoutMs: 70_000,
    }).catch(async (err) => {
      // Seen once in a full CI run (web-1 still terminating after 60 s): say why, next time.
      const described = await skiff.kubectl(n(['describe', 'pods']));
      throw new Error(`${err}\n${described.stdout}\nserver output:\n${skiff.logs().slice(-20_000)}`);
    });
    await membersRunning(2);
    assert.notDeepEqual([await podUid('web-0'), await podUid('web-1')], before, 'the pods were made again');
    for (const [i, c] of claims.entries()) {
      assert.equal((await claim(i)).metadata.uid, c.metadata.uid, 'the same claim');
      await eventually(`web-${i} found its old data`, async () =>
        boots(c) === `web-${i}\nweb-${i}\n` ? true : undefined,
      );
    }
  });

  it("whenScaled Delete: scaling down deletes the condemned ordinal's claim and volume; scaling up starts it afresh", async () => {
    const old1 = await claim(1);
    const old0 = await claim(0);
    await scale(1);
    await membersRunning(1);
    await eventually(
      'data-web-1 and its volume gone',
      async () => {
        const left = await ok(skiff, n(['get', 'pvc', '-o', 'name']));
        const pv = await skiff.kubectl(['get', 'pv', old1.spec.volumeName]);
        return left.trim() === 'persistentvolumeclaim/data-web-0' && pv.code !== 0 ? true : undefined;
      },
      90_000,
    );
    await eventually(
      'its directory gone from the node',
      async () => (!existsSync(dirOf(old1)) ? true : undefined),
      30_000,
    );
    assert.equal(boots(old0), 'web-0\nweb-0\n', "web-0's data untouched");

    await scale(2);
    await membersRunning(2);
    const new1 = await claim(1);
    assert.notEqual(new1.metadata.uid, old1.metadata.uid, 'a new claim');
    await eventually('web-1 on a fresh volume', async () => (boots(new1) === 'web-1\n' ? true : undefined));
  });

  it('whenDeleted Retain: deleting the set keeps the claims and their data', async () => {
    const c0 = await claim(0);
    await ok(skiff, n(['delete', 'statefulset', 'web', '--wait=true', '--timeout=60s']), {
      timeoutMs: 70_000,
    });
    await eventually(
      'the pods gone',
      async () => ((await ok(skiff, n(['get', 'pods', '-o', 'name']))).trim() === '' ? true : undefined),
      60_000,
    );
    assert.deepEqual((await ok(skiff, n(['get', 'pvc', '-o', 'name']))).trim().split('\n').sort(), [
      'persistentvolumeclaim/data-web-0',
      'persistentvolumeclaim/data-web-1',
    ]);
    assert.equal((await claim(0)).metadata.uid, c0.metadata.uid);
    assert.equal(boots(c0), 'web-0\nweb-0\n');
  });
});

describe('a generic ephemeral volume on local-path', () => {
  const ns = 'storage-eph';
  const n = (args: string[]) => [...args, '-n', ns];
  after(async () => {
    await skiff?.kubectl(['delete', 'namespace', ns, '--wait=true', '--timeout=60s'], { timeoutMs: 70_000 });
  });

  it('gets a claim <pod>-<volume> owned by the pod, mounted like a claim, and gone with the pod', async () => {
    await ok(skiff, ['create', 'namespace', ns]);
    await apply(`apiVersion: v1
kind: Pod
metadata:
  name: scratch
  namespace: ${ns}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: busybox
    command: [sh, -c, 'echo scratch > /scratch/note; sleep 3600']
    volumeMounts:
    - {name: work, mountPath: /scratch}
  volumes:
  - name: work
    ephemeral:
      volumeClaimTemplate:
        spec:
          accessModes: [ReadWriteOnce]
          resources:
            requests:
              storage: 32Mi
`);
    const p = await eventually(
      'pod scratch Running',
      async () => {
        const p = await json(n(['get', 'pod', 'scratch']));
        return p.status?.phase === 'Running' ? p : undefined;
      },
      90_000,
    ).catch(async (err) => {
      const described = await skiff.kubectl(n(['describe', 'pod', 'scratch']));
      throw new Error(`${err}\n${described.stdout}\nserver output:\n${skiff.logs().slice(-20_000)}`);
    });
    const claim = await json(n(['get', 'pvc', 'scratch-work']));
    assert.equal(claim.status.phase, 'Bound');
    assert.equal(claim.spec.storageClassName, 'local-path');
    assert.deepEqual(
      claim.metadata.ownerReferences.map(
        (r: { kind: string; name: string; uid: string; controller: boolean }) => [
          r.kind,
          r.name,
          r.uid,
          r.controller,
        ],
      ),
      [['Pod', 'scratch', p.metadata.uid, true]],
    );
    const dir = join(skiff.dataDir, 'storage', `${claim.spec.volumeName}_${ns}_scratch-work`);
    await eventually('the file on the node', async () =>
      existsSync(join(dir, 'note')) && readFileSync(join(dir, 'note'), 'utf8') === 'scratch\n'
        ? true
        : undefined,
    );

    await ok(skiff, n(['delete', 'pod', 'scratch', '--wait=true', '--timeout=60s']), { timeoutMs: 70_000 });
    await eventually(
      'the claim and its volume gone with the pod',
      async () => {
        const left = await ok(skiff, n(['get', 'pvc', '-o', 'name']));
        const pv = await skiff.kubectl(['get', 'pv', claim.spec.volumeName]);
        return left.trim() === '' && pv.code !== 0 ? true : undefined;
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

describe('fsGroup with real containers', () => {
  const ns = 'storage-fsgroup';
  const n = (args: string[]) => [...args, '-n', ns];
  let dir = '';
  after(async () => {
    await skiff?.kubectl(['delete', 'namespace', ns, '--wait=true', '--timeout=60s'], { timeoutMs: 70_000 });
    await skiff?.kubectl(['delete', 'pv', 'fsgroup-local', '--ignore-not-found']);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("a non-root container writes to a root-owned local volume through the pod's fsGroup, and has it as a group", async () => {
    await ok(skiff, ['create', 'namespace', ns]);
    // A local PersistentVolume: a directory of root's (0755) on the node, which user 1000 cannot write to.
    dir = mkdtempSync(join(skiff.dataDir, 'fsgroup-'));
    chmodSync(dir, 0o755);
    const nodeName = JSON.parse(await ok(skiff, ['get', 'nodes', '-o', 'json'])).items[0].metadata.name;
    await apply(`apiVersion: v1
kind: PersistentVolume
metadata: {name: fsgroup-local}
spec:
  capacity: {storage: 16Mi}
  accessModes: [ReadWriteOnce]
  storageClassName: ''
  persistentVolumeReclaimPolicy: Retain
  local: {path: ${dir}}
  nodeAffinity:
    required:
      nodeSelectorTerms:
      - matchExpressions:
        - {key: kubernetes.io/hostname, operator: In, values: [${nodeName}]}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data, namespace: ${ns}}
spec:
  storageClassName: ''
  volumeName: fsgroup-local
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 16Mi}}
---
apiVersion: v1
kind: Pod
metadata: {name: writer, namespace: ${ns}}
spec:
  terminationGracePeriodSeconds: 1
  securityContext: {runAsUser: 1000, runAsGroup: 1000, supplementalGroups: [3000], fsGroup: 2000}
  containers:
  - name: app
    image: busybox
    command: [sh, -c, 'id -G > /data/groups && echo written > /data/note; sleep 3600']
    volumeMounts:
    - {name: data, mountPath: /data}
  volumes:
  - name: data
    persistentVolumeClaim: {claimName: data}
`);
    await eventually('the note written by user 1000', async () =>
      existsSync(join(dir, 'note')) ? true : undefined,
    ).catch(async (err) => {
      const described = await skiff.kubectl(n(['describe', 'pod', 'writer']));
      throw new Error(`${err}\n${described.stdout}`);
    });
    // The primary group, then supplementalGroups and fsGroup (the kernel keeps those sorted).
    const [primary, ...others] = readFileSync(join(dir, 'groups'), 'utf8').trim().split(' ');
    assert.equal(primary, '1000');
    assert.deepEqual(others.sort(), ['2000', '3000']);
    const root = statSync(dir);
    assert.equal(root.gid, 2000);
    assert.equal(root.mode & 0o7777, 0o2775);
    // Made in a setgid directory: the file has the pod's group too.
    const note = statSync(join(dir, 'note'));
    assert.equal(note.uid, 1000);
    assert.equal(note.gid, 2000);
  });
});
