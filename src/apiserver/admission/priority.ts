// The Priority admission plugin (upstream plugin/pkg/admission/priority):
// a new pod's spec.priority and spec.preemptionPolicy come from its
// PriorityClass; a pod naming none gets the globalDefault class (the lowest
// one, should a race have made two), or priority 0 when there is none. An
// update keeps what creation set. Subresources are not looked at.

import { ApiError } from '../../api/errors.ts';
import type { KubeObject } from '../../api/meta.ts';
import type { MutatingPlugin } from './admission.ts';

export interface PriorityOptions {
  /** Every PriorityClass. */
  listPriorityClasses(): Promise<KubeObject[]>;
}

export function priorityPlugin(opts: PriorityOptions): MutatingPlugin {
  return {
    name: 'Priority',
    handles: (a) =>
      a.group === '' &&
      a.resource === 'pods' &&
      a.subresource === '' &&
      (a.operation === 'CREATE' || a.operation === 'UPDATE'),
    async admit(a) {
      if (!a.object) return undefined;
      if (a.operation === 'UPDATE') {
        if (a.oldObject) preservePodPriority(a.object, a.oldObject);
        return undefined;
      }
      admitPodPriority(a.object, await opts.listPriorityClasses());
      return undefined;
    },
  };
}

interface PodSpecPriority {
  priorityClassName?: string;
  priority?: number;
  preemptionPolicy?: string;
}

interface PriorityClassFields {
  value?: number;
  globalDefault?: boolean;
  preemptionPolicy?: string;
}

/** admission.NewForbidden: `pods "<name or generateName>" is forbidden: <why>`. */
function forbiddenPod(pod: KubeObject, why: string): ApiError {
  const name = pod.metadata.name || pod.metadata.generateName || 'Unknown';
  return new ApiError(403, 'Forbidden', `pods "${name}" is forbidden: ${why}`, { name, kind: 'pods' });
}

/** Mutates a pod being created; `classes` are every PriorityClass. */
export function admitPodPriority(pod: KubeObject, classes: KubeObject[]): void {
  const spec = (pod.spec ?? {}) as PodSpecPriority;
  pod.spec = spec as Record<string, unknown>;
  let priority = 0;
  // Without any class: priority 0 and upstream's default policy.
  let policy: string | undefined = 'PreemptLowerPriority';
  if (!spec.priorityClassName) {
    let dflt: (KubeObject & PriorityClassFields) | undefined;
    for (const pc of classes as (KubeObject & PriorityClassFields)[]) {
      if (pc.globalDefault && (!dflt || (pc.value ?? 0) < (dflt.value ?? 0))) dflt = pc;
    }
    if (dflt) {
      spec.priorityClassName = dflt.metadata.name;
      priority = dflt.value ?? 0;
      policy = dflt.preemptionPolicy;
    }
  } else {
    const pc = classes.find((c) => c.metadata.name === spec.priorityClassName) as
      | (KubeObject & PriorityClassFields)
      | undefined;
    if (!pc) throw forbiddenPod(pod, `no PriorityClass with name ${spec.priorityClassName} was found`);
    priority = pc.value ?? 0;
    policy = pc.preemptionPolicy;
  }
  if (spec.priority !== undefined && spec.priority !== null && spec.priority !== priority) {
    throw forbiddenPod(
      pod,
      `the integer value of priority (${spec.priority}) must not be provided in pod spec; priority admission controller computed ${priority} from the given PriorityClass name`,
    );
  }
  spec.priority = priority;
  if (policy) {
    if (spec.preemptionPolicy && spec.preemptionPolicy !== policy) {
      throw forbiddenPod(
        pod,
        `the string value of PreemptionPolicy (${spec.preemptionPolicy}) must not be provided in pod spec; priority admission controller computed ${policy} from the given PriorityClass name`,
      );
    }
    spec.preemptionPolicy = policy;
  }
}

/**
 * On update the plugin only keeps what it set at creation: a client that
 * replaces the pod without these fields must not look like it changed them.
 */
export function preservePodPriority(pod: KubeObject, current: KubeObject): void {
  const spec = pod.spec as PodSpecPriority | undefined;
  const old = current.spec as PodSpecPriority | undefined;
  if (!spec || !old) return;
  if (spec.priority === undefined && old.priority !== undefined) spec.priority = old.priority;
  if (spec.preemptionPolicy === undefined && old.preemptionPolicy !== undefined)
    spec.preemptionPolicy = old.preemptionPolicy;
}
