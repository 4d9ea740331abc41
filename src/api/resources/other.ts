// The remaining built-in groups: networking, discovery, coordination,
// events, RBAC, storage, policy, autoscaling and scheduling.

import type { KubeObject } from '../meta.ts';
import type { ResourceType } from '../registry.ts';
import { kind } from './common.ts';
import { eventsV1Conversion, hpaV1Conversion } from './conversion.ts';
import {
  rbacBindingDefaults,
  validateHorizontalPodAutoscaler,
  validateIngress,
  validateIngressClass,
  validateLease,
  validatePodDisruptionBudget,
  validatePriorityClass,
  validateRole,
  validateRoleBinding,
} from './other-validation.ts';
import {
  age,
  arr,
  asObj,
  child,
  col,
  formatLabelSelector,
  get,
  NONE,
  nameColumn,
  num,
  orNone,
} from './printers.ts';

// ---- networking.k8s.io/v1 -----------------------------------------------

function ingressHosts(ing: KubeObject): string {
  const hosts = arr<{ host?: string }>(get(ing, 'spec', 'rules'))
    .map((r) => r.host)
    .filter(Boolean);
  if (hosts.length === 0) return '*';
  return hosts.length > 4 ? `${hosts.slice(0, 4).join(',')} + ${hosts.length - 4} more...` : hosts.join(',');
}

const ingresses = kind({
  group: 'networking.k8s.io',
  version: 'v1',
  kind: 'Ingress',
  plural: 'ingresses',
  singular: 'ingress',
  shortNames: ['ing'],
  namespaced: true,
  status: true,
  generation: true,
  columns: [
    col('Class', 'string', 'The name of the IngressClass resource.'),
    col('Hosts', 'string', 'Hosts that incoming requests are matched against before the ingress rule'),
    col('Address', 'string', 'Address is a list containing ingress points for the load-balancer'),
    col('Ports', 'string', 'Ports of TLS configurations that open'),
  ],
  cells: (ing) => {
    const lb = arr<{ ip?: string; hostname?: string }>(get(ing, 'status', 'loadBalancer', 'ingress'))
      .map((i) => i.ip || i.hostname)
      .filter(Boolean);
    return [
      orNone(get(ing, 'spec', 'ingressClassName')),
      ingressHosts(ing),
      lb.join(','),
      arr(get(ing, 'spec', 'tls')).length > 0 ? '80, 443' : '80',
    ];
  },
  prepareCreate: (ing) => {
    ing.status = { loadBalancer: {} };
  },
  validateSpec: (ing) => validateIngress(ing),
});

const ingressclasses = kind({
  group: 'networking.k8s.io',
  version: 'v1',
  kind: 'IngressClass',
  plural: 'ingressclasses',
  singular: 'ingressclass',
  namespaced: false,
  generation: true,
  columns: [
    col('Controller', 'string', 'Controller that is responsible for handling this class'),
    col('Parameters', 'string', 'A reference to a resource with additional parameters'),
  ],
  cells: (ic) => {
    const p = asObj(get(ic, 'spec', 'parameters'));
    return [
      String(get(ic, 'spec', 'controller') ?? ''),
      p.name ? `${p.kind}.${p.apiGroup ?? ''}/${p.name}` : NONE,
    ];
  },
  defaults: (ic) => {
    const params = asObj(get(ic, 'spec', 'parameters'));
    if (get(ic, 'spec', 'parameters') && !params.scope) params.scope = 'Cluster';
  },
  validateSpec: (ic, old) => validateIngressClass(ic, old),
});

const networkpolicies = kind({
  group: 'networking.k8s.io',
  version: 'v1',
  kind: 'NetworkPolicy',
  plural: 'networkpolicies',
  singular: 'networkpolicy',
  shortNames: ['netpol'],
  namespaced: true,
  generation: true,
  columns: [col('Pod-Selector', 'string', 'Selects the pods to which this NetworkPolicy object applies.')],
  cells: (np) => [
    formatLabelSelector(get(np, 'spec', 'podSelector')) === NONE
      ? '<none>'
      : formatLabelSelector(get(np, 'spec', 'podSelector')),
  ],
  defaults: (np) => {
    const spec = child(np, 'spec');
    if (!spec.policyTypes) spec.policyTypes = spec.egress ? ['Ingress', 'Egress'] : ['Ingress'];
  },
});

// ---- discovery.k8s.io/v1 ------------------------------------------------

const endpointslices = kind({
  group: 'discovery.k8s.io',
  version: 'v1',
  kind: 'EndpointSlice',
  plural: 'endpointslices',
  singular: 'endpointslice',
  namespaced: true,
  // Upstream bumps it on any change outside metadata; the EndpointSlice
  // controller compares generations to tell whether its cache is stale.
  generation: true,
  columns: [
    col('AddressType', 'string', 'The IP protocol for this slice'),
    col('Ports', 'string', 'The ports of this slice'),
    col('Endpoints', 'string', 'The endpoints of this slice'),
  ],
  cells: (es) => {
    const ports = arr<{ port?: number }>(es.ports).map((p) => String(p.port ?? '<unset>'));
    const addrs = arr<{ addresses?: string[] }>(es.endpoints).flatMap((e) => e.addresses ?? []);
    const shown =
      addrs.length > 3 ? `${addrs.slice(0, 3).join(',')} + ${addrs.length - 3} more...` : addrs.join(',');
    return [
      String(es.addressType ?? ''),
      ports.length ? ports.join(',') : NONE,
      addrs.length ? shown : '<unset>',
    ];
  },
});

// ---- coordination.k8s.io/v1 ---------------------------------------------

const leases = kind({
  group: 'coordination.k8s.io',
  version: 'v1',
  kind: 'Lease',
  plural: 'leases',
  singular: 'lease',
  namespaced: true,
  createOnUpdate: false,
  columns: [
    col('Holder', 'string', 'holderIdentity contains the identity of the holder of a current lease.'),
  ],
  cells: (l) => [String(get(l, 'spec', 'holderIdentity') ?? '')],
  validateSpec: (l) => validateLease(l),
});

// ---- events.k8s.io/v1 ---------------------------------------------------

const eventsV1 = kind({
  group: 'events.k8s.io',
  version: 'v1',
  kind: 'Event',
  // Stored as core/v1 Events, like upstream: both APIs see the same events.
  storage: 'events',
  convert: eventsV1Conversion,
  plural: 'events',
  singular: 'event',
  shortNames: ['ev'],
  namespaced: true,
  nameRule: 'path',
  columns: [
    col('Type', 'string', 'Type of this event'),
    col('Reason', 'string', 'Why the action was taken'),
    col('Object', 'string', 'The object this event is about'),
    col('Message', 'string', 'A human-readable description'),
  ],
  ageIndex: 0,
  cells: (ev) => {
    const r = asObj(ev.regarding);
    return [
      String(ev.type ?? ''),
      String(ev.reason ?? ''),
      `${String(r.kind ?? '').toLowerCase()}/${r.name ?? ''}`,
      String(ev.note ?? ''),
    ];
  },
  fields: (ev) => {
    const r = asObj(ev.regarding);
    return {
      'regarding.kind': String(r.kind ?? ''),
      'regarding.name': String(r.name ?? ''),
      'regarding.namespace': String(r.namespace ?? ''),
      'regarding.uid': String(r.uid ?? ''),
      reason: String(ev.reason ?? ''),
      reportingController: String(ev.reportingController ?? ''),
      type: String(ev.type ?? ''),
    };
  },
});

// ---- rbac.authorization.k8s.io/v1 ---------------------------------------

const roleRefCell = (b: KubeObject) => {
  const ref = asObj(b.roleRef);
  return `${ref.kind}/${ref.name}`;
};

const subjects = (b: KubeObject, kindName: string) =>
  arr<{ kind?: string; name?: string; namespace?: string }>(b.subjects)
    .filter((s) => s.kind === kindName)
    .map((s) => (kindName === 'ServiceAccount' ? `${s.namespace ?? ''}/${s.name}` : s.name))
    .join(', ');

const bindingColumns = [
  col('Role', 'string', 'RoleRef is the reference to the role being bound.'),
  col('Users', 'string', 'Users in the binding', 1),
  col('Groups', 'string', 'Groups in the binding', 1),
  col('ServiceAccounts', 'string', 'ServiceAccounts in the binding', 1),
];

const bindingCells = (b: KubeObject) => [
  roleRefCell(b),
  subjects(b, 'User'),
  subjects(b, 'Group'),
  subjects(b, 'ServiceAccount'),
];

const rbac = (k: string, plural: string, namespaced: boolean, binding: boolean): ResourceType =>
  kind({
    group: 'rbac.authorization.k8s.io',
    version: 'v1',
    kind: k,
    plural,
    singular: k.toLowerCase(),
    namespaced,
    nameRule: 'path',
    columns: binding ? bindingColumns : [col('Created At', 'date', 'CreationTimestamp is a timestamp.')],
    noAge: !binding,
    cells: binding ? bindingCells : (r) => [r.metadata.creationTimestamp],
    ageIndex: binding ? 1 : 0,
    ...(binding ? { defaults: rbacBindingDefaults } : {}),
    validateSpec: binding
      ? (b, old) => validateRoleBinding(b, namespaced, old)
      : (r) => validateRole(r, namespaced),
  });

// ---- storage.k8s.io/v1 --------------------------------------------------

const storageclasses = kind({
  group: 'storage.k8s.io',
  version: 'v1',
  kind: 'StorageClass',
  plural: 'storageclasses',
  singular: 'storageclass',
  shortNames: ['sc'],
  namespaced: false,
  // NAME is the kind's own cell: upstream's printStorageClass adds " (default)" to the default class.
  noName: true,
  columns: [
    nameColumn,
    col('Provisioner', 'string', 'Indicates the type of the provisioner.'),
    col(
      'ReclaimPolicy',
      'string',
      'Dynamically provisioned PersistentVolumes of this storage class are created with this reclaimPolicy.',
    ),
    col(
      'VolumeBindingMode',
      'string',
      'VolumeBindingMode indicates how PersistentVolumeClaims should be provisioned and bound.',
    ),
    col(
      'AllowVolumeExpansion',
      'string',
      'AllowVolumeExpansion shows whether the storage class allow volume expand.',
    ),
  ],
  cells: (sc) => {
    const a = sc.metadata.annotations ?? {};
    const isDefault =
      a['storageclass.kubernetes.io/is-default-class'] === 'true' ||
      a['storageclass.beta.kubernetes.io/is-default-class'] === 'true';
    return [
      `${sc.metadata.name ?? ''}${isDefault ? ' (default)' : ''}`,
      String(sc.provisioner ?? ''),
      String(sc.reclaimPolicy ?? 'Delete'),
      String(sc.volumeBindingMode ?? 'Immediate'),
      String(sc.allowVolumeExpansion ?? false),
    ];
  },
  defaults: (sc) => {
    sc.reclaimPolicy ??= 'Delete';
    sc.volumeBindingMode ??= 'Immediate';
  },
});

// ---- policy/v1 ----------------------------------------------------------

const poddisruptionbudgets = kind({
  group: 'policy',
  version: 'v1',
  kind: 'PodDisruptionBudget',
  plural: 'poddisruptionbudgets',
  singular: 'poddisruptionbudget',
  shortNames: ['pdb'],
  namespaced: true,
  status: true,
  generation: true,
  columns: [
    col('Min Available', 'string', 'The minimum number of pods that must be available simultaneously.'),
    col('Max Unavailable', 'string', 'The maximum number of pods that may be unavailable simultaneously.'),
    col('Allowed Disruptions', 'integer', 'Calculated number of pods that may be disrupted at this time.'),
  ],
  cells: (p) => [
    String(get(p, 'spec', 'minAvailable') ?? 'N/A'),
    String(get(p, 'spec', 'maxUnavailable') ?? 'N/A'),
    num(get(p, 'status', 'disruptionsAllowed')),
  ],
  prepareCreate: (p) => {
    p.status = { currentHealthy: 0, desiredHealthy: 0, disruptionsAllowed: 0, expectedPods: 0 };
  },
  validateSpec: (p) => validatePodDisruptionBudget(p),
});

// ---- autoscaling --------------------------------------------------------

const hpaColumns = [
  col('Reference', 'string', 'reference to scaled resource'),
  col('Targets', 'string', 'the current and target metrics'),
  col('MinPods', 'string', 'minimum replicas'),
  col('MaxPods', 'string', 'maximum replicas'),
  col('Replicas', 'string', 'current replicas'),
];

/**
 * The TARGETS column as upstream's printer writes it (formatHPAMetrics):
 * "cpu: 45%/60%" per resource metric, "<unknown>" for a current value not
 * known yet, and "+ N more..." past the first two.
 */
function hpaTargets(h: KubeObject): string {
  const specs = (get(h, 'spec', 'metrics') as Record<string, any>[] | undefined) ?? [];
  const statuses = (get(h, 'status', 'currentMetrics') as Record<string, any>[] | undefined) ?? [];
  if (specs.length === 0) return '<none>';
  const parts = specs.map((m) => {
    const source =
      m.type === 'ContainerResource' ? m.containerResource : m.type === 'Resource' ? m.resource : undefined;
    if (!source) return '<unknown>/<unknown>';
    // The status of the same resource (and container): invalid metrics have none.
    const current = statuses
      .map((st) => (m.type === 'ContainerResource' ? st.containerResource : st.resource))
      .find(
        (st) =>
          st?.name === source.name && (m.type !== 'ContainerResource' || st?.container === source.container),
      )?.current;
    const target = source.target ?? {};
    const name =
      m.type === 'ContainerResource' ? `${source.name} of container ${source.container}` : source.name;
    if (target.averageUtilization !== undefined)
      return `${name}: ${current?.averageUtilization !== undefined ? `${current.averageUtilization}%` : '<unknown>'}/${target.averageUtilization}%`;
    return `${name}: ${current?.averageValue ?? '<unknown>'}/${target.averageValue ?? '<unknown>'}`;
  });
  return parts.length > 2
    ? `${parts.slice(0, 2).join(', ')} + ${parts.length - 2} more...`
    : parts.join(', ');
}

const hpaCells = (h: KubeObject) => {
  const ref = asObj(get(h, 'spec', 'scaleTargetRef'));
  return [
    `${ref.kind}/${ref.name}`,
    hpaTargets(h),
    String(get(h, 'spec', 'minReplicas') ?? 1),
    String(get(h, 'spec', 'maxReplicas') ?? ''),
    num(get(h, 'status', 'currentReplicas')),
  ];
};

/**
 * autoscaling/v2's defaults (pkg/apis/autoscaling/v2/defaults.go): no
 * metrics means 80% CPU utilization, and a behavior given in part gets
 * upstream's rules for the rest (scale up: no window, the larger of 4 pods
 * or 100% per 15 s; scale down: 100% per 15 s, the window left to the
 * controller's --horizontal-pod-autoscaler-downscale-stabilization).
 */
function defaultHPAv2(spec: Record<string, any>): void {
  if (!Array.isArray(spec.metrics) || spec.metrics.length === 0)
    spec.metrics = [
      {
        type: 'Resource',
        resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 80 } },
      },
    ];
  const behavior = spec.behavior as Record<string, any> | undefined;
  if (!behavior || typeof behavior !== 'object') return;
  behavior.scaleUp ??= {};
  behavior.scaleDown ??= {};
  const up = behavior.scaleUp;
  up.stabilizationWindowSeconds ??= 0;
  up.selectPolicy ??= 'Max';
  up.policies ??= [
    { type: 'Pods', value: 4, periodSeconds: 15 },
    { type: 'Percent', value: 100, periodSeconds: 15 },
  ];
  const down = behavior.scaleDown;
  down.selectPolicy ??= 'Max';
  down.policies ??= [{ type: 'Percent', value: 100, periodSeconds: 15 }];
}

const hpa = (version: string): ResourceType =>
  kind({
    group: 'autoscaling',
    version,
    kind: 'HorizontalPodAutoscaler',
    plural: 'horizontalpodautoscalers',
    singular: 'horizontalpodautoscaler',
    shortNames: ['hpa'],
    categories: ['all'],
    namespaced: true,
    status: true,
    storage: 'horizontalpodautoscalers',
    // Stored as autoscaling/v2, like upstream; v1 converts on the way.
    ...(version === 'v1' ? { convert: hpaV1Conversion } : {}),
    columns: hpaColumns,
    cells: hpaCells,
    defaults: (h) => {
      const spec = child(h, 'spec');
      spec.minReplicas ??= 1;
      if (version === 'v2') defaultHPAv2(spec);
    },
    validateSpec: (h) => validateHorizontalPodAutoscaler(h),
  });

// ---- scheduling.k8s.io/v1 -----------------------------------------------

const priorityclasses = kind({
  group: 'scheduling.k8s.io',
  version: 'v1',
  kind: 'PriorityClass',
  plural: 'priorityclasses',
  singular: 'priorityclass',
  shortNames: ['pc'],
  namespaced: false,
  columns: [
    col('Value', 'integer', 'value represents the integer value of this priority class.'),
    col(
      'Global-Default',
      'boolean',
      'globalDefault specifies whether this PriorityClass should be considered as the default priority.',
    ),
    col(
      'PreemptionPolicy',
      'string',
      'preemptionPolicy is the Policy for preempting pods with lower priority.',
    ),
  ],
  ageIndex: 2,
  cells: (pc) => [
    num(pc.value),
    Boolean(pc.globalDefault),
    String(pc.preemptionPolicy ?? 'PreemptLowerPriority'),
  ],
  defaults: (pc) => {
    pc.preemptionPolicy ??= 'PreemptLowerPriority';
    // value is a plain int32 upstream: absent means 0, and it is always shown.
    pc.value ??= 0;
  },
  validateSpec: (pc, old) => validatePriorityClass(pc, old),
});

export const otherResources: ResourceType[] = [
  ingresses,
  ingressclasses,
  networkpolicies,
  endpointslices,
  leases,
  eventsV1,
  rbac('ClusterRole', 'clusterroles', false, false),
  rbac('ClusterRoleBinding', 'clusterrolebindings', false, true),
  rbac('Role', 'roles', true, false),
  rbac('RoleBinding', 'rolebindings', true, true),
  storageclasses,
  poddisruptionbudgets,
  hpa('v2'),
  hpa('v1'),
  priorityclasses,
];

export { age };
