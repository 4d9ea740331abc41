// Where the pod spec lives in the objects PodSecurity looks at, and which pod
// updates are worth re-checking, as upstream's DefaultPodSpecExtractor and
// isSignificantPodUpdate.

import type { KubeObject } from '../../../api/meta.ts';
import type { Container, Pod, PodTemplateSpec } from '../../../api/types/core-v1.ts';
import { SECCOMP_CONTAINER_ANNOTATION_PREFIX, SECCOMP_POD_ANNOTATION } from './baseline.ts';
import type { PodView } from './policy.ts';

/** The workload resources whose pod template is warned and audited on (never enforced). */
const TEMPLATE_PATHS: Record<string, readonly string[]> = {
  '/replicationcontrollers': ['spec', 'template'],
  '/podtemplates': ['template'],
  'apps/replicasets': ['spec', 'template'],
  'apps/deployments': ['spec', 'template'],
  'apps/statefulsets': ['spec', 'template'],
  'apps/daemonsets': ['spec', 'template'],
  'batch/jobs': ['spec', 'template'],
  'batch/cronjobs': ['spec', 'jobTemplate', 'spec', 'template'],
};

export const hasPodTemplate = (group: string, resource: string) => `${group}/${resource}` in TEMPLATE_PATHS;

/** The pod template of a workload, or undefined when it has none (an optional template left out). */
export function podTemplateOf(group: string, resource: string, obj: KubeObject): PodView | undefined {
  const path = TEMPLATE_PATHS[`${group}/${resource}`];
  if (!path) return undefined;
  let at: unknown = obj;
  for (const key of path) at = (at as Record<string, unknown> | undefined)?.[key];
  const template = at as PodTemplateSpec | undefined;
  if (!template) return undefined;
  return { metadata: template.metadata ?? {}, spec: template.spec ?? {} };
}

/**
 * Whether an update can change the verdict. A pod's security fields are
 * immutable, so upstream re-checks only what may change: container images,
 * the seccomp annotations, and added ephemeral containers. Anything else
 * (labels, annotations, status) is let through unchecked, so a pod admitted
 * before its namespace was labelled can still be updated.
 */
export function isSignificantPodUpdate(pod: Pod, old: Pod): boolean {
  const ann = pod.metadata.annotations ?? {};
  const oldAnn = old.metadata.annotations ?? {};
  if (ann[SECCOMP_POD_ANNOTATION] !== oldAnn[SECCOMP_POD_ANNOTATION]) return true;
  const changed = (c: Container, o: Container) => {
    const key = SECCOMP_CONTAINER_ANNOTATION_PREFIX + (c.name ?? '');
    return c.image !== o.image || ann[key] !== oldAnn[key];
  };
  for (const field of ['containers', 'initContainers'] as const) {
    const now = pod.spec?.[field] ?? [];
    const before = old.spec?.[field] ?? [];
    if (now.length !== before.length) return true;
    if (now.some((c, i) => changed(c, before[i] as Container))) return true;
  }
  const oldEphemeral = old.spec?.ephemeralContainers ?? [];
  return (pod.spec?.ephemeralContainers ?? []).some((c) => {
    const o = oldEphemeral.find((e) => e.name === c.name);
    return o === undefined || changed(c, o);
  });
}
