// apps/v1 and batch/v1 spec validation, after upstream's
// pkg/apis/apps/validation and pkg/apis/batch/validation. The pod templates
// go through validatePodTemplateSpec; what is here is each controller's own
// fields and the rules tying the template to its controller.

import type { KubeObject } from '../meta.ts';
import { forbidden, invalid, maxLenError, notSupported, required } from '../validation.ts';
import {
  at,
  type Errs,
  immutableField,
  intOrPercentValue,
  intOrStringShown,
  invalidShown,
  isSet,
  labelSelector,
  nonNegative,
  notMoreThan100Percent,
  num,
  type Obj,
  obj,
  objs,
  positiveIntOrPercent,
  selectorIsEmpty,
  selectorMatches,
  semanticEqual,
  str,
} from './checks.ts';
import { cronScheduleError, timeZoneErrors } from './cron.ts';
import { type PodSpecOptions, validatePodTemplateSpec } from './pod-validation.ts';

const templateLabels = (spec: Obj) => obj(obj(obj(spec.template).metadata).labels);

/** The selector rules shared by Deployments, ReplicaSets and StatefulSets. */
function requiredSelector(spec: Obj, what: string): Errs {
  if (!isSet(spec.selector)) return [required('spec.selector')];
  const errs = labelSelector(spec.selector, 'spec.selector');
  if (selectorIsEmpty(spec.selector))
    errs.push(invalid('spec.selector', spec.selector, `empty selector is invalid for ${what}`));
  return errs;
}

function selectorMatchesTemplate(spec: Obj): Errs {
  const matches = selectorMatches(spec.selector, templateLabels(spec));
  if (matches === false && !selectorIsEmpty(spec.selector))
    return [
      invalid(
        'spec.template.metadata.labels',
        templateLabels(spec),
        '`selector` does not match template `labels`',
      ),
    ];
  return [];
}

/** The template rules of controllers whose pods always restart. */
function alwaysRestartTemplate(spec: Obj, kind: string, opts: PodSpecOptions = {}): Errs {
  const template = obj(spec.template);
  const errs = validatePodTemplateSpec(template, 'spec.template', opts);
  const tspec = obj(template.spec);
  if (tspec.restartPolicy !== 'Always')
    errs.push(notSupported('spec.template.spec.restartPolicy', str(tspec.restartPolicy), ['Always']));
  if (isSet(tspec.activeDeadlineSeconds))
    errs.push(
      forbidden(
        'spec.template.spec.activeDeadlineSeconds',
        `activeDeadlineSeconds in ${kind} is not Supported`,
      ),
    );
  return errs;
}

/** ValidatePodTemplateSpecForReplicaSet (Deployments use it too). */
function replicaSetTemplate(spec: Obj): Errs {
  if (!isSet(spec.template)) return [required('spec.template')];
  if (selectorMatches(spec.selector, {}) === undefined)
    return [invalid('spec.selector', spec.selector ?? null, 'invalid label selector')];
  return [...selectorMatchesTemplate(spec), ...alwaysRestartTemplate(spec, 'ReplicaSet')];
}

function rollingUpdateDeployment(ru: Obj, field: string): Errs {
  const errs = [
    ...positiveIntOrPercent(ru.maxUnavailable, at(field, 'maxUnavailable')),
    ...positiveIntOrPercent(ru.maxSurge, at(field, 'maxSurge')),
  ];
  if (intOrPercentValue(ru.maxUnavailable) === 0 && intOrPercentValue(ru.maxSurge) === 0)
    errs.push(
      invalidShown(
        at(field, 'maxUnavailable'),
        intOrStringShown(ru.maxUnavailable),
        'may not be 0 when `maxSurge` is 0',
      ),
    );
  errs.push(...notMoreThan100Percent(ru.maxUnavailable, at(field, 'maxUnavailable')));
  return errs;
}

export function validateDeployment(d: KubeObject): Errs {
  const spec = obj(d.spec);
  const errs = [...nonNegative('spec.replicas', spec.replicas), ...requiredSelector(spec, 'deployment')];
  errs.push(...replicaSetTemplate(spec));
  const strategy = obj(spec.strategy);
  switch (strategy.type) {
    case 'Recreate':
      if (isSet(strategy.rollingUpdate))
        errs.push(
          forbidden('spec.strategy.rollingUpdate', "may not be specified when strategy `type` is 'Recreate'"),
        );
      break;
    case 'RollingUpdate':
      if (!isSet(strategy.rollingUpdate))
        errs.push(required('spec.strategy.rollingUpdate', 'this should be defaulted and never be nil'));
      else errs.push(...rollingUpdateDeployment(obj(strategy.rollingUpdate), 'spec.strategy.rollingUpdate'));
      break;
    default:
      errs.push(notSupported('spec.strategy', strategy, ['Recreate', 'RollingUpdate']));
  }
  errs.push(...nonNegative('spec.minReadySeconds', spec.minReadySeconds));
  errs.push(...nonNegative('spec.revisionHistoryLimit', spec.revisionHistoryLimit));
  if (isSet(spec.progressDeadlineSeconds)) {
    const pds = num(spec.progressDeadlineSeconds) ?? 0;
    errs.push(...nonNegative('spec.progressDeadlineSeconds', pds));
    if (pds <= (num(spec.minReadySeconds) ?? 0))
      errs.push(invalid('spec.progressDeadlineSeconds', pds, 'must be greater than minReadySeconds'));
  }
  return errs;
}

export function validateReplicaSet(rs: KubeObject): Errs {
  const spec = obj(rs.spec);
  return [
    ...nonNegative('spec.replicas', spec.replicas),
    ...nonNegative('spec.minReadySeconds', spec.minReadySeconds),
    // Upstream's message says "deployment" for ReplicaSets too.
    ...requiredSelector(spec, 'deployment'),
    ...replicaSetTemplate(spec),
  ];
}

export function validateDaemonSet(ds: KubeObject): Errs {
  const spec = obj(ds.spec);
  const errs = labelSelector(spec.selector, 'spec.selector');
  // A missing selector selects nothing, so it fails the template match.
  const matches = isSet(spec.selector) ? selectorMatches(spec.selector, templateLabels(spec)) : false;
  if (matches === false)
    errs.push(
      invalid(
        'spec.template.metadata.labels',
        templateLabels(spec),
        '`selector` does not match template `labels`',
      ),
    );
  if (isSet(spec.selector) && selectorIsEmpty(spec.selector))
    errs.push(invalid('spec.selector', spec.selector, 'empty selector is invalid for daemonset'));
  errs.push(...alwaysRestartTemplate(spec, 'DaemonSet'));
  errs.push(...nonNegative('spec.minReadySeconds', spec.minReadySeconds));
  errs.push(...nonNegative('spec.templateGeneration', spec.templateGeneration));
  const strategy = obj(spec.updateStrategy);
  const sp = 'spec.updateStrategy';
  if (strategy.type === 'RollingUpdate') {
    if (!isSet(strategy.rollingUpdate)) errs.push(required(at(sp, 'rollingUpdate')));
    else {
      const ru = obj(strategy.rollingUpdate);
      const rp = at(sp, 'rollingUpdate');
      errs.push(...positiveIntOrPercent(ru.maxUnavailable, at(rp, 'maxUnavailable')));
      errs.push(...positiveIntOrPercent(ru.maxSurge, at(rp, 'maxSurge')));
      errs.push(...notMoreThan100Percent(ru.maxUnavailable, at(rp, 'maxUnavailable')));
      errs.push(...notMoreThan100Percent(ru.maxSurge, at(rp, 'maxSurge')));
      const unavailable = intOrPercentValue(ru.maxUnavailable) !== 0;
      const surge = intOrPercentValue(ru.maxSurge) !== 0;
      if (unavailable && surge)
        errs.push(
          invalidShown(
            at(rp, 'maxSurge'),
            intOrStringShown(ru.maxSurge),
            'may not be set when maxUnavailable is non-zero',
          ),
        );
      if (!unavailable && !surge)
        errs.push(required(at(rp, 'maxUnavailable'), 'cannot be 0 when maxSurge is 0'));
    }
  } else if (strategy.type !== 'OnDelete') {
    errs.push(notSupported(sp, strategy, ['RollingUpdate', 'OnDelete']));
  }
  errs.push(...nonNegative('spec.revisionHistoryLimit', spec.revisionHistoryLimit));
  return errs;
}

export function validateStatefulSet(sts: KubeObject): Errs {
  const spec = obj(sts.spec);
  const errs: Errs = [];
  const pmp = str(spec.podManagementPolicy);
  if (!pmp) errs.push(required('spec.podManagementPolicy'));
  else if (pmp !== 'OrderedReady' && pmp !== 'Parallel')
    errs.push(invalid('spec.podManagementPolicy', pmp, "must be 'OrderedReady' or 'Parallel'"));
  const strategy = obj(spec.updateStrategy);
  const sp = 'spec.updateStrategy';
  switch (str(strategy.type)) {
    case '':
      errs.push(required(sp));
      break;
    case 'OnDelete':
      if (isSet(strategy.rollingUpdate))
        errs.push(
          invalid(
            at(sp, 'rollingUpdate'),
            strategy.rollingUpdate,
            "only allowed for updateStrategy 'RollingUpdate'",
          ),
        );
      break;
    case 'RollingUpdate': {
      if (!isSet(strategy.rollingUpdate)) break;
      const ru = obj(strategy.rollingUpdate);
      const rp = at(sp, 'rollingUpdate');
      errs.push(...nonNegative(at(rp, 'partition'), ru.partition));
      if (isSet(ru.maxUnavailable)) {
        const mp = at(rp, 'maxUnavailable');
        errs.push(...positiveIntOrPercent(ru.maxUnavailable, mp));
        if (intOrPercentValue(ru.maxUnavailable) === 0)
          errs.push(invalidShown(mp, intOrStringShown(ru.maxUnavailable), 'cannot be 0'));
        errs.push(...notMoreThan100Percent(ru.maxUnavailable, mp));
      }
      break;
    }
    default:
      errs.push(invalid(sp, strategy, "must be 'RollingUpdate' or 'OnDelete'"));
  }
  if (isSet(spec.persistentVolumeClaimRetentionPolicy)) {
    const policy = obj(spec.persistentVolumeClaimRetentionPolicy);
    for (const k of ['whenDeleted', 'whenScaled']) {
      if (policy[k] !== 'Retain' && policy[k] !== 'Delete')
        errs.push(
          notSupported(at('spec.persistentVolumeClaimRetentionPolicy', k), str(policy[k]), [
            'Retain',
            'Delete',
          ]),
        );
    }
  }
  errs.push(...nonNegative('spec.replicas', spec.replicas));
  errs.push(...nonNegative('spec.minReadySeconds', spec.minReadySeconds));
  if (isSet(spec.ordinals)) errs.push(...nonNegative('spec.ordinals.start', obj(spec.ordinals).start));
  if (!isSet(spec.selector)) errs.push(required('spec.selector'));
  else {
    errs.push(...labelSelector(spec.selector, 'spec.selector'));
    if (selectorIsEmpty(spec.selector))
      errs.push(invalid('spec.selector', spec.selector, 'empty selector is invalid for statefulset'));
  }
  if (selectorMatches(spec.selector, {}) === undefined)
    errs.push(invalid('spec.selector', spec.selector ?? null, ''));
  else errs.push(...selectorMatchesTemplate(spec));
  // Upstream leaves a StatefulSet's pod spec to be checked when its pods are
  // created; Skiff checks it now, counting the claim templates as volumes.
  const claims = objs(spec.volumeClaimTemplates).map((t) => str(obj(t.metadata).name));
  errs.push(...alwaysRestartTemplate(spec, 'StatefulSet', { extraVolumes: claims }));
  return errs;
}

const statefulSetMutable = [
  'replicas',
  'ordinals',
  'template',
  'updateStrategy',
  'persistentVolumeClaimRetentionPolicy',
  'minReadySeconds',
];

export function validateStatefulSetUpdate(sts: KubeObject, old: KubeObject): Errs {
  const spec = { ...obj(sts.spec) };
  const before = { ...obj(old.spec) };
  for (const k of statefulSetMutable) {
    delete spec[k];
    delete before[k];
  }
  if (semanticEqual(spec, before)) return [];
  return [
    forbidden(
      'spec',
      "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
    ),
  ];
}

// ---- batch/v1 ----

const maxParallelismForIndexedJob = 100000;

/** validateJobSpec: the parts a Job and a CronJob's job template share. */
function jobSpec(spec: Obj, field: string): Errs {
  const errs: Errs = [];
  for (const k of [
    'parallelism',
    'completions',
    'activeDeadlineSeconds',
    'backoffLimit',
    'ttlSecondsAfterFinished',
  ])
    errs.push(...nonNegative(at(field, k), spec[k]));
  if (isSet(spec.backoffLimitPerIndex)) {
    errs.push(...nonNegative(at(field, 'backoffLimitPerIndex'), spec.backoffLimitPerIndex));
    if (spec.completionMode !== 'Indexed')
      errs.push(required(at(field, 'completionMode'), 'when backoffLimitPerIndex is specified'));
  }
  if (isSet(spec.completionMode)) {
    const mode = str(spec.completionMode);
    if (mode !== 'NonIndexed' && mode !== 'Indexed')
      errs.push(notSupported(at(field, 'completionMode'), spec.completionMode, ['NonIndexed', 'Indexed']));
    if (mode === 'Indexed') {
      if (!isSet(spec.completions))
        errs.push(required(at(field, 'completions'), 'when completion mode is Indexed'));
      const parallelism = num(spec.parallelism) ?? 0;
      if (parallelism > maxParallelismForIndexedJob)
        errs.push(
          invalid(
            at(field, 'parallelism'),
            parallelism,
            `must be less than or equal to ${maxParallelismForIndexedJob} when completion mode is Indexed`,
          ),
        );
    }
  }
  if (isSet(spec.podReplacementPolicy)) {
    const policies = ['Failed', 'TerminatingOrFailed'];
    if (!policies.includes(str(spec.podReplacementPolicy)))
      errs.push(notSupported(at(field, 'podReplacementPolicy'), spec.podReplacementPolicy, policies));
  }
  const template = obj(spec.template);
  errs.push(...validatePodTemplateSpec(template, at(field, 'template')));
  const rp = obj(template.spec).restartPolicy;
  if (rp !== 'OnFailure' && rp !== 'Never')
    errs.push(notSupported(at(field, 'template', 'spec', 'restartPolicy'), str(rp), ['OnFailure', 'Never']));
  return errs;
}

export function validateJob(job: KubeObject): Errs {
  const spec = obj(job.spec);
  const errs = jobSpec(spec, 'spec');
  if (!isSet(spec.selector)) errs.push(required('spec.selector'));
  else errs.push(...labelSelector(spec.selector, 'spec.selector'));
  // Generated or manual, the selector must match the pods the job makes.
  if (isSet(spec.selector) && selectorMatches(spec.selector, templateLabels(spec)) === false)
    errs.push(
      invalid(
        'spec.template.metadata.labels',
        templateLabels(spec),
        '`selector` does not match template `labels`',
      ),
    );
  return errs;
}

export function validateJobUpdate(job: KubeObject, old: KubeObject): Errs {
  const spec = obj(job.spec);
  const before = obj(old.spec);
  const errs: Errs = [];
  // An Indexed Job whose completions track its parallelism may be scaled.
  const elastic =
    spec.completionMode === 'Indexed' &&
    spec.completions === spec.parallelism &&
    before.completions === before.parallelism;
  if (!elastic) errs.push(...immutableField(spec.completions, before.completions, 'spec.completions'));
  errs.push(...immutableField(spec.completionMode, before.completionMode, 'spec.completionMode'));
  return errs;
}

export const concurrencyPolicies = ['Allow', 'Forbid', 'Replace'];

export function validateCronJob(cj: KubeObject, old?: KubeObject): Errs {
  const spec = obj(cj.spec);
  const errs: Errs = [];
  // Job names get an 11-character suffix and must stay valid labels.
  const name = cj.metadata.name ?? '';
  if (name.length > 52) errs.push(invalid('metadata.name', name, maxLenError(52)));
  const schedule = str(spec.schedule);
  if (!schedule) errs.push(required('spec.schedule'));
  else {
    const err = cronScheduleError(schedule);
    if (err) errs.push(invalid('spec.schedule', schedule, err));
    // TZ in the schedule is only kept on objects that already had it.
    const allowTZ = old !== undefined && str(obj(old.spec).schedule).includes('TZ');
    if (schedule.includes('TZ')) {
      if (!allowTZ)
        errs.push(
          invalid(
            'spec.schedule',
            schedule,
            'cannot use TZ or CRON_TZ in schedule, use timeZone field instead',
          ),
        );
      else if (isSet(spec.timeZone))
        errs.push(
          invalid('spec.schedule', schedule, 'cannot use both timeZone field and TZ or CRON_TZ in schedule'),
        );
    }
  }
  if (isSet(spec.timeZone)) {
    const tz = str(spec.timeZone);
    for (const m of timeZoneErrors(tz)) errs.push(invalid('spec.timeZone', tz, m));
  }
  errs.push(...nonNegative('spec.startingDeadlineSeconds', spec.startingDeadlineSeconds));
  const cp = str(spec.concurrencyPolicy);
  if (!cp) errs.push(required('spec.concurrencyPolicy'));
  else if (!concurrencyPolicies.includes(cp))
    errs.push(notSupported('spec.concurrencyPolicy', cp, concurrencyPolicies));
  const jt = obj(spec.jobTemplate);
  const jspec = obj(jt.spec);
  errs.push(...jobSpec(jspec, 'spec.jobTemplate.spec'));
  if (isSet(jspec.selector))
    errs.push(invalid('spec.jobTemplate.spec.selector', jspec.selector, '`selector` will be auto-generated'));
  if (jspec.manualSelector === true)
    errs.push(notSupported('spec.jobTemplate.spec.manualSelector', true, ['nil', 'false']));
  errs.push(...nonNegative('spec.successfulJobsHistoryLimit', spec.successfulJobsHistoryLimit));
  errs.push(...nonNegative('spec.failedJobsHistoryLimit', spec.failedJobsHistoryLimit));
  return errs;
}
