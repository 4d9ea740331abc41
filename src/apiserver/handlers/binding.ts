// Binding: the scheduler's write of a pod's node (pods/binding, or a POST
// to the bindings resource), admitted as a Binding.

import { ApiError, successStatus } from '../../api/errors.ts';
import type { KubeObject } from '../../api/meta.ts';
import { writeJSON } from '../http.ts';
import type { ResourceStorage } from '../rest.ts';
import type { RequestScope } from './context.ts';
import { isDryRun } from './query.ts';

/** Binds a pod to the Binding's target node (pods/binding, and the bindings resource). */
export async function bindPod(
  s: RequestScope,
  storage: ResourceStorage,
  ns: string | undefined,
  podName: string,
  body: KubeObject,
  subresource: 'binding' | '',
): Promise<void> {
  const { res, query } = s;
  const target = (body as { target?: { name?: string; kind?: string } }).target;
  if (!target?.name) throw new ApiError(422, 'Invalid', 'Binding "" is invalid: target.name: Required value');
  // Admitted as a Binding: pods/binding, or the bindings resource.
  await s.admission.admitObject({
    operation: 'CREATE',
    group: '',
    version: 'v1',
    kind: 'Binding',
    resource: subresource === 'binding' ? 'pods' : 'bindings',
    subresource,
    namespace: ns ?? '',
    name: podName,
    object: { ...body, metadata: { ...body.metadata, namespace: ns ?? '' } },
    dryRun: isDryRun(query),
  });
  await storage.guaranteedUpdate(
    ns,
    podName,
    (pod) => {
      const spec = (pod.spec ?? {}) as { nodeName?: string };
      if (spec.nodeName) {
        throw new ApiError(
          409,
          'Conflict',
          `Operation cannot be fulfilled on pods/binding "${podName}": pod ${podName} is already assigned to node "${spec.nodeName}"`,
        );
      }
      if (pod.metadata.deletionTimestamp) {
        throw new ApiError(
          409,
          'Conflict',
          `Operation cannot be fulfilled on pods/binding "${podName}": pod ${podName} is being deleted, cannot be assigned to a host`,
        );
      }
      pod.spec = { ...spec, nodeName: target.name };
      const status = (pod.status ?? {}) as { conditions?: Array<{ type: string }> };
      pod.status = {
        ...status,
        conditions: [
          ...(status.conditions ?? []).filter((c) => c.type !== 'PodScheduled'),
          {
            type: 'PodScheduled',
            status: 'True',
            lastProbeTime: null,
            lastTransitionTime: new Date().toISOString().slice(0, 19) + 'Z',
          },
        ],
      };
      return pod;
    },
    // Binding writes spec.nodeName and the PodScheduled condition together.
    { dryRun: isDryRun(query), subresource: 'binding' },
  );
  return writeJSON(res, 201, successStatus());
}
