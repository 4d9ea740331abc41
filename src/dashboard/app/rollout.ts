// kubectl rollout undo in the browser: back to the previous revision of a
// Deployment (its ReplicaSets), StatefulSet or DaemonSet (their
// ControllerRevisions). The rules are in rollout-plan.ts.

import { request } from './api.ts';
import type { ResourceType } from './discovery.ts';
import { resourcePath } from './discovery.ts';
import { deploymentUndo, historyUndo } from './rollout-plan.ts';

/** The kinds with rollouts: restart and undo apply to them. */
export const ROLLOUT_KINDS = new Set(['apps/deployments', 'apps/statefulsets', 'apps/daemonsets']);

/** Rolls obj back; resolves with what was done, rejects with the API's or kubectl's reason. */
export async function rolloutUndo(type: ResourceType, obj: any): Promise<string> {
  const ns = encodeURIComponent(obj.metadata.namespace);
  const path = resourcePath(type, obj.metadata.namespace, obj.metadata.name);
  if (type.resource === 'deployments') {
    const replicaSets = (await request(`/apis/apps/v1/namespaces/${ns}/replicasets`)).items;
    const plan = deploymentUndo(obj, replicaSets);
    if ('error' in plan) throw new Error(plan.error);
    await request(path, { method: 'PATCH', body: plan.patch, contentType: 'application/json-patch+json' });
  } else {
    const revisions = (await request(`/apis/apps/v1/namespaces/${ns}/controllerrevisions`)).items;
    const plan = historyUndo({ ...obj, kind: type.kind }, revisions);
    if ('error' in plan) throw new Error(plan.error);
    await request(path, {
      method: 'PATCH',
      body: plan.patch,
      contentType: 'application/strategic-merge-patch+json',
    });
  }
  return 'Rolled back';
}
