// Strategic merge patch metadata for the built-in Kubernetes types, taken
// from the patchStrategy/patchMergeKey tags in k8s.io/api (core/v1,
// apps/v1) and k8s.io/apimachinery (meta/v1 ObjectMeta).
//
// Rules match on path suffixes rather than per kind: a PodSpec sits at
// spec (Pod), template.spec (PodTemplate), spec.template.spec (Deployment,
// StatefulSet, DaemonSet, ReplicaSet, Job, ReplicationController) and
// spec.jobTemplate.spec.template.spec (CronJob), and one "spec.containers"
// rule covers all of them. Fields not listed (tolerations, envFrom,
// resources, readinessGates, ...) have no strategy: maps merge, lists are
// replaced.

import type { PatchFieldMeta, PatchSchema } from './strategic.ts';

/**
 * Builds a schema from rules keyed by dot-separated field paths. A rule
 * matches every path that ends with it; a leading "^" anchors it at the
 * root instead. When several rules match, the longest wins.
 */
export function createSuffixPatchSchema(rules: Readonly<Record<string, PatchFieldMeta>>): PatchSchema {
  // Indexed by last segment, the field being looked up.
  const byField = new Map<string, { segments: string[]; anchored: boolean; meta: PatchFieldMeta }[]>();
  for (const [pattern, meta] of Object.entries(rules)) {
    const anchored = pattern.startsWith('^');
    const segments = (anchored ? pattern.slice(1) : pattern).split('.');
    const field = segments.at(-1)!;
    const list = byField.get(field) ?? [];
    list.push({ segments, anchored, meta });
    list.sort((a, b) => b.segments.length - a.segments.length);
    byField.set(field, list);
  }
  return {
    fieldMeta(path) {
      const candidates = byField.get(path.at(-1) ?? '');
      if (!candidates) return undefined;
      for (const { segments, anchored, meta } of candidates) {
        if (anchored ? segments.length !== path.length : segments.length > path.length) continue;
        const offset = path.length - segments.length;
        if (segments.every((s, i) => path[offset + i] === s)) return meta;
      }
      return undefined;
    },
  };
}

const merge = (mergeKey?: string): PatchFieldMeta =>
  mergeKey === undefined ? { strategy: 'merge' } : { strategy: 'merge', mergeKey };

const containerLists = ['containers', 'initContainers', 'ephemeralContainers'];

const rules: Record<string, PatchFieldMeta> = {
  // ObjectMeta, on objects and on pod templates alike.
  'metadata.finalizers': merge(),
  'metadata.ownerReferences': merge('uid'),

  // PodSpec.
  'spec.volumes': { strategy: 'merge,retainKeys', mergeKey: 'name' },
  'spec.imagePullSecrets': merge('name'),
  'spec.hostAliases': merge('ip'),
  'spec.topologySpreadConstraints': merge('topologyKey'),
  'spec.schedulingGates': merge('name'),
  'spec.resourceClaims': { strategy: 'merge,retainKeys', mergeKey: 'name' },
  ...Object.fromEntries(containerLists.map((c) => [`spec.${c}`, merge('name')])),

  // Container and EphemeralContainer.
  ...Object.fromEntries(
    containerLists.flatMap((c) => [
      [`${c}.ports`, merge('containerPort')],
      [`${c}.env`, merge('name')],
      [`${c}.volumeMounts`, merge('mountPath')],
      [`${c}.volumeDevices`, merge('devicePath')],
    ]),
  ),

  // Status conditions of pods, nodes, namespaces, PVCs, services and the
  // apps/batch workloads all merge by type.
  'status.conditions': merge('type'),
  // PodStatus.
  'status.podIPs': merge('ip'),
  'status.hostIPs': merge('ip'),
  'status.resourceClaimStatuses': { strategy: 'merge,retainKeys', mergeKey: 'name' },
  // NodeSpec and NodeStatus.
  'spec.podCIDRs': merge(),
  'status.addresses': merge('type'),

  // ServiceSpec.
  'spec.ports': merge('port'),
  // ServiceAccount.
  '^secrets': merge('name'),
  // Mutating/ValidatingWebhookConfiguration.
  '^webhooks': merge('name'),
  // DeploymentSpec: switching to Recreate must be able to drop rollingUpdate.
  'spec.strategy': { strategy: 'retainKeys' },
};

/** Patch metadata for the common built-in Kubernetes types. */
export const kubernetesPatchSchema: PatchSchema = createSuffixPatchSchema(rules);
