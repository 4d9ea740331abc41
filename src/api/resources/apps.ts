// apps/v1 and batch/v1: the workload kinds, with upstream's columns and the
// defaults controllers and kubectl rely on (replicas, strategies, history).

import type { KubeObject } from '../meta.ts';
import type { ResourceType } from '../registry.ts';
import { immutableField } from './checks.ts';
import { kind } from './common.ts';
import { podTemplateDefaults } from './pod-defaults.ts';
import { age, arr, asObj, child, col, formatLabelSelector, get, NONE, num, orNone } from './printers.ts';
import {
  validateCronJob,
  validateDaemonSet,
  validateDeployment,
  validateJob,
  validateJobUpdate,
  validateReplicaSet,
  validateStatefulSet,
  validateStatefulSetUpdate,
} from './workload-validation.ts';

/** The /scale subresource of the replicated workloads. */
const replicasScale = {
  specReplicasPath: '.spec.replicas',
  statusReplicasPath: '.status.replicas',
  labelSelectorPath: '.status.selector',
};

const containersOf = (o: KubeObject, ...path: string[]) =>
  arr<{ name?: string; image?: string }>(get(o, ...path, 'spec', 'containers'));

const wideColumns = [
  col('Containers', 'string', 'Names of each container in the template.', 1),
  col('Images', 'string', 'Images referenced by each container in the template.', 1),
  col('Selector', 'string', 'Label selector for pods.', 1),
];

function wideCells(o: KubeObject, ...templatePath: string[]): unknown[] {
  const cs = containersOf(o, ...templatePath);
  return [
    cs.map((c) => c.name).join(','),
    cs.map((c) => c.image).join(','),
    formatLabelSelector(get(o, 'spec', 'selector')),
  ];
}

/** An apps/v1 or batch/v1 selector cannot change after creation. */
const selectorImmutable = (o: KubeObject, old: KubeObject | undefined) =>
  old ? immutableField(get(o, 'spec', 'selector'), get(old, 'spec', 'selector'), 'spec.selector') : [];

const deployments = kind({
  group: 'apps',
  version: 'v1',
  kind: 'Deployment',
  plural: 'deployments',
  singular: 'deployment',
  shortNames: ['deploy'],
  categories: ['all'],
  namespaced: true,
  status: true,
  generation: true,
  scale: replicasScale,
  columns: [
    col('Ready', 'string', 'Number of the pod with ready state'),
    col(
      'Up-to-date',
      'string',
      'Total number of non-terminated pods targeted by this deployment that have the desired template spec.',
    ),
    col(
      'Available',
      'string',
      'Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.',
    ),
    ...wideColumns,
  ],
  cells: (d) => [
    `${num(get(d, 'status', 'readyReplicas'))}/${num(get(d, 'spec', 'replicas'))}`,
    num(get(d, 'status', 'updatedReplicas')),
    num(get(d, 'status', 'availableReplicas')),
    ...wideCells(d, 'spec', 'template'),
  ],
  defaults: (d) => {
    const spec = asObj(d.spec);
    d.spec = spec;
    spec.replicas ??= 1;
    spec.revisionHistoryLimit ??= 10;
    spec.progressDeadlineSeconds ??= 600;
    const strategy = asObj(spec.strategy);
    spec.strategy = strategy;
    strategy.type ??= 'RollingUpdate';
    if (strategy.type === 'RollingUpdate') {
      const ru = asObj(strategy.rollingUpdate);
      ru.maxUnavailable ??= '25%';
      ru.maxSurge ??= '25%';
      strategy.rollingUpdate = ru;
    }
    podTemplateDefaults(child(spec, 'template'));
  },
  prepareCreate: (d) => {
    d.status = {};
  },
  validateSpec: (d, old) => [...validateDeployment(d), ...selectorImmutable(d, old)],
});

const replicasets = kind({
  group: 'apps',
  version: 'v1',
  kind: 'ReplicaSet',
  plural: 'replicasets',
  singular: 'replicaset',
  shortNames: ['rs'],
  categories: ['all'],
  namespaced: true,
  status: true,
  generation: true,
  scale: replicasScale,
  columns: [
    col('Desired', 'integer', 'Number of desired replicas.'),
    col('Current', 'integer', 'Number of actual replicas.'),
    col('Ready', 'integer', 'Number of ready replicas.'),
    ...wideColumns,
  ],
  cells: (rs) => [
    num(get(rs, 'spec', 'replicas')),
    num(get(rs, 'status', 'replicas')),
    num(get(rs, 'status', 'readyReplicas')),
    ...wideCells(rs, 'spec', 'template'),
  ],
  defaults: (rs) => {
    const spec = asObj(rs.spec);
    rs.spec = spec;
    spec.replicas ??= 1;
    podTemplateDefaults(child(spec, 'template'));
  },
  prepareCreate: (rs) => {
    rs.status = { replicas: 0 };
  },
  validateSpec: (rs, old) => [...validateReplicaSet(rs), ...selectorImmutable(rs, old)],
});

const daemonsets = kind({
  group: 'apps',
  version: 'v1',
  kind: 'DaemonSet',
  plural: 'daemonsets',
  singular: 'daemonset',
  shortNames: ['ds'],
  categories: ['all'],
  namespaced: true,
  status: true,
  generation: true,
  columns: [
    col('Desired', 'integer', 'The total number of nodes that should be running the daemon pod.'),
    col(
      'Current',
      'integer',
      'The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod.',
    ),
    col(
      'Ready',
      'integer',
      'The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and ready.',
    ),
    col('Up-to-date', 'integer', 'The total number of nodes that are running updated daemon pod'),
    col(
      'Available',
      'integer',
      'The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available.',
    ),
    col(
      'Node Selector',
      'string',
      'NodeSelector is a selector which must be true for the pod to fit on a node.',
    ),
    ...wideColumns,
  ],
  cells: (ds) => {
    const sel = asObj(get(ds, 'spec', 'template', 'spec', 'nodeSelector'));
    const selStr = Object.keys(sel).length
      ? Object.entries(sel)
          .map(([k, v]) => `${k}=${v}`)
          .join(',')
      : NONE;
    return [
      num(get(ds, 'status', 'desiredNumberScheduled')),
      num(get(ds, 'status', 'currentNumberScheduled')),
      num(get(ds, 'status', 'numberReady')),
      num(get(ds, 'status', 'updatedNumberScheduled')),
      num(get(ds, 'status', 'numberAvailable')),
      selStr,
      ...wideCells(ds, 'spec', 'template'),
    ];
  },
  defaults: (ds) => {
    const spec = asObj(ds.spec);
    ds.spec = spec;
    spec.revisionHistoryLimit ??= 10;
    const strategy = asObj(spec.updateStrategy);
    spec.updateStrategy = strategy;
    strategy.type ??= 'RollingUpdate';
    if (strategy.type === 'RollingUpdate') {
      const ru = asObj(strategy.rollingUpdate);
      ru.maxUnavailable ??= 1;
      ru.maxSurge ??= 0;
      strategy.rollingUpdate = ru;
    }
    podTemplateDefaults(child(spec, 'template'));
  },
  prepareCreate: (ds) => {
    ds.status = {
      currentNumberScheduled: 0,
      desiredNumberScheduled: 0,
      numberMisscheduled: 0,
      numberReady: 0,
    };
  },
  validateSpec: (ds, old) => [...validateDaemonSet(ds), ...selectorImmutable(ds, old)],
});

const statefulsets = kind({
  group: 'apps',
  version: 'v1',
  kind: 'StatefulSet',
  plural: 'statefulsets',
  singular: 'statefulset',
  shortNames: ['sts'],
  categories: ['all'],
  namespaced: true,
  status: true,
  generation: true,
  scale: replicasScale,
  columns: [
    col('Ready', 'string', 'Number of the pod with ready state'),
    col('Containers', 'string', 'Names of each container in the template.', 1),
    col('Images', 'string', 'Images referenced by each container in the template.', 1),
  ],
  cells: (s) => {
    const cs = containersOf(s, 'spec', 'template');
    return [
      `${num(get(s, 'status', 'readyReplicas'))}/${num(get(s, 'spec', 'replicas'))}`,
      cs.map((c) => c.name).join(','),
      cs.map((c) => c.image).join(','),
    ];
  },
  defaults: (s) => {
    const spec = asObj(s.spec);
    s.spec = spec;
    spec.replicas ??= 1;
    spec.podManagementPolicy ??= 'OrderedReady';
    spec.revisionHistoryLimit ??= 10;
    const strategy = asObj(spec.updateStrategy);
    spec.updateStrategy = strategy;
    strategy.type ??= 'RollingUpdate';
    if (strategy.type === 'RollingUpdate') {
      const ru = asObj(strategy.rollingUpdate);
      ru.partition ??= 0;
      strategy.rollingUpdate = ru;
    }
    const retention = asObj(spec.persistentVolumeClaimRetentionPolicy);
    if (!retention.whenDeleted) retention.whenDeleted = 'Retain';
    if (!retention.whenScaled) retention.whenScaled = 'Retain';
    spec.persistentVolumeClaimRetentionPolicy = retention;
    podTemplateDefaults(child(spec, 'template'));
  },
  prepareCreate: (s) => {
    s.status = { replicas: 0, availableReplicas: 0 };
  },
  validateSpec: (s, old) => [
    ...validateStatefulSet(s),
    ...(old ? validateStatefulSetUpdate(s, old) : []),
    ...selectorImmutable(s, old),
  ],
});

const controllerrevisions = kind({
  group: 'apps',
  version: 'v1',
  kind: 'ControllerRevision',
  plural: 'controllerrevisions',
  singular: 'controllerrevision',
  namespaced: true,
  columns: [
    col('Controller', 'string', 'Controller of the object'),
    col('Revision', 'integer', 'Revision of the ControllerRevision'),
  ],
  cells: (cr) => {
    const owner = cr.metadata.ownerReferences?.find((r) => r.controller);
    const [group] = (owner?.apiVersion ?? '').split('/');
    return [owner ? `${owner.kind.toLowerCase()}.${group}/${owner.name}` : NONE, num(cr.revision)];
  },
});

// ---- batch/v1 -----------------------------------------------------------

function jobStatus(job: KubeObject): string {
  const conditions = arr<{ type?: string; status?: string }>(get(job, 'status', 'conditions'));
  const has = (t: string) => conditions.some((c) => c.type === t && c.status === 'True');
  if (has('Complete')) return 'Complete';
  if (has('Failed')) return 'Failed';
  if (job.metadata.deletionTimestamp) return 'Terminating';
  if (has('SuccessCriteriaMet')) return 'SuccessCriteriaMet';
  if (has('FailureTarget')) return 'FailureTarget';
  if (has('Suspended')) return 'Suspended';
  return 'Running';
}

const jobs = kind({
  group: 'batch',
  version: 'v1',
  kind: 'Job',
  plural: 'jobs',
  singular: 'job',
  categories: ['all'],
  namespaced: true,
  status: true,
  generation: true,
  columns: [
    col('Status', 'string', 'Status of the job.'),
    col('Completions', 'string', 'The completion status of the job.'),
    col('Duration', 'string', 'Time required to complete the job.'),
    ...wideColumns,
  ],
  cells: (job, now) => {
    const completions = get(job, 'spec', 'completions');
    const succeeded = num(get(job, 'status', 'succeeded'));
    const parallelism = num(get(job, 'spec', 'parallelism'));
    const comp =
      typeof completions === 'number'
        ? `${succeeded}/${completions}`
        : parallelism > 1
          ? `${succeeded}/1 of ${parallelism}`
          : `${succeeded}/1`;
    const start = get(job, 'status', 'startTime') as string | undefined;
    const end = get(job, 'status', 'completionTime') as string | undefined;
    const duration = start ? age(start, end ? new Date(end) : now) : '';
    return [jobStatus(job), comp, duration, ...wideCells(job, 'spec', 'template')];
  },
  ageIndex: 3,
  defaults: (job) => {
    const spec = asObj(job.spec);
    job.spec = spec;
    // A job with neither runs one pod to one completion; parallelism alone
    // leaves completions unset (a work queue).
    if (spec.completions === undefined && spec.parallelism === undefined) spec.completions = 1;
    spec.parallelism ??= 1;
    spec.completionMode ??= 'NonIndexed';
    spec.backoffLimit ??= spec.backoffLimitPerIndex === undefined ? 6 : 2147483647;
    spec.suspend ??= false;
    spec.podReplacementPolicy ??= 'TerminatingOrFailed';
    spec.manualSelector ??= undefined;
    if (spec.manualSelector === undefined) delete spec.manualSelector;
    const template = child(spec, 'template');
    podTemplateDefaults(template);
  },
  prepareCreate: (job) => {
    // Upstream generates a selector on the job's controller-uid unless manualSelector.
    const spec = asObj(job.spec);
    const uid = job.metadata.uid ?? '';
    if (!spec.manualSelector) {
      spec.selector = { matchLabels: { 'batch.kubernetes.io/controller-uid': uid } };
      const template = asObj(spec.template);
      const meta = child(template, 'metadata');
      meta.labels = {
        ...asObj(meta.labels),
        'batch.kubernetes.io/controller-uid': uid,
        'batch.kubernetes.io/job-name': job.metadata.name ?? '',
        'controller-uid': uid,
        'job-name': job.metadata.name ?? '',
      };
    }
    // A job without labels of its own carries its pods' labels (upstream
    // defaults them so when the object is read back).
    const podLabels = asObj(get(job, 'spec', 'template', 'metadata', 'labels'));
    if (Object.keys(job.metadata.labels ?? {}).length === 0 && Object.keys(podLabels).length > 0)
      job.metadata.labels = { ...(podLabels as Record<string, string>) };
    job.status = {};
  },
  validateSpec: (job, old) => [
    ...validateJob(job),
    ...selectorImmutable(job, old),
    // A job's pod template is immutable too (upstream lets a suspended job's
    // scheduling fields change; Skiff keeps the simpler rule).
    ...(old
      ? [
          ...immutableField(get(job, 'spec', 'template'), get(old, 'spec', 'template'), 'spec.template'),
          ...validateJobUpdate(job, old),
        ]
      : []),
  ],
});

const cronjobs = kind({
  group: 'batch',
  version: 'v1',
  kind: 'CronJob',
  plural: 'cronjobs',
  singular: 'cronjob',
  shortNames: ['cj'],
  categories: ['all'],
  namespaced: true,
  status: true,
  generation: true,
  columns: [
    col('Schedule', 'string', 'The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron.'),
    col(
      'Timezone',
      'string',
      'The time zone name for the given schedule, see https://en.wikipedia.org/wiki/List_of_tz_database_time_zones.',
    ),
    col('Suspend', 'boolean', 'This flag tells the controller to suspend subsequent executions.'),
    col('Active', 'integer', 'A list of pointers to currently running jobs.'),
    col('Last Schedule', 'string', 'Information when was the last time the job was successfully scheduled.'),
    col('Containers', 'string', 'Names of each container in the template.', 1),
    col('Images', 'string', 'Images referenced by each container in the template.', 1),
    col('Selector', 'string', 'Label selector for pods.', 1),
  ],
  cells: (cj, now) => {
    const cs = containersOf(cj, 'spec', 'jobTemplate', 'spec', 'template');
    const last = get(cj, 'status', 'lastScheduleTime');
    return [
      String(get(cj, 'spec', 'schedule') ?? ''),
      orNone(get(cj, 'spec', 'timeZone')),
      Boolean(get(cj, 'spec', 'suspend')),
      arr(get(cj, 'status', 'active')).length,
      last ? age(last, now) : NONE,
      cs.map((c) => c.name).join(','),
      cs.map((c) => c.image).join(','),
      formatLabelSelector(get(cj, 'spec', 'jobTemplate', 'spec', 'selector')),
    ];
  },
  defaults: (cj) => {
    const spec = asObj(cj.spec);
    cj.spec = spec;
    spec.concurrencyPolicy ??= 'Allow';
    spec.suspend ??= false;
    spec.successfulJobsHistoryLimit ??= 3;
    spec.failedJobsHistoryLimit ??= 1;
    const jt = child(spec, 'jobTemplate');
    const js = child(jt, 'spec');
    podTemplateDefaults(child(js, 'template'));
  },
  prepareCreate: (cj) => {
    cj.status = {};
  },
  validateSpec: (cj, old) => validateCronJob(cj, old),
});

export const appsResources: ResourceType[] = [
  deployments,
  replicasets,
  daemonsets,
  statefulsets,
  controllerrevisions,
];
export const batchResources: ResourceType[] = [jobs, cronjobs];
