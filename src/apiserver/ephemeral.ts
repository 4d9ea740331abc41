// pods/ephemeralcontainers: the one way to add an ephemeral container to a
// running pod (`kubectl debug`), as upstream's EphemeralContainersREST with
// podEphemeralContainersStrategy (pkg/registry/core/pod/strategy.go). GET
// answers the Pod; PUT and PATCH take a whole Pod but change nothing of it
// except spec.ephemeralContainers, and the result is validated by
// ValidatePodEphemeralContainersUpdate: containers may be added, never
// removed or changed. The kubelet then starts what was added.

import { deepCopy, type KubeObject } from '../api/meta.ts';
import type { ResourceType } from '../api/registry.ts';
import { validatePodEphemeralContainersUpdate } from '../api/resources/pod-validation.ts';
import type { TypeModel } from '../api/schema/index.ts';
import type { UpdateStrategy } from './rest.ts';

export const EPHEMERAL_CONTAINERS = 'ephemeralcontainers';

export function isEphemeralContainers(rt: ResourceType, subresource: string | undefined): boolean {
  return rt.group === '' && rt.kind === 'Pod' && subresource === EPHEMERAL_CONTAINERS;
}

/**
 * Upstream dropNonEphemeralContainerUpdates: the stored pod with the
 * request's spec.ephemeralContainers. Spec, status, labels, annotations,
 * finalizers and ownerReferences stay as stored; managedFields the request
 * carries are kept, as every update's are.
 */
function prepareForUpdate(next: KubeObject, current: KubeObject): KubeObject {
  const pod = deepCopy(current);
  const spec: Record<string, unknown> = { ...(pod.spec as Record<string, unknown> | undefined) };
  const ephemeral = (next.spec as { ephemeralContainers?: unknown } | undefined)?.ephemeralContainers;
  if (ephemeral === undefined || ephemeral === null) delete spec.ephemeralContainers;
  else spec.ephemeralContainers = ephemeral;
  pod.spec = spec;
  if (next.metadata?.managedFields !== undefined) pod.metadata.managedFields = next.metadata.managedFields;
  return pod;
}

export const ephemeralContainersStrategy: UpdateStrategy = {
  prepareForUpdate,
  validateUpdate: validatePodEphemeralContainersUpdate,
};

/**
 * The field manager's reset fields for this endpoint: upstream filters its
 * field sets down to spec.ephemeralContainers, so a manager writing here
 * owns nothing else; here that is every other field of the spec, the
 * metadata and the status.
 */
export function ephemeralContainersResetFields(model: TypeModel): string[][] {
  const fieldsOf = (message: string) => model.message(message)?.fields.map((f) => f.name) ?? [];
  return [
    ['status'],
    ...fieldsOf('k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta').map((f) => ['metadata', f]),
    ...fieldsOf('k8s.io.api.core.v1.PodSpec')
      .filter((f) => f !== 'ephemeralContainers')
      .map((f) => ['spec', f]),
  ];
}
