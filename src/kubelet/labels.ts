// The labels and annotations the kubelet puts on sandboxes and containers, in
// upstream's own keys (pkg/kubelet/types/labels.go,
// pkg/kubelet/kuberuntime/labels.go). The runtime keeps them, so a restarted
// kubelet can tell from the runtime alone which pod and which container spec
// each container belongs to, and how often it has restarted.

import { createHash } from 'node:crypto';
import type { Container as ContainerSpec, Pod } from '../api/types/core-v1.ts';

export const KUBERNETES_POD_NAME_LABEL = 'io.kubernetes.pod.name';
export const KUBERNETES_POD_NAMESPACE_LABEL = 'io.kubernetes.pod.namespace';
export const KUBERNETES_POD_UID_LABEL = 'io.kubernetes.pod.uid';
export const KUBERNETES_CONTAINER_NAME_LABEL = 'io.kubernetes.container.name';

export const POD_DELETION_GRACE_PERIOD_ANNOTATION = 'io.kubernetes.pod.deletionGracePeriod';
export const POD_TERMINATION_GRACE_PERIOD_ANNOTATION = 'io.kubernetes.pod.terminationGracePeriod';
export const CONTAINER_HASH_ANNOTATION = 'io.kubernetes.container.hash';
export const CONTAINER_RESTART_COUNT_ANNOTATION = 'io.kubernetes.container.restartCount';
export const CONTAINER_TERMINATION_MESSAGE_PATH_ANNOTATION = 'io.kubernetes.container.terminationMessagePath';
export const CONTAINER_TERMINATION_MESSAGE_POLICY_ANNOTATION =
  'io.kubernetes.container.terminationMessagePolicy';
export const CONTAINER_PORTS_ANNOTATION = 'io.kubernetes.container.ports';

/** A sandbox's labels: the pod's own labels plus the kubelet's identity labels (newPodLabels). */
export function sandboxLabels(pod: Pod): Record<string, string> {
  return {
    ...pod.metadata.labels,
    [KUBERNETES_POD_NAME_LABEL]: pod.metadata.name ?? '',
    [KUBERNETES_POD_NAMESPACE_LABEL]: pod.metadata.namespace ?? '',
    [KUBERNETES_POD_UID_LABEL]: pod.metadata.uid ?? '',
  };
}

/** A container's labels (newContainerLabels). */
export function containerLabels(pod: Pod, container: ContainerSpec): Record<string, string> {
  return {
    [KUBERNETES_POD_NAME_LABEL]: pod.metadata.name ?? '',
    [KUBERNETES_POD_NAMESPACE_LABEL]: pod.metadata.namespace ?? '',
    [KUBERNETES_POD_UID_LABEL]: pod.metadata.uid ?? '',
    [KUBERNETES_CONTAINER_NAME_LABEL]: container.name ?? '',
  };
}

/** A container's annotations (newContainerAnnotations): what the kubelet must recover after a restart. */
export function containerAnnotations(
  pod: Pod,
  container: ContainerSpec,
  restartCount: number,
): Record<string, string> {
  const out: Record<string, string> = {
    [CONTAINER_HASH_ANNOTATION]: hashContainer(container),
    [CONTAINER_RESTART_COUNT_ANNOTATION]: String(restartCount),
    [CONTAINER_TERMINATION_MESSAGE_PATH_ANNOTATION]:
      container.terminationMessagePath ?? '/dev/termination-log',
    [CONTAINER_TERMINATION_MESSAGE_POLICY_ANNOTATION]: container.terminationMessagePolicy ?? 'File',
    [POD_TERMINATION_GRACE_PERIOD_ANNOTATION]: String(pod.spec?.terminationGracePeriodSeconds ?? 30),
  };
  if (pod.metadata.deletionGracePeriodSeconds !== undefined) {
    out[POD_DELETION_GRACE_PERIOD_ANNOTATION] = String(pod.metadata.deletionGracePeriodSeconds);
  }
  if (container.ports?.length) out[CONTAINER_PORTS_ANNOTATION] = JSON.stringify(container.ports);
  return out;
}

/**
 * The container spec's hash, without its resources (which can be resized in
 * place): a container whose spec changed, e.g. a new image, is restarted
 * (upstream's HashContainer).
 */
export function hashContainer(container: ContainerSpec): string {
  const { resources: _, ...rest } = container;
  return createHash('sha256').update(JSON.stringify(rest)).digest('hex').slice(0, 8);
}
