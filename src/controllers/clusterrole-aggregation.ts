// The ClusterRole aggregation controller (upstream's
// clusterrole-aggregation, pkg/controller/clusterroleaggregation): a
// ClusterRole with an aggregationRule gets, as its rules, the rules of every
// ClusterRole its selectors match. This is how `admin`, `edit` and `view`
// grow when a CRD's installer adds a role labelled
// rbac.authorization.k8s.io/aggregate-to-view: "true".
//
// For each selector in turn, the matching roles by name (itself left out),
// each rule once; the role is written only when its rules differ.

import { type LabelSelector, selectorFromLabelSelector } from '../api/labels.ts';
import { jsonEqual } from '../api/meta.ts';
import type { ClusterRole, PolicyRule } from '../api/types/rbac-v1.ts';
import type { ControllerFactory } from './context.ts';
import { queueController } from './controller.ts';

/** The rules an aggregated role should hold, given every ClusterRole. */
export function aggregatedRules(role: ClusterRole, all: ClusterRole[]): PolicyRule[] {
  const rules: PolicyRule[] = [];
  const byName = [...all].sort((a, b) => (a.metadata.name ?? '').localeCompare(b.metadata.name ?? ''));
  for (const s of role.aggregationRule?.clusterRoleSelectors ?? []) {
    let selector: ReturnType<typeof selectorFromLabelSelector>;
    try {
      selector = selectorFromLabelSelector(s as LabelSelector);
    } catch {
      continue; // validation rejects invalid selectors; one that slipped in selects nothing
    }
    for (const other of byName) {
      if (other.metadata.name === role.metadata.name) continue;
      if (!selector.matches(other.metadata.labels ?? {})) continue;
      for (const r of other.rules ?? []) if (!rules.some((x) => jsonEqual(x, r))) rules.push(r);
    }
  }
  return rules;
}

export const clusterRoleAggregationController: ControllerFactory = (ctx) => {
  const roles = ctx.informers.informer('clusterRoles');

  const c = queueController(ctx, {
    name: 'clusterrole-aggregation',
    workers: 1,
    async sync(name) {
      const role = roles.indexer.get(name);
      if (!role?.aggregationRule) return;
      const rules = aggregatedRules(role, roles.indexer.list());
      if (jsonEqual(rules, role.rules ?? [])) return;
      // A conflict (the role changed meanwhile) is retried from a fresh cache.
      await ctx.clients.clusterRoles.update({ ...role, rules });
    },
  });

  // Any change to any ClusterRole may change what an aggregated one holds.
  const enqueueAggregated = () => {
    for (const r of roles.indexer.list()) if (r.aggregationRule) c.queue.add(r.metadata.name ?? '');
  };
  roles.on({ add: enqueueAggregated, update: enqueueAggregated, delete: enqueueAggregated });
  return c;
};
