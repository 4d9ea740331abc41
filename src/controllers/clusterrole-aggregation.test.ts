import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { bootstrapMeta, rule } from '../apiserver/authz/bootstrap-policy.ts';
import { clusterRoleAggregationController } from './clusterrole-aggregation.ts';
import { type ControllerTest, startControllerTest } from './testing.ts';

let t: ControllerTest;
before(async () => {
  t = await startControllerTest({ 'clusterrole-aggregation': clusterRoleAggregationController });
});
after(() => t.close());

const rulesOf = async (name: string) => (await t.clients.clusterRoles.get(undefined, name)).rules ?? [];

describe('clusterrole aggregation controller', () => {
  it('fills an aggregated role from the roles its selectors match, and follows them', async () => {
    await t.clients.clusterRoles.create(undefined, {
      metadata: { name: 'monitoring' },
      aggregationRule: {
        clusterRoleSelectors: [{ matchLabels: { 'example.com/aggregate-to-monitoring': 'true' } }],
      },
    });
    const label = { 'example.com/aggregate-to-monitoring': 'true' };
    await t.clients.clusterRoles.create(undefined, {
      metadata: { name: 'b-widgets', labels: label },
      rules: [rule('get list', 'example.com', 'widgets')],
    });
    await t.clients.clusterRoles.create(undefined, {
      metadata: { name: 'a-gadgets', labels: label },
      rules: [rule('get', 'example.com', 'gadgets'), rule('get list', 'example.com', 'widgets')],
    });
    await t.clients.clusterRoles.create(undefined, {
      metadata: { name: 'unrelated' },
      rules: [rule('*', '*', '*')],
    });
    // By role name, each rule once: a-gadgets' two rules, then nothing new from b-widgets.
    await t.until('both roles aggregated', async () => (await rulesOf('monitoring')).length === 2);
    assert.deepEqual(await rulesOf('monitoring'), [
      rule('get', 'example.com', 'gadgets'),
      rule('get list', 'example.com', 'widgets'),
    ]);

    // A matching role changes, another stops matching: the aggregate follows.
    const b = await t.clients.clusterRoles.get(undefined, 'b-widgets');
    await t.clients.clusterRoles.update({ ...b, rules: [rule('watch', 'example.com', 'widgets')] });
    const a = await t.clients.clusterRoles.get(undefined, 'a-gadgets');
    await t.clients.clusterRoles.update({ ...a, metadata: { ...a.metadata, labels: {} } });
    await t.until('aggregate follows', async () => {
      const r = await rulesOf('monitoring');
      return r.length === 1 && r[0]?.verbs?.[0] === 'watch';
    });
  });

  it('chains: view aggregates into edit as upstream bootstrap labels them', async () => {
    await t.clients.clusterRoles.create(undefined, {
      metadata: bootstrapMeta('x-edit'),
      aggregationRule: { clusterRoleSelectors: [{ matchLabels: { 'x/aggregate-to-edit': 'true' } }] },
    });
    await t.clients.clusterRoles.create(undefined, {
      metadata: bootstrapMeta('x-view', { 'x/aggregate-to-edit': 'true' }),
      aggregationRule: { clusterRoleSelectors: [{ matchLabels: { 'x/aggregate-to-view': 'true' } }] },
    });
    await t.clients.clusterRoles.create(undefined, {
      metadata: bootstrapMeta('x-pods', { 'x/aggregate-to-view': 'true' }),
      rules: [rule('get', 'core', 'pods')],
    });
    await t.until('view, then edit, hold the rule', async () => (await rulesOf('x-edit')).length === 1);
    assert.deepEqual(await rulesOf('x-view'), [rule('get', 'core', 'pods')]);
  });
});
