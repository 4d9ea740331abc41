// The RBAC authorizer and the 403 it leads to, against upstream's rule
// matching (evaluation_helpers.go) and messages (responsewriters/errors.go).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ClusterRole, ClusterRoleBinding, Role, RoleBinding } from '../../api/types/rbac-v1.ts';
import type { UserInfo } from '../authn/user.ts';
import { type Attributes, forbiddenFor, privilegedGroups, unionAuthorizer } from './authorizer.ts';
import { RBACAuthorizer, type RBACSource, ruleAllows } from './rbac.ts';

function source(objs: {
  clusterRoles?: ClusterRole[];
  clusterRoleBindings?: ClusterRoleBinding[];
  roles?: Role[];
  roleBindings?: RoleBinding[];
}): RBACSource {
  return {
    clusterRoleBindings: () => objs.clusterRoleBindings ?? [],
    roleBindings: (ns) => (objs.roleBindings ?? []).filter((b) => b.metadata.namespace === ns),
    clusterRole: (name) => objs.clusterRoles?.find((r) => r.metadata.name === name),
    role: (ns, name) => objs.roles?.find((r) => r.metadata.namespace === ns && r.metadata.name === name),
  };
}

const bob: UserInfo = { name: 'bob', groups: ['dev', 'system:authenticated'] };

function attrs(over: Partial<Attributes>): Attributes {
  return {
    user: bob,
    verb: 'get',
    isResourceRequest: true,
    path: '',
    apiGroup: '',
    apiVersion: 'v1',
    namespace: 'default',
    resource: 'pods',
    subresource: '',
    name: '',
    ...over,
  };
}

describe('RBAC rule matching', () => {
  it('verbs, groups and resources match exactly or by "*"', () => {
    const rule = { verbs: ['get', 'list'], apiGroups: [''], resources: ['pods'] };
    assert.equal(ruleAllows(attrs({}), rule), true);
    assert.equal(ruleAllows(attrs({ verb: 'delete' }), rule), false);
    assert.equal(ruleAllows(attrs({ apiGroup: 'apps', resource: 'pods' }), rule), false);
    assert.equal(ruleAllows(attrs({ resource: 'secrets' }), rule), false);
    const all = { verbs: ['*'], apiGroups: ['*'], resources: ['*'] };
    assert.equal(ruleAllows(attrs({ verb: 'escalate', apiGroup: 'x.io', resource: 'things' }), all), true);
  });

  it('a subresource needs resource/subresource or */subresource; "pods" does not cover pods/log', () => {
    const log = attrs({ subresource: 'log' });
    assert.equal(ruleAllows(log, { verbs: ['get'], apiGroups: [''], resources: ['pods'] }), false);
    assert.equal(ruleAllows(log, { verbs: ['get'], apiGroups: [''], resources: ['pods/log'] }), true);
    assert.equal(ruleAllows(log, { verbs: ['get'], apiGroups: [''], resources: ['*/log'] }), true);
    assert.equal(ruleAllows(log, { verbs: ['get'], apiGroups: [''], resources: ['*/status'] }), false);
    assert.equal(ruleAllows(attrs({}), { verbs: ['get'], apiGroups: [''], resources: ['*/log'] }), false);
  });

  it('resourceNames limit a rule to those objects; a collection request has no name', () => {
    const rule = {
      verbs: ['get', 'list'],
      apiGroups: [''],
      resources: ['configmaps'],
      resourceNames: ['app'],
    };
    assert.equal(ruleAllows(attrs({ resource: 'configmaps', name: 'app' }), rule), true);
    assert.equal(ruleAllows(attrs({ resource: 'configmaps', name: 'other' }), rule), false);
    assert.equal(ruleAllows(attrs({ resource: 'configmaps', verb: 'list' }), rule), false);
  });

  it('non-resource URLs: exact, "*", or a prefix ending in "*"', () => {
    const path = (p: string) => attrs({ isResourceRequest: false, path: p, resource: '', namespace: '' });
    const rule = { verbs: ['get'], nonResourceURLs: ['/healthz', '/apis/*'] };
    assert.equal(ruleAllows(path('/healthz'), rule), true);
    assert.equal(ruleAllows(path('/healthz/ping'), rule), false);
    assert.equal(ruleAllows(path('/apis/apps/v1'), rule), true);
    assert.equal(ruleAllows(path('/apis'), rule), false);
    assert.equal(ruleAllows(path('/version'), { verbs: ['get'], nonResourceURLs: ['*'] }), true);
    // A resource rule never covers a path, nor a path rule a resource.
    assert.equal(ruleAllows(path('/healthz'), { verbs: ['get'], apiGroups: ['*'], resources: ['*'] }), false);
    assert.equal(ruleAllows(attrs({}), rule), false);
  });
});

describe('RBAC authorizer', () => {
  const view: ClusterRole = {
    metadata: { name: 'view' },
    rules: [{ verbs: ['get', 'list', 'watch'], apiGroups: [''], resources: ['pods', 'services'] }],
  };
  const podWriter: Role = {
    metadata: { name: 'pod-writer', namespace: 'team' },
    rules: [{ verbs: ['create', 'delete'], apiGroups: [''], resources: ['pods'] }],
  };

  it('a ClusterRoleBinding grants everywhere; a RoleBinding only in its namespace', () => {
    const rbac = new RBACAuthorizer(
      source({
        clusterRoles: [view],
        roles: [podWriter],
        clusterRoleBindings: [
          {
            metadata: { name: 'devs-view' },
            roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'view' },
            subjects: [{ kind: 'Group', name: 'dev', apiGroup: 'rbac.authorization.k8s.io' }],
          },
        ],
        roleBindings: [
          {
            metadata: { name: 'bob-writes', namespace: 'team' },
            roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'pod-writer' },
            subjects: [{ kind: 'User', name: 'bob', apiGroup: 'rbac.authorization.k8s.io' }],
          },
        ],
      }),
    );
    assert.deepEqual(rbac.authorize(attrs({ verb: 'list', namespace: 'kube-system' })), {
      decision: 'allow',
      reason: 'RBAC: allowed by ClusterRoleBinding "devs-view" of ClusterRole "view" to Group "dev"',
    });
    assert.deepEqual(rbac.authorize(attrs({ verb: 'create', namespace: 'team' })), {
      decision: 'allow',
      reason: 'RBAC: allowed by RoleBinding "team/bob-writes" of Role "pod-writer" to User "bob"',
    });
    assert.equal(rbac.authorize(attrs({ verb: 'create', namespace: 'default' })).decision, 'noOpinion');
    assert.equal(rbac.authorize(attrs({ verb: 'list', resource: 'secrets' })).decision, 'noOpinion');
    // Someone else, in no group: nothing.
    const eve = { name: 'eve', groups: ['system:authenticated'] };
    assert.equal(rbac.authorize(attrs({ user: eve, verb: 'list' })).decision, 'noOpinion');
  });

  it('a RoleBinding may grant a ClusterRole in one namespace', () => {
    const rbac = new RBACAuthorizer(
      source({
        clusterRoles: [view],
        roleBindings: [
          {
            metadata: { name: 'view-here', namespace: 'team' },
            roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'view' },
            subjects: [{ kind: 'User', name: 'bob' }],
          },
        ],
      }),
    );
    assert.equal(rbac.authorize(attrs({ namespace: 'team' })).decision, 'allow');
    assert.equal(rbac.authorize(attrs({ namespace: 'other' })).decision, 'noOpinion');
    assert.equal(
      rbac.authorize(attrs({ namespace: '', verb: 'list' })).decision,
      'noOpinion',
      'not cluster-wide',
    );
  });

  it('ServiceAccount subjects: by namespace/name; a RoleBinding defaults the namespace to its own', () => {
    const sa = { name: 'system:serviceaccount:team:builder', groups: ['system:serviceaccounts'] };
    const rbac = new RBACAuthorizer(
      source({
        clusterRoles: [view],
        roleBindings: [
          {
            metadata: { name: 'builder-view', namespace: 'team' },
            roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'view' },
            subjects: [{ kind: 'ServiceAccount', name: 'builder' }],
          },
        ],
        clusterRoleBindings: [
          {
            metadata: { name: 'no-namespace' },
            roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'view' },
            // A ServiceAccount subject of a ClusterRoleBinding needs its namespace: this one matches nobody.
            subjects: [{ kind: 'ServiceAccount', name: 'builder' }],
          },
        ],
      }),
    );
    assert.equal(rbac.authorize(attrs({ user: sa, namespace: 'team' })).decision, 'allow');
    assert.equal(rbac.authorize(attrs({ user: sa, namespace: 'default' })).decision, 'noOpinion');
    const other = { name: 'system:serviceaccount:else:builder', groups: [] };
    assert.equal(rbac.authorize(attrs({ user: other, namespace: 'team' })).decision, 'noOpinion');
  });

  it('a binding to a missing role grants nothing and says so in the reason', () => {
    const rbac = new RBACAuthorizer(
      source({
        clusterRoleBindings: [
          {
            metadata: { name: 'dangling' },
            roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'gone' },
            subjects: [{ kind: 'User', name: 'bob' }],
          },
        ],
        roleBindings: [
          {
            metadata: { name: 'dangling', namespace: 'default' },
            roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'missing' },
            subjects: [{ kind: 'Group', name: 'dev' }],
          },
        ],
      }),
    );
    assert.deepEqual(rbac.authorize(attrs({})), {
      decision: 'noOpinion',
      reason:
        'RBAC: [clusterrole.rbac.authorization.k8s.io "gone" not found, role.rbac.authorization.k8s.io "missing" not found]',
    });
    assert.deepEqual(rbac.authorize(attrs({ namespace: '' })), {
      decision: 'noOpinion',
      reason: 'RBAC: clusterrole.rbac.authorization.k8s.io "gone" not found',
    });
  });

  it('system:masters is allowed before RBAC is asked', () => {
    const chain = unionAuthorizer(privilegedGroups('system:masters'), new RBACAuthorizer(source({})));
    const admin = { name: 'system:admin', groups: ['system:masters'] };
    assert.equal(
      chain.authorize(attrs({ user: admin, verb: 'delete', resource: 'nodes' })).decision,
      'allow',
    );
    assert.equal(chain.authorize(attrs({ verb: 'delete', resource: 'nodes' })).decision, 'noOpinion');
  });
});

describe('403 Forbidden', () => {
  it('names the user, verb, resource, group and namespace as upstream', () => {
    const e = forbiddenFor(attrs({ verb: 'list', resource: 'secrets', namespace: 'kube-system' }), '');
    assert.equal(e.status.code, 403);
    assert.equal(e.status.reason, 'Forbidden');
    assert.equal(
      e.status.message,
      'secrets is forbidden: User "bob" cannot list resource "secrets" in API group "" in the namespace "kube-system"',
    );
    assert.deepEqual(e.status.details, { kind: 'secrets' });
  });

  it('a named object of a group, at the cluster scope, with the reason appended', () => {
    const e = forbiddenFor(
      attrs({ verb: 'delete', apiGroup: 'apps', resource: 'deployments', name: 'web', namespace: '' }),
      'RBAC: clusterrole.rbac.authorization.k8s.io "gone" not found',
    );
    assert.equal(
      e.status.message,
      'deployments.apps "web" is forbidden: User "bob" cannot delete resource "deployments" in API group "apps" at the cluster scope: RBAC: clusterrole.rbac.authorization.k8s.io "gone" not found',
    );
    assert.deepEqual(e.status.details, { name: 'web', group: 'apps', kind: 'deployments' });
  });

  it('a subresource and a non-resource path', () => {
    const log = forbiddenFor(attrs({ subresource: 'log', name: 'web-1' }), '');
    assert.equal(
      log.status.message,
      'pods "web-1" is forbidden: User "bob" cannot get resource "pods/log" in API group "" in the namespace "default"',
    );
    const path = forbiddenFor(attrs({ isResourceRequest: false, path: '/metrics', resource: '' }), '');
    assert.equal(path.status.message, 'forbidden: User "bob" cannot get path "/metrics"');
  });
});
