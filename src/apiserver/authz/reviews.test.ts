import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ApiError } from '../../api/errors.ts';
import { privilegedGroups, unionAuthorizer } from './authorizer.ts';
import { bootstrapClusterRoles } from './bootstrap-policy.ts';
import { NodeAuthorizer, NodeGraph } from './node.ts';
import { RBACAuthorizer } from './rbac.ts';
import {
  localSubjectAccessReview,
  selfSubjectAccessReview,
  selfSubjectReview,
  selfSubjectRulesReview,
  subjectAccessReview,
  unionRuleResolver,
} from './reviews.ts';

const rbac = new RBACAuthorizer({
  clusterRoleBindings: () => [],
  roleBindings: (ns) =>
    ns === 'team'
      ? [
          {
            metadata: { name: 'bob-reads', namespace: 'team' },
            roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'reader' },
            subjects: [{ kind: 'User', name: 'bob' }],
          },
        ]
      : [],
  clusterRole: () => undefined,
  role: (ns, name) =>
    ns === 'team' && name === 'reader'
      ? {
          metadata: { name, namespace: ns },
          rules: [
            { verbs: ['get', 'list'], apiGroups: [''], resources: ['pods'] },
            { verbs: ['get'], apiGroups: [''], resources: ['configmaps'], resourceNames: ['app'] },
          ],
        }
      : undefined,
});
const authz = unionAuthorizer(privilegedGroups('system:masters'), rbac);
const bob = { name: 'bob', groups: ['system:authenticated'] };
const review = (spec: object) => ({
  apiVersion: 'authorization.k8s.io/v1',
  kind: 'SelfSubjectAccessReview',
  metadata: {},
  spec,
});

describe('access reviews', () => {
  it('SelfSubjectAccessReview answers for the requester (kubectl auth can-i)', () => {
    const yes = selfSubjectAccessReview(
      review({ resourceAttributes: { namespace: 'team', verb: 'list', resource: 'pods' } }),
      bob,
      authz,
    );
    assert.equal(yes.status?.allowed, true);
    assert.match(yes.status?.reason ?? '', /RoleBinding "team\/bob-reads"/);
    const no = selfSubjectAccessReview(
      review({ resourceAttributes: { namespace: 'team', verb: 'delete', resource: 'pods' } }),
      bob,
      authz,
    );
    assert.deepEqual(no.status, { allowed: false });
    const path = selfSubjectAccessReview(
      review({ nonResourceAttributes: { path: '/logs', verb: 'get' } }),
      bob,
      authz,
    );
    assert.equal(path.status?.allowed, false);
  });

  it('needs exactly one of resourceAttributes and nonResourceAttributes (422)', () => {
    assert.throws(
      () => selfSubjectAccessReview(review({}), bob, authz),
      (e: ApiError) =>
        e.status.code === 422 && /exactly one of nonResourceAttributes or resourceAttributes/.test(e.message),
    );
  });

  it('SubjectAccessReview asks about spec.user; Local pins the namespace', () => {
    const r = subjectAccessReview(
      {
        spec: {
          user: 'bob',
          resourceAttributes: { namespace: 'team', verb: 'get', resource: 'configmaps', name: 'app' },
        },
      },
      authz,
    );
    assert.equal(r.status?.allowed, true);
    assert.throws(
      () => subjectAccessReview({ spec: { resourceAttributes: {} } }, authz),
      /at least one of user or group/,
    );
    const admin = subjectAccessReview(
      {
        spec: {
          user: 'x',
          groups: ['system:masters'],
          resourceAttributes: { verb: 'delete', resource: 'nodes' },
        },
      },
      authz,
    );
    assert.equal(admin.status?.allowed, true);
    assert.throws(
      () =>
        localSubjectAccessReview(
          {
            metadata: { namespace: 'team' },
            spec: { user: 'bob', resourceAttributes: { namespace: 'other', verb: 'get', resource: 'pods' } },
          },
          'team',
          authz,
        ),
      /must match metadata.namespace/,
    );
    const local = localSubjectAccessReview(
      {
        metadata: { namespace: 'team' },
        spec: { user: 'bob', resourceAttributes: { namespace: 'team', verb: 'get', resource: 'pods' } },
      },
      'team',
      authz,
    );
    assert.equal(local.status?.allowed, true);
  });
});

describe('rules review and whoami', () => {
  it('lists the rules a user holds in a namespace (kubectl auth can-i --list)', () => {
    const r = selfSubjectRulesReview({ spec: { namespace: 'team' } }, bob, rbac);
    assert.deepEqual(r.status.resourceRules, [
      { verbs: ['get', 'list'], apiGroups: [''], resources: ['pods'] },
      { verbs: ['get'], apiGroups: [''], resources: ['configmaps'], resourceNames: ['app'] },
    ]);
    assert.equal(r.status.incomplete, false);
    assert.deepEqual(
      selfSubjectRulesReview({ spec: { namespace: 'other' } }, bob, rbac).status.resourceRules,
      [],
    );
  });

  it("a node's rules are incomplete, as upstream's Node authorizer says", () => {
    const nodeRules = bootstrapClusterRoles().find((r) => r.metadata.name === 'system:node')!.rules ?? [];
    const resolver = unionRuleResolver(new NodeAuthorizer(new NodeGraph(), nodeRules), rbac);
    const node = { name: 'system:node:n1', groups: ['system:nodes'] };
    const r = selfSubjectRulesReview({ spec: { namespace: 'team' } }, node, resolver);
    assert.equal(r.status.incomplete, true);
    assert.equal(r.status.evaluationError, 'node authorizer does not support user rule resolution');
  });

  it('SelfSubjectReview returns the requester (kubectl auth whoami)', () => {
    const r = selfSubjectReview(
      { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' },
      { ...bob, uid: '42' },
    );
    assert.deepEqual(r.status.userInfo, { username: 'bob', uid: '42', groups: ['system:authenticated'] });
  });
});
