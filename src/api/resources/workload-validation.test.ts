import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cronScheduleError, timeZoneErrors } from './cron.ts';
import { createErrors, createObject, updateErrors } from './testing.ts';

type Obj = Record<string, unknown>;
const template = (labels: Record<string, string> = { app: 'a' }, spec: Obj = {}) => ({
  metadata: { labels },
  spec: { containers: [{ name: 'c', image: 'busybox' }], ...spec },
});
const selector = { matchLabels: { app: 'a' } };

describe('Deployment and ReplicaSet validation', () => {
  const deploy = (spec: Obj) =>
    createErrors('apps', 'v1', 'deployments', { spec: { selector, template: template(), ...spec } });

  it('accepts what kubectl create deployment sends', () => {
    assert.deepEqual(deploy({ replicas: 2, strategy: {} }), []);
  });

  it('checks replicas, history, deadlines and the strategy', () => {
    assert.deepEqual(
      deploy({
        replicas: -1,
        revisionHistoryLimit: -1,
        minReadySeconds: 30,
        progressDeadlineSeconds: 30,
        strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 0, maxUnavailable: '0%' } },
      }),
      [
        'spec.replicas: Invalid value: -1: must be greater than or equal to 0',
        'spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0%: may not be 0 when `maxSurge` is 0',
        'spec.revisionHistoryLimit: Invalid value: -1: must be greater than or equal to 0',
        'spec.progressDeadlineSeconds: Invalid value: 30: must be greater than minReadySeconds',
      ],
    );
    assert.deepEqual(deploy({ strategy: { rollingUpdate: { maxSurge: 'half', maxUnavailable: '101%' } } }), [
      "spec.strategy.rollingUpdate.maxSurge: Invalid value: half: a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
      'spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 101%: must not be greater than 100%',
    ]);
    assert.deepEqual(deploy({ strategy: { type: 'Recreate', rollingUpdate: {} } }), [
      "spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'",
    ]);
    assert.deepEqual(deploy({ strategy: { type: 'BlueGreen' } }), [
      'spec.strategy: Unsupported value: {"type":"BlueGreen"}: supported values: "Recreate", "RollingUpdate"',
    ]);
  });

  it('checks the selector against the template, and the template’s restart policy', () => {
    assert.deepEqual(deploy({ selector: undefined }), ['spec.selector: Required value']);
    assert.deepEqual(
      deploy({ selector: { matchExpressions: [{ key: 'app', operator: 'In', values: ['b'] }] } }),
      [
        'spec.template.metadata.labels: Invalid value: {"app":"a"}: `selector` does not match template `labels`',
      ],
    );
    assert.deepEqual(
      deploy({ template: template({ app: 'a' }, { restartPolicy: 'OnFailure', activeDeadlineSeconds: 5 }) }),
      [
        'spec.template.spec.restartPolicy: Unsupported value: "OnFailure": supported values: "Always"',
        'spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in ReplicaSet is not Supported',
      ],
    );
    assert.deepEqual(
      createErrors('apps', 'v1', 'replicasets', { spec: { selector: {}, template: template() } }),
      ['spec.selector: Invalid value: {}: empty selector is invalid for deployment'],
    );
  });

  it('keeps the selector immutable', () => {
    const { obj } = createObject('apps', 'v1', 'deployments', { spec: { selector, template: template() } });
    assert.deepEqual(
      updateErrors('apps', 'v1', 'deployments', obj, (o) => {
        (o.spec as Obj).selector = { matchLabels: { app: 'b' } };
        ((o.spec as Obj).template as Obj).metadata = { labels: { app: 'b' } };
      }),
      ['spec.selector: Invalid value: {"matchLabels":{"app":"b"}}: field is immutable'],
    );
  });
});

describe('DaemonSet and StatefulSet validation', () => {
  it('checks a DaemonSet’s rolling update', () => {
    const ds = (updateStrategy: Obj) =>
      createErrors('apps', 'v1', 'daemonsets', { spec: { selector, template: template(), updateStrategy } });
    assert.deepEqual(ds({}), []);
    assert.deepEqual(ds({ type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 1 } }), [
      'spec.updateStrategy.rollingUpdate.maxSurge: Invalid value: 1: may not be set when maxUnavailable is non-zero',
    ]);
    assert.deepEqual(ds({ type: 'RollingUpdate', rollingUpdate: { maxSurge: 0, maxUnavailable: 0 } }), [
      'spec.updateStrategy.rollingUpdate.maxUnavailable: Required value: cannot be 0 when maxSurge is 0',
    ]);
  });

  it('checks a StatefulSet, counting claim templates as volumes', () => {
    const sts = (spec: Obj) =>
      createErrors('apps', 'v1', 'statefulsets', { spec: { selector, template: template(), ...spec } });
    assert.deepEqual(
      sts({
        serviceName: 'db',
        template: {
          metadata: { labels: { app: 'a' } },
          spec: {
            containers: [
              { name: 'db', image: 'postgres', volumeMounts: [{ name: 'data', mountPath: '/var/lib' }] },
            ],
          },
        },
        volumeClaimTemplates: [
          {
            metadata: { name: 'data' },
            spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
          },
        ],
      }),
      [],
    );
    assert.deepEqual(
      sts({
        podManagementPolicy: 'Random',
        updateStrategy: { type: 'OnDelete', rollingUpdate: { partition: 1 } },
      }),
      [
        "spec.podManagementPolicy: Invalid value: \"Random\": must be 'OrderedReady' or 'Parallel'",
        'spec.updateStrategy.rollingUpdate: Invalid value: {"partition":1}: only allowed for updateStrategy \'RollingUpdate\'',
      ],
    );
    assert.deepEqual(
      sts({ updateStrategy: { type: 'RollingUpdate', rollingUpdate: { partition: -1, maxUnavailable: 0 } } }),
      [
        'spec.updateStrategy.rollingUpdate.partition: Invalid value: -1: must be greater than or equal to 0',
        'spec.updateStrategy.rollingUpdate.maxUnavailable: Invalid value: 0: cannot be 0',
      ],
    );
  });

  it('lets only some StatefulSet fields change', () => {
    const { obj } = createObject('apps', 'v1', 'statefulsets', {
      spec: { serviceName: 'a', selector, template: template() },
    });
    assert.deepEqual(
      updateErrors('apps', 'v1', 'statefulsets', obj, (o) => {
        Object.assign(o.spec as Obj, { replicas: 3, minReadySeconds: 5 });
      }),
      [],
    );
    assert.deepEqual(
      updateErrors('apps', 'v1', 'statefulsets', obj, (o) => {
        (o.spec as Obj).serviceName = 'b';
      }),
      [
        "spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
      ],
    );
  });
});

describe('Job and CronJob validation', () => {
  const jobTemplate = (spec: Obj = {}) => template({}, { restartPolicy: 'Never', ...spec });

  it('defaults like upstream and accepts what kubectl create job sends', () => {
    const { obj, errors } = createObject('batch', 'v1', 'jobs', {
      metadata: { name: 'pi' },
      spec: { template: jobTemplate() },
    });
    assert.deepEqual(errors, []);
    const spec = obj.spec as Obj;
    assert.equal(spec.completions, 1);
    assert.equal(spec.parallelism, 1);
    assert.equal(obj.metadata.labels?.['batch.kubernetes.io/job-name'], 'pi');
    // A work queue: parallelism without completions.
    const queue = createObject('batch', 'v1', 'jobs', { spec: { parallelism: 3, template: jobTemplate() } });
    assert.equal((queue.obj.spec as Obj).completions, undefined);
  });

  it('checks counts, completion modes and the restart policy', () => {
    assert.deepEqual(
      createErrors('batch', 'v1', 'jobs', {
        spec: {
          parallelism: -1,
          backoffLimit: -1,
          completionMode: 'Indexed',
          template: jobTemplate({ restartPolicy: 'Always' }),
        },
      }),
      [
        'spec.parallelism: Invalid value: -1: must be greater than or equal to 0',
        'spec.backoffLimit: Invalid value: -1: must be greater than or equal to 0',
        'spec.completions: Required value: when completion mode is Indexed',
        'spec.template.spec.restartPolicy: Unsupported value: "Always": supported values: "OnFailure", "Never"',
      ],
    );
    assert.deepEqual(
      createErrors('batch', 'v1', 'jobs', {
        spec: { completionMode: 'Sequential', template: jobTemplate() },
      }),
      ['spec.completionMode: Unsupported value: "Sequential": supported values: "NonIndexed", "Indexed"'],
    );
  });

  it('keeps completions immutable unless an Indexed job scales with its parallelism', () => {
    const { obj } = createObject('batch', 'v1', 'jobs', {
      spec: { completions: 2, parallelism: 2, template: jobTemplate() },
    });
    assert.deepEqual(
      updateErrors('batch', 'v1', 'jobs', obj, (o) => {
        (o.spec as Obj).completions = 3;
      }),
      ['spec.completions: Invalid value: 3: field is immutable'],
    );
    const indexed = createObject('batch', 'v1', 'jobs', {
      spec: { completionMode: 'Indexed', completions: 2, parallelism: 2, template: jobTemplate() },
    });
    assert.deepEqual(
      updateErrors('batch', 'v1', 'jobs', indexed.obj, (o) => {
        Object.assign(o.spec as Obj, { completions: 4, parallelism: 4 });
      }),
      [],
    );
  });

  const cron = (spec: Obj, name = 'c') =>
    createErrors('batch', 'v1', 'cronjobs', {
      metadata: { name },
      spec: {
        jobTemplate: { metadata: { name }, spec: { template: jobTemplate({ restartPolicy: 'OnFailure' }) } },
        ...spec,
      },
    });

  it('accepts what kubectl create cronjob sends', () => {
    assert.deepEqual(cron({ schedule: '*/1 * * * *' }), []);
    assert.deepEqual(cron({ schedule: '@hourly', timeZone: 'Europe/Berlin' }), []);
  });

  it('checks the schedule as robfig/cron parses it', () => {
    assert.deepEqual(cron({ schedule: '' }), ['spec.schedule: Required value']);
    assert.deepEqual(cron({ schedule: '61 * * * *' }), [
      'spec.schedule: Invalid value: "61 * * * *": end of range (61) above maximum (59): 61',
    ]);
    assert.deepEqual(cron({ schedule: 'TZ=UTC 0 * * * *' }), [
      'spec.schedule: Invalid value: "TZ=UTC 0 * * * *": cannot use TZ or CRON_TZ in schedule, use timeZone field instead',
    ]);
    const cases: Array<[string, string | undefined]> = [
      ['0 0 * * *', undefined],
      ['15,45 9-17/2 1,15 jan-jun MON-FRI', undefined],
      ['? * * * *', undefined],
      ['@yearly', undefined],
      ['@every 1h30m', undefined],
      ['* * * *', 'expected exactly 5 fields, found 4: [* * * *]'],
      ['* * * * * *', 'expected exactly 5 fields, found 6: [* * * * * *]'],
      ['x * * * *', 'failed to parse int from x: strconv.Atoi: parsing "x": invalid syntax'],
      ['* 24 * * *', 'end of range (24) above maximum (23): 24'],
      ['* * 0 * *', 'beginning of range (0) below minimum (1): 0'],
      ['* * * 13 *', 'end of range (13) above maximum (12): 13'],
      ['* * * * 7', 'end of range (7) above maximum (6): 7'],
      ['10-5 * * * *', 'beginning of range (10) beyond end of range (5): 10-5'],
      ['1-2-3 * * * *', 'too many hyphens: 1-2-3'],
      ['*/2/3 * * * *', 'too many slashes: */2/3'],
      ['*/0 * * * *', 'step of range should be a positive number: */0'],
      ['@weekdays', 'unrecognized descriptor: @weekdays'],
      ['@every 5', 'failed to parse duration @every 5: time: missing unit in duration "5"'],
      ['', 'empty spec string'],
    ];
    for (const [spec, err] of cases) assert.equal(cronScheduleError(spec), err, spec);
  });

  it('checks the time zone and the other CronJob fields', () => {
    assert.deepEqual(
      cron({
        schedule: '0 * * * *',
        timeZone: 'Mars/Olympus_Mons',
        concurrencyPolicy: 'Never',
        startingDeadlineSeconds: -10,
        failedJobsHistoryLimit: -1,
      }),
      [
        'spec.timeZone: Invalid value: "Mars/Olympus_Mons": unknown time zone Mars/Olympus_Mons',
        'spec.startingDeadlineSeconds: Invalid value: -10: must be greater than or equal to 0',
        'spec.concurrencyPolicy: Unsupported value: "Never": supported values: "Allow", "Forbid", "Replace"',
        'spec.failedJobsHistoryLimit: Invalid value: -1: must be greater than or equal to 0',
      ],
    );
    assert.deepEqual(timeZoneErrors('America/New_York'), []);
    assert.deepEqual(timeZoneErrors('Etc/GMT+5'), []);
    assert.deepEqual(timeZoneErrors('UTC'), []);
    assert.deepEqual(timeZoneErrors('america/new_york'), ['unknown time zone america/new_york']);
    assert.deepEqual(timeZoneErrors('+01:00'), ['unknown time zone +01:00']);
    assert.deepEqual(timeZoneErrors(''), ['timeZone must be nil or non-empty string']);
    assert.deepEqual(timeZoneErrors('Local'), [
      'timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones',
    ]);
    assert.deepEqual(cron({ schedule: '0 * * * *' }, 'a'.repeat(53)), [
      `metadata.name: Invalid value: "${'a'.repeat(53)}": must be no more than 52 characters`,
    ]);
  });

  it('refuses a selector in a CronJob’s job template', () => {
    assert.deepEqual(
      createErrors('batch', 'v1', 'cronjobs', {
        spec: {
          schedule: '@daily',
          jobTemplate: { spec: { selector, manualSelector: true, template: jobTemplate() } },
        },
      }),
      [
        'spec.jobTemplate.spec.selector: Invalid value: {"matchLabels":{"app":"a"}}: `selector` will be auto-generated',
        'spec.jobTemplate.spec.manualSelector: Unsupported value: true: supported values: "nil", "false"',
      ],
    );
  });
});
