// The authorizers fed from informers over a real API server.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createClientset } from '../../client/clientset.ts';
import { createInformerFactory, type InformerFactory } from '../../client/informer-factory.ts';
import { createInProcessTransport } from '../in-process.ts';
import { startTestServer, type TestServer } from '../testing.ts';
import type { Attributes } from './authorizer.ts';
import { NodeAuthorizer } from './node.ts';
import { RBACAuthorizer } from './rbac.ts';
import { informerNodeGraph, informerRBACSource, watchCacheNodeGraph } from './sources.ts';

let t: TestServer;
let informers: InformerFactory;
before(async () => {
  t = await startTestServer();
  const clients = createClientset(
    createInProcessTransport(t.api, { name: 'system:apiserver', groups: ['system:masters'] }),
  );
  informers = createInformerFactory(clients);
});
after(async () => {
  informers.stop();
  await t.close();
});

const until = async (what: string, ok: () => boolean) => {
  for (let i = 0; i < 200; i++) {
    if (ok()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.fail(`timed out waiting for ${what}`);
};

const get = (user: { name: string; groups: string[] }, resource: string, name: string): Attributes => ({
  user,
  verb: 'get',
  isResourceRequest: true,
  path: '',
  apiGroup: '',
  apiVersion: 'v1',
  namespace: 'default',
  resource,
  subresource: '',
  name,
});

describe('authorizers fed by informers', () => {
  it('RBAC follows roles and bindings as they are written', async () => {
    const rbac = new RBACAuthorizer(informerRBACSource(informers));
    const graph = informerNodeGraph(informers);
    const node = new NodeAuthorizer(graph, []);
    await informers.start();
    const bob = { name: 'bob', groups: [] };
    assert.equal(rbac.authorize(get(bob, 'configmaps', 'app')).decision, 'noOpinion');
    const rbacPath = '/apis/rbac.authorization.k8s.io/v1/namespaces/default';
    const role = await t.request('POST', `${rbacPath}/roles`, {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: { name: 'cm-reader' },
      rules: [{ verbs: ['get'], apiGroups: [''], resources: ['configmaps'] }],
    });
    assert.equal(role.status, 201, role.text);
    const binding = await t.request('POST', `${rbacPath}/rolebindings`, {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: 'bob' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'cm-reader' },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'bob' }],
    });
    assert.equal(binding.status, 201, binding.text);
    await until('bob may read', () => rbac.authorize(get(bob, 'configmaps', 'app')).decision === 'allow');
    assert.equal(rbac.authorize(get(bob, 'secrets', 'app')).decision, 'noOpinion');

    // Bindings are found by subject: a group, and a ServiceAccount named without its namespace.
    const sa = { name: 'system:serviceaccount:default:robot', groups: ['system:serviceaccounts'] };
    const dev = { name: 'eve', groups: ['dev'] };
    const multi = await t.request('POST', `${rbacPath}/rolebindings`, {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: 'many' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'cm-reader' },
      subjects: [
        { apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'dev' },
        { kind: 'ServiceAccount', name: 'robot' },
      ],
    });
    assert.equal(multi.status, 201, multi.text);
    await until('dev and robot may read', () =>
      [dev, sa].every((u) => rbac.authorize(get(u, 'configmaps', 'app')).decision === 'allow'),
    );
    const after = await t.request('PUT', `${rbacPath}/rolebindings/many`, {
      ...(multi.body as object),
      subjects: [{ kind: 'ServiceAccount', name: 'robot' }],
    });
    assert.equal(after.status, 200, after.text);
    await until('dev loses it', () => rbac.authorize(get(dev, 'configmaps', 'app')).decision === 'noOpinion');
    assert.equal(rbac.authorize(get(sa, 'configmaps', 'app')).decision, 'allow');

    // A pod bound to n1 using a secret: n1 may read it, n2 not.
    const pod = await t.request('POST', '/api/v1/namespaces/default/pods', {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'web' },
      spec: {
        nodeName: 'n1',
        containers: [{ name: 'c', image: 'busybox' }],
        volumes: [{ name: 's', secret: { secretName: 'web-tls' } }],
      },
    });
    assert.equal(pod.status, 201, pod.text);
    const n1 = { name: 'system:node:n1', groups: ['system:nodes'] };
    const n2 = { name: 'system:node:n2', groups: ['system:nodes'] };
    await until(
      'n1 may read web-tls',
      () => node.authorize(get(n1, 'secrets', 'web-tls')).decision === 'allow',
    );
    assert.equal(node.authorize(get(n2, 'secrets', 'web-tls')).decision, 'noOpinion');
    const del = await t.request('DELETE', '/api/v1/namespaces/default/pods/web?gracePeriodSeconds=0');
    assert.equal(del.status, 200, del.text);
    await until(
      'n1 loses web-tls',
      () => node.authorize(get(n1, 'secrets', 'web-tls')).decision === 'noOpinion',
    );
  });

  it("the Node authorizer's graph, fed from the watch caches, follows pods as they come and go", async () => {
    const { graph, stop } = await watchCacheNodeGraph(t.api);
    try {
      const node = new NodeAuthorizer(graph, []);
      const n3 = { name: 'system:node:n3', groups: ['system:nodes'] };
      const pod = await t.request('POST', '/api/v1/namespaces/default/pods', {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'cached' },
        spec: {
          nodeName: 'n3',
          containers: [{ name: 'c', image: 'busybox', envFrom: [{ configMapRef: { name: 'env-cm' } }] }],
        },
      });
      assert.equal(pod.status, 201, pod.text);
      await until(
        'n3 may read env-cm',
        () => node.authorize(get(n3, 'configmaps', 'env-cm')).decision === 'allow',
      );
      await t.request('DELETE', '/api/v1/namespaces/default/pods/cached?gracePeriodSeconds=0');
      await until(
        'n3 loses env-cm',
        () => node.authorize(get(n3, 'configmaps', 'env-cm')).decision === 'noOpinion',
      );
    } finally {
      stop();
    }
  });
});
