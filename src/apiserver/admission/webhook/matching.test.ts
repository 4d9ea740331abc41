// Rule matching (matching.ts), table-driven after upstream's
// pkg/admission/plugin/webhook/predicates/rules tests: operations, groups,
// versions, resources with subresources and wildcards, and scope.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RuleWithOperations } from '../../../api/types/admissionregistration-v1.ts';
import type { AdmissionAttributes } from '../admission.ts';
import { namespaceSelectorMatches, objectSelectorMatches, ruleMatches } from './matching.ts';

const attrs = (over: Partial<AdmissionAttributes> = {}): AdmissionAttributes => ({
  operation: 'CREATE',
  group: 'apps',
  version: 'v1',
  kind: 'Deployment',
  resource: 'deployments',
  subresource: '',
  namespace: 'ns',
  name: 'd',
  user: { name: 'u', groups: [] },
  dryRun: false,
  ...over,
});

const rule = (over: Partial<RuleWithOperations> = {}): RuleWithOperations => ({
  operations: ['CREATE'],
  apiGroups: ['apps'],
  apiVersions: ['v1'],
  resources: ['deployments'],
  ...over,
});

describe('ruleMatches', () => {
  const cases: [string, RuleWithOperations, Partial<AdmissionAttributes>, boolean][] = [
    ['exact', rule(), {}, true],
    ['other operation', rule(), { operation: 'UPDATE' }, false],
    ['operation *', rule({ operations: ['*'] }), { operation: 'DELETE' }, true],
    ['other group', rule(), { group: '' }, false],
    ['group *', rule({ apiGroups: ['*'] }), { group: 'batch' }, true],
    ['other version', rule(), { version: 'v1beta1' }, false],
    ['resource * is not a subresource', rule({ resources: ['*'] }), { subresource: 'scale' }, false],
    ['resource * matches a resource', rule({ resources: ['*'] }), { resource: 'replicasets' }, true],
    ['*/* matches a subresource', rule({ resources: ['*/*'] }), { subresource: 'status' }, true],
    ['r/* matches its subresources', rule({ resources: ['deployments/*'] }), { subresource: 'scale' }, true],
    ['r/* also matches the resource itself', rule({ resources: ['deployments/*'] }), {}, true],
    [
      "*/s matches any resource's s",
      rule({ resources: ['*/scale'] }),
      { resource: 'statefulsets', subresource: 'scale' },
      true,
    ],
    ['r/s exact', rule({ resources: ['deployments/status'] }), { subresource: 'status' }, true],
    ['r without s is not r/s', rule(), { subresource: 'status' }, false],
    ['scope Namespaced', rule({ scope: 'Namespaced' }), {}, true],
    ['scope Cluster on a namespaced object', rule({ scope: 'Cluster' }), {}, false],
    ['scope Cluster on a cluster object', rule({ scope: 'Cluster' }), { namespace: '' }, true],
    [
      'a Namespace is cluster-scoped',
      rule({ apiGroups: [''], resources: ['namespaces'], scope: 'Cluster' }),
      { group: '', resource: 'namespaces', namespace: 'ns' },
      true,
    ],
  ];
  for (const [name, r, a, want] of cases) it(name, () => assert.equal(ruleMatches(r, attrs(a)), want));
});

describe('selectors', () => {
  const labels = async (ns: string): Promise<Record<string, string>> =>
    ns === 'prod' ? { env: 'prod' } : {};
  const sel = { matchLabels: { env: 'prod' } };

  it('namespaceSelector reads the namespace labels; cluster-scoped objects always match', async () => {
    assert.equal(await namespaceSelectorMatches(sel, attrs({ namespace: 'prod' }), labels), true);
    assert.equal(await namespaceSelectorMatches(sel, attrs({ namespace: 'dev' }), labels), false);
    assert.equal(await namespaceSelectorMatches(sel, attrs({ namespace: '' }), labels), true);
    assert.equal(await namespaceSelectorMatches({}, attrs({ namespace: 'dev' }), labels), true);
  });

  it('a Namespace is matched by its own labels', async () => {
    const ns = { metadata: { name: 'x', labels: { env: 'prod' } } };
    const a = attrs({ group: '', resource: 'namespaces', namespace: 'x', object: ns });
    assert.equal(await namespaceSelectorMatches(sel, a, labels), true);
  });

  it('objectSelector matches the new or the old object', () => {
    const on = { metadata: { name: 'a', labels: { env: 'prod' } } };
    const off = { metadata: { name: 'a' } };
    assert.equal(objectSelectorMatches(sel, attrs({ object: on })), true);
    assert.equal(objectSelectorMatches(sel, attrs({ object: off, oldObject: on })), true);
    assert.equal(objectSelectorMatches(sel, attrs({ object: off })), false);
  });
});
