// core/v1 (the legacy "" group): columns as upstream's printers, defaults as
// upstream's pkg/apis/core/v1/defaults.go for the fields clients rely on.

import type { KubeObject } from '../meta.ts';
import type { FieldErrorLike, ResourceType } from '../registry.ts';
import { kind } from './common.ts';
import {
  dropTypeDependentFields,
  validateConfigMap,
  validateNamespaceFinalizers,
  validatePodTemplateObject,
  validateReplicationController,
  validateSecret,
  validateService,
} from './core-validation.ts';
import { applyPodDefaults, podTemplateDefaults } from './pod-defaults.ts';
import { validatePodCreate, validatePodSpec, validatePodUpdate } from './pod-validation.ts';
import {
  arr,
  asObj,
  col,
  formatLabelSelector,
  get,
  humanDuration,
  labelsString,
  NONE,
  num,
  orNone,
} from './printers.ts';
import {
  validatePersistentVolumeClaimSpec,
  validatePersistentVolumeClaimUpdate,
  validatePersistentVolumeSpec,
  validatePersistentVolumeUpdate,
} from './storage-validation.ts';

const obj = asObj;

// ---- Pod ----------------------------------------------------------------

interface ContainerStatus {
  name?: string;
  ready?: boolean;
  restartCount?: number;
  state?: {
    waiting?: { reason?: string };
    running?: { startedAt?: string };
    terminated?: { reason?: string; exitCode?: number; signal?: number; finishedAt?: string };
  };
  lastState?: { terminated?: { finishedAt?: string } };
}

/** The STATUS column of `kubectl get pods`, following upstream's printPod. */
export function podStatusReason(pod: KubeObject): string {
  const status = obj(pod.status);
  let reason = (status.reason as string) || (status.phase as string) || 'Pending';
  const inits = arr<ContainerStatus>(status.initContainerStatuses);
  const initCount = arr(get(pod, 'spec', 'initContainers')).length;
  let initializing = false;
  inits.forEach((c, i) => {
    if (initializing) return;
    const term = c.state?.terminated;
    if (term && term.exitCode === 0) return;
    initializing = true;
    if (term) {
      reason = term.reason
        ? `Init:${term.reason}`
        : term.signal
          ? `Init:Signal:${term.signal}`
          : `Init:ExitCode:${term.exitCode}`;
    } else if (c.state?.waiting?.reason && c.state.waiting.reason !== 'PodInitializing') {
      reason = `Init:${c.state.waiting.reason}`;
    } else reason = `Init:${i}/${initCount}`;
  });
  if (!initializing) {
    let hasRunning = false;
    const cs = arr<ContainerStatus>(status.containerStatuses);
    for (let i = cs.length - 1; i >= 0; i--) {
      const c = cs[i]!;
      if (c.state?.waiting?.reason) reason = c.state.waiting.reason;
      else if (c.state?.terminated) {
        const t = c.state.terminated;
        reason = t.reason ? t.reason : t.signal ? `Signal:${t.signal}` : `ExitCode:${t.exitCode}`;
      } else if (c.ready && c.state?.running) hasRunning = true;
    }
    if (reason === 'Completed' && hasRunning) {
      const ready = arr<{ type?: string; status?: string }>(status.conditions).some(
        (c) => c.type === 'Ready' && c.status === 'True',
      );
      reason = ready ? 'Running' : 'NotReady';
    }
  }
  if (pod.metadata.deletionTimestamp) {
    reason = status.reason === 'NodeLost' ? 'Unknown' : 'Terminating';
  }
  return reason;
}

function podRestarts(pod: KubeObject, now: Date): string {
  const cs = arr<ContainerStatus>(get(pod, 'status', 'containerStatuses'));
  let restarts = 0;
  let last = 0;
  for (const c of cs) {
    restarts += c.restartCount ?? 0;
    const finished = c.lastState?.terminated?.finishedAt;
    if (finished) last = Math.max(last, Date.parse(finished));
  }
  return last && restarts > 0 ? `${restarts} (${humanDuration(now.getTime() - last)} ago)` : String(restarts);
}

const pods = kind({
  group: '',
  version: 'v1',
  kind: 'Pod',
  plural: 'pods',
  singular: 'pod',
  shortNames: ['po'],
  categories: ['all'],
  namespaced: true,
  status: true,
  subresources: [
    'binding',
    'eviction',
    'log',
    'exec',
    'attach',
    'portforward',
    'proxy',
    'ephemeralcontainers',
  ],
  columns: [
    col('Ready', 'string', 'The aggregate readiness state of this pod for accepting traffic.'),
    col('Status', 'string', 'The aggregate status of the containers in this pod.'),
    col(
      'Restarts',
      'string',
      'The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.',
    ),
    col(
      'IP',
      'string',
      'IP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.',
      1,
    ),
    col('Node', 'string', 'NodeName is a request to schedule this pod onto a specific node.', 1),
    col(
      'Nominated Node',
      'string',
      'nominatedNodeName is set only when this pod preempts other pods on the node.',
      1,
    ),
    col(
      'Readiness Gates',
      'string',
      'If specified, all readiness gates will be evaluated for pod readiness.',
      1,
    ),
  ],
  cells: (pod, now) => {
    const cs = arr<ContainerStatus>(get(pod, 'status', 'containerStatuses'));
    const total = arr(get(pod, 'spec', 'containers')).length;
    const ready = cs.filter((c) => c.ready).length;
    const gates = arr<{ conditionType: string }>(get(pod, 'spec', 'readinessGates'));
    const conditions = arr<{ type?: string; status?: string }>(get(pod, 'status', 'conditions'));
    const gateCell =
      gates.length === 0
        ? NONE
        : `${gates.filter((g) => conditions.some((c) => c.type === g.conditionType && c.status === 'True')).length}/${gates.length}`;
    return [
      `${ready}/${total}`,
      podStatusReason(pod),
      podRestarts(pod, now),
      orNone(get(pod, 'status', 'podIP')),
      orNone(get(pod, 'spec', 'nodeName')),
      orNone(get(pod, 'status', 'nominatedNodeName')),
      gateCell,
    ];
  },
  fields: (pod) => ({
    'spec.nodeName': String(get(pod, 'spec', 'nodeName') ?? ''),
    'spec.restartPolicy': String(get(pod, 'spec', 'restartPolicy') ?? ''),
    'spec.schedulerName': String(get(pod, 'spec', 'schedulerName') ?? ''),
    'spec.serviceAccountName': String(get(pod, 'spec', 'serviceAccountName') ?? ''),
    'spec.hostNetwork': String(get(pod, 'spec', 'hostNetwork') ?? false),
    'status.phase': String(get(pod, 'status', 'phase') ?? ''),
    'status.podIP': String(get(pod, 'status', 'podIP') ?? ''),
    'status.nominatedNodeName': String(get(pod, 'status', 'nominatedNodeName') ?? ''),
  }),
  defaults: (pod) => {
    pod.spec = applyPodDefaults(obj(pod.spec));
    // As upstream's v1 conversion: a status that only says podIP (hostIP)
    // also gets the plural podIPs (hostIPs) lists readers look at.
    const status = pod.status as
      | { podIP?: string; podIPs?: { ip: string }[]; hostIP?: string; hostIPs?: { ip: string }[] }
      | undefined;
    if (status?.podIP && !status.podIPs?.length) status.podIPs = [{ ip: status.podIP }];
    if (status?.hostIP && !status.hostIPs?.length) status.hostIPs = [{ ip: status.hostIP }];
  },
  prepareCreate: (pod) => {
    pod.status = { phase: 'Pending', qosClass: qosClass(obj(pod.spec)) };
  },
  validateSpec: (pod, old) =>
    old
      ? [...validatePodSpec(obj(pod.spec), 'spec', { isPod: true }), ...validatePodUpdate(pod, old)]
      : validatePodCreate(pod),
});

/** Upstream's QoS class: Guaranteed, Burstable or BestEffort. */
export function qosClass(spec: Record<string, unknown>): string {
  const containers = [...arr(spec.containers), ...arr(spec.initContainers)];
  let anySet = false;
  let guaranteed = containers.length > 0;
  for (const c of containers) {
    const req = obj(get(c, 'resources', 'requests'));
    const lim = obj(get(c, 'resources', 'limits'));
    for (const r of ['cpu', 'memory']) {
      if (req[r] !== undefined || lim[r] !== undefined) anySet = true;
      if (lim[r] === undefined || (req[r] !== undefined && String(req[r]) !== String(lim[r])))
        guaranteed = false;
    }
  }
  if (!anySet) return 'BestEffort';
  return guaranteed ? 'Guaranteed' : 'Burstable';
}

// ---- Service ------------------------------------------------------------

interface ServicePort {
  name?: string;
  port?: number;
  targetPort?: number | string;
  nodePort?: number;
  protocol?: string;
}

function servicePorts(svc: KubeObject): string {
  const ports = arr<ServicePort>(get(svc, 'spec', 'ports'));
  if (ports.length === 0) return NONE;
  return ports.map((p) => `${p.port}${p.nodePort ? `:${p.nodePort}` : ''}/${p.protocol ?? 'TCP'}`).join(',');
}

function externalIPs(svc: KubeObject): string {
  const type = get(svc, 'spec', 'type');
  const external = arr<string>(get(svc, 'spec', 'externalIPs'));
  const lb = arr<{ ip?: string; hostname?: string }>(get(svc, 'status', 'loadBalancer', 'ingress'))
    .map((i) => i.ip || i.hostname || '')
    .filter(Boolean);
  if (type === 'ExternalName') return String(get(svc, 'spec', 'externalName') ?? NONE);
  if (type === 'LoadBalancer') {
    const all = [...lb, ...external];
    return all.length > 0 ? all.join(',') : '<pending>';
  }
  return external.length > 0 ? external.join(',') : NONE;
}

const services = kind({
  group: '',
  version: 'v1',
  kind: 'Service',
  plural: 'services',
  singular: 'service',
  shortNames: ['svc'],
  categories: ['all'],
  namespaced: true,
  status: true,
  subresources: ['proxy'],
  nameRule: 'dns1035',
  columns: [
    col('Type', 'string', 'type determines how the Service is exposed.'),
    col(
      'Cluster-IP',
      'string',
      'clusterIP is the IP address of the service and is usually assigned randomly.',
    ),
    col(
      'External-IP',
      'string',
      'externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.',
    ),
    col('Port(s)', 'string', 'The list of ports that are exposed by this service.'),
    col(
      'Selector',
      'string',
      'Route service traffic to pods with label keys and values matching this selector.',
      1,
    ),
  ],
  cells: (svc) => [
    String(get(svc, 'spec', 'type') ?? 'ClusterIP'),
    orNone(get(svc, 'spec', 'clusterIP')),
    externalIPs(svc),
    servicePorts(svc),
    labelsString(get(svc, 'spec', 'selector') as Record<string, string> | undefined),
  ],
  defaults: (svc) => {
    const spec = obj(svc.spec);
    svc.spec = spec;
    if (!spec.type) spec.type = 'ClusterIP';
    if (!spec.sessionAffinity) spec.sessionAffinity = 'None';
    if (spec.sessionAffinity === 'ClientIP') {
      // A ClientIP affinity without a timeout gets upstream's three hours.
      const cfg = obj(spec.sessionAffinityConfig);
      const clientIP = obj(cfg.clientIP);
      clientIP.timeoutSeconds ??= 10800;
      cfg.clientIP = clientIP;
      spec.sessionAffinityConfig = cfg;
    }
    if (spec.type !== 'ExternalName') {
      spec.internalTrafficPolicy ??= 'Cluster';
      if (spec.type === 'LoadBalancer') spec.allocateLoadBalancerNodePorts ??= true;
    }
    const externallyAccessible =
      spec.type === 'NodePort' ||
      spec.type === 'LoadBalancer' ||
      (spec.type === 'ClusterIP' && arr(spec.externalIPs).length > 0);
    if (externallyAccessible && !spec.externalTrafficPolicy) spec.externalTrafficPolicy = 'Cluster';
    for (const p of arr<ServicePort>(spec.ports)) {
      if (!p || typeof p !== 'object') continue;
      if (!p.protocol) p.protocol = 'TCP';
      if (p.targetPort === undefined || p.targetPort === 0 || p.targetPort === '') p.targetPort = p.port;
    }
  },
  prepareCreate: (svc) => {
    svc.status = { loadBalancer: {} };
  },
  prepareUpdate: (svc, old) => dropTypeDependentFields(svc, old),
  validateSpec: (svc, old) => validateService(svc, old),
});

// ---- simple kinds -------------------------------------------------------

const namespaces = kind({
  group: '',
  version: 'v1',
  kind: 'Namespace',
  plural: 'namespaces',
  singular: 'namespace',
  shortNames: ['ns'],
  namespaced: false,
  status: true,
  subresources: ['finalize'],
  nameRule: 'label',
  columns: [col('Status', 'string', 'The status of the namespace')],
  cells: (ns) => [String(get(ns, 'status', 'phase') ?? 'Active')],
  fields: (ns) => ({ 'status.phase': String(get(ns, 'status', 'phase') ?? '') }),
  defaults: (ns) => {
    ns.metadata.labels = { ...ns.metadata.labels, 'kubernetes.io/metadata.name': ns.metadata.name ?? '' };
  },
  // Upstream's namespace strategy sets the "kubernetes" finalizer on create
  // only: the namespace controller removes it through /finalize, and an
  // update must not put it back.
  prepareCreate: (ns) => {
    const spec = obj(ns.spec);
    const finalizers = arr<string>(spec.finalizers);
    ns.spec = {
      ...spec,
      finalizers: finalizers.includes('kubernetes') ? finalizers : [...finalizers, 'kubernetes'],
    };
    ns.status = { phase: 'Active' };
  },
  validateSpec: (ns) => validateNamespaceFinalizers(ns),
});

function nodeRoles(node: KubeObject): string {
  const roles = new Set<string>();
  for (const [k, v] of Object.entries(node.metadata.labels ?? {})) {
    if (k.startsWith('node-role.kubernetes.io/')) roles.add(k.slice('node-role.kubernetes.io/'.length));
    else if (k === 'kubernetes.io/role' && v) roles.add(v);
  }
  return roles.size === 0 ? NONE : [...roles].sort().join(',');
}

function nodeStatus(node: KubeObject): string {
  const ready = arr<{ type?: string; status?: string }>(get(node, 'status', 'conditions')).find(
    (c) => c.type === 'Ready',
  );
  const parts = [ready ? (ready.status === 'True' ? 'Ready' : 'NotReady') : 'Unknown'];
  if (get(node, 'spec', 'unschedulable')) parts.push('SchedulingDisabled');
  return parts.join(',');
}

const nodeAddress = (node: KubeObject, type: string) =>
  orNone(
    arr<{ type?: string; address?: string }>(get(node, 'status', 'addresses')).find((a) => a.type === type)
      ?.address,
  );

const nodes = kind({
  group: '',
  version: 'v1',
  kind: 'Node',
  plural: 'nodes',
  singular: 'node',
  shortNames: ['no'],
  namespaced: false,
  status: true,
  subresources: ['proxy'],
  columns: [
    col('Status', 'string', 'The status of the node'),
    col('Roles', 'string', 'The roles of the node'),
    col('Version', 'string', 'Kubelet Version reported by the node.'),
    col('Internal-IP', 'string', 'List of addresses reachable to the node.', 1),
    col('External-IP', 'string', 'List of addresses reachable to the node.', 1),
    col(
      'OS-Image',
      'string',
      'OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).',
      1,
    ),
    col(
      'Kernel-Version',
      'string',
      "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).",
      1,
    ),
    col(
      'Container-Runtime',
      'string',
      'ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).',
      1,
    ),
  ],
  ageIndex: 2,
  cells: (node) => [
    nodeStatus(node),
    nodeRoles(node),
    String(get(node, 'status', 'nodeInfo', 'kubeletVersion') ?? ''),
    nodeAddress(node, 'InternalIP'),
    nodeAddress(node, 'ExternalIP'),
    String(get(node, 'status', 'nodeInfo', 'osImage') ?? '<unknown>'),
    String(get(node, 'status', 'nodeInfo', 'kernelVersion') ?? '<unknown>'),
    String(get(node, 'status', 'nodeInfo', 'containerRuntimeVersion') ?? '<unknown>'),
  ],
  fields: (node) => ({ 'spec.unschedulable': String(get(node, 'spec', 'unschedulable') ?? false) }),
});

const countKeys = (...maps: unknown[]) => maps.reduce<number>((n, m) => n + Object.keys(obj(m)).length, 0);

const configmaps = kind({
  group: '',
  version: 'v1',
  kind: 'ConfigMap',
  plural: 'configmaps',
  singular: 'configmap',
  shortNames: ['cm'],
  namespaced: true,
  columns: [col('Data', 'string', 'Data contains the configuration data.')],
  cells: (cm) => [countKeys(cm.data, cm.binaryData)],
  validateSpec: (cm, old) => [...validateConfigMap(cm), ...immutableData(cm, old, ['data', 'binaryData'])],
});

/** ConfigMaps and Secrets marked immutable keep their data and the mark itself. */
function immutableData(o: KubeObject, old: KubeObject | undefined, fields: string[]): FieldErrorLike[] {
  if (old?.immutable !== true) return [];
  const errs: FieldErrorLike[] = [];
  if (o.immutable !== true) {
    errs.push({
      type: 'FieldValueForbidden',
      field: 'immutable',
      message: 'Forbidden: field is immutable when `immutable` is set',
    });
  }
  for (const f of fields) {
    if (JSON.stringify(o[f] ?? {}) !== JSON.stringify(old[f] ?? {})) {
      errs.push({
        type: 'FieldValueForbidden',
        field: f,
        message: 'Forbidden: field is immutable when `immutable` is set',
      });
    }
  }
  return errs;
}

const secrets = kind({
  group: '',
  version: 'v1',
  kind: 'Secret',
  plural: 'secrets',
  singular: 'secret',
  namespaced: true,
  columns: [
    col('Type', 'string', 'Used to facilitate programmatic handling of secret data.'),
    col('Data', 'string', 'Data contains the secret data.'),
  ],
  cells: (s) => [String(s.type ?? 'Opaque'), countKeys(s.data)],
  fields: (s) => ({ type: String(s.type ?? '') }),
  validateSpec: (s, old) => [
    ...validateSecret(s),
    ...immutableData(s, old, ['data']),
    ...(old && s.type !== old.type
      ? [
          {
            type: 'FieldValueInvalid',
            field: 'type',
            message: `Invalid value: ${JSON.stringify(s.type)}: field is immutable`,
          },
        ]
      : []),
  ],
  defaults: (s) => {
    s.type ??= 'Opaque';
    // stringData is write-only: it merges into data (base64) and is dropped.
    if (s.stringData && typeof s.stringData === 'object') {
      const data = obj(s.data);
      for (const [k, v] of Object.entries(s.stringData as Record<string, string>)) {
        data[k] = Buffer.from(String(v), 'utf8').toString('base64');
      }
      s.data = data;
      delete s.stringData;
    }
  },
});

const serviceaccounts = kind({
  group: '',
  version: 'v1',
  kind: 'ServiceAccount',
  plural: 'serviceaccounts',
  singular: 'serviceaccount',
  shortNames: ['sa'],
  namespaced: true,
  // TokenRequest (authentication.k8s.io/v1): src/apiserver/token-request.ts.
  subresources: ['token'],
  columns: [
    col(
      'Secrets',
      'string',
      'Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use.',
    ),
  ],
  cells: (sa) => [arr(sa.secrets).length],
});

const endpoints = kind({
  group: '',
  version: 'v1',
  kind: 'Endpoints',
  plural: 'endpoints',
  singular: 'endpoints',
  shortNames: ['ep'],
  namespaced: true,
  createOnUpdate: true,
  columns: [col('Endpoints', 'string', 'Endpoints is the list of endpoints in this subset.')],
  cells: (ep) => {
    const out: string[] = [];
    for (const subset of arr(ep.subsets)) {
      const ports = arr<{ port?: number }>(subset.ports);
      for (const a of arr<{ ip?: string }>(subset.addresses)) {
        if (ports.length === 0) out.push(String(a.ip));
        for (const p of ports) out.push(`${a.ip}:${p.port}`);
      }
    }
    if (out.length === 0) return [NONE];
    return [out.length > 3 ? `${out.slice(0, 3).join(',')} + ${out.length - 3} more...` : out.join(',')];
  },
});

const events = kind({
  group: '',
  version: 'v1',
  kind: 'Event',
  plural: 'events',
  singular: 'event',
  shortNames: ['ev'],
  namespaced: true,
  nameRule: 'path',
  noAge: true,
  noName: true,
  columns: [
    col('Last Seen', 'string', 'The time at which the most recent occurrence of this event was recorded.'),
    col('Type', 'string', 'Type of this event (Normal, Warning), new types could be added in the future.'),
    col(
      'Reason',
      'string',
      'This should be a short, machine understandable string that gives the reason for this event being generated.',
    ),
    col('Object', 'string', 'The object that this event is about.'),
    col('Subobject', 'string', 'The subobject that this event is about.', 1),
    col(
      'Source',
      'string',
      'The component reporting this event. Should be a short machine understandable string.',
      1,
    ),
    col('Message', 'string', 'A human-readable description of the status of this operation.'),
    col('First Seen', 'string', 'The time at which the event was first recorded.', 1),
    col('Count', 'string', 'The number of times this event has occurred.', 1),
    col('Name', 'string', 'The name of the event.', 1),
  ],
  cells: (ev, now) => {
    const last = (ev.lastTimestamp ?? ev.eventTime ?? ev.metadata.creationTimestamp) as string | undefined;
    const first = (ev.firstTimestamp ?? ev.eventTime ?? ev.metadata.creationTimestamp) as string | undefined;
    const since = (t: string | undefined) => (t ? humanDuration(now.getTime() - Date.parse(t)) : '<unknown>');
    const io = obj(ev.involvedObject);
    const src = obj(ev.source);
    return [
      since(last),
      String(ev.type ?? ''),
      String(ev.reason ?? ''),
      `${String(io.kind ?? '').toLowerCase()}/${io.name ?? ''}`,
      String(io.fieldPath ?? ''),
      [src.component, src.host].filter(Boolean).join(', '),
      String(ev.message ?? '').trim(),
      since(first),
      String(ev.count ?? 1),
      ev.metadata.name,
    ];
  },
  fields: (ev) => {
    const io = obj(ev.involvedObject);
    const src = obj(ev.source);
    return {
      'involvedObject.kind': String(io.kind ?? ''),
      'involvedObject.namespace': String(io.namespace ?? ''),
      'involvedObject.name': String(io.name ?? ''),
      'involvedObject.uid': String(io.uid ?? ''),
      'involvedObject.apiVersion': String(io.apiVersion ?? ''),
      'involvedObject.resourceVersion': String(io.resourceVersion ?? ''),
      'involvedObject.fieldPath': String(io.fieldPath ?? ''),
      reason: String(ev.reason ?? ''),
      reportingComponent: String(ev.reportingComponent ?? ''),
      source: String(src.component ?? ''),
      type: String(ev.type ?? ''),
    };
  },
});

function replicaCells(o: KubeObject): unknown[] {
  const containers = arr<{ name?: string; image?: string }>(get(o, 'spec', 'template', 'spec', 'containers'));
  return [
    num(get(o, 'spec', 'replicas')),
    num(get(o, 'status', 'replicas')),
    num(get(o, 'status', 'readyReplicas')),
    containers.map((c) => c.name).join(','),
    containers.map((c) => c.image).join(','),
    formatLabelSelector(
      o.kind === 'ReplicationController'
        ? { matchLabels: get(o, 'spec', 'selector') }
        : get(o, 'spec', 'selector'),
    ),
  ];
}

export const replicaColumns = [
  col('Desired', 'integer', 'Number of desired replicas.'),
  col('Current', 'integer', 'Number of actual replicas.'),
  col('Ready', 'integer', 'Number of ready replicas.'),
  col('Containers', 'string', 'Names of each container in the template.', 1),
  col('Images', 'string', 'Images referenced by each container in the template.', 1),
  col('Selector', 'string', 'Label selector for pods.', 1),
];
export { replicaCells };

const replicationcontrollers = kind({
  group: '',
  version: 'v1',
  kind: 'ReplicationController',
  plural: 'replicationcontrollers',
  singular: 'replicationcontroller',
  shortNames: ['rc'],
  categories: ['all'],
  namespaced: true,
  status: true,
  generation: true,
  scale: { specReplicasPath: '.spec.replicas', statusReplicasPath: '.status.replicas' },
  columns: replicaColumns,
  cells: replicaCells,
  fields: (rc) => ({ 'status.replicas': String(num(get(rc, 'status', 'replicas'))) }),
  defaults: (rc) => {
    const spec = obj(rc.spec);
    rc.spec = spec;
    spec.replicas ??= 1;
    spec.minReadySeconds ??= 0;
    const template = obj(spec.template);
    // An RC without a selector selects its template's labels.
    if (!spec.selector && template.metadata) spec.selector = obj(obj(template.metadata).labels);
    if (spec.template) podTemplateDefaults(template);
  },
  prepareCreate: (rc) => {
    rc.status = { replicas: 0 };
  },
  validateSpec: (rc) => validateReplicationController(rc),
});

const resourcequotas = kind({
  group: '',
  version: 'v1',
  kind: 'ResourceQuota',
  plural: 'resourcequotas',
  singular: 'resourcequota',
  shortNames: ['quota'],
  namespaced: true,
  status: true,
  columns: [
    col(
      'Request',
      'string',
      'Request represents a minimum amount of cpu/memory that a container may consume.',
    ),
    col(
      'Limit',
      'string',
      'Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node.',
    ),
  ],
  ageIndex: 0,
  cells: (q) => {
    const hard = obj(get(q, 'status', 'hard'));
    const used = obj(get(q, 'status', 'used'));
    const fmt = (filter: (k: string) => boolean) =>
      Object.keys(hard)
        .filter(filter)
        .sort()
        .map((k) => `${k}: ${used[k] ?? 0}/${hard[k]}`)
        .join(', ');
    return [fmt((k) => !k.startsWith('limits.')), fmt((k) => k.startsWith('limits.'))];
  },
});

const limitranges = kind({
  group: '',
  version: 'v1',
  kind: 'LimitRange',
  plural: 'limitranges',
  singular: 'limitrange',
  shortNames: ['limits'],
  namespaced: true,
  // SetDefaults_LimitRangeItem: a Container item's default limit falls back
  // to its max, and its default request to the default limit, then to min.
  defaults: (lr) => {
    const spec = obj(lr.spec);
    const limits = Array.isArray(spec.limits) ? spec.limits : [];
    for (const raw of limits) {
      const item = obj(raw);
      if (item.type !== 'Container') continue;
      const dflt = { ...obj(item.default) };
      const request = { ...obj(item.defaultRequest) };
      for (const [k, v] of Object.entries(obj(item.max))) if (!(k in dflt)) dflt[k] = v;
      for (const [k, v] of Object.entries(dflt)) if (!(k in request)) request[k] = v;
      for (const [k, v] of Object.entries(obj(item.min))) if (!(k in request)) request[k] = v;
      if (Object.keys(dflt).length > 0) item.default = dflt;
      if (Object.keys(request).length > 0) item.defaultRequest = request;
    }
  },
  columns: [],
  cells: () => [],
  ageIndex: 0,
  noAge: false,
});

const persistentvolumes = kind({
  group: '',
  version: 'v1',
  kind: 'PersistentVolume',
  plural: 'persistentvolumes',
  singular: 'persistentvolume',
  shortNames: ['pv'],
  namespaced: false,
  status: true,
  columns: [
    col(
      'Capacity',
      'string',
      "capacity is the description of the persistent volume's resources and capacity.",
    ),
    col('Access Modes', 'string', 'accessModes contains all ways the volume can be mounted.'),
    col(
      'Reclaim Policy',
      'string',
      'persistentVolumeReclaimPolicy defines what happens to a persistent volume when released from its claim.',
    ),
    col(
      'Status',
      'string',
      'phase indicates if a volume is available, bound to a claim, or released by a claim.',
    ),
    col(
      'Claim',
      'string',
      'claimRef is part of a bi-directional binding between PersistentVolume and PersistentVolumeClaim.',
    ),
    col(
      'StorageClass',
      'string',
      'storageClassName is the name of StorageClass to which this persistent volume belongs.',
    ),
    col(
      'VolumeAttributesClass',
      'string',
      'Name of VolumeAttributesClass to which this persistent volume belongs.',
    ),
    col('Reason', 'string', 'reason is a brief CamelCase string that describes any failure.'),
    col(
      'VolumeMode',
      'string',
      'volumeMode defines if a volume is intended to be used with a formatted filesystem or to remain in raw block state.',
      1,
    ),
  ],
  ageIndex: 8,
  cells: (pv) => {
    const claim = obj(get(pv, 'spec', 'claimRef'));
    return [
      String(get(pv, 'spec', 'capacity', 'storage') ?? ''),
      accessModes(get(pv, 'spec', 'accessModes')),
      String(get(pv, 'spec', 'persistentVolumeReclaimPolicy') ?? 'Retain'),
      String(get(pv, 'status', 'phase') ?? 'Pending'),
      claim.name ? `${claim.namespace}/${claim.name}` : '',
      String(get(pv, 'spec', 'storageClassName') ?? ''),
      orNone(get(pv, 'spec', 'volumeAttributesClassName')),
      String(get(pv, 'status', 'reason') ?? ''),
      String(get(pv, 'spec', 'volumeMode') ?? 'Filesystem'),
    ];
  },
  defaults: (pv) => {
    const spec = obj(pv.spec);
    pv.spec = spec;
    spec.persistentVolumeReclaimPolicy ??= 'Retain';
    spec.volumeMode ??= 'Filesystem';
  },
  prepareCreate: (pv) => {
    pv.status = { phase: 'Pending' };
  },
  validateSpec: (pv, old) => [
    ...validatePersistentVolumeSpec(obj(pv.spec), 'spec'),
    ...(old ? validatePersistentVolumeUpdate(pv, old) : []),
  ],
});

function accessModes(modes: unknown): string {
  const short: Record<string, string> = {
    ReadWriteOnce: 'RWO',
    ReadOnlyMany: 'ROX',
    ReadWriteMany: 'RWX',
    ReadWriteOncePod: 'RWOP',
  };
  return arr<string>(modes)
    .map((m) => short[m] ?? m)
    .join(',');
}

const persistentvolumeclaims = kind({
  group: '',
  version: 'v1',
  kind: 'PersistentVolumeClaim',
  plural: 'persistentvolumeclaims',
  singular: 'persistentvolumeclaim',
  shortNames: ['pvc'],
  namespaced: true,
  status: true,
  columns: [
    col('Status', 'string', 'phase represents the current phase of PersistentVolumeClaim.'),
    col(
      'Volume',
      'string',
      'volumeName is the binding reference to the PersistentVolume backing this claim.',
    ),
    col('Capacity', 'string', 'capacity represents the actual resources of the underlying volume.'),
    col(
      'Access Modes',
      'string',
      'accessModes contains the actual access modes the volume backing the PVC has.',
    ),
    col('StorageClass', 'string', 'storageClassName is the name of the StorageClass required by the claim.'),
    col(
      'VolumeAttributesClass',
      'string',
      'volumeAttributesClassName may be used to set the VolumeAttributesClass used by this claim.',
    ),
    col('VolumeMode', 'string', 'volumeMode defines what type of volume is required by the claim.', 1),
  ],
  ageIndex: 6,
  cells: (pvc) => [
    String(get(pvc, 'status', 'phase') ?? 'Pending'),
    String(get(pvc, 'spec', 'volumeName') ?? ''),
    String(get(pvc, 'status', 'capacity', 'storage') ?? ''),
    accessModes(get(pvc, 'status', 'accessModes')),
    String(get(pvc, 'spec', 'storageClassName') ?? ''),
    orNone(get(pvc, 'spec', 'volumeAttributesClassName')),
    String(get(pvc, 'spec', 'volumeMode') ?? 'Filesystem'),
  ],
  defaults: (pvc) => {
    const spec = obj(pvc.spec);
    pvc.spec = spec;
    spec.volumeMode ??= 'Filesystem';
  },
  prepareCreate: (pvc) => {
    pvc.status = { phase: 'Pending' };
  },
  validateSpec: (pvc, old) => [
    ...validatePersistentVolumeClaimSpec(obj(pvc.spec), 'spec'),
    ...(old ? validatePersistentVolumeClaimUpdate(pvc, old) : []),
  ],
});

const podtemplates = kind({
  group: '',
  version: 'v1',
  kind: 'PodTemplate',
  plural: 'podtemplates',
  singular: 'podtemplate',
  namespaced: true,
  columns: [
    col('Containers', 'string', 'Names of each container in the template.'),
    col('Images', 'string', 'Images referenced by each container in the template.'),
    col('Pod Labels', 'string', 'The labels for the pod template.'),
  ],
  ageIndex: 3,
  noAge: true,
  defaults: (pt) => {
    const template = obj(pt.template);
    pt.template = template;
    podTemplateDefaults(template);
  },
  validateSpec: (pt) => validatePodTemplateObject(pt),
  cells: (pt) => {
    const containers = arr<{ name?: string; image?: string }>(get(pt, 'template', 'spec', 'containers'));
    return [
      containers.map((c) => c.name).join(','),
      containers.map((c) => c.image).join(','),
      labelsString(get(pt, 'template', 'metadata', 'labels') as Record<string, string> | undefined),
    ];
  },
});

// POST /api/v1/namespaces/<ns>/bindings binds the pod the Binding names, as
// pods/<name>/binding does (the older form; Python schedulers use it).
const bindings: ResourceType = {
  group: '',
  version: 'v1',
  kind: 'Binding',
  plural: 'bindings',
  singular: 'binding',
  namespaced: true,
  verbs: ['create'],
};

export const coreResources: ResourceType[] = [
  pods,
  bindings,
  services,
  namespaces,
  nodes,
  configmaps,
  secrets,
  serviceaccounts,
  endpoints,
  events,
  replicationcontrollers,
  resourcequotas,
  limitranges,
  persistentvolumes,
  persistentvolumeclaims,
  podtemplates,
];
