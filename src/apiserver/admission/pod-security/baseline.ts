// The baseline Pod Security Standard: what a pod may not do even when it is
// not hardened. One check per upstream check_*.go file, with its ID,
// forbidden reason and detail text, so kubectl users see the same messages.
// https://kubernetes.io/docs/concepts/security/pod-security-standards/#baseline

import type { Container, LifecycleHandler, PodSpec, Probe } from '../../../api/types/core-v1.ts';
import {
  allContainers,
  type Check,
  containersNamed,
  containersWhere,
  goQuote,
  joinQuote,
  type PodView,
  pluralize,
  setters,
  sortedSet,
  type Violation,
} from './policy.ts';

const APPARMOR_ANNOTATION_PREFIX = 'container.apparmor.security.beta.kubernetes.io/';

const appArmorAnnotationAllowed = (v: string) =>
  v === '' || v === 'runtime/default' || v.startsWith('localhost/');
const appArmorTypeAllowed = (t: string | undefined) => t === 'RuntimeDefault' || t === 'Localhost';

const appArmorProfile: Check = {
  id: 'appArmorProfile',
  level: 'baseline',
  since: 0,
  run({ metadata, spec }) {
    const badTypes: string[] = [];
    const podProfile = spec.securityContext?.appArmorProfile;
    const podBad = podProfile !== undefined && !appArmorTypeAllowed(podProfile.type);
    if (podBad) badTypes.push(podProfile?.type ?? '');
    const containers = containersWhere(spec, (c) => {
      const p = c.securityContext?.appArmorProfile;
      if (p === undefined || appArmorTypeAllowed(p.type)) return false;
      badTypes.push(p.type ?? '');
      return true;
    });
    const annotations = Object.entries(metadata.annotations ?? {})
      .filter(([k, v]) => k.startsWith(APPARMOR_ANNOTATION_PREFIX) && !appArmorAnnotationAllowed(v))
      .map(([k, v]) => `${k}=${goQuote(v)}`)
      .sort();
    const who = setters(podBad, containers);
    if (annotations.length > 0) who.push(pluralize('annotation', 'annotations', annotations.length));
    if (who.length === 0) return undefined;
    const values = [...sortedSet(badTypes), ...annotations];
    return {
      reason: pluralize('forbidden AppArmor profile', 'forbidden AppArmor profiles', values.length),
      detail: `${who.join(' and ')} must not set AppArmor profile type to ${joinQuote(values)}`,
    };
  },
};

/** The capabilities container runtimes grant by default. */
const DEFAULT_CAPABILITIES = new Set([
  'AUDIT_WRITE',
  'CHOWN',
  'DAC_OVERRIDE',
  'FOWNER',
  'FSETID',
  'KILL',
  'MKNOD',
  'NET_BIND_SERVICE',
  'SETFCAP',
  'SETGID',
  'SETPCAP',
  'SETUID',
  'SYS_CHROOT',
]);

const capabilitiesBaseline: Check = {
  id: 'capabilities_baseline',
  level: 'baseline',
  since: 0,
  run({ spec }) {
    const caps: string[] = [];
    const bad = containersWhere(spec, (c) => {
      const extra = (c.securityContext?.capabilities?.add ?? []).filter(
        (cap) => !DEFAULT_CAPABILITIES.has(cap),
      );
      caps.push(...extra);
      return extra.length > 0;
    });
    if (bad.length === 0) return undefined;
    return {
      reason: 'non-default capabilities',
      detail: `${containersNamed(bad)} must not include ${joinQuote(sortedSet(caps))} in securityContext.capabilities.add`,
    };
  },
};

const hostNamespaces: Check = {
  id: 'hostNamespaces',
  level: 'baseline',
  since: 0,
  run({ spec }) {
    const set = [
      spec.hostNetwork && 'hostNetwork=true',
      spec.hostPID && 'hostPID=true',
      spec.hostIPC && 'hostIPC=true',
    ].filter((s): s is string => typeof s === 'string');
    return set.length > 0 ? { reason: 'host namespaces', detail: set.join(', ') } : undefined;
  },
};

const hostPathVolumes: Check = {
  id: 'hostPathVolumes',
  level: 'baseline',
  since: 0,
  run({ spec }) {
    const names = (spec.volumes ?? []).filter((v) => v.hostPath !== undefined).map((v) => v.name ?? '');
    if (names.length === 0) return undefined;
    return {
      reason: 'hostPath volumes',
      detail: `${pluralize('volume', 'volumes', names.length)} ${joinQuote(names)}`,
    };
  },
};

const hostPorts: Check = {
  id: 'hostPorts',
  level: 'baseline',
  since: 0,
  run({ spec }) {
    const ports: string[] = [];
    const bad = containersWhere(spec, (c) => {
      const used = (c.ports ?? []).filter((p) => (p.hostPort ?? 0) !== 0).map((p) => String(p.hostPort));
      ports.push(...used);
      return used.length > 0;
    });
    if (bad.length === 0) return undefined;
    // Upstream keeps the ports in a string set, so they sort as strings.
    const list = sortedSet(ports);
    return {
      reason: 'hostPort',
      detail: `${containersNamed(bad)} ${pluralize('uses', 'use', bad.length)} ${pluralize('hostPort', 'hostPorts', list.length)} ${list.join(', ')}`,
    };
  },
};

const probeHosts = (p: Probe | LifecycleHandler | undefined) =>
  [p?.httpGet?.host, p?.tcpSocket?.host].filter((h): h is string => !!h);

const containerHosts = (c: Container) => [
  ...probeHosts(c.livenessProbe),
  ...probeHosts(c.readinessProbe),
  ...probeHosts(c.startupProbe),
  ...probeHosts(c.lifecycle?.postStart),
  ...probeHosts(c.lifecycle?.preStop),
];

/** A probe or hook's host makes the kubelet connect anywhere, e.g. to node-local services. */
const hostProbesAndHostLifecycle: Check = {
  id: 'hostProbesAndHostLifecycle',
  level: 'baseline',
  since: 34,
  run({ spec }) {
    const hosts: string[] = [];
    const bad: string[] = [];
    for (const c of allContainers(spec)) {
      const h = containerHosts(c);
      if (h.length === 0) continue;
      hosts.push(...h);
      bad.push(c.name ?? '');
    }
    if (bad.length === 0) return undefined;
    // Both are sets upstream, so the container names sort too.
    const names = sortedSet(bad);
    const list = sortedSet(hosts);
    return {
      reason: 'probe or lifecycle host',
      detail: `${containersNamed(names)} ${pluralize('uses', 'use', names.length)} ${pluralize('probe or lifecycle host', 'probe or lifecycle hosts', list.length)} ${joinQuote(list)}`,
    };
  },
};

const privileged: Check = {
  id: 'privileged',
  level: 'baseline',
  since: 0,
  run({ spec }) {
    const bad = containersWhere(spec, (c) => c.securityContext?.privileged === true);
    if (bad.length === 0) return undefined;
    return {
      reason: 'privileged',
      detail: `${containersNamed(bad)} must not set securityContext.privileged=true`,
    };
  },
};

/** A pod in its own user namespace (hostUsers: false): its root is not the node's root. */
export const inUserNamespace = (spec: PodSpec) => spec.hostUsers === false;

/** The procMount rule itself; restricted applies it even to user-namespaced pods. */
export function procMountViolation(spec: PodSpec): Violation | undefined {
  const types: string[] = [];
  const bad = containersWhere(spec, (c) => {
    const t = c.securityContext?.procMount;
    if (t === undefined || t === 'Default') return false;
    types.push(t);
    return true;
  });
  if (bad.length === 0) return undefined;
  return {
    reason: 'procMount',
    detail: `${containersNamed(bad)} must not set securityContext.procMount to ${joinQuote(sortedSet(types))}`,
  };
}

/** From v1.35 baseline lets a user-namespaced pod unmask /proc, which then only exposes its own namespace. */
const procMount: Check = {
  id: 'procMount',
  level: 'baseline',
  since: 0,
  run: ({ spec }, minor) => (minor >= 35 && inUserNamespace(spec) ? undefined : procMountViolation(spec)),
};

const seLinuxTypes = (minor: number) =>
  new Set([
    '',
    'container_t',
    'container_init_t',
    'container_kvm_t',
    ...(minor >= 31 ? ['container_engine_t'] : []),
  ]);

const seLinuxOptions: Check = {
  id: 'seLinuxOptions',
  level: 'baseline',
  since: 0,
  run({ spec }, minor) {
    const allowed = seLinuxTypes(minor);
    const badTypes: string[] = [];
    let user = false;
    let role = false;
    const bad = (o: { type?: string; user?: string; role?: string } | undefined) => {
      if (o === undefined) return false;
      const typeBad = !allowed.has(o.type ?? '');
      if (typeBad) badTypes.push(o.type ?? '');
      user ||= !!o.user;
      role ||= !!o.role;
      return typeBad || !!o.user || !!o.role;
    };
    const podBad = bad(spec.securityContext?.seLinuxOptions);
    const containers = containersWhere(spec, (c) => bad(c.securityContext?.seLinuxOptions));
    const who = setters(podBad, containers);
    if (who.length === 0) return undefined;
    const types = sortedSet(badTypes);
    // Before v1.31 upstream only mentioned user and role next to a bad type.
    const sayUserRole = minor >= 31 || types.length > 0;
    const what = [
      ...(types.length > 0 ? [`${pluralize('type', 'types', types.length)} ${joinQuote(types)}`] : []),
      ...(user && sayUserRole ? ['user may not be set'] : []),
      ...(role && sayUserRole ? ['role may not be set'] : []),
    ];
    return {
      reason: 'seLinuxOptions',
      detail: `${who.join(' and ')} set forbidden securityContext.seLinuxOptions: ${what.join('; ')}`,
    };
  },
};

export const seccompTypeAllowed = (t: string | undefined) => t === 'RuntimeDefault' || t === 'Localhost';

export const SECCOMP_POD_ANNOTATION = 'seccomp.security.alpha.kubernetes.io/pod';
export const SECCOMP_CONTAINER_ANNOTATION_PREFIX = 'container.seccomp.security.alpha.kubernetes.io/';
const seccompAnnotationAllowed = (v: string) =>
  v === 'runtime/default' || v === 'docker/default' || v.startsWith('localhost/');

/** Before v1.19 (no seccompProfile field yet) the profile was set by alpha annotations. */
function seccompAnnotationsViolation({ metadata, spec }: PodView): Violation | undefined {
  const ann = metadata.annotations ?? {};
  const keys = [
    SECCOMP_POD_ANNOTATION,
    ...allContainers(spec).map((c) => SECCOMP_CONTAINER_ANNOTATION_PREFIX + (c.name ?? '')),
  ];
  const bad = sortedSet(
    keys.flatMap((k) => {
      const v = ann[k];
      return v !== undefined && !seccompAnnotationAllowed(v) ? [`${k}=${goQuote(v)}`] : [];
    }),
  );
  if (bad.length === 0) return undefined;
  return {
    reason: 'seccompProfile',
    detail: `forbidden ${pluralize('annotation', 'annotations', bad.length)} ${bad.join(', ')}`,
  };
}

/** Baseline forbids only an explicit Unconfined (or unknown) seccomp profile. */
const seccompProfileBaseline: Check = {
  id: 'seccompProfile_baseline',
  level: 'baseline',
  since: 0,
  run(pod, minor) {
    if (minor < 19) return seccompAnnotationsViolation(pod);
    const { spec } = pod;
    const values: string[] = [];
    const podProfile = spec.securityContext?.seccompProfile;
    const podBad = podProfile !== undefined && !seccompTypeAllowed(podProfile.type);
    if (podBad) values.push(podProfile?.type ?? '');
    const containers = containersWhere(spec, (c) => {
      const p = c.securityContext?.seccompProfile;
      if (p === undefined || seccompTypeAllowed(p.type)) return false;
      values.push(p.type ?? '');
      return true;
    });
    const who = setters(podBad, containers);
    if (who.length === 0) return undefined;
    return {
      reason: 'seccompProfile',
      detail: `${who.join(' and ')} must not set securityContext.seccompProfile.type to ${joinQuote(sortedSet(values))}`,
    };
  },
};

/** Namespaced sysctls isolated from other pods, by the policy version that allowed them. */
const SAFE_SYSCTLS: readonly [since: number, names: readonly string[]][] = [
  [
    0,
    [
      'kernel.shm_rmid_forced',
      'net.ipv4.ip_local_port_range',
      'net.ipv4.tcp_syncookies',
      'net.ipv4.ping_group_range',
      'net.ipv4.ip_unprivileged_port_start',
    ],
  ],
  [27, ['net.ipv4.ip_local_reserved_ports']],
  [
    29,
    [
      'net.ipv4.tcp_keepalive_time',
      'net.ipv4.tcp_fin_timeout',
      'net.ipv4.tcp_keepalive_intvl',
      'net.ipv4.tcp_keepalive_probes',
    ],
  ],
  [32, ['net.ipv4.tcp_rmem', 'net.ipv4.tcp_wmem']],
  [37, ['net.ipv4.tcp_slow_start_after_idle', 'net.ipv4.tcp_notsent_lowat']],
];

const safeSysctls = (minor: number) =>
  new Set(SAFE_SYSCTLS.filter(([since]) => since <= minor).flatMap(([, names]) => names));

const sysctls: Check = {
  id: 'sysctls',
  level: 'baseline',
  since: 0,
  run({ spec }, minor) {
    const safe = safeSysctls(minor);
    const bad = (spec.securityContext?.sysctls ?? []).map((s) => s.name ?? '').filter((n) => !safe.has(n));
    return bad.length > 0 ? { reason: 'forbidden sysctls', detail: bad.join(', ') } : undefined;
  },
};

const windowsHostProcess: Check = {
  id: 'windowsHostProcess',
  level: 'baseline',
  since: 0,
  run({ spec }) {
    const podBad = spec.securityContext?.windowsOptions?.hostProcess === true;
    const containers = containersWhere(spec, (c) => c.securityContext?.windowsOptions?.hostProcess === true);
    const who = setters(podBad, containers);
    if (who.length === 0) return undefined;
    return {
      reason: 'hostProcess',
      detail: `${who.join(' and ')} must not set securityContext.windowsOptions.hostProcess=true`,
    };
  },
};

export const BASELINE_CHECKS: readonly Check[] = [
  appArmorProfile,
  capabilitiesBaseline,
  hostNamespaces,
  hostPathVolumes,
  hostPorts,
  hostProbesAndHostLifecycle,
  privileged,
  procMount,
  seLinuxOptions,
  seccompProfileBaseline,
  sysctls,
  windowsHostProcess,
];
