// The restricted Pod Security Standard: the hardening a pod must opt into on
// top of baseline. One check per upstream check_*.go file, with its ID,
// forbidden reason and detail text.
// https://kubernetes.io/docs/concepts/security/pod-security-standards/#restricted

import type { Volume } from '../../../api/types/core-v1.ts';
import { inUserNamespace, procMountViolation, seccompTypeAllowed } from './baseline.ts';
import {
  type Check,
  containersNamed,
  containersWhere,
  isWindowsPod,
  joinQuote,
  pluralize,
  setters,
  sortedSet,
} from './policy.ts';

// Windows pods are exempt from the Linux-only checks from v1.25 on: the API
// rejects those fields on a pod with spec.os.name=windows anyway.
const WINDOWS_EXEMPT_SINCE = 25;
const windowsExempt = (spec: Parameters<typeof isWindowsPod>[0], minor: number) =>
  minor >= WINDOWS_EXEMPT_SINCE && isWindowsPod(spec);

const allowPrivilegeEscalation: Check = {
  id: 'allowPrivilegeEscalation',
  level: 'restricted',
  since: 8,
  run({ spec }, minor) {
    if (windowsExempt(spec, minor)) return undefined;
    const bad = containersWhere(spec, (c) => c.securityContext?.allowPrivilegeEscalation !== false);
    if (bad.length === 0) return undefined;
    return {
      reason: 'allowPrivilegeEscalation != false',
      detail: `${containersNamed(bad)} must set securityContext.allowPrivilegeEscalation=false`,
    };
  },
};

const capabilitiesRestricted: Check = {
  id: 'capabilities_restricted',
  level: 'restricted',
  since: 22,
  overrides: ['capabilities_baseline'],
  run({ spec }, minor) {
    if (windowsExempt(spec, minor)) return undefined;
    const missingDropAll = containersWhere(
      spec,
      (c) => !(c.securityContext?.capabilities?.drop ?? []).includes('ALL'),
    );
    const added: string[] = [];
    const addingForbidden = containersWhere(spec, (c) => {
      const extra = (c.securityContext?.capabilities?.add ?? []).filter((cap) => cap !== 'NET_BIND_SERVICE');
      added.push(...extra);
      return extra.length > 0;
    });
    const details: string[] = [];
    if (missingDropAll.length > 0)
      details.push(`${containersNamed(missingDropAll)} must set securityContext.capabilities.drop=["ALL"]`);
    if (addingForbidden.length > 0)
      details.push(
        `${containersNamed(addingForbidden)} must not include ${joinQuote(sortedSet(added))} in securityContext.capabilities.add`,
      );
    return details.length > 0
      ? { reason: 'unrestricted capabilities', detail: details.join('; ') }
      : undefined;
  },
};

/** Volume types a restricted pod may use: ones that do not reach the node or a storage backend directly. */
const ALLOWED_VOLUME_SOURCES = [
  'configMap',
  'csi',
  'downwardAPI',
  'emptyDir',
  'ephemeral',
  'image',
  'persistentVolumeClaim',
  'projected',
  'secret',
] as const;

/** The forbidden sources upstream names, in its order; anything else is "unknown". */
const NAMED_VOLUME_SOURCES = [
  'hostPath',
  'gcePersistentDisk',
  'awsElasticBlockStore',
  'gitRepo',
  'nfs',
  'iscsi',
  'glusterfs',
  'rbd',
  'flexVolume',
  'cinder',
  'cephfs',
  'flocker',
  'fc',
  'azureFile',
  'vsphereVolume',
  'quobyte',
  'azureDisk',
  'photonPersistentDisk',
  'portworxVolume',
  'scaleIO',
  'storageos',
] as const;

const has = (v: Volume, key: string) => (v as Record<string, unknown>)[key] != null;

const restrictedVolumes: Check = {
  id: 'restrictedVolumes',
  level: 'restricted',
  since: 0,
  overrides: ['hostPathVolumes'],
  run({ spec }) {
    const bad: string[] = [];
    const types: string[] = [];
    for (const v of spec.volumes ?? []) {
      if (ALLOWED_VOLUME_SOURCES.some((k) => has(v, k))) continue;
      bad.push(v.name ?? '');
      types.push(NAMED_VOLUME_SOURCES.find((k) => has(v, k)) ?? 'unknown');
    }
    if (bad.length === 0) return undefined;
    const list = sortedSet(types);
    return {
      reason: 'restricted volume types',
      detail: `${pluralize('volume', 'volumes', bad.length)} ${joinQuote(bad)} ${pluralize('uses', 'use', bad.length)} ${pluralize('restricted volume type', 'restricted volume types', list.length)} ${joinQuote(list)}`,
    };
  },
};

// From v1.35 a pod in its own user namespace (hostUsers: false) may run as
// uid 0: that root maps to an unprivileged uid on the node.
const USER_NAMESPACE_RELAXED_SINCE = 35;
const runsInUserNamespace = (spec: Parameters<typeof inUserNamespace>[0], minor: number) =>
  minor >= USER_NAMESPACE_RELAXED_SINCE && inUserNamespace(spec);

/** Baseline relaxes procMount for user-namespaced pods from v1.35; restricted keeps the rule for everyone. */
const procMountRestricted: Check = {
  id: 'procMount_restricted',
  level: 'restricted',
  since: 35,
  overrides: ['procMount'],
  run: ({ spec }) => procMountViolation(spec),
};

const runAsNonRoot: Check = {
  id: 'runAsNonRoot',
  level: 'restricted',
  since: 0,
  run({ spec }, minor) {
    if (runsInUserNamespace(spec, minor)) return undefined;
    const podValue = spec.securityContext?.runAsNonRoot;
    const explicitlyBad = containersWhere(spec, (c) => c.securityContext?.runAsNonRoot === false);
    const who = setters(podValue === false, explicitlyBad);
    if (who.length > 0)
      return {
        reason: 'runAsNonRoot != true',
        detail: `${who.join(' and ')} must not set securityContext.runAsNonRoot=false`,
      };
    // A container that leaves it unset inherits the pod's value.
    const implicitlyBad =
      podValue === true ? [] : containersWhere(spec, (c) => c.securityContext?.runAsNonRoot === undefined);
    if (implicitlyBad.length === 0) return undefined;
    return {
      reason: 'runAsNonRoot != true',
      detail: `pod or ${containersNamed(implicitlyBad)} must set securityContext.runAsNonRoot=true`,
    };
  },
};

const runAsUser: Check = {
  id: 'runAsUser',
  level: 'restricted',
  since: 23,
  run({ spec }, minor) {
    if (runsInUserNamespace(spec, minor)) return undefined;
    const podBad = spec.securityContext?.runAsUser === 0;
    const containers = containersWhere(spec, (c) => c.securityContext?.runAsUser === 0);
    const who = setters(podBad, containers);
    if (who.length === 0) return undefined;
    return { reason: 'runAsUser=0', detail: `${who.join(' and ')} must not set runAsUser=0` };
  },
};

const seccompProfileRestricted: Check = {
  id: 'seccompProfile_restricted',
  level: 'restricted',
  since: 19,
  overrides: ['seccompProfile_baseline'],
  run({ spec }, minor) {
    if (windowsExempt(spec, minor)) return undefined;
    const values: string[] = [];
    const podProfile = spec.securityContext?.seccompProfile;
    const podBad = podProfile !== undefined && !seccompTypeAllowed(podProfile.type);
    if (podBad) values.push(podProfile?.type ?? '');
    const explicitlyBad = containersWhere(spec, (c) => {
      const p = c.securityContext?.seccompProfile;
      if (p === undefined || seccompTypeAllowed(p.type)) return false;
      values.push(p.type ?? '');
      return true;
    });
    const who = setters(podBad, explicitlyBad);
    if (who.length > 0)
      return {
        reason: 'seccompProfile',
        detail: `${who.join(' and ')} must not set securityContext.seccompProfile.type to ${joinQuote(sortedSet(values))}`,
      };
    // A container without its own profile is covered only by a valid pod-level one.
    const implicitlyBad =
      podProfile !== undefined
        ? []
        : containersWhere(spec, (c) => c.securityContext?.seccompProfile === undefined);
    if (implicitlyBad.length === 0) return undefined;
    return {
      reason: 'seccompProfile',
      detail: `pod or ${containersNamed(implicitlyBad)} must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost"`,
    };
  },
};

export const RESTRICTED_CHECKS: readonly Check[] = [
  allowPrivilegeEscalation,
  capabilitiesRestricted,
  procMountRestricted,
  restrictedVolumes,
  runAsNonRoot,
  runAsUser,
  seccompProfileRestricted,
];
