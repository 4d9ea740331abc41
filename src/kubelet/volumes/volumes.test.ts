// Volumes: the AtomicWriter's layout on disk, then the kubelet on the hollow
// runtime with a real API server, setting up emptyDir (on disk and in
// memory), hostPath, configMap, secret, downwardAPI and projected volumes
// under a temporary kubelet root, handing containers their CRI mounts, and
// cleaning up when the pod goes. Hollow containers do not read the files;
// the test does, on the node's side. Needs root (tmpfs mounts).

import assert from 'node:assert/strict';
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import type { Pod } from '../../api/types/core-v1.ts';
import { KUBERNETES_CONTAINER_NAME_LABEL, KUBERNETES_POD_UID_LABEL } from '../labels.ts';
import type { Mount } from '../runtime/runtime.ts';
import { type KubeletTest, startKubeletTest } from '../testing.ts';
import { writeAtomically } from './atomic-writer.ts';
import { isMountPoint, mountPoints } from './mount.ts';
import { formatMap } from './payload.ts';

const file = (data: string, mode = 0o644) => ({ data: Buffer.from(data), mode });

describe('AtomicWriter', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp('/tmp/skiff-atomic-');
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('writes a timestamped version behind ..data, with user-visible links, and swaps it whole on update', async () => {
    const target = join(dir, 'vol');
    const now = new Date('2025-03-04T05:06:07Z');
    assert.equal(
      await writeAtomically(
        target,
        new Map([
          ['a', file('one')],
          ['conf/b.yaml', file('two', 0o400)],
        ]),
        now,
      ),
      true,
    );
    const first = await readlink(join(target, '..data'));
    assert.match(first, /^\.\.2025_03_04_05_06_07\.\w+$/);
    assert.equal(await readlink(join(target, 'a')), '..data/a');
    assert.equal(await readlink(join(target, 'conf')), '..data/conf');
    assert.equal(await readFile(join(target, 'conf/b.yaml'), 'utf8'), 'two');
    assert.equal((await stat(join(target, 'conf/b.yaml'))).mode & 0o777, 0o400);
    assert.equal((await stat(join(target, 'a'))).mode & 0o777, 0o644);

    // The same payload again writes nothing.
    assert.equal(
      await writeAtomically(
        target,
        new Map([
          ['a', file('one')],
          ['conf/b.yaml', file('two', 0o400)],
        ]),
        now,
      ),
      false,
    );
    assert.equal(await readlink(join(target, '..data')), first);

    // An update: a new version, the dropped key's link gone, the old version removed.
    assert.equal(await writeAtomically(target, new Map([['a', file('uno')]]), now), true);
    const second = await readlink(join(target, '..data'));
    assert.notEqual(second, first);
    assert.equal(await readFile(join(target, 'a'), 'utf8'), 'uno');
    assert.deepEqual((await readdir(target)).sort(), ['..data', second, 'a'].sort());

    await assert.rejects(
      writeAtomically(target, new Map([['../escape', file('x')]])),
      /must not contain '\.\.'/,
    );
    await assert.rejects(writeAtomically(target, new Map([['/abs', file('x')]])), /must be relative/);
  });

  it('formats labels and annotations as upstream FormatMap', () => {
    assert.equal(formatMap({ b: 'two', a: 'say "hi"' }), 'a="say \\"hi\\""\nb="two"');
  });
});

describe('kubelet: volumes', () => {
  let t: KubeletTest;
  let root: string;
  before(async () => {
    root = await mkdtemp('/tmp/skiff-volumes-');
    // A short resync stands in for upstream's one-minute sync period.
    t = await startKubeletTest({ volumes: true, dataDir: root, resyncIntervalMs: 200 });
  });
  after(async () => {
    await t.close();
    for (const m of (await mountPoints()).filter((p) => p.startsWith(`${root}/`))) {
      await import('./mount.ts').then((x) => x.unmount(m)).catch(() => undefined);
    }
    await rm(root, { recursive: true, force: true });
  });

  const cond = (pod: Pod | undefined, type: string) => pod?.status?.conditions?.find((c) => c.type === type);
  const ready = (name: string) => async () => {
    const p = await t.getPod(name);
    return cond(p, 'Ready')?.status === 'True' ? p : undefined;
  };
  const volumeDir = (pod: Pod, plugin: string, name: string) =>
    join(root, 'pods', pod.metadata.uid ?? '', 'volumes', `kubernetes.io~${plugin}`, name);
  /** The CRI mounts the runtime was given for a container of the pod. */
  async function mountsOf(pod: Pod, container: string): Promise<Mount[]> {
    const cs = await t.runtime.listContainers({
      labelSelector: {
        [KUBERNETES_POD_UID_LABEL]: pod.metadata.uid ?? '',
        [KUBERNETES_CONTAINER_NAME_LABEL]: container,
      },
    });
    assert.ok(cs[0], `container ${container}`);
    return (await t.runtime.containerStatus(cs[0].id)).mounts;
  }
  const events = async (name: string) =>
    (await t.clients.events.list('default', { fieldSelector: `involvedObject.name=${name}` })).items;

  it('sets up configMap, secret, downwardAPI and projected volumes with items, keys and modes', async () => {
    await t.clients.configMaps.create('default', {
      metadata: { name: 'app-config' },
      data: { 'app.properties': 'color=blue\n', 'log.level': 'debug' },
      binaryData: { 'blob.bin': Buffer.from([0, 1, 2]).toString('base64') },
    });
    await t.clients.secrets.create('default', {
      metadata: { name: 'app-secret' },
      data: {
        password: Buffer.from('hunter2').toString('base64'),
        token: Buffer.from('t0k').toString('base64'),
      },
    });
    // The projected token is the pod's ServiceAccount's (the ServiceAccount controller makes `default` in a cluster).
    await t.clients.serviceAccounts.create('default', { metadata: { name: 'default' } });
    const pod = await t.pod(
      'files',
      {
        volumes: [
          { name: 'config', configMap: { name: 'app-config' } },
          {
            name: 'config-items',
            configMap: {
              name: 'app-config',
              items: [{ key: 'log.level', path: 'nested/level', mode: 0o600 }],
            },
          },
          { name: 'creds', secret: { secretName: 'app-secret', defaultMode: 0o400 } },
          {
            name: 'podinfo',
            downwardAPI: {
              items: [
                { path: 'labels', fieldRef: { fieldPath: 'metadata.labels' } },
                { path: 'name', fieldRef: { fieldPath: 'metadata.name' } },
                { path: 'tier', fieldRef: { fieldPath: "metadata.labels['tier']" } },
                {
                  path: 'mem_limit',
                  resourceFieldRef: { containerName: 'app', resource: 'limits.memory', divisor: '1Mi' },
                },
              ],
            },
          },
          {
            name: 'all-in-one',
            projected: {
              sources: [
                { configMap: { name: 'app-config', items: [{ key: 'log.level', path: 'level' }] } },
                { secret: { name: 'app-secret', items: [{ key: 'token', path: 'secret/token' }] } },
                { downwardAPI: { items: [{ path: 'ns', fieldRef: { fieldPath: 'metadata.namespace' } }] } },
                { serviceAccountToken: { path: 'sa-token', expirationSeconds: 3600 } },
              ],
            },
          },
        ],
        containers: [
          {
            name: 'app',
            image: 'busybox',
            resources: { limits: { memory: '64Mi' } },
            volumeMounts: [
              { name: 'config', mountPath: '/etc/config' },
              { name: 'config-items', mountPath: '/etc/items' },
              { name: 'creds', mountPath: '/etc/creds' },
              { name: 'podinfo', mountPath: '/etc/podinfo' },
              { name: 'all-in-one', mountPath: '/projected' },
            ],
          },
        ],
      },
      { labels: { app: 'files', tier: 'backend' } },
    );
    await t.until('Ready', ready('files'));

    const config = volumeDir(pod, 'configmap', 'config');
    assert.equal(await readFile(join(config, 'app.properties'), 'utf8'), 'color=blue\n');
    assert.equal(await readFile(join(config, 'log.level'), 'utf8'), 'debug');
    assert.deepEqual([...(await readFile(join(config, 'blob.bin')))], [0, 1, 2]);
    assert.equal((await stat(join(config, 'log.level'))).mode & 0o777, 0o644, 'defaultMode 0644');
    assert.equal((await lstat(join(config, 'log.level'))).isSymbolicLink(), true);

    const items = volumeDir(pod, 'configmap', 'config-items');
    assert.deepEqual(
      (await readdir(items)).filter((n) => !n.startsWith('..')),
      ['nested'],
    );
    assert.equal(await readFile(join(items, 'nested/level'), 'utf8'), 'debug');
    assert.equal((await stat(join(items, 'nested/level'))).mode & 0o777, 0o600);

    const creds = volumeDir(pod, 'secret', 'creds');
    assert.equal(await readFile(join(creds, 'password'), 'utf8'), 'hunter2');
    assert.equal((await stat(join(creds, 'password'))).mode & 0o777, 0o400);
    assert.ok(await isMountPoint(creds), 'secret volumes live in memory (tmpfs)');

    const info = volumeDir(pod, 'downward-api', 'podinfo');
    assert.equal(await readFile(join(info, 'labels'), 'utf8'), 'app="files"\ntier="backend"');
    assert.equal(await readFile(join(info, 'name'), 'utf8'), 'files');
    assert.equal(await readFile(join(info, 'tier'), 'utf8'), 'backend');
    assert.equal(await readFile(join(info, 'mem_limit'), 'utf8'), '64');

    const projected = volumeDir(pod, 'projected', 'all-in-one');
    assert.equal(await readFile(join(projected, 'level'), 'utf8'), 'debug');
    assert.equal(await readFile(join(projected, 'secret/token'), 'utf8'), 't0k');
    assert.equal(await readFile(join(projected, 'ns'), 'utf8'), 'default');
    // The token is the TokenRequest API's, bound to the pod.
    const token = await readFile(join(projected, 'sa-token'), 'utf8');
    const claims = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8'));
    assert.equal(claims.sub, 'system:serviceaccount:default:default');
    assert.equal(claims['kubernetes.io'].pod.uid, pod.metadata.uid);
    assert.equal(claims.exp - claims.iat, 3600);

    // API-backed volumes are mounted read-only, each at its mountPath.
    const mounts = await mountsOf(pod, 'app');
    assert.deepEqual(
      mounts.map((m) => [m.containerPath, m.hostPath, m.readonly]),
      [
        ['/etc/config', config, true],
        ['/etc/items', items, true],
        ['/etc/creds', creds, true],
        ['/etc/podinfo', info, true],
        ['/projected', projected, true],
      ],
    );

    // An updated configMap and secret reach the files at the next sync, swapped whole.
    const before = await readlink(join(config, '..data'));
    await t.clients.configMaps.patch('default', 'app-config', 'merge', { data: { 'log.level': 'info' } });
    await t.clients.secrets.patch('default', 'app-secret', 'merge', {
      data: { password: Buffer.from('correct horse').toString('base64') },
    });
    await t.until(
      'the new configMap value',
      async () => (await readFile(join(config, 'log.level'), 'utf8')) === 'info',
    );
    assert.notEqual(await readlink(join(config, '..data')), before);
    await t.until(
      'the item updated',
      async () => (await readFile(join(items, 'nested/level'), 'utf8')) === 'info',
    );
    await t.until(
      'the new secret value',
      async () => (await readFile(join(creds, 'password'), 'utf8')) === 'correct horse',
    );
    await t.until(
      'the projected volume updated',
      async () => (await readFile(join(projected, 'level'), 'utf8')) === 'info',
    );

    // The pod goes: tmpfs unmounted, its directory removed.
    await t.clients.pods.delete('default', 'files', { gracePeriodSeconds: 0 });
    await t.until(
      'the pod directory gone',
      async () => !(await stat(join(root, 'pods', pod.metadata.uid ?? '')).catch(() => undefined)),
    );
    assert.equal(
      (await mountPoints()).some((m) => m.startsWith(join(root, 'pods', pod.metadata.uid ?? ''))),
      false,
    );
  });

  it('shares an emptyDir between two containers; medium Memory is a tmpfs; subPath and readOnly mounts', async () => {
    const pod = await t.pod('shared', {
      volumes: [
        { name: 'scratch', emptyDir: {} },
        { name: 'fast', emptyDir: { medium: 'Memory', sizeLimit: '16Mi' } },
      ],
      containers: [
        {
          name: 'writer',
          image: 'busybox',
          volumeMounts: [
            { name: 'scratch', mountPath: '/data' },
            { name: 'fast', mountPath: '/cache' },
          ],
        },
        {
          name: 'reader',
          image: 'busybox',
          env: [{ name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }],
          volumeMounts: [
            { name: 'scratch', mountPath: '/data', readOnly: true },
            { name: 'scratch', mountPath: '/logs', subPath: 'logs/reader' },
            { name: 'scratch', mountPath: '/mine', subPathExpr: 'pods/$(POD_NAME)' },
          ],
        },
      ],
    });
    await t.until('Ready', ready('shared'));
    const scratch = volumeDir(pod, 'empty-dir', 'scratch');
    const fast = volumeDir(pod, 'empty-dir', 'fast');
    assert.equal((await stat(scratch)).mode & 0o777, 0o777);
    assert.equal(await isMountPoint(scratch), false);
    assert.equal(await isMountPoint(fast), true);
    const tmpfs = (await readFile('/proc/self/mountinfo', 'utf8'))
      .split('\n')
      .find((l) => l.split(' ')[4] === fast);
    assert.match(tmpfs ?? '', / - tmpfs tmpfs .*size=16384k/);

    const writer = await mountsOf(pod, 'writer');
    const reader = await mountsOf(pod, 'reader');
    assert.deepEqual(
      writer.map((m) => [m.containerPath, m.hostPath, m.readonly, m.propagation]),
      [
        ['/data', scratch, false, 'PROPAGATION_PRIVATE'],
        ['/cache', fast, false, 'PROPAGATION_PRIVATE'],
      ],
    );
    assert.deepEqual(
      reader.map((m) => [m.containerPath, m.hostPath, m.readonly]),
      [
        ['/data', scratch, true],
        ['/logs', join(scratch, 'logs/reader'), false],
        ['/mine', join(scratch, 'pods/shared'), false],
      ],
    );
    // A missing subPath is made as a directory in the volume.
    assert.ok((await stat(join(scratch, 'logs/reader'))).isDirectory());

    await t.clients.pods.delete('default', 'shared', { gracePeriodSeconds: 0 });
    await t.until(
      'the pod directory gone',
      async () => !(await stat(join(root, 'pods', pod.metadata.uid ?? '')).catch(() => undefined)),
    );
    assert.equal(await isMountPoint(fast).catch(() => false), false, 'tmpfs unmounted');
  });

  it('fsGroup: emptyDir and configMap volumes take the pod group (setgid directories); hostPath is left as it is', async () => {
    const FS_GROUP = 3456;
    await t.clients.configMaps.create('default', { metadata: { name: 'grouped' }, data: { k: 'v' } });
    const host = join(root, 'host-fsgroup');
    await mkdir(host, { recursive: true });
    const pod = await t.pod('fsgroup', {
      securityContext: { fsGroup: FS_GROUP },
      volumes: [
        { name: 'scratch', emptyDir: {} },
        { name: 'config', configMap: { name: 'grouped' } },
        { name: 'node', hostPath: { path: host, type: 'Directory' } },
      ],
      containers: [
        {
          name: 'app',
          image: 'busybox',
          volumeMounts: [
            { name: 'scratch', mountPath: '/data' },
            { name: 'config', mountPath: '/config' },
            { name: 'node', mountPath: '/node' },
          ],
        },
      ],
    });
    await t.until('Ready', ready('fsgroup'));
    const scratch = await stat(volumeDir(pod, 'empty-dir', 'scratch'));
    assert.equal(scratch.gid, FS_GROUP);
    assert.equal(scratch.mode & 0o7777, 0o2777);
    const config = volumeDir(pod, 'configmap', 'config');
    const value = await stat(join(config, 'k'));
    assert.equal(value.gid, FS_GROUP);
    assert.equal(value.mode & 0o777, 0o644, 'read only: group read, no group write');
    const node = await stat(host);
    assert.equal(node.gid, 0);
    assert.equal(node.mode & 0o2000, 0);
    await t.clients.pods.delete('default', 'fsgroup', { gracePeriodSeconds: 0 });
  });

  it('hostPath: type checks as upstream; a failed check keeps the pod from starting until it passes', async () => {
    const host = join(root, 'host');
    await mkdir(host, { recursive: true });
    await writeFile(join(host, 'a-file'), 'x');
    const pod = await t.pod('host-paths', {
      volumes: [
        { name: 'made', hostPath: { path: join(host, 'made'), type: 'DirectoryOrCreate' } },
        { name: 'touched', hostPath: { path: join(host, 'touched'), type: 'FileOrCreate' } },
        { name: 'file', hostPath: { path: join(host, 'a-file'), type: 'File' } },
        { name: 'later', hostPath: { path: join(host, 'later'), type: 'Directory' } },
      ],
      containers: [
        {
          name: 'app',
          image: 'busybox',
          volumeMounts: [
            { name: 'made', mountPath: '/made' },
            { name: 'file', mountPath: '/etc/a-file', readOnly: true },
            { name: 'later', mountPath: '/later', mountPropagation: 'HostToContainer' },
          ],
        },
      ],
    });
    const ev = await t.until('FailedMount', async () => {
      const list = await events('host-paths');
      return list.find((e) => e.reason === 'FailedMount');
    });
    assert.equal(ev.type, 'Warning');
    assert.equal(
      ev.message,
      `MountVolume.SetUp failed for volume "later" : hostPath type check failed: ${join(host, 'later')} is not a directory`,
    );
    const waiting = await t.getPod('host-paths');
    assert.equal(waiting?.status?.containerStatuses?.[0]?.state?.waiting?.reason, 'ContainerCreating');
    assert.equal(
      (
        await t.runtime.listContainers({
          labelSelector: { [KUBERNETES_POD_UID_LABEL]: pod.metadata.uid ?? '' },
        })
      ).length,
      0,
    );
    assert.ok((await stat(join(host, 'made'))).isDirectory(), 'DirectoryOrCreate made it');
    assert.equal((await stat(join(host, 'made'))).mode & 0o777, 0o755);
    assert.ok((await stat(join(host, 'touched'))).isFile(), 'FileOrCreate made it');

    await mkdir(join(host, 'later'));
    // The pod worker retries with its backoff, on the fake clock.
    for (let i = 0; !(await ready('host-paths')()) && i < 120; i++) {
      t.clock.advance(1000);
      await delay(20);
    }
    await t.until('Ready', ready('host-paths'));
    assert.deepEqual(
      (await mountsOf(pod, 'app')).map((m) => [m.containerPath, m.hostPath, m.readonly, m.propagation]),
      [
        ['/made', join(host, 'made'), false, 'PROPAGATION_PRIVATE'],
        ['/etc/a-file', join(host, 'a-file'), true, 'PROPAGATION_PRIVATE'],
        ['/later', join(host, 'later'), false, 'PROPAGATION_HOST_TO_CONTAINER'],
      ],
    );
  });

  it('a missing configMap fails the mount unless optional; a missing key too', async () => {
    await t.pod('no-config', {
      volumes: [
        { name: 'cfg', configMap: { name: 'absent' } },
        { name: 'maybe', configMap: { name: 'absent-too', optional: true } },
      ],
      containers: [{ name: 'app', image: 'busybox', volumeMounts: [{ name: 'cfg', mountPath: '/cfg' }] }],
    });
    const ev = await t.until('FailedMount', async () =>
      (await events('no-config')).find((e) => e.reason === 'FailedMount'),
    );
    assert.equal(ev.message, 'MountVolume.SetUp failed for volume "cfg" : configmap "absent" not found');
    assert.equal(
      (await events('no-config')).filter((e) => e.reason === 'FailedMount' && e.message?.includes('maybe'))
        .length,
      0,
    );

    await t.clients.configMaps.create('default', { metadata: { name: 'partial' }, data: { here: '1' } });
    await t.pod('no-key', {
      volumes: [{ name: 'cfg', configMap: { name: 'partial', items: [{ key: 'missing', path: 'm' }] } }],
      containers: [{ name: 'app', image: 'busybox' }],
    });
    const keyEv = await t.until('FailedMount', async () =>
      (await events('no-key')).find((e) => e.reason === 'FailedMount'),
    );
    assert.equal(
      keyEv.message,
      'MountVolume.SetUp failed for volume "cfg" : configmap references non-existent config key: missing',
    );

    // Once the configMap exists, the first pod starts.
    await t.clients.configMaps.create('default', { metadata: { name: 'absent' }, data: { k: 'v' } });
    for (let i = 0; !(await ready('no-config')()) && i < 120; i++) {
      t.clock.advance(1000);
      await delay(20);
    }
    await t.until('Ready', ready('no-config'));
  });

  it('persistentVolumeClaim: waits in ContainerCreating while the claim is unbound; then mounts its volume (subPath, readOnly)', async () => {
    const dir = join(root, 'storage', 'pvc-data');
    const claim = await t.admin.persistentVolumeClaims.create('default', {
      metadata: { name: 'claim-data' },
      spec: {
        accessModes: ['ReadWriteOnce'],
        resources: { requests: { storage: '1Gi' } },
        storageClassName: '',
      },
    });
    const pod = await t.pod('pvc-user', {
      volumes: [
        { name: 'data', persistentVolumeClaim: { claimName: 'claim-data' } },
        { name: 'ro', persistentVolumeClaim: { claimName: 'claim-data', readOnly: true } },
      ],
      containers: [
        {
          name: 'app',
          image: 'busybox',
          volumeMounts: [
            { name: 'data', mountPath: '/data' },
            { name: 'data', mountPath: '/logs', subPath: 'logs' },
            { name: 'ro', mountPath: '/ro' },
          ],
        },
      ],
    });
    const ev = await t.until('FailedMount', async () =>
      (await events('pvc-user')).find((e) => e.reason === 'FailedMount' && e.message?.includes('"data"')),
    );
    assert.equal(ev.type, 'Warning');
    assert.equal(
      ev.message,
      'MountVolume.SetUp failed for volume "data" : error processing PVC default/claim-data: PVC is not bound',
    );
    const waiting = await t.getPod('pvc-user');
    assert.equal(waiting?.status?.containerStatuses?.[0]?.state?.waiting?.reason, 'ContainerCreating');
    assert.equal(
      (
        await t.runtime.listContainers({
          labelSelector: { [KUBERNETES_POD_UID_LABEL]: pod.metadata.uid ?? '' },
        })
      ).length,
      0,
      'no container before the claim is bound',
    );

    // Bound as the binder would: the volume's claimRef first, then the claim.
    await t.admin.persistentVolumes.create(undefined, {
      metadata: { name: 'pv-data' },
      spec: {
        capacity: { storage: '1Gi' },
        accessModes: ['ReadWriteOnce'],
        storageClassName: '',
        hostPath: { path: dir, type: 'DirectoryOrCreate' },
        claimRef: { namespace: 'default', name: 'claim-data', uid: claim.metadata.uid ?? '' },
      },
    });
    const named = await t.admin.persistentVolumeClaims.update({
      ...claim,
      spec: { ...claim.spec, volumeName: 'pv-data' },
    });
    await t.admin.persistentVolumeClaims.updateStatus({ ...named, status: { phase: 'Bound' } });
    for (let i = 0; !(await ready('pvc-user')()) && i < 120; i++) {
      t.clock.advance(1000);
      await delay(20);
    }
    await t.until('Ready', ready('pvc-user'));
    assert.ok((await stat(dir)).isDirectory(), 'DirectoryOrCreate made the volume directory');
    assert.ok((await stat(join(dir, 'logs'))).isDirectory(), 'the subPath was made');
    assert.deepEqual(
      (await mountsOf(pod, 'app')).map((m) => [m.containerPath, m.hostPath, m.readonly]),
      [
        ['/data', dir, false],
        ['/logs', join(dir, 'logs'), false],
        ['/ro', dir, true],
      ],
    );

    // The pod goes; the volume's data stays on the node.
    await writeFile(join(dir, 'kept'), 'x');
    await t.admin.pods.delete('default', 'pvc-user', { gracePeriodSeconds: 0 });
    await t.until('pod gone', async () => ((await t.getPod('pvc-user')) ? undefined : true));
    assert.equal(await readFile(join(dir, 'kept'), 'utf8'), 'x');
  });

  it('removes the volumes of pods it no longer knows (housekeeping)', async () => {
    const orphan = join(root, 'pods', '00000000-0000-0000-0000-00000000dead');
    await mkdir(join(orphan, 'volumes', 'kubernetes.io~empty-dir', 'x'), { recursive: true });
    // Pod log directories (<namespace>_<name>_<uid>) beside them are not volumes: they stay.
    const logs = join(root, 'pods', 'default_gone_00000000-0000-0000-0000-00000000dead');
    await mkdir(logs, { recursive: true });
    await t.until('the orphan removed', async () => !(await stat(orphan).catch(() => undefined)));
    assert.ok(await stat(logs));
  });
});
