import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { isApiError } from '../api/errors.ts';
import type { KubeObject, OwnerReference } from '../api/meta.ts';
import type { ConfigMap } from '../api/types/core-v1.ts';
import { garbageCollectorController } from './garbagecollector.ts';
import { type ControllerTest, startControllerTest } from './testing.ts';

let t: ControllerTest;
before(async () => {
  t = await startControllerTest({ garbagecollector: garbageCollectorController });
});
after(() => t.close());

const ref = (owner: KubeObject, kind: string, extra: Partial<OwnerReference> = {}): OwnerReference => ({
  apiVersion: owner.apiVersion ?? 'v1',
  kind,
  name: owner.metadata.name ?? '',
  uid: owner.metadata.uid ?? '',
  ...extra,
});

const configMap = (
  name: string,
  ownerReferences: OwnerReference[] = [],
  extra: Partial<ConfigMap['metadata']> = {},
  namespace = 'default',
) =>
  t.clients.configMaps.create(namespace, {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name, ownerReferences, ...extra },
  });

const getCM = (name: string, namespace = 'default') =>
  t.clients.configMaps.get(namespace, name).catch((err) => {
    if (isApiError(err, 'NotFound')) return undefined;
    throw err;
  });

const gone = (name: string, namespace = 'default') =>
  t.until(
    `configmap ${namespace}/${name} to be deleted`,
    async () => !(await getCM(name, namespace)),
    20_000,
  );

/**
 * Proves the collector has had its chance: a fresh dependent of an absent
 * owner is created after `what` and collected, so anything still alive was
 * judged and kept (not merely not reached yet).
 */
let sentinels = 0;
async function afterCollectorPass(namespace = 'default') {
  const name = `sentinel-${sentinels++}`;
  await configMap(
    name,
    [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'absent', uid: `absent-${name}` }],
    {},
    namespace,
  );
  await gone(name, namespace);
}

describe('garbage collector', () => {
  it('deletes the dependents of a deleted owner (background)', async () => {
    const owner = await configMap('bg-owner');
    await configMap('bg-dep-1', [ref(owner, 'ConfigMap')]);
    const pod = await t.clients.pods.create('default', {
      metadata: { name: 'bg-dep-pod', ownerReferences: [ref(owner, 'ConfigMap')] },
      spec: { containers: [{ name: 'c', image: 'nginx' }] },
    });
    assert.equal(pod.metadata.ownerReferences?.[0]?.uid, owner.metadata.uid);
    await afterCollectorPass();
    assert.ok(await getCM('bg-dep-1'), 'a dependent of a live owner stays');
    await t.clients.configMaps.delete('default', 'bg-owner');
    await gone('bg-dep-1');
    await t.until('dependent pod deleted', () =>
      t.clients.pods.get('default', 'bg-dep-pod').then(
        () => false,
        (err) => isApiError(err, 'NotFound'),
      ),
    );
  });

  it('foreground: the owner waits with its finalizer until blocking dependents are gone', async () => {
    const owner = await configMap('fg-owner');
    // A finalizer of its own keeps the dependent around (deleting) so the
    // owner can be seen waiting for it.
    await configMap('fg-dep', [ref(owner, 'ConfigMap', { blockOwnerDeletion: true })], {
      finalizers: ['example.com/hold'],
    });
    await configMap('fg-dep-nonblocking', [ref(owner, 'ConfigMap')]);
    await t.clients.configMaps.delete('default', 'fg-owner', { propagationPolicy: 'Foreground' });
    const dep = await t.until('the blocking dependent to be deleting', async () => {
      const d = await getCM('fg-dep');
      return d?.metadata.deletionTimestamp ? d : undefined;
    });
    assert.ok(dep.metadata.finalizers?.includes('example.com/hold'));
    await gone('fg-dep-nonblocking');
    await afterCollectorPass();
    const waiting = await getCM('fg-owner');
    assert.ok(waiting, 'the owner stays while a blocking dependent exists');
    assert.ok(waiting.metadata.deletionTimestamp);
    assert.deepEqual(waiting.metadata.finalizers, ['foregroundDeletion']);
    await t.clients.configMaps.patch('default', 'fg-dep', 'merge', { metadata: { finalizers: null } });
    await gone('fg-dep');
    await gone('fg-owner');
  });

  it('foreground deletion of an owner without dependents completes', async () => {
    await configMap('fg-lonely');
    await t.clients.configMaps.delete('default', 'fg-lonely', { propagationPolicy: 'Foreground' });
    await gone('fg-lonely');
  });

  it('orphan: dependents lose the ownerReference and stay; the owner goes', async () => {
    const owner = await configMap('orphan-owner');
    const other = await configMap('orphan-other-owner');
    await configMap('orphan-dep', [ref(owner, 'ConfigMap'), ref(other, 'ConfigMap')]);
    await configMap('orphan-dep-2', [
      ref(owner, 'ConfigMap', { controller: true, blockOwnerDeletion: true }),
    ]);
    await t.clients.configMaps.delete('default', 'orphan-owner', { propagationPolicy: 'Orphan' });
    await gone('orphan-owner');
    const dep = await getCM('orphan-dep');
    assert.deepEqual(
      dep?.metadata.ownerReferences?.map((r) => r.uid),
      [other.metadata.uid],
      'only the orphaning owner’s reference is removed',
    );
    const dep2 = await getCM('orphan-dep-2');
    assert.ok(dep2, 'orphaned dependent stays');
    assert.equal(dep2.metadata.ownerReferences, undefined);
    await afterCollectorPass();
    assert.ok(await getCM('orphan-dep-2'), 'an orphan is not garbage');
  });

  it('an owner that does not exist, or exists with another uid, makes the dependent garbage', async () => {
    await configMap('same-name-owner');
    await configMap('dangling-by-uid', [
      { apiVersion: 'v1', kind: 'ConfigMap', name: 'same-name-owner', uid: 'not-the-real-uid' },
    ]);
    await configMap('dangling-by-name', [
      { apiVersion: 'v1', kind: 'ConfigMap', name: 'never-existed', uid: 'uid-never-existed' },
    ]);
    await gone('dangling-by-uid');
    await gone('dangling-by-name');
    assert.ok(await getCM('same-name-owner'), 'the object with the same name is left alone');
  });

  it('a dependent with several owners survives while one remains, losing the dangling references', async () => {
    const a = await configMap('multi-a');
    const b = await configMap('multi-b');
    await configMap('multi-dep', [
      ref(a, 'ConfigMap'),
      ref(b, 'ConfigMap'),
      { apiVersion: 'v1', kind: 'ConfigMap', name: 'multi-ghost', uid: 'uid-multi-ghost' },
    ]);
    const cleaned = await t.until('the dangling reference to be removed', async () => {
      const d = await getCM('multi-dep');
      return d?.metadata.ownerReferences?.length === 2 ? d : undefined;
    });
    assert.deepEqual(
      cleaned.metadata.ownerReferences?.map((r) => r.name),
      ['multi-a', 'multi-b'],
    );
    await t.clients.configMaps.delete('default', 'multi-a');
    await t.until('the reference to the deleted owner to be removed', async () => {
      const d = await getCM('multi-dep');
      return d?.metadata.ownerReferences?.length === 1;
    });
    assert.equal((await getCM('multi-dep'))?.metadata.ownerReferences?.[0]?.name, 'multi-b');
    await t.clients.configMaps.delete('default', 'multi-b');
    await gone('multi-dep');
  });

  it('a dependency cycle does not hang a foreground deletion', async () => {
    const a = await configMap('cycle-a');
    const b = await configMap('cycle-b', [ref(a, 'ConfigMap', { blockOwnerDeletion: true })]);
    await t.clients.configMaps.patch('default', 'cycle-a', 'merge', {
      metadata: { ownerReferences: [ref(b, 'ConfigMap', { blockOwnerDeletion: true })] },
    });
    await afterCollectorPass();
    assert.ok(await getCM('cycle-a'));
    assert.ok(await getCM('cycle-b'));
    await t.clients.configMaps.delete('default', 'cycle-a', { propagationPolicy: 'Foreground' });
    await gone('cycle-a');
    await gone('cycle-b');
  });

  it('a cluster-scoped owner owns namespaced dependents', async () => {
    const node = await t.clients.nodes.create(undefined, {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: 'gc-node' },
    });
    await t.clients.namespaces.create(undefined, { metadata: { name: 'gc-other' } });
    await configMap('node-dep', [ref(node, 'Node')]);
    await configMap('node-dep', [ref(node, 'Node')], {}, 'gc-other');
    await afterCollectorPass();
    assert.ok(await getCM('node-dep'));
    assert.ok(await getCM('node-dep', 'gc-other'));
    await t.clients.nodes.delete(undefined, 'gc-node');
    await gone('node-dep');
    await gone('node-dep', 'gc-other');
  });

  it('a namespaced owner in another namespace does not count: OwnerRefInvalidNamespace, and the dependent goes', async () => {
    await t.clients.namespaces.create(undefined, { metadata: { name: 'gc-elsewhere' } });
    const owner = await configMap('xns-owner', [], {}, 'gc-elsewhere');
    await configMap('xns-dep', [ref(owner, 'ConfigMap')]);
    await gone('xns-dep');
    assert.ok(await getCM('xns-owner', 'gc-elsewhere'), 'the owner is untouched');
    const events = await t.until('an OwnerRefInvalidNamespace event', async () => {
      const list = await t.clients.events.list('default');
      const found = list.items.filter(
        (e) => e.reason === 'OwnerRefInvalidNamespace' && e.involvedObject?.name === 'xns-dep',
      );
      return found.length ? found : undefined;
    });
    assert.equal(events[0]?.type, 'Warning');
    assert.match(events[0]?.message ?? '', /does not resolve to a valid object in namespace default/);
  });

  it('a cluster-scoped dependent of a namespaced kind is not collected', async () => {
    const owner = await configMap('ns-owner-of-node');
    await t.clients.nodes.create(undefined, {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: 'gc-owned-node', ownerReferences: [ref(owner, 'ConfigMap')] },
    });
    await t.clients.configMaps.delete('default', 'ns-owner-of-node');
    await gone('ns-owner-of-node');
    await afterCollectorPass();
    assert.ok(await t.clients.nodes.get(undefined, 'gc-owned-node'));
  });

  it('skips resources it cannot list and watch, yet checks owners of those kinds with a GET', async () => {
    t.server.api.registry.add({
      group: 'example.com',
      version: 'v1',
      kind: 'Token',
      plural: 'tokens',
      singular: 'token',
      namespaced: true,
      custom: true,
      verbs: ['create', 'delete', 'get'],
    });
    const tokens = t.clients.forResource({
      group: 'example.com',
      version: 'v1',
      plural: 'tokens',
      namespaced: true,
    });
    const token = await tokens.create('default', {
      apiVersion: 'example.com/v1',
      kind: 'Token',
      metadata: { name: 'tk' },
    });
    await configMap('token-dep', [ref(token, 'Token')]);
    await configMap('token-dep-dangling', [
      { apiVersion: 'example.com/v1', kind: 'Token', name: 'tk', uid: 'another-token-uid' },
    ]);
    await t.until(
      'the dependent of an absent token to be collected',
      async () => !(await getCM('token-dep-dangling')),
      30_000,
    );
    await afterCollectorPass();
    assert.ok(await getCM('token-dep'), 'the live token (found by GET) keeps its dependent');
  });

  it('finds kinds added at run time through discovery', async () => {
    t.server.api.registry.add({
      group: 'example.com',
      version: 'v1',
      kind: 'Widget',
      plural: 'widgets',
      singular: 'widget',
      namespaced: true,
      custom: true,
    });
    const widgets = t.clients.forResource({
      group: 'example.com',
      version: 'v1',
      plural: 'widgets',
      namespaced: true,
    });
    const widget = await widgets.create('default', {
      apiVersion: 'example.com/v1',
      kind: 'Widget',
      metadata: { name: 'w' },
    });
    await configMap('widget-dep', [ref(widget, 'Widget')]);
    // Owned by a live widget: kept once the collector knows widgets.
    await t.until(
      'the collector to know widgets and keep the dependent',
      async () => {
        await afterCollectorPass();
        return getCM('widget-dep');
      },
      30_000,
    );
    await widgets.delete('default', 'w');
    await t.until(
      'dependent of the deleted widget to be deleted',
      async () => !(await getCM('widget-dep')),
      40_000,
    );
  });
});
