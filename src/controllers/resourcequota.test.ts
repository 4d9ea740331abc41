import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { isApiError } from '../api/errors.ts';
import { jsonEqual } from '../api/meta.ts';
import type { Pod, ResourceQuota } from '../api/types/core-v1.ts';
import { resourceQuotaController } from './resourcequota.ts';
import { type ControllerTest, startControllerTest } from './testing.ts';

let t: ControllerTest;
before(async () => {
  t = await startControllerTest({ resourcequota: resourceQuotaController });
});
after(() => t.close());

const pod = (name: string, resources?: Record<string, Record<string, string>>, extra = {}): Pod => ({
  metadata: { name },
  spec: { containers: [{ name: 'c', image: 'busybox', ...(resources ? { resources } : {}) }], ...extra },
});

/** Waits until the quota's status.used equals `used`. */
const usedBecomes = async (ns: string, name: string, used: Record<string, string>) => {
  let last: unknown;
  try {
    return await t.until(
      `quota ${name} used ${JSON.stringify(used)}`,
      async () => {
        const q = await t.clients.resourceQuotas.get(ns, name);
        last = q.status?.used;
        return jsonEqual(q.status?.used, used) ? q : undefined;
      },
      15_000,
    );
  } catch (err) {
    throw new Error(`${String(err)}\nlast status.used: ${JSON.stringify(last)}`);
  }
};

const quota = (name: string, hard: Record<string, string>, spec: Partial<ResourceQuota['spec']> = {}) => ({
  metadata: { name },
  spec: { hard, ...spec },
});

describe('resource quota controller', () => {
  it('mirrors hard and counts pods and their compute resources, ignoring terminal pods', async () => {
    await t.clients.namespaces.create(undefined, { metadata: { name: 'compute' } });
    const hard = {
      pods: '10',
      'count/pods': '10',
      'requests.cpu': '4',
      'requests.memory': '4Gi',
      'limits.cpu': '8',
      'limits.memory': '8Gi',
    };
    await t.clients.resourceQuotas.create('compute', quota('q', hard));
    const empty = await usedBecomes('compute', 'q', {
      pods: '0',
      'count/pods': '0',
      'requests.cpu': '0',
      'requests.memory': '0',
      'limits.cpu': '0',
      'limits.memory': '0',
    });
    assert.deepEqual(empty.status?.hard, hard);

    await t.clients.pods.create(
      'compute',
      pod('a', { requests: { cpu: '250m', memory: '64Mi' }, limits: { cpu: '500m', memory: '128Mi' } }),
    );
    // Limits only: requests default to them.
    await t.clients.pods.create('compute', pod('b', { limits: { cpu: '1', memory: '1Gi' } }));
    // An init container larger than the app containers sets the requests.
    // (Every container states cpu and memory: a quota on them requires it.)
    const both = (cpu: string, memory: string) => ({
      requests: { cpu, memory },
      limits: { cpu, memory },
    });
    await t.clients.pods.create('compute', {
      metadata: { name: 'c' },
      spec: {
        initContainers: [{ name: 'init', image: 'busybox', resources: both('2', '32Mi') }],
        containers: [{ name: 'c', image: 'busybox', resources: both('100m', '32Mi') }],
      },
    });
    await usedBecomes('compute', 'q', {
      pods: '3',
      'count/pods': '3',
      'requests.cpu': '3250m',
      'requests.memory': '1120Mi',
      'limits.cpu': '3500m',
      'limits.memory': '1184Mi',
    });

    // A finished pod still counts as an object, not as a pod or compute.
    await t.clients.pods.patch(
      'compute',
      'c',
      'merge',
      { status: { phase: 'Succeeded' } },
      { subresource: 'status' },
    );
    await usedBecomes('compute', 'q', {
      pods: '2',
      'count/pods': '3',
      'requests.cpu': '1250m',
      'requests.memory': '1088Mi',
      'limits.cpu': '1500m',
      'limits.memory': '1152Mi',
    });
    await t.clients.pods.delete('compute', 'a', { gracePeriodSeconds: 0 });
    await usedBecomes('compute', 'q', {
      pods: '1',
      'count/pods': '2',
      'requests.cpu': '1',
      'requests.memory': '1Gi',
      'limits.cpu': '1',
      'limits.memory': '1Gi',
    });

    // Changing spec.hard is mirrored into status.hard, and used follows its names.
    const q = await t.clients.resourceQuotas.get('compute', 'q');
    await t.clients.resourceQuotas.update({ ...q, spec: { hard: { pods: '5', cpu: '2' } } });
    const changed = await usedBecomes('compute', 'q', { pods: '1', cpu: '1' });
    assert.deepEqual(changed.status?.hard, { pods: '5', cpu: '2' });
  });

  it('counts services, node ports, load balancers and other objects', async () => {
    await t.clients.namespaces.create(undefined, { metadata: { name: 'objects' } });
    await t.clients.resourceQuotas.create(
      'objects',
      quota('objects', {
        services: '10',
        'services.nodeports': '10',
        'services.loadbalancers': '2',
        configmaps: '10',
        secrets: '10',
        persistentvolumeclaims: '5',
        'requests.storage': '10Gi',
        replicationcontrollers: '5',
        resourcequotas: '3',
        'count/deployments.apps': '4',
      }),
    );
    await t.clients.services.create('objects', {
      metadata: { name: 'np' },
      spec: {
        type: 'NodePort',
        selector: { app: 'x' },
        ports: [
          { name: 'a', port: 80 },
          { name: 'b', port: 81 },
        ],
      },
    });
    await t.clients.services.create('objects', {
      metadata: { name: 'lb' },
      spec: { type: 'LoadBalancer', selector: { app: 'x' }, ports: [{ port: 443 }] },
    });
    await t.clients.services.create('objects', {
      metadata: { name: 'plain' },
      spec: { selector: { app: 'x' }, ports: [{ port: 80 }] },
    });
    await t.clients.configMaps.create('objects', { metadata: { name: 'cm' }, data: { a: 'b' } });
    await t.clients.persistentVolumeClaims.create('objects', {
      metadata: { name: 'data' },
      spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '3Gi' } } },
    });
    await t.clients.deployments.create('objects', {
      metadata: { name: 'web' },
      spec: {
        selector: { matchLabels: { app: 'web' } },
        template: {
          metadata: { labels: { app: 'web' } },
          spec: { containers: [{ name: 'c', image: 'nginx' }] },
        },
      },
    });
    await t.clients.resourceQuotas.create('objects', quota('second', { pods: '1' }));
    await usedBecomes('objects', 'objects', {
      services: '3',
      'services.nodeports': '3',
      'services.loadbalancers': '1',
      configmaps: '1',
      secrets: '0',
      persistentvolumeclaims: '1',
      'requests.storage': '3Gi',
      replicationcontrollers: '0',
      resourcequotas: '2',
      'count/deployments.apps': '1',
    });
  });

  it('applies scopes: BestEffort, NotBestEffort, Terminating and PriorityClass', async () => {
    await t.clients.namespaces.create(undefined, { metadata: { name: 'scoped' } });
    await t.clients.resourceQuotas.create(
      'scoped',
      quota('best-effort', { pods: '5' }, { scopes: ['BestEffort'] }),
    );
    await t.clients.resourceQuotas.create(
      'scoped',
      quota('not-best-effort', { pods: '5', 'requests.cpu': '2' }, { scopes: ['NotBestEffort'] }),
    );
    await t.clients.resourceQuotas.create(
      'scoped',
      quota('terminating', { pods: '5' }, { scopes: ['Terminating'] }),
    );
    await t.clients.resourceQuotas.create(
      'scoped',
      quota(
        'high',
        { pods: '5' },
        {
          scopeSelector: {
            matchExpressions: [{ scopeName: 'PriorityClass', operator: 'In', values: ['high'] }],
          },
        },
      ),
    );
    await t.clients.pods.create('scoped', pod('free'));
    await t.clients.pods.create('scoped', pod('paid', { requests: { cpu: '300m' } }));
    await t.clients.pods.create('scoped', pod('job', undefined, { activeDeadlineSeconds: 60 }));
    await usedBecomes('scoped', 'best-effort', { pods: '2' });
    await usedBecomes('scoped', 'not-best-effort', { pods: '1', 'requests.cpu': '300m' });
    await usedBecomes('scoped', 'terminating', { pods: '1' });
    await usedBecomes('scoped', 'high', { pods: '0' });
  });

  it('with ResourceQuota admission, usage never passes hard and a deleted pod frees its share', async () => {
    await t.clients.namespaces.create(undefined, { metadata: { name: 'enforced' } });
    await t.clients.resourceQuotas.create('enforced', quota('q', { pods: '2' }));
    await usedBecomes('enforced', 'q', { pods: '0' });
    // A burst: admission charges each create before the controller recounts.
    const results = await Promise.allSettled(
      ['a', 'b', 'c', 'd'].map((n) => t.clients.pods.create('enforced', pod(n))),
    );
    const refused = results.filter((r) => r.status === 'rejected');
    assert.equal(results.length - refused.length, 2);
    for (const r of refused) {
      const err = (r as PromiseRejectedResult).reason;
      assert.ok(isApiError(err, 'Forbidden'), String(err));
      assert.match(err.message, /exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2$/);
    }
    await usedBecomes('enforced', 'q', { pods: '2' });
    const [kept] = (await t.clients.pods.list('enforced')).items;
    await t.clients.pods.delete('enforced', kept!.metadata.name!, { gracePeriodSeconds: 0 });
    await usedBecomes('enforced', 'q', { pods: '1' });
    await t.clients.pods.create('enforced', pod('e'));
    await usedBecomes('enforced', 'q', { pods: '2' });
  });
});

describe('resource quota controller and custom resources', () => {
  it('counts count/<resource>.<group> of a CRD, and admission refuses past it', async () => {
    const { widgetCRD } = await import('../apiextensions/testing.ts');
    const crds = t.clients.forResource({
      group: 'apiextensions.k8s.io',
      version: 'v1',
      plural: 'customresourcedefinitions',
      namespaced: false,
    });
    await crds.create(undefined, widgetCRD());
    await t.server.api.crds.idle();
    await t.clients.namespaces.create(undefined, { metadata: { name: 'custom' } });
    const widgets = t.clients.forResource({
      group: 'example.com',
      version: 'v1',
      plural: 'widgets',
      namespaced: true,
    });
    const widget = (name: string) => ({
      apiVersion: 'example.com/v1',
      kind: 'Widget',
      metadata: { name },
      spec: { color: 'red' },
    });
    await widgets.create('custom', widget('one'));
    await t.clients.resourceQuotas.create('custom', quota('q', { 'count/widgets.example.com': '2' }));
    await usedBecomes('custom', 'q', { 'count/widgets.example.com': '1' });
    await widgets.create('custom', widget('two'));
    await usedBecomes('custom', 'q', { 'count/widgets.example.com': '2' });
    await assert.rejects(widgets.create('custom', widget('three')), (err) => isApiError(err, 'Forbidden'));
  });
});
