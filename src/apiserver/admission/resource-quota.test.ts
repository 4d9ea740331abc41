// ResourceQuota admission through the API server (no controller runs here:
// each quota's status is written as the controller would write it). Object
// counts, compute requests and limits, services, claims, scopes, dry runs,
// racing creates, and upstream's messages for each refusal.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer } from '../testing.ts';

describe('ResourceQuota admission', () => {
  let srv: TestServer;
  const base = (ns: string) => `/api/v1/namespaces/${ns}`;
  const merge = { 'content-type': 'application/merge-patch+json' };

  /** A quota whose status the controller has filled in (used defaults to zero for every name). */
  async function quota(
    ns: string,
    name: string,
    hard: Record<string, string>,
    opts: { used?: Record<string, string>; scopes?: string[] } = {},
  ) {
    await srv.request('POST', '/api/v1/namespaces', { metadata: { name: ns } });
    const c = await srv.request('POST', `${base(ns)}/resourcequotas`, {
      metadata: { name },
      spec: { hard, ...(opts.scopes ? { scopes: opts.scopes } : {}) },
    });
    assert.equal(c.status, 201, c.text);
    const used = opts.used ?? Object.fromEntries(Object.keys(hard).map((k) => [k, '0']));
    const s = await srv.request(
      'PATCH',
      `${base(ns)}/resourcequotas/${name}/status`,
      { status: { hard, used } },
      merge,
    );
    assert.equal(s.status, 200, s.text);
  }
  const used = async (ns: string, name: string) =>
    (await srv.request('GET', `${base(ns)}/resourcequotas/${name}`)).body.status.used;

  const pod = (name: string, resources?: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
    metadata: { name },
    spec: { containers: [{ name: 'c', image: 'busybox', ...(resources ? { resources } : {}) }], ...extra },
  });

  before(async () => {
    srv = await startTestServer();
  });
  after(() => srv.close());

  it('counts pods, charges each create at once, and refuses the one over hard', async () => {
    await quota('counted', 'q', { pods: '2', 'count/pods': '5' });
    for (const name of ['a', 'b']) {
      const r = await srv.request('POST', `${base('counted')}/pods`, pod(name));
      assert.equal(r.status, 201, r.text);
    }
    assert.deepEqual(await used('counted', 'q'), { 'count/pods': '2', pods: '2' });
    const r = await srv.request('POST', `${base('counted')}/pods`, pod('c'));
    assert.equal(r.status, 403);
    assert.equal(r.body.reason, 'Forbidden');
    assert.equal(
      r.body.message,
      'pods "c" is forbidden: exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2',
    );
    assert.deepEqual(r.body.details, { name: 'c', group: '', kind: 'pods' });
    assert.equal((await srv.request('GET', `${base('counted')}/pods/c`)).status, 404);
    // A dry run is checked but not charged.
    await srv.request('DELETE', `${base('counted')}/resourcequotas/q`);
    await quota('counted', 'q', { pods: '3' }, { used: { pods: '2' } });
    const dry = await srv.request('POST', `${base('counted')}/pods?dryRun=All`, pod('d'));
    assert.equal(dry.status, 201);
    assert.deepEqual(await used('counted', 'q'), { pods: '2' });
  });

  it('requires requests and limits a quota covers, and LimitRange defaults satisfy it', async () => {
    await quota('compute', 'compute', {
      'requests.cpu': '1',
      'limits.memory': '1Gi',
    });
    const bare = await srv.request('POST', `${base('compute')}/pods`, {
      metadata: { name: 'bare' },
      spec: {
        initContainers: [{ name: 'init', image: 'busybox', resources: { requests: { cpu: '100m' } } }],
        containers: [{ name: 'c', image: 'busybox' }],
      },
    });
    assert.equal(bare.status, 403);
    assert.equal(
      bare.body.message,
      'pods "bare" is forbidden: failed quota: compute: must specify limits.memory for: c,init; requests.cpu for: c',
    );
    await srv.request('POST', `${base('compute')}/limitranges`, {
      metadata: { name: 'defaults' },
      spec: {
        limits: [{ type: 'Container', default: { memory: '256Mi' }, defaultRequest: { cpu: '500m' } }],
      },
    });
    const defaulted = await srv.request('POST', `${base('compute')}/pods`, pod('defaulted'));
    assert.equal(defaulted.status, 201, defaulted.text);
    assert.deepEqual(await used('compute', 'compute'), { 'limits.memory': '256Mi', 'requests.cpu': '500m' });
    const big = await srv.request(
      'POST',
      `${base('compute')}/pods`,
      pod('big', { requests: { cpu: '600m' }, limits: { memory: '900Mi' } }),
    );
    assert.equal(big.status, 403);
    assert.equal(
      big.body.message,
      'pods "big" is forbidden: exceeded quota: compute, requested: limits.memory=900Mi,requests.cpu=600m, ' +
        'used: limits.memory=256Mi,requests.cpu=500m, limited: limits.memory=1Gi,requests.cpu=1',
    );
    // Only what is exceeded is named.
    const cpu = await srv.request(
      'POST',
      `${base('compute')}/pods`,
      pod('cpu', { requests: { cpu: '600m' }, limits: { memory: '100Mi' } }),
    );
    assert.equal(
      cpu.body.message,
      'pods "cpu" is forbidden: exceeded quota: compute, requested: requests.cpu=600m, used: requests.cpu=500m, limited: requests.cpu=1',
    );
  });

  it('trusts no quota whose usage is not known yet', async () => {
    await quota('unknown', 'q', { pods: '5', secrets: '5' }, { used: { secrets: '0' } });
    const r = await srv.request('POST', `${base('unknown')}/pods`, pod('p'));
    assert.equal(r.status, 403);
    assert.equal(r.body.message, 'pods "p" is forbidden: status unknown for quota: q, resources: pods');
    // A quota the controller has not seen yet (no status) limits nothing.
    await srv.request('POST', `${base('unknown')}/resourcequotas`, {
      metadata: { name: 'fresh' },
      spec: { hard: { configmaps: '0' } },
    });
    const cm = await srv.request('POST', `${base('unknown')}/configmaps`, { metadata: { name: 'cm' } });
    assert.equal(cm.status, 201);
  });

  it('counts objects by count/<resource> and the legacy names, on create only', async () => {
    await quota('objects', 'objects', {
      configmaps: '1',
      'count/secrets': '1',
      'count/deployments.apps': '0',
    });
    assert.equal(
      (await srv.request('POST', `${base('objects')}/configmaps`, { metadata: { name: 'a' } })).status,
      201,
    );
    const second = await srv.request('POST', `${base('objects')}/configmaps`, { metadata: { name: 'b' } });
    assert.equal(
      second.body.message,
      'configmaps "b" is forbidden: exceeded quota: objects, requested: configmaps=1, used: configmaps=1, limited: configmaps=1',
    );
    // Updating a counted object is free.
    const upd = await srv.request('PATCH', `${base('objects')}/configmaps/a`, { data: { k: 'v' } }, merge);
    assert.equal(upd.status, 200);
    assert.equal(
      (await srv.request('POST', `${base('objects')}/secrets`, { metadata: { name: 's' } })).status,
      201,
    );
    const deploy = await srv.request('POST', '/apis/apps/v1/namespaces/objects/deployments', {
      metadata: { name: 'web' },
      spec: {
        selector: { matchLabels: { app: 'web' } },
        template: {
          metadata: { labels: { app: 'web' } },
          spec: { containers: [{ name: 'c', image: 'nginx' }] },
        },
      },
    });
    assert.equal(deploy.status, 403);
    assert.equal(
      deploy.body.message,
      'deployments.apps "web" is forbidden: exceeded quota: objects, requested: count/deployments.apps=1, ' +
        'used: count/deployments.apps=0, limited: count/deployments.apps=0',
    );
    assert.deepEqual(await used('objects', 'objects'), {
      configmaps: '1',
      'count/deployments.apps': '0',
      'count/secrets': '1',
    });
  });

  it('charges services their node ports and load balancers, and an update only its growth', async () => {
    await quota('svc', 'svc', { services: '5', 'services.nodeports': '2', 'services.loadbalancers': '0' });
    const service = (name: string, type: string, ports: number[]) => ({
      metadata: { name },
      spec: { type, selector: { app: 'x' }, ports: ports.map((port) => ({ name: `p${port}`, port })) },
    });
    assert.equal(
      (await srv.request('POST', `${base('svc')}/services`, service('np', 'NodePort', [80]))).status,
      201,
    );
    const lb = await srv.request('POST', `${base('svc')}/services`, service('lb', 'LoadBalancer', [80]));
    assert.equal(lb.status, 403);
    assert.match(
      lb.body.message,
      /^services "lb" is forbidden: exceeded quota: svc, requested: services.loadbalancers=1,/,
    );
    const plain = await srv.request(
      'POST',
      `${base('svc')}/services`,
      service('plain', 'ClusterIP', [80, 81]),
    );
    assert.equal(plain.status, 201);
    const grow = await srv.request(
      'PATCH',
      `${base('svc')}/services/plain`,
      { spec: { type: 'NodePort' } },
      merge,
    );
    assert.equal(grow.status, 403);
    assert.equal(
      grow.body.message,
      'services "plain" is forbidden: exceeded quota: svc, requested: services.nodeports=2, used: services.nodeports=1, limited: services.nodeports=2',
    );
    assert.deepEqual(await used('svc', 'svc'), {
      services: '2',
      'services.loadbalancers': '0',
      'services.nodeports': '1',
    });
  });

  it('charges claims their storage, per storage class too', async () => {
    await quota('storage', 'storage', {
      persistentvolumeclaims: '5',
      'requests.storage': '10Gi',
      'fast.storageclass.storage.k8s.io/requests.storage': '1Gi',
    });
    const claim = (name: string, storage: string, storageClassName?: string) => ({
      metadata: { name },
      spec: {
        accessModes: ['ReadWriteOnce'],
        resources: { requests: { storage } },
        ...(storageClassName ? { storageClassName } : {}),
      },
    });
    assert.equal(
      (await srv.request('POST', `${base('storage')}/persistentvolumeclaims`, claim('a', '8Gi'))).status,
      201,
    );
    const big = await srv.request('POST', `${base('storage')}/persistentvolumeclaims`, claim('b', '4Gi'));
    assert.equal(
      big.body.message,
      'persistentvolumeclaims "b" is forbidden: exceeded quota: storage, requested: requests.storage=4Gi, used: requests.storage=8Gi, limited: requests.storage=10Gi',
    );
    const fast = await srv.request(
      'POST',
      `${base('storage')}/persistentvolumeclaims`,
      claim('c', '2Gi', 'fast'),
    );
    assert.match(fast.body.message, /requested: fast.storageclass.storage.k8s.io\/requests.storage=2Gi,/);
  });

  it('a scoped quota selects pods in its scope and nothing else', async () => {
    await quota('scoped', 'best-effort', { pods: '1' }, { scopes: ['BestEffort'] });
    assert.equal((await srv.request('POST', `${base('scoped')}/pods`, pod('free1'))).status, 201);
    const second = await srv.request('POST', `${base('scoped')}/pods`, pod('free2'));
    assert.equal(second.status, 403);
    const paid = await srv.request(
      'POST',
      `${base('scoped')}/pods`,
      pod('paid', { requests: { cpu: '100m' } }),
    );
    assert.equal(paid.status, 201, paid.text);
  });

  it('racing creates for the last unit: exactly one wins', async () => {
    await quota('race', 'q', { pods: '1' });
    const results = await Promise.all(
      ['r1', 'r2', 'r3', 'r4'].map((n) => srv.request('POST', `${base('race')}/pods`, pod(n))),
    );
    assert.deepEqual(results.map((r) => r.status).sort(), [201, 403, 403, 403]);
    assert.deepEqual(await used('race', 'q'), { pods: '1' });
  });

  it('subresources and namespaces are not charged', async () => {
    await quota('subs', 'q', { pods: '1' });
    assert.equal((await srv.request('POST', `${base('subs')}/pods`, pod('only'))).status, 201);
    const status = await srv.request(
      'PATCH',
      `${base('subs')}/pods/only/status`,
      { status: { message: 'x' } },
      merge,
    );
    assert.equal(status.status, 200);
    const binding = await srv.request('POST', `${base('subs')}/pods/only/binding`, {
      metadata: { name: 'only' },
      target: { kind: 'Node', name: 'n1' },
    });
    assert.equal(binding.status, 201, binding.text);
  });
});
