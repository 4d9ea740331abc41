// Authorization in the request path, and the review APIs, through a real
// API server: every request is decided before it is routed, refusals are
// upstream's 403, and `kubectl auth can-i` / `whoami` get their answers.

import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { createClientset } from '../../client/clientset.ts';
import { createInformerFactory, type InformerFactory } from '../../client/informer-factory.ts';
import { createInProcessTransport } from '../in-process.ts';
import { startTestServer, type TestServer } from '../testing.ts';
import { privilegedGroups, unionAuthorizer } from './authorizer.ts';
import { ensureBootstrapPolicyWith } from './bootstrap.ts';
import { bootstrapClusterRoles } from './bootstrap-policy.ts';
import { RBACAuthorizer } from './rbac.ts';
import { missingRules } from './reconcile.ts';
import { informerRBACSource } from './sources.ts';

let t: TestServer;
let informers: InformerFactory;
/** The user of a request, from a test header: "name" or "name;group,group". */
const userOf = (req: IncomingMessage) => {
  const [name = 'test-admin', groups = 'system:masters'] = String(req.headers['x-test-user'] ?? '').split(
    ';',
  );
  return { name: name || 'test-admin', groups: groups.split(',').filter((g) => g) };
};

before(async () => {
  let rbac: RBACAuthorizer | undefined;
  const authorizer = unionAuthorizer(privilegedGroups('system:masters'), {
    authorize: (a) => rbac?.authorize(a) ?? { decision: 'noOpinion', reason: '' },
  });
  t = await startTestServer(undefined, {
    authorizer,
    ruleResolver: { rulesFor: (u, ns) => rbac!.rulesFor(u, ns) },
    user: userOf,
  });
  const loopback = createInProcessTransport(t.api, { name: 'system:apiserver', groups: ['system:masters'] });
  const clients = createClientset(loopback);
  // upstream's bootstrap policy: system:basic-user lets everyone ask the review APIs.
  assert.ok((await ensureBootstrapPolicyWith(clients)).includes('clusterrolebinding/system:basic-user'));
  informers = createInformerFactory(clients);
  rbac = new RBACAuthorizer(informerRBACSource(informers));
  await informers.start();
});
after(async () => {
  informers.stop();
  await t.close();
});

const as = (user: string) => ({ 'x-test-user': `${user};system:authenticated` });
const RBAC = '/apis/rbac.authorization.k8s.io/v1';

async function grantView(user: string, namespace: string) {
  const role = await t.request('POST', `${RBAC}/namespaces/${namespace}/roles`, {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'Role',
    metadata: { name: `${user}-view` },
    rules: [{ verbs: ['get', 'list', 'watch'], apiGroups: [''], resources: ['pods', 'configmaps'] }],
  });
  assert.equal(role.status, 201, role.text);
  const binding = await t.request('POST', `${RBAC}/namespaces/${namespace}/rolebindings`, {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: { name: `${user}-view` },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: `${user}-view` },
    subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: user }],
  });
  assert.equal(binding.status, 201, binding.text);
}

async function eventually(what: string, ok: () => Promise<boolean>) {
  for (let i = 0; i < 200; i++) {
    if (await ok()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.fail(`timed out waiting for ${what}`);
}

describe('authorization in the request path', () => {
  it('refuses what no rule allows with upstream 403, and allows it once bound', async () => {
    const denied = await t.request('GET', '/api/v1/namespaces/default/pods', undefined, as('carol'));
    assert.equal(denied.status, 403);
    assert.equal(denied.body.reason, 'Forbidden');
    assert.equal(
      denied.body.message,
      'pods is forbidden: User "carol" cannot list resource "pods" in API group "" in the namespace "default"',
    );
    assert.deepEqual(denied.body.details, { kind: 'pods' });
    // Authorization comes before routing: an unknown resource is 403 too, as upstream.
    assert.equal(
      (await t.request('GET', '/api/v1/namespaces/default/nothings', undefined, as('carol'))).status,
      403,
    );

    await grantView('carol', 'default');
    await eventually(
      'carol may list pods',
      async () =>
        (await t.request('GET', '/api/v1/namespaces/default/pods', undefined, as('carol'))).status === 200,
    );
    const write = await t.request(
      'POST',
      '/api/v1/namespaces/default/configmaps',
      { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x' } },
      as('carol'),
    );
    assert.equal(write.status, 403);
    assert.equal(
      write.body.message,
      'configmaps is forbidden: User "carol" cannot create resource "configmaps" in API group "" in the namespace "default"',
    );
    assert.equal(
      (await t.request('GET', '/api/v1/namespaces/kube-system/pods', undefined, as('carol'))).status,
      403,
    );
  });
});

describe('review APIs', () => {
  const review = (kind: string, spec: object, group = 'authorization.k8s.io') => ({
    apiVersion: `${group}/v1`,
    kind,
    spec,
  });

  it('SelfSubjectAccessReview (kubectl auth can-i) for the requester', async () => {
    await grantView('dave', 'default');
    await eventually('dave bound', async () => {
      const r = await t.request(
        'POST',
        '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews',
        review('SelfSubjectAccessReview', {
          resourceAttributes: { namespace: 'default', verb: 'list', resource: 'pods' },
        }),
        as('dave'),
      );
      return r.status === 201 && r.body.status.allowed === true;
    });
    const no = await t.request(
      'POST',
      '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews',
      review('SelfSubjectAccessReview', {
        resourceAttributes: { namespace: 'default', verb: 'delete', resource: 'pods' },
      }),
      as('dave'),
    );
    assert.equal(no.status, 201);
    assert.equal(no.body.kind, 'SelfSubjectAccessReview');
    assert.equal(no.body.status.allowed, false);
  });

  it('SelfSubjectRulesReview lists the rules; SelfSubjectReview says who', async () => {
    await grantView('erin', 'default');
    await eventually('erin bound', async () => {
      const r = await t.request(
        'POST',
        '/apis/authorization.k8s.io/v1/selfsubjectrulesreviews',
        review('SelfSubjectRulesReview', { namespace: 'default' }),
        as('erin'),
      );
      return (r.body.status?.resourceRules ?? []).some((x: { resources: string[] }) =>
        x.resources.includes('configmaps'),
      );
    });
    const who = await t.request(
      'POST',
      '/apis/authentication.k8s.io/v1/selfsubjectreviews',
      { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' },
      { 'x-test-user': 'erin;dev,system:authenticated' },
    );
    assert.equal(who.status, 201, who.text);
    assert.deepEqual(who.body.status.userInfo, { username: 'erin', groups: ['dev', 'system:authenticated'] });
  });

  it('reviews are create-only and listed in discovery as such', async () => {
    const list = await t.request('GET', '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews');
    assert.equal(list.status, 405);
    const d = await t.request('GET', '/apis/authorization.k8s.io/v1');
    const ssar = d.body.resources.find((r: { name: string }) => r.name === 'selfsubjectaccessreviews');
    assert.deepEqual(ssar.verbs, ['create']);
  });
});

describe('bootstrap policy at start', () => {
  it('is idempotent, and puts back a rule an admin removed', async () => {
    const clients = createClientset(
      createInProcessTransport(t.api, { name: 'admin', groups: ['system:masters'] }),
    );
    assert.deepEqual(await ensureBootstrapPolicyWith(clients), []);
    const dns = await clients.clusterRoles.get(undefined, 'system:kube-dns');
    await clients.clusterRoles.update({ ...dns, rules: [] });
    assert.deepEqual(await ensureBootstrapPolicyWith(clients), ['clusterrole/system:kube-dns']);
    // As upstream, what was missing comes back as one rule per verb and resource.
    const rules = (await clients.clusterRoles.get(undefined, 'system:kube-dns')).rules ?? [];
    const want = bootstrapClusterRoles().find((r) => r.metadata.name === 'system:kube-dns')!;
    assert.deepEqual(missingRules(rules, want.rules ?? []), []);
    assert.equal(rules.length, 4, 'list and watch of endpoints and services');
  });
});
