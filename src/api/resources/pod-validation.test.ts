import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { KubeObject } from '../meta.ts';
import { createErrors, createObject, updateErrors } from './testing.ts';

type Spec = Record<string, unknown>;
const podErrors = (spec: Spec) => createErrors('', 'v1', 'pods', { metadata: { name: 'p' }, spec });
const container = (extra: Spec = {}) => ({ name: 'c', image: 'busybox', ...extra });
const containerErrors = (extra: Spec, spec: Spec = {}) =>
  podErrors({ containers: [container(extra)], ...spec });

describe('pod spec validation', () => {
  it('accepts what kubectl run sends', () => {
    assert.deepEqual(
      podErrors({
        containers: [{ name: 'nginx', image: 'nginx', resources: {}, ports: [{ containerPort: 80 }] }],
        dnsPolicy: 'ClusterFirst',
        restartPolicy: 'Always',
      }),
      [],
    );
  });

  it('checks container names, images and uniqueness', () => {
    assert.deepEqual(
      podErrors({
        containers: [
          { name: 'Web', image: 'x' },
          { name: 'a', image: '' },
          { name: 'a', image: 'y' },
        ],
        initContainers: [{ name: 'a', image: 'z' }],
      }),
      [
        `spec.containers[0].name: Invalid value: "Web": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')`,
        'spec.containers[1].image: Required value',
        'spec.containers[2].name: Duplicate value: "a"',
        'spec.initContainers[0].name: Duplicate value: "a"',
      ],
    );
    assert.deepEqual(podErrors({}), ['spec.containers: Required value']);
    assert.deepEqual(containerErrors({ image: ' busybox' }), [
      'spec.containers[0].image: Invalid value: " busybox": must not have leading or trailing whitespace',
    ]);
  });

  it('checks ports: number, name, uniqueness and protocol', () => {
    assert.deepEqual(
      containerErrors({
        ports: [
          { containerPort: 80, name: 'http' },
          { containerPort: 70000, name: 'http' },
          { containerPort: 81, protocol: 'ICMP' },
          { name: 'Bad--name' },
        ],
      }),
      [
        'spec.containers[0].ports[1].name: Duplicate value: "http"',
        'spec.containers[0].ports[1].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive',
        'spec.containers[0].ports[2].protocol: Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP"',
        'spec.containers[0].ports[3].name: Invalid value: "Bad--name": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)',
        'spec.containers[0].ports[3].name: Invalid value: "Bad--name": must not contain consecutive hyphens',
        'spec.containers[0].ports[3].containerPort: Required value',
      ],
    );
  });

  it('checks environment variables and their sources', () => {
    assert.deepEqual(
      containerErrors({
        env: [
          { name: 'MY.VAR-1', value: 'ok' },
          { name: 'A=B', value: 'x' },
          { name: '' },
          { name: 'NONE', valueFrom: {} },
          { name: 'BOTH', value: 'x', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
          {
            name: 'TWO',
            valueFrom: { fieldRef: { fieldPath: 'metadata.name' }, secretKeyRef: { name: 's', key: 'k' } },
          },
          { name: 'PATH', valueFrom: { fieldRef: { fieldPath: 'spec.restartPolicy' } } },
          { name: 'KEY', valueFrom: { configMapKeyRef: { name: 'cm', key: 'a b' } } },
        ],
      }),
      [
        'spec.containers[0].env[1].name: Invalid value: "A=B": a valid environment variable name must consist only of printable ASCII characters other than \'=\'',
        'spec.containers[0].env[2].name: Required value',
        'spec.containers[0].env[3].valueFrom: Invalid value: "": must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`',
        'spec.containers[0].env[4].valueFrom: Invalid value: "": may not be specified when `value` is not empty',
        'spec.containers[0].env[5].valueFrom: Invalid value: "": may not have more than one field specified at a time',
        'spec.containers[0].env[6].valueFrom.fieldRef.fieldPath: Unsupported value: "spec.restartPolicy": supported values: "metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName", "spec.serviceAccountName", "status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs"',
        `spec.containers[0].env[7].valueFrom.configMapKeyRef.key: Invalid value: "a b": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')`,
      ],
    );
  });

  it('checks volumes and the mounts that refer to them', () => {
    assert.deepEqual(
      podErrors({
        volumes: [
          { name: 'data', emptyDir: {}, hostPath: { path: '/x' } },
          { name: 'cfg', configMap: { name: 'c' } },
          { name: 'cfg', secret: { secretName: 's' } },
          { name: 'nfs', nfs: { server: 'nfs', path: 'relative' } },
        ],
        containers: [
          container({
            volumeMounts: [
              { name: 'cfg', mountPath: '/etc/cfg' },
              { name: 'missing', mountPath: '/m' },
              { name: 'cfg', mountPath: '/etc/cfg' },
              { name: 'cfg', mountPath: '' },
            ],
          }),
        ],
      }),
      [
        'spec.volumes[0].hostPath: Forbidden: may not specify more than 1 volume type',
        'spec.volumes[2].name: Duplicate value: "cfg"',
        'spec.volumes[3].nfs.path: Invalid value: "relative": must be an absolute path',
        'spec.containers[0].volumeMounts[1].name: Not found: "missing"',
        'spec.containers[0].volumeMounts[2].mountPath: Invalid value: "/etc/cfg": must be unique',
        'spec.containers[0].volumeMounts[3].mountPath: Required value',
      ],
    );
    // A volume naming no source is an emptyDir.
    const { obj, errors } = createObject('', 'v1', 'pods', {
      spec: { volumes: [{ name: 'scratch' }], containers: [container()] },
    });
    assert.deepEqual(errors, []);
    assert.deepEqual((obj.spec as { volumes: unknown[] }).volumes, [{ name: 'scratch', emptyDir: {} }]);
  });

  it('checks resources: names, quantities, and requests within limits', () => {
    assert.deepEqual(
      containerErrors({
        resources: {
          limits: { cpu: '1', memory: '1Gi', 'example.com/gpu': '1' },
          requests: { cpu: '1500m', memory: 'lots', 'example.com/gpu': '2', widgets: '1' },
        },
      }),
      [
        'spec.containers[0].resources.requests: Invalid value: "1500m": must be less than or equal to cpu limit of 1',
        'spec.containers[0].resources.requests: Invalid value: "2": must be equal to example.com/gpu limit of 1',
        'spec.containers[0].resources.requests[memory]: Invalid value: "lots": quantities must match the regular expression \'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$\'',
        'spec.containers[0].resources.requests[widgets]: Invalid value: "widgets": must be a standard resource type or fully qualified',
        'spec.containers[0].resources.requests[widgets]: Invalid value: "widgets": must be a standard resource for containers',
      ],
    );
    assert.deepEqual(containerErrors({ resources: { requests: { cpu: '-1' } } }), [
      'spec.containers[0].resources.requests[cpu]: Invalid value: "-1": must be greater than or equal to 0',
    ]);
    assert.deepEqual(containerErrors({ resources: { requests: { 'example.com/gpu': '1' } } }), [
      'spec.containers[0].resources.limits: Required value: Limit must be set for non overcommitable resources',
    ]);
  });

  it('checks restartPolicy, dnsPolicy, terminationGracePeriodSeconds and nodeSelector', () => {
    assert.deepEqual(
      podErrors({
        containers: [container()],
        restartPolicy: 'Sometimes',
        dnsPolicy: 'Google',
        terminationGracePeriodSeconds: -1,
        nodeSelector: { 'disk type': 'ssd' },
      }),
      [
        'spec.terminationGracePeriodSeconds: Invalid value: -1: must be greater than or equal to 0',
        'spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"',
        'spec.dnsPolicy: Unsupported value: "Google": supported values: "ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"',
        `spec.nodeSelector: Invalid value: "disk type": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')`,
      ],
    );
    assert.deepEqual(podErrors({ containers: [container()], dnsPolicy: 'None' }), [
      'spec.dnsConfig: Required value: must provide `dnsConfig` when `dnsPolicy` is None',
    ]);
  });

  it('checks tolerations', () => {
    assert.deepEqual(
      podErrors({
        containers: [container()],
        tolerations: [
          { operator: 'Exists' },
          { key: 'k', operator: 'Equal', value: 'v', effect: 'NoSchedule' },
          { operator: 'Equal' },
          { key: 'k', operator: 'Maybe' },
          { key: 'k', operator: 'Exists', value: 'v' },
          { key: 'k', effect: 'Never' },
          { key: 'k', operator: 'Exists', effect: 'NoSchedule', tolerationSeconds: 60 },
        ],
      }),
      [
        'spec.tolerations[2].operator: Invalid value: "Equal": operator must be Exists when `key` is empty, which means "match all values and all keys"',
        'spec.tolerations[3].operator: Unsupported value: "Maybe": supported values: "Equal", "Exists"',
        'spec.tolerations[4].operator: Invalid value: "v": value must be empty when `operator` is \'Exists\'',
        'spec.tolerations[5].effect: Unsupported value: "Never": supported values: "NoSchedule", "PreferNoSchedule", "NoExecute"',
        'spec.tolerations[6].effect: Invalid value: "NoSchedule": effect must be \'NoExecute\' when `tolerationSeconds` is set',
      ],
    );
  });

  it('checks probes: one handler, non-negative numbers, a success threshold of 1', () => {
    assert.deepEqual(
      containerErrors({
        livenessProbe: { initialDelaySeconds: -1 },
        readinessProbe: { exec: { command: ['true'] }, tcpSocket: { port: 80 } },
        startupProbe: { httpGet: { port: 'Web' }, successThreshold: 2 },
      }),
      [
        'spec.containers[0].livenessProbe: Required value: must specify a handler type',
        'spec.containers[0].livenessProbe.initialDelaySeconds: Invalid value: -1: must be greater than or equal to 0',
        'spec.containers[0].readinessProbe.tcpSocket: Forbidden: may not specify more than 1 handler type',
        'spec.containers[0].startupProbe.httpGet.port: Invalid value: "Web": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)',
        'spec.containers[0].startupProbe.successThreshold: Invalid value: 2: must be 1',
      ],
    );
    assert.deepEqual(
      podErrors({
        initContainers: [container({ name: 'i', livenessProbe: { exec: { command: ['x'] } } })],
        containers: [container()],
      }),
      [
        'spec.initContainers[0].livenessProbe: Forbidden: may not be set for init containers without restartPolicy=Always',
      ],
    );
  });

  it('defaults probes, downward API versions and pod-only fields as upstream', () => {
    const { obj } = createObject('', 'v1', 'pods', {
      spec: {
        containers: [
          container({
            readinessProbe: { httpGet: { port: 80 }, periodSeconds: 0 },
            env: [{ name: 'N', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }],
            resources: { limits: { cpu: '1' } },
          }),
        ],
      },
    });
    const c = (obj.spec as { containers: Spec[] }).containers[0] as Spec;
    assert.deepEqual(c.readinessProbe, {
      httpGet: { port: 80, path: '/', scheme: 'HTTP' },
      periodSeconds: 10,
      timeoutSeconds: 1,
      successThreshold: 1,
      failureThreshold: 3,
    });
    assert.deepEqual(c.env, [
      { name: 'N', valueFrom: { fieldRef: { fieldPath: 'metadata.name', apiVersion: 'v1' } } },
    ]);
    assert.deepEqual(c.resources, { limits: { cpu: '1' }, requests: { cpu: '1' } });
    assert.equal((obj.spec as Spec).enableServiceLinks, true);
    // A template's requests stay as written: upstream copies limits only into Pods.
    const d = createObject('apps', 'v1', 'deployments', {
      spec: {
        selector: { matchLabels: { a: 'b' } },
        template: {
          metadata: { labels: { a: 'b' } },
          spec: { containers: [container({ resources: { limits: { cpu: '1' } } })] },
        },
      },
    });
    assert.deepEqual(d.errors, []);
    const tc = (
      (d.obj.spec as Spec).template as { spec: { containers: Spec[]; enableServiceLinks?: boolean } }
    ).spec;
    assert.deepEqual(tc.containers[0]?.resources, { limits: { cpu: '1' } });
    assert.equal(tc.enableServiceLinks, undefined);
  });

  it('applies the template rules to every kind with a pod template', () => {
    assert.deepEqual(
      createErrors('apps', 'v1', 'deployments', {
        spec: {
          selector: { matchLabels: { app: 'a' } },
          template: {
            metadata: { labels: { app: 'a' } },
            spec: { containers: [{ name: 'c', image: 'x', ports: [{ containerPort: -1 }] }] },
          },
        },
      }),
      [
        'spec.template.spec.containers[0].ports[0].containerPort: Invalid value: -1: must be between 1 and 65535, inclusive',
      ],
    );
  });
});

describe('pod updates', () => {
  const stored = (spec: Spec = {}): KubeObject =>
    createObject('', 'v1', 'pods', { metadata: { name: 'p' }, spec: { containers: [container()], ...spec } })
      .obj;
  const podUpdate = (old: KubeObject, change: (spec: Spec) => void) =>
    updateErrors('', 'v1', 'pods', old, (o) => change(o.spec as Spec));
  const containersOf = (spec: Spec) => spec.containers as Spec[];

  it('allows images, activeDeadlineSeconds and metadata to change', () => {
    const old = stored();
    assert.deepEqual(
      podUpdate(old, (s) => {
        (containersOf(s)[0] as Spec).image = 'busybox:1.36';
        s.activeDeadlineSeconds = 30;
      }),
      [],
    );
    assert.deepEqual(
      updateErrors('', 'v1', 'pods', old, (o) => {
        o.metadata.labels = { a: 'b' };
      }),
      [],
    );
  });

  it('forbids changes to other fields, naming what changed', () => {
    const errs = podUpdate(stored(), (s) => {
      s.restartPolicy = 'Never';
    });
    assert.equal(errs.length, 1);
    assert.equal(
      errs[0]?.split('\n')[0],
      'spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)',
    );
    assert.match(errs[0] ?? '', /\n- spec\.restartPolicy: "Always"\n\+ spec\.restartPolicy: "Never"/);
    assert.deepEqual(
      podUpdate(stored(), (s) => {
        containersOf(s).push(container({ name: 'd' }));
      }),
      ['spec.containers: Forbidden: pod updates may not add or remove containers'],
    );
  });

  it('allows added tolerations but not changed ones', () => {
    const old = stored({
      tolerations: [{ key: 'a', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 10 }],
    });
    assert.deepEqual(
      podUpdate(old, (s) => {
        s.tolerations = [
          { key: 'a', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 5 },
          { key: 'b', operator: 'Exists' },
        ];
      }),
      [],
    );
    assert.deepEqual(
      podUpdate(old, (s) => {
        s.tolerations = [{ key: 'c', operator: 'Exists' }];
      }),
      ['spec.tolerations: Forbidden: existing toleration can not be modified except its tolerationSeconds'],
    );
  });

  it('only shortens activeDeadlineSeconds', () => {
    const old = stored({ activeDeadlineSeconds: 30 });
    assert.deepEqual(
      podUpdate(old, (s) => {
        s.activeDeadlineSeconds = 60;
      }),
      ['spec.activeDeadlineSeconds: Invalid value: 60: must be less than or equal to previous value'],
    );
    assert.deepEqual(
      podUpdate(old, (s) => {
        delete s.activeDeadlineSeconds;
      }),
      [
        'spec.activeDeadlineSeconds: Invalid value: null: must not update from a positive integer to nil value',
      ],
    );
  });

  it('lets an unscheduled pod be bound (pods/binding), once', () => {
    const old = stored();
    assert.deepEqual(
      podUpdate(old, (s) => {
        s.nodeName = 'node-a';
      }),
      [],
    );
    const bound = stored({ nodeName: 'node-a' });
    assert.equal(
      podUpdate(bound, (s) => {
        s.nodeName = 'node-b';
      }).length,
      1,
    );
  });
});
