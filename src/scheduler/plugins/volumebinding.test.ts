// VolumeBinding against hand-filled caches: no API server. The claims,
// volumes and classes live in informer indexers; PreBind's writes are
// recorded by a fake client.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { KubeObject } from '../../api/meta.ts';
import type { PersistentVolume, PersistentVolumeClaim, Pod } from '../../api/types/core-v1.ts';
import type { StorageClass } from '../../api/types/storage-v1.ts';
import type { Clientset } from '../../client/clientset.ts';
import { Indexer } from '../../client/informer.ts';
import type { InformerFactory } from '../../client/informer-factory.ts';
import { SchedulerCache } from '../cache.ts';
import { Code, CycleState, type Snapshot } from '../framework.ts';
import { makeNode, makePod } from '../testing.ts';
import {
  ERR_UNBOUND_IMMEDIATE,
  ERR_VOLUME_BIND_CONFLICT,
  ERR_VOLUME_NODE_CONFLICT,
  volumeBinding,
} from './volumebinding.ts';

interface Patch {
  namespace: string | undefined;
  name: string;
  body: unknown;
}

function setup(objects: {
  claims?: PersistentVolumeClaim[];
  volumes?: PersistentVolume[];
  classes?: StorageClass[];
}) {
  const indexers: Record<string, Indexer<KubeObject>> = {
    persistentVolumeClaims: new Indexer(),
    persistentVolumes: new Indexer(),
    storageClasses: new Indexer(),
  };
  for (const c of objects.claims ?? []) indexers.persistentVolumeClaims?.set(c);
  for (const v of objects.volumes ?? []) indexers.persistentVolumes?.set(v);
  for (const s of objects.classes ?? []) indexers.storageClasses?.set(s);
  const informers = {
    informer: (r: string) => ({ indexer: indexers[r] }),
  } as unknown as InformerFactory;
  const patches: Patch[] = [];
  const clients = {
    persistentVolumeClaims: {
      patch: async (namespace: string | undefined, name: string, _type: string, body: unknown) => {
        patches.push({ namespace, name, body });
        return {};
      },
    },
  } as unknown as Clientset;
  const cache = new SchedulerCache();
  for (const n of ['node-a', 'node-b']) cache.addOrUpdateNode(makeNode(n));
  return { plugin: volumeBinding(clients, informers), patches, node: (n: string) => cache.get(n)! };
}

/** VolumeBinding reads no nodes in PreFilter. */
const snap: Snapshot = new SchedulerCache();
const claim = (name: string, cls: string, volumeName?: string, annotations?: Record<string, string>) =>
  ({
    metadata: { name, namespace: 'default', uid: `uid-${name}`, ...(annotations ? { annotations } : {}) },
    spec: {
      accessModes: ['ReadWriteOnce'],
      resources: { requests: { storage: '1Gi' } },
      storageClassName: cls,
      ...(volumeName ? { volumeName } : {}),
    },
    status: { phase: volumeName ? 'Bound' : 'Pending' },
  }) satisfies PersistentVolumeClaim;

const volume = (name: string, cls: string, onNode: string, claimRef?: PersistentVolumeClaim) =>
  ({
    metadata: { name },
    spec: {
      capacity: { storage: '1Gi' },
      accessModes: ['ReadWriteOnce'],
      storageClassName: cls,
      local: { path: `/mnt/${name}` },
      nodeAffinity: {
        required: {
          nodeSelectorTerms: [
            { matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: [onNode] }] },
          ],
        },
      },
      ...(claimRef
        ? { claimRef: { namespace: 'default', name: claimRef.metadata.name, uid: claimRef.metadata.uid } }
        : {}),
    },
    status: { phase: claimRef ? 'Bound' : 'Available' },
  }) satisfies PersistentVolume;

const sc = (name: string, provisioner: string, mode: 'Immediate' | 'WaitForFirstConsumer') =>
  ({ metadata: { name }, provisioner, volumeBindingMode: mode }) satisfies StorageClass;

const usingClaims = (name: string, ...claims: string[]): Pod => {
  const pod = makePod(name, {
    volumes: claims.map((c) => ({ name: c, persistentVolumeClaim: { claimName: c } })),
  });
  pod.metadata.namespace = 'default';
  return pod;
};

describe('VolumeBinding', () => {
  it('skips pods without claims', () => {
    const { plugin } = setup({});
    assert.equal(plugin.preFilter(new CycleState(), makePod('p'), snap).status.code, Code.Skip);
  });

  it("filters nodes by a bound claim's volume node affinity", () => {
    const data = claim('data', 'local', 'pv-a');
    const { plugin, node } = setup({ claims: [data], volumes: [volume('pv-a', 'local', 'node-a', data)] });
    const pod = usingClaims('p', 'data');
    const state = new CycleState();
    assert.equal(plugin.preFilter(state, pod, snap).status.code, Code.Success);
    assert.equal(plugin.filter(state, pod, node('node-a')).code, Code.Success);
    const other = plugin.filter(state, pod, node('node-b'));
    assert.equal(other.code, Code.UnschedulableAndUnresolvable);
    assert.deepEqual(other.reasons, [ERR_VOLUME_NODE_CONFLICT]);
  });

  it('keeps a pod with an unbound Immediate claim, or a missing one, unschedulable', () => {
    const { plugin } = setup({
      claims: [claim('imm', 'fast'), claim('no-class', '')],
      classes: [sc('fast', 'example.com/fast', 'Immediate')],
    });
    for (const name of ['imm', 'no-class']) {
      const s = plugin.preFilter(new CycleState(), usingClaims('p', name), snap).status;
      assert.equal(s.code, Code.UnschedulableAndUnresolvable, name);
      assert.deepEqual(s.reasons, [ERR_UNBOUND_IMMEDIATE], name);
    }
    const missing = plugin.preFilter(new CycleState(), usingClaims('p', 'absent'), snap).status;
    assert.equal(missing.code, Code.UnschedulableAndUnresolvable);
    assert.deepEqual(missing.reasons, ['persistentvolumeclaim "absent" not found']);
  });

  it('lets a WaitForFirstConsumer claim of a provisioning class go anywhere, and writes selected-node on PreBind', async () => {
    const { plugin, node, patches } = setup({
      claims: [
        claim('wffc', 'local-path'),
        claim('chosen', 'local-path', undefined, { 'volume.kubernetes.io/selected-node': 'node-b' }),
      ],
      classes: [sc('local-path', 'rancher.io/local-path', 'WaitForFirstConsumer')],
    });
    const pod = usingClaims('p', 'wffc', 'chosen');
    const state = new CycleState();
    assert.equal(plugin.preFilter(state, pod, snap).status.code, Code.Success);
    assert.equal(plugin.filter(state, pod, node('node-a')).code, Code.Success);
    assert.equal(plugin.filter(state, pod, node('node-b')).code, Code.Success);
    assert.equal(patches.length, 0, 'nothing is written before PreBind');
    assert.equal((await plugin.preBind(state, pod, 'node-b')).code, Code.Success);
    // The claim that already names node-b is left alone.
    assert.deepEqual(patches, [
      {
        namespace: 'default',
        name: 'wffc',
        body: { metadata: { annotations: { 'volume.kubernetes.io/selected-node': 'node-b' } } },
      },
    ]);
  });

  it('treats a generic ephemeral volume as its claim <pod>-<volume>, once the pod owns it', () => {
    const pod = makePod('eph', {
      volumes: [{ name: 'scratch', ephemeral: { volumeClaimTemplate: { metadata: {}, spec: {} } } }],
    });
    pod.metadata.namespace = 'default';
    pod.metadata.uid = 'pod-uid';
    const owned = claim('eph-scratch', 'local-path');
    const byPod = {
      ...owned,
      metadata: {
        ...owned.metadata,
        ownerReferences: [{ apiVersion: 'v1', kind: 'Pod', name: 'eph', uid: 'pod-uid', controller: true }],
      },
    };
    const classes = [sc('local-path', 'rancher.io/local-path', 'WaitForFirstConsumer')];
    const waiting = setup({ classes }).plugin.preFilter(new CycleState(), pod, snap).status;
    assert.equal(waiting.code, Code.UnschedulableAndUnresolvable);
    assert.deepEqual(waiting.reasons, [
      'waiting for ephemeral volume controller to create the persistentvolumeclaim "eph-scratch"',
    ]);
    const foreign = setup({ claims: [owned], classes }).plugin.preFilter(new CycleState(), pod, snap).status;
    assert.equal(foreign.code, Code.UnschedulableAndUnresolvable);
    assert.deepEqual(foreign.reasons, [
      'PVC default/eph-scratch was not created for pod default/eph (pod is not owner)',
    ]);
    const ours = setup({ claims: [byPod], classes }).plugin.preFilter(new CycleState(), pod, snap).status;
    assert.equal(ours.code, Code.Success);
  });

  it('without a provisioner, fits only nodes where a matching volume is Available, one volume per claim', () => {
    const { plugin, node } = setup({
      claims: [claim('one', 'static'), claim('two', 'static')],
      volumes: [volume('pv-a', 'static', 'node-a'), volume('pv-b', 'static', 'node-b')],
      classes: [sc('static', 'kubernetes.io/no-provisioner', 'WaitForFirstConsumer')],
    });
    const single = usingClaims('p', 'one');
    let state = new CycleState();
    plugin.preFilter(state, single, snap);
    assert.equal(plugin.filter(state, single, node('node-a')).code, Code.Success);
    assert.equal(plugin.filter(state, single, node('node-b')).code, Code.Success);

    // Two claims need two volumes on the same node: neither node has them.
    const both = usingClaims('q', 'one', 'two');
    state = new CycleState();
    plugin.preFilter(state, both, snap);
    for (const n of ['node-a', 'node-b']) {
      const s = plugin.filter(state, both, node(n));
      assert.equal(s.code, Code.UnschedulableAndUnresolvable, n);
      assert.deepEqual(s.reasons, [ERR_VOLUME_BIND_CONFLICT], n);
    }
  });
});
