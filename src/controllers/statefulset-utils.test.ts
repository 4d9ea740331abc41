import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { StatefulSet } from '../api/types/apps-v1.ts';
import type { Pod } from '../api/types/core-v1.ts';
import {
  applyRevision,
  identityMatches,
  newRevision,
  newVersionedStatefulSetPod,
  parentNameAndOrdinal,
  storageMatches,
} from './statefulset-utils.ts';

const pod = (name: string): Pod => ({ metadata: { name } });

const set = (partition?: number, image = 'v1'): StatefulSet => ({
  metadata: { name: 'web', namespace: 'ns', uid: 'u1' },
  spec: {
    replicas: 3,
    serviceName: 'web',
    selector: { matchLabels: { app: 'web' } },
    updateStrategy:
      partition === undefined
        ? { type: 'OnDelete' }
        : { type: 'RollingUpdate', rollingUpdate: { partition } },
    template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'c', image }] } },
    volumeClaimTemplates: [{ metadata: { name: 'data' }, spec: { accessModes: ['ReadWriteOnce'] } }],
  },
});

describe('statefulset utils', () => {
  it('reads the parent and ordinal from a pod name as upstream does', () => {
    assert.deepEqual(parentNameAndOrdinal(pod('web-0')), { parent: 'web', ordinal: 0 });
    assert.deepEqual(parentNameAndOrdinal(pod('my-web-12')), { parent: 'my-web', ordinal: 12 });
    assert.deepEqual(parentNameAndOrdinal(pod('web')), { parent: '', ordinal: -1 });
    assert.deepEqual(parentNameAndOrdinal(pod('web-x')), { parent: '', ordinal: -1 });
    // Past int32 the ordinal does not parse (strconv.ParseInt(s, 10, 32)).
    assert.equal(parentNameAndOrdinal(pod('web-2147483648')).ordinal, -1);
  });

  it('builds members from the current revision below the partition and the update revision above', () => {
    const current = set(2);
    const update = set(2, 'v2');
    const below = newVersionedStatefulSetPod(current, update, 'web-a', 'web-b', 1);
    const above = newVersionedStatefulSetPod(current, update, 'web-a', 'web-b', 2);
    assert.equal(below.metadata.labels?.['controller-revision-hash'], 'web-a');
    assert.equal(below.spec?.containers?.[0]?.image, 'v1');
    assert.equal(above.metadata.labels?.['controller-revision-hash'], 'web-b');
    assert.equal(above.spec?.containers?.[0]?.image, 'v2');
    // OnDelete: whatever the ordinal, from the update revision.
    const onDelete = newVersionedStatefulSetPod(set(), set(), 'web-a', 'web-b', 0);
    assert.equal(onDelete.metadata.labels?.['controller-revision-hash'], 'web-b');

    assert.ok(identityMatches(current, below));
    assert.ok(storageMatches(current, below));
    assert.deepEqual(below.spec?.volumes, [
      { name: 'data', persistentVolumeClaim: { claimName: 'data-web-1' } },
    ]);
    assert.equal(below.metadata.generateName, 'web-');
  });

  it('records the template as a replace patch and applies it back', () => {
    const old = set(0);
    const rev = newRevision(old, 1, 0);
    assert.deepEqual(
      (rev.data as { spec: { template: { $patch: string } } }).spec.template.$patch,
      'replace',
    );
    const now = set(0, 'v2');
    const restored = applyRevision(now, rev);
    assert.deepEqual(restored.spec?.template, old.spec?.template);
    assert.equal(now.spec?.template?.spec?.containers?.[0]?.image, 'v2', 'the live set is not touched');
  });
});
