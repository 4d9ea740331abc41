// The bootstrap policy through the RBAC authorizer (what each built-in
// identity may do), and its reconciliation against what a cluster holds.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ClusterRole } from '../../api/types/rbac-v1.ts';
import type { UserInfo } from '../authn/user.ts';
import type { Attributes } from './authorizer.ts';
import {
  AUTOUPDATE_ANNOTATION,
  bootstrapClusterRoleBindings,
  bootstrapClusterRoles,
  rule,
} from './bootstrap-policy.ts';
import { RBACAuthorizer } from './rbac.ts';
import { missingRules, reconcileClusterRole, reconcileClusterRoleBinding } from './reconcile.ts';

/** The bootstrap roles with aggregation done by hand (the aggregation controller's job in a cluster). */
function aggregatedRoles(): ClusterRole[] {
  const roles = bootstrapClusterRoles();
  const byName = new Map(roles.map((r) => [r.metadata.name, r]));
  for (const name of ['view', 'edit', 'admin']) {
    const into = byName.get(name)!;
    const label = `rbac.authorization.k8s.io/aggregate-to-${name}`;
    into.rules = roles.filter((r) => r.metadata.labels?.[label] === 'true').flatMap((r) => r.rules ?? []);
  }
  return roles;
}

function authorizer(extra: { name: string; role: string; user: string }[] = []) {
  const roles = aggregatedRoles();
  const bindings = [
    ...bootstrapClusterRoleBindings(),
    ...extra.map((e) => ({
      metadata: { name: e.name },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: e.role },
      subjects: [{ kind: 'User', name: e.user }],
    })),
  ];
  return new RBACAuthorizer({
    clusterRoleBindings: () => bindings,
    roleBindings: () => [],
    clusterRole: (name) => roles.find((r) => r.metadata.name === name),
    role: () => undefined,
  });
}

const can = (
  rbac: RBACAuthorizer,
  user: UserInfo,
  verb: string,
  resource: string,
  over: Partial<Attributes> = {},
) => {
  const [res, sub] = resource.split('/');
  return (
    rbac.authorize({
      user,
      verb,
      isResourceRequest: true,
      path: '',
      apiGroup: '',
      apiVersion: 'v1',
      namespace: 'default',
      resource: res ?? '',
      subresource: sub ?? '',
      name: '',
      ...over,
    }).decision === 'allow'
  );
};

describe('bootstrap policy', () => {
  it('has each role once, cluster-admin covering every other role', () => {
    const roles = bootstrapClusterRoles();
    const names = roles.map((r) => r.metadata.name);
    assert.equal(new Set(names).size, names.length);
    for (const want of ['cluster-admin', 'admin', 'edit', 'view', 'system:node', 'system:kube-scheduler'])
      assert.ok(names.includes(want), want);
    const admin = roles.find((r) => r.metadata.name === 'cluster-admin')!;
    for (const r of roles)
      assert.deepEqual(missingRules(admin.rules ?? [], r.rules ?? []), [], r.metadata.name);
    for (const b of bootstrapClusterRoleBindings())
      assert.ok(names.includes(b.roleRef?.name), `${b.metadata.name} refers to a bootstrap role`);
  });

  it('system:masters may do anything; an authenticated user only discovery, version and self-reviews', () => {
    const rbac = authorizer();
    const admin = { name: 'system:admin', groups: ['system:masters', 'system:authenticated'] };
    assert.ok(can(rbac, admin, 'delete', 'nodes', { namespace: '' }));
    const bob = { name: 'bob', groups: ['system:authenticated'] };
    const path = (p: string) =>
      rbac.authorize({
        user: bob,
        verb: 'get',
        isResourceRequest: false,
        path: p,
        apiGroup: '',
        apiVersion: '',
        namespace: '',
        resource: '',
        subresource: '',
        name: '',
      }).decision;
    assert.equal(path('/version'), 'allow');
    assert.equal(path('/apis/apps/v1'), 'allow');
    assert.equal(path('/metrics'), 'noOpinion');
    assert.equal(can(rbac, bob, 'list', 'pods'), false);
    assert.ok(
      can(rbac, bob, 'create', 'selfsubjectaccessreviews', {
        apiGroup: 'authorization.k8s.io',
        namespace: '',
      }),
    );
  });

  it('the scheduler binds pods and reads nodes, but cannot delete nodes or read secrets', () => {
    const rbac = authorizer();
    const scheduler = { name: 'system:kube-scheduler', groups: ['system:authenticated'] };
    assert.ok(can(rbac, scheduler, 'create', 'pods/binding'));
    assert.ok(can(rbac, scheduler, 'watch', 'nodes', { namespace: '' }));
    assert.ok(
      can(rbac, scheduler, 'update', 'leases', { apiGroup: 'coordination.k8s.io', name: 'kube-scheduler' }),
    );
    assert.equal(
      can(rbac, scheduler, 'update', 'leases', { apiGroup: 'coordination.k8s.io', name: 'other' }),
      false,
    );
    assert.equal(can(rbac, scheduler, 'delete', 'nodes', { namespace: '' }), false);
    assert.equal(can(rbac, scheduler, 'get', 'secrets'), false);
  });

  it("an agent's components: the hollow fleet writes any node but reads no secret; the DNS reads slices; the bootstrap user nothing", () => {
    const rbac = authorizer();
    const fleet = { name: 'system:skiff-hollow-fleet', groups: ['system:authenticated'] };
    assert.ok(can(rbac, fleet, 'update', 'nodes/status', { namespace: '', name: 'hollow-7' }));
    assert.ok(can(rbac, fleet, 'watch', 'pods', { namespace: '' }));
    assert.ok(can(rbac, fleet, 'update', 'leases', { apiGroup: 'coordination.k8s.io', name: 'hollow-7' }));
    assert.equal(can(rbac, fleet, 'get', 'secrets'), false);
    assert.equal(can(rbac, fleet, 'get', 'configmaps'), false);
    assert.equal(can(rbac, fleet, 'delete', 'nodes', { namespace: '' }), false);
    const dns = { name: 'system:skiff-dns', groups: ['system:authenticated'] };
    assert.ok(can(rbac, dns, 'watch', 'endpointslices', { apiGroup: 'discovery.k8s.io', namespace: '' }));
    assert.equal(can(rbac, dns, 'get', 'secrets'), false);
    const proxy = { name: 'system:kube-proxy', groups: ['system:authenticated'] };
    assert.ok(can(rbac, proxy, 'list', 'services', { namespace: '' }));
    assert.equal(can(rbac, proxy, 'get', 'secrets'), false);
    const bootstrap = { name: 'system:skiff-agent', groups: ['system:authenticated'] };
    for (const resource of ['nodes', 'pods', 'secrets', 'services'])
      assert.equal(can(rbac, bootstrap, 'list', resource, { namespace: '' }), false, resource);
  });

  it('view reads but does not write or read secrets; edit writes and reads secrets but not roles; admin manages roles', () => {
    const rbac = authorizer([
      { name: 'v', role: 'view', user: 'viewer' },
      { name: 'e', role: 'edit', user: 'editor' },
      { name: 'a', role: 'admin', user: 'nsadmin' },
    ]);
    const u = (name: string) => ({ name, groups: ['system:authenticated'] });
    assert.ok(can(rbac, u('viewer'), 'list', 'pods'));
    assert.ok(can(rbac, u('viewer'), 'get', 'deployments', { apiGroup: 'apps' }));
    assert.ok(can(rbac, u('viewer'), 'get', 'pods/log'));
    assert.equal(can(rbac, u('viewer'), 'create', 'pods'), false);
    assert.equal(can(rbac, u('viewer'), 'get', 'secrets'), false);
    assert.equal(can(rbac, u('viewer'), 'create', 'pods/exec'), false);
    assert.ok(can(rbac, u('editor'), 'create', 'pods/exec'));
    assert.ok(can(rbac, u('editor'), 'get', 'secrets'));
    assert.ok(can(rbac, u('editor'), 'patch', 'deployments/scale', { apiGroup: 'apps' }));
    assert.equal(can(rbac, u('editor'), 'get', 'roles', { apiGroup: 'rbac.authorization.k8s.io' }), false);
    assert.ok(can(rbac, u('nsadmin'), 'create', 'rolebindings', { apiGroup: 'rbac.authorization.k8s.io' }));
    assert.ok(can(rbac, u('nsadmin'), 'list', 'pods'), 'admin includes edit includes view');
  });
});

describe('rule coverage', () => {
  it('covers verb by verb, "*" and */subresource; resourceNames narrow', () => {
    const owner = [rule('get list', 'core', 'pods */status'), rule('get', 'core', 'configmaps', 'app')];
    assert.deepEqual(missingRules(owner, [rule('get', 'core', 'pods pods/status services/status')]), []);
    assert.deepEqual(missingRules(owner, [rule('get watch', 'core', 'pods')]), [
      { apiGroups: [''], resources: ['pods'], verbs: ['watch'] },
    ]);
    assert.deepEqual(missingRules(owner, [rule('get', 'core', 'configmaps', 'app')]), []);
    assert.equal(missingRules(owner, [rule('get', 'core', 'configmaps')]).length, 1, 'all configmaps');
    assert.deepEqual(
      missingRules([rule('*', '*', '*')], [rule('escalate', 'rbac.authorization.k8s.io', 'roles')]),
      [],
    );
  });
});

describe('reconciliation', () => {
  const wanted = bootstrapClusterRoles().find((r) => r.metadata.name === 'system:kube-dns')!;

  it('creates a missing role, leaves a current one, and adds back a removed rule', () => {
    assert.equal(reconcileClusterRole(undefined, wanted), wanted);
    assert.equal(reconcileClusterRole(structuredClone(wanted), wanted), undefined);
    const trimmed = { ...structuredClone(wanted), rules: [rule('list', 'core', 'endpoints services')] };
    trimmed.metadata.labels = { ...trimmed.metadata.labels, mine: 'kept' };
    const fixed = reconcileClusterRole(trimmed, wanted)!;
    assert.deepEqual(missingRules(fixed.rules ?? [], wanted.rules ?? []), []);
    assert.equal(fixed.metadata.labels?.mine, 'kept', 'a label the user added stays');
  });

  it('never touches a role marked autoupdate=false', () => {
    const mine = structuredClone(wanted);
    mine.rules = [];
    mine.metadata.annotations = { [AUTOUPDATE_ANNOTATION]: 'false' };
    assert.equal(reconcileClusterRole(mine, wanted), undefined);
  });

  it('bindings: adds a missing subject, keeps extra ones, recreates on a changed roleRef', () => {
    const want = bootstrapClusterRoleBindings().find((b) => b.metadata.name === 'system:kube-scheduler')!;
    assert.deepEqual(reconcileClusterRoleBinding(structuredClone(want), want), { action: 'none' });
    const extra = { ...structuredClone(want), subjects: [{ kind: 'User', name: 'someone' }] };
    const r = reconcileClusterRoleBinding(extra, want);
    assert.equal(r.action, 'update');
    assert.deepEqual(r.action === 'update' ? r.binding.subjects?.map((s) => s.name) : [], [
      'someone',
      'system:kube-scheduler',
    ]);
    const moved = { ...structuredClone(want), roleRef: { ...want.roleRef!, name: 'view' } };
    assert.equal(reconcileClusterRoleBinding(moved, want).action, 'recreate');
  });
});

describe('controller roles', () => {
  it('one role and binding per controller ServiceAccount; every Skiff controller mapped to one', async () => {
    const {
      controllerClusterRoles,
      controllerClusterRoleBindings,
      CONTROLLER_SERVICE_ACCOUNTS,
      ROOT_CREDENTIAL_CONTROLLERS,
    } = await import('./controller-roles.ts');
    const { allControllers } = await import('../../controllers/index.ts');
    const names = controllerClusterRoles().map((r) => r.metadata.name);
    assert.equal(new Set(names).size, names.length);
    for (const b of controllerClusterRoleBindings()) {
      assert.ok(names.includes(b.roleRef?.name), b.metadata.name);
      assert.equal(b.subjects?.[0]?.namespace, 'kube-system');
    }
    for (const c of Object.keys(allControllers)) {
      if (ROOT_CREDENTIAL_CONTROLLERS.has(c)) continue; // system:kube-controller-manager's own role
      const sa = CONTROLLER_SERVICE_ACCOUNTS[c];
      assert.ok(sa && names.includes(`system:controller:${sa}`), `controller ${c} has a role`);
    }
  });

  it('the ReplicaSet controller creates pods but cannot read secrets', async () => {
    const { controllerClusterRoles } = await import('./controller-roles.ts');
    const rs = controllerClusterRoles().find(
      (r) => r.metadata.name === 'system:controller:replicaset-controller',
    )!;
    assert.deepEqual(missingRules(rs.rules ?? [], [rule('create delete', 'core', 'pods')]), []);
    assert.equal(missingRules(rs.rules ?? [], [rule('get', 'core', 'secrets')]).length, 1);
  });
});
