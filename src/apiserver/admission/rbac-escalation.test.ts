import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { KubeObject } from '../../api/meta.ts';
import type { PolicyRule } from '../../api/types/rbac-v1.ts';
import type { Authorizer } from '../authz/authorizer.ts';
import { ruleList } from '../authz/reviews.ts';
import type { AdmissionAttributes } from './admission.ts';
import { rbacEscalationPlugin } from './rbac-escalation.ts';

const bob = { name: 'bob', groups: ['dev', 'system:authenticated'] };
const held: PolicyRule[] = [{ apiGroups: [''], resources: ['configmaps', 'pods'], verbs: ['get', 'list'] }];
const escalators = new Set<string>();
const authorizer: Authorizer = {
  authorize: (a) => ({
    decision: escalators.has(`${a.verb}/${a.resource}/${a.name}`) ? 'allow' : 'noOpinion',
    reason: '',
  }),
};
const plugin = rbacEscalationPlugin({
  authorizer,
  resolver: { rulesFor: () => ({ ...ruleList(held), incomplete: false, errors: [] }) },
  roleRules: async (kind, _ns, name) =>
    kind === 'ClusterRole' && name === 'secret-reader'
      ? [{ apiGroups: [''], resources: ['secrets'], verbs: ['get', 'watch'] }]
      : kind === 'Role' && name === 'pod-reader'
        ? [{ apiGroups: [''], resources: ['pods'], verbs: ['get'] }]
        : undefined,
});

const write = (resource: string, object: object, namespace = 'team', user = bob): AdmissionAttributes => ({
  operation: 'CREATE',
  group: 'rbac.authorization.k8s.io',
  version: 'v1',
  kind: '',
  resource,
  subresource: '',
  namespace,
  name: '',
  object: object as KubeObject,
  user,
  dryRun: false,
});

describe('RBAC escalation checks', () => {
  it('a role within what the user holds is allowed; beyond it, refused with what is missing', async () => {
    await plugin.validate(
      write('roles', {
        metadata: { name: 'ok' },
        rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['get'] }],
      }),
    );
    await assert.rejects(
      plugin.validate(
        write('roles', {
          metadata: { name: 'greedy' },
          rules: [{ apiGroups: [''], resources: ['pods', 'secrets'], verbs: ['get', 'delete'] }],
        }),
      ),
      (err: { code: number; message: string }) => {
        assert.equal(err.code, 403);
        assert.equal(
          err.message,
          'roles.rbac.authorization.k8s.io "greedy" is forbidden: user "bob" (groups=["dev" "system:authenticated"]) is attempting to grant RBAC permissions not currently held:\n' +
            '{APIGroups:[""], Resources:["pods"], Verbs:["delete"]}\n' +
            '{APIGroups:[""], Resources:["secrets"], Verbs:["get" "delete"]}',
        );
        return true;
      },
    );
    escalators.add('escalate/roles/greedy');
    await plugin.validate(
      write('roles', {
        metadata: { name: 'greedy' },
        rules: [{ apiGroups: ['*'], resources: ['*'], verbs: ['*'] }],
      }),
    );
  });

  it('an aggregationRule needs cluster-admin; system:masters may do anything', async () => {
    await assert.rejects(
      plugin.validate(
        write(
          'clusterroles',
          { metadata: { name: 'agg' }, aggregationRule: { clusterRoleSelectors: [{}] } },
          '',
        ),
      ),
      /must have cluster-admin privileges to use the aggregationRule/,
    );
    await plugin.validate(
      write(
        'clusterroles',
        { metadata: { name: 'agg' }, aggregationRule: { clusterRoleSelectors: [{}] } },
        '',
        {
          name: 'admin',
          groups: ['system:masters'],
        },
      ),
    );
  });

  it("a binding needs the role's rules, or bind on it; a missing role is a 403", async () => {
    const binding = (role: string, kind = 'ClusterRole') => ({
      metadata: { name: `b-${role}` },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind, name: role },
      subjects: [{ kind: 'User', name: 'eve' }],
    });
    await plugin.validate(write('rolebindings', binding('pod-reader', 'Role')));
    await assert.rejects(
      plugin.validate(write('rolebindings', binding('secret-reader'))),
      /rolebindings.rbac.authorization.k8s.io "b-secret-reader" is forbidden: user "bob" .* not currently held:\n\{APIGroups:\[""\], Resources:\["secrets"\], Verbs:\["get" "watch"\]\}/,
    );
    escalators.add('bind/clusterroles/secret-reader');
    await plugin.validate(write('rolebindings', binding('secret-reader')));
    await assert.rejects(
      plugin.validate(write('rolebindings', binding('nope'))),
      /clusterrole.rbac.authorization.k8s.io "nope" not found/,
    );
  });
});
