import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { isApiError } from '../api/errors.ts';
import type { Namespace } from '../api/types/core-v1.ts';
import { garbageCollectorController } from './garbagecollector.ts';
import { namespaceController } from './namespace.ts';
import { type ControllerTest, startControllerTest } from './testing.ts';

let t: ControllerTest;
before(async () => {
  t = await startControllerTest({ namespace: namespaceController });
});
after(() => t.close());

const getNS = (name: string) =>
  t.clients.namespaces.get(undefined, name).catch((err) => {
    if (isApiError(err, 'NotFound')) return undefined;
    throw err;
  });

const nsGone = (name: string, ms = 20_000) =>
  t.until(`namespace ${name} to be deleted`, async () => !(await getNS(name)), ms);

const condition = (ns: Namespace | undefined, type: string) =>
  ns?.status?.conditions?.find((c) => c.type === type);

const widgets = () =>
  t.clients.forResource({ group: 'example.com', version: 'v1', plural: 'widgets', namespaced: true });

describe('namespace controller', () => {
  it('deletes every namespaced object in a deleted namespace, then the namespace', async () => {
    // A kind added at run time is found through discovery like the built-in ones.
    t.server.api.registry.add({
      group: 'example.com',
      version: 'v1',
      kind: 'Widget',
      plural: 'widgets',
      singular: 'widget',
      namespaced: true,
      custom: true,
    });
    await t.clients.namespaces.create(undefined, { metadata: { name: 'ns-a' } });
    await t.clients.configMaps.create('ns-a', { metadata: { name: 'cm' }, data: { a: 'b' } });
    await t.clients.secrets.create('ns-a', { metadata: { name: 's' }, stringData: { a: 'b' } });
    await t.clients.leases.create('ns-a', { metadata: { name: 'l' }, spec: {} });
    // With no node, a pod has no kubelet to wait for and goes at once.
    await t.clients.pods.create('ns-a', {
      metadata: { name: 'p' },
      spec: { containers: [{ name: 'c', image: 'nginx' }] },
    });
    await widgets().create('ns-a', { apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w' } });
    // Something in another namespace must survive.
    await t.clients.configMaps.create('default', { metadata: { name: 'keep-me' } });

    await t.clients.namespaces.delete(undefined, 'ns-a');
    await nsGone('ns-a', 10_000);
    assert.equal((await t.clients.configMaps.list('ns-a')).items.length, 0);
    assert.equal((await t.clients.secrets.list('ns-a')).items.length, 0);
    assert.equal((await t.clients.leases.list('ns-a')).items.length, 0);
    assert.equal((await t.clients.pods.list('ns-a')).items.length, 0);
    assert.equal((await widgets().list('ns-a')).items.length, 0);
    assert.ok(await t.clients.configMaps.get('default', 'keep-me'));
  });

  it('content with finalizers keeps the namespace Terminating, with conditions saying why', async () => {
    await t.clients.namespaces.create(undefined, { metadata: { name: 'ns-hold' } });
    await t.clients.configMaps.create('ns-hold', {
      metadata: { name: 'held', finalizers: ['example.com/hold'] },
    });
    await t.clients.namespaces.delete(undefined, 'ns-hold');
    const ns = await t.until('conditions on the terminating namespace', async () => {
      const n = await getNS('ns-hold');
      return condition(n, 'NamespaceFinalizersRemaining')?.status === 'True' ? n : undefined;
    });
    assert.equal(ns.status?.phase, 'Terminating');
    assert.ok(ns.metadata.deletionTimestamp);
    assert.deepEqual(ns.spec?.finalizers, ['kubernetes'], 'our finalizer stays until the content is gone');
    assert.deepEqual(
      ns.status?.conditions?.map((c) => [c.type, c.status, c.reason, c.message]),
      [
        [
          'NamespaceDeletionDiscoveryFailure',
          'False',
          'ResourcesDiscovered',
          'All resources successfully discovered',
        ],
        [
          'NamespaceDeletionGroupVersionParsingFailure',
          'False',
          'ParsedGroupVersions',
          'All legacy kube types successfully parsed',
        ],
        [
          'NamespaceDeletionContentFailure',
          'False',
          'ContentDeleted',
          'All content successfully deleted, may be waiting on finalization',
        ],
        [
          'NamespaceContentRemaining',
          'True',
          'SomeResourcesRemain',
          'Some resources are remaining: configmaps. has 1 resource instances',
        ],
        [
          'NamespaceFinalizersRemaining',
          'True',
          'SomeFinalizersRemain',
          'Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances',
        ],
      ],
    );
    for (const c of ns.status?.conditions ?? []) assert.ok(c.lastTransitionTime);
    const held = await t.clients.configMaps.get('ns-hold', 'held');
    assert.ok(held.metadata.deletionTimestamp, 'the content was deleted, and waits for its finalizer');

    // Nothing new may be created in a terminating namespace.
    await assert.rejects(
      t.clients.configMaps.create('ns-hold', { metadata: { name: 'late' } }),
      (err: unknown) =>
        isApiError(err, 'Forbidden') &&
        err.code === 403 &&
        err.message === 'unable to create new content in namespace ns-hold because it is being terminated',
    );

    await t.clients.configMaps.patch('ns-hold', 'held', 'merge', { metadata: { finalizers: null } });
    await nsGone('ns-hold', 30_000);
  });

  it('waits for pods in their grace period (the kubelet’s part played here)', async () => {
    await t.clients.namespaces.create(undefined, { metadata: { name: 'ns-grace' } });
    await t.clients.pods.create('ns-grace', {
      metadata: { name: 'running' },
      spec: {
        nodeName: 'node-1',
        terminationGracePeriodSeconds: 4,
        containers: [{ name: 'c', image: 'nginx' }],
      },
    });
    await t.clients.namespaces.delete(undefined, 'ns-grace');
    const ns = await t.until('the namespace to report the pod remaining', async () => {
      const n = await getNS('ns-grace');
      return condition(n, 'NamespaceContentRemaining')?.status === 'True' ? n : undefined;
    });
    assert.equal(
      condition(ns, 'NamespaceContentRemaining')?.message,
      'Some resources are remaining: pods. has 1 resource instances',
    );
    const pod = await t.clients.pods.get('ns-grace', 'running');
    assert.ok(pod.metadata.deletionTimestamp, 'the pod was deleted gracefully');
    assert.equal(pod.metadata.deletionGracePeriodSeconds, 4);
    // The kubelet has stopped the containers: it removes the pod.
    await t.clients.pods.delete('ns-grace', 'running', { gracePeriodSeconds: 0 });
    await nsGone('ns-grace', 30_000);
  });

  it('a namespace without the kubernetes finalizer goes at once', async () => {
    await t.clients.namespaces.create(undefined, { metadata: { name: 'ns-bare' } });
    await t.clients.transport.request({
      method: 'PUT',
      path: '/api/v1/namespaces/ns-bare/finalize',
      body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'ns-bare' }, spec: { finalizers: [] } },
    });
    await t.clients.namespaces.delete(undefined, 'ns-bare');
    await nsGone('ns-bare');
  });
});

describe('namespace controller with the garbage collector', () => {
  let g: ControllerTest;
  before(async () => {
    g = await startControllerTest({
      namespace: namespaceController,
      garbagecollector: garbageCollectorController,
    });
  });
  after(() => g.close());

  it('a namespace deleted in the foreground goes once the collector has removed its finalizer', async () => {
    await g.clients.namespaces.create(undefined, { metadata: { name: 'ns-fg' } });
    await g.clients.configMaps.create('ns-fg', { metadata: { name: 'cm' } });
    const res = await g.clients.transport.request({
      method: 'DELETE',
      path: '/api/v1/namespaces/ns-fg',
      body: { kind: 'DeleteOptions', apiVersion: 'v1', propagationPolicy: 'Foreground' },
    });
    const marked = res.body as Namespace;
    assert.ok(marked.metadata.deletionTimestamp);
    assert.equal(marked.status?.phase, 'Terminating');
    assert.deepEqual(marked.metadata.finalizers, ['foregroundDeletion']);
    await g.until('namespace ns-fg to be deleted', () =>
      g.clients.namespaces.get(undefined, 'ns-fg').then(
        () => false,
        (err) => isApiError(err, 'NotFound'),
      ),
    );
    assert.equal((await g.clients.configMaps.list('ns-fg')).items.length, 0);
  });
});
