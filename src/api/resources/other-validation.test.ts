import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createErrors, createObject, updateErrors } from './testing.ts';

type Obj = Record<string, unknown>;
const RBAC = 'rbac.authorization.k8s.io';
const NET = 'networking.k8s.io';

describe('RBAC validation', () => {
  it('accepts what kubectl create role and rolebinding send', () => {
    assert.deepEqual(
      createErrors(RBAC, 'v1', 'roles', {
        rules: [{ verbs: ['get', 'list'], apiGroups: [''], resources: ['pods'] }],
      }),
      [],
    );
    const { obj, errors } = createObject(RBAC, 'v1', 'rolebindings', {
      roleRef: { kind: 'ClusterRole', name: 'view' },
      subjects: [
        { kind: 'User', name: 'alice' },
        { kind: 'ServiceAccount', name: 'builder', namespace: 'ci' },
      ],
    });
    assert.deepEqual(errors, []);
    // v1 defaults the API groups a client leaves out.
    assert.equal((obj.roleRef as Obj).apiGroup, RBAC);
    assert.deepEqual(obj.subjects, [
      { kind: 'User', name: 'alice', apiGroup: RBAC },
      { kind: 'ServiceAccount', name: 'builder', namespace: 'ci' },
    ]);
  });

  it('checks rules: verbs, and API groups unless the rule is for URLs', () => {
    assert.deepEqual(
      createErrors(RBAC, 'v1', 'roles', {
        rules: [{ resources: ['pods'] }, { verbs: ['get'], nonResourceURLs: ['/healthz'] }],
      }),
      [
        'rules[0].verbs: Required value: verbs must contain at least one value',
        'rules[0].apiGroups: Required value: resource rules must supply at least one api group',
        'rules[1].nonResourceURLs: Invalid value: []string{"/healthz"}: namespaced rules cannot apply to non-resource URLs',
      ],
    );
    assert.deepEqual(
      createErrors(RBAC, 'v1', 'clusterroles', {
        rules: [{ verbs: ['get'], nonResourceURLs: ['/healthz', '/version'] }],
      }),
      [],
    );
    assert.deepEqual(
      createErrors(RBAC, 'v1', 'clusterroles', {
        rules: [{ verbs: ['get'], apiGroups: [''], nonResourceURLs: ['/healthz'] }],
      }),
      [
        'rules[0].nonResourceURLs: Invalid value: []string{"/healthz"}: rules cannot apply to both regular resources and non-resource URLs',
      ],
    );
  });

  it('checks the roleRef and the subjects', () => {
    assert.deepEqual(
      createErrors(RBAC, 'v1', 'clusterrolebindings', {
        roleRef: { apiGroup: 'example.com', kind: 'Role', name: '' },
        subjects: [{ kind: 'ServiceAccount', name: 'sa' }, { kind: 'Robot', name: 'r2' }, { kind: 'User' }],
      }),
      [
        'roleRef.apiGroup: Unsupported value: "example.com": supported values: "rbac.authorization.k8s.io"',
        'roleRef.kind: Unsupported value: "Role": supported values: "ClusterRole"',
        'roleRef.name: Required value',
        'subjects[0].namespace: Required value',
        'subjects[1].kind: Unsupported value: "Robot": supported values: "ServiceAccount", "User", "Group"',
        'subjects[2].name: Required value',
      ],
    );
  });

  it('keeps the roleRef immutable', () => {
    const { obj } = createObject(RBAC, 'v1', 'rolebindings', {
      roleRef: { kind: 'Role', name: 'reader' },
      subjects: [{ kind: 'Group', name: 'devs' }],
    });
    assert.deepEqual(
      updateErrors(RBAC, 'v1', 'rolebindings', obj, (o) => {
        (o.roleRef as Obj).name = 'writer';
      }),
      [
        'roleRef: Invalid value: rbac.RoleRef{APIGroup:"rbac.authorization.k8s.io", Kind:"Role", Name:"writer"}: cannot change roleRef',
      ],
    );
    assert.deepEqual(
      updateErrors(RBAC, 'v1', 'rolebindings', obj, (o) => {
        o.subjects = [];
      }),
      [],
    );
  });
});

describe('Ingress and IngressClass validation', () => {
  const backend = { service: { name: 'web', port: { number: 80 } } };
  const ingress = (spec: Obj) => createErrors(NET, 'v1', 'ingresses', { spec });

  it('accepts what kubectl create ingress sends', () => {
    assert.deepEqual(
      ingress({
        ingressClassName: 'nginx',
        rules: [
          { host: 'foo.com', http: { paths: [{ path: '/bar', pathType: 'Exact', backend }] } },
          { host: '*.example.com', http: { paths: [{ path: '/', pathType: 'Prefix', backend }] } },
        ],
        tls: [{ hosts: ['foo.com'], secretName: 'foo-tls' }],
      }),
      [],
    );
    assert.deepEqual(ingress({ defaultBackend: backend }), []);
  });

  it('checks hosts, paths and backends', () => {
    assert.deepEqual(
      ingress({
        rules: [
          {
            host: '10.0.0.1',
            http: {
              paths: [
                { path: 'relative', pathType: 'Prefix', backend },
                { path: '/a', backend },
                { path: '/a', pathType: 'Regex', backend },
                { path: '/b/../c', pathType: 'Exact', backend: { service: { name: 'web', port: {} } } },
                { path: '/c', pathType: 'ImplementationSpecific', backend: {} },
              ],
            },
          },
          { host: 'foo.*.com', http: { paths: [] } },
        ],
      }),
      [
        'spec.rules[0].host: Invalid value: "10.0.0.1": must be a DNS name, not an IP address',
        'spec.rules[0].http.paths[0].path: Invalid value: "relative": must be an absolute path',
        'spec.rules[0].http.paths[1].pathType: Required value: pathType must be specified',
        'spec.rules[0].http.paths[2].pathType: Unsupported value: "Regex": supported values: "Exact", "ImplementationSpecific", "Prefix"',
        'spec.rules[0].http.paths[3].path: Invalid value: "/b/../c": must not contain \'/../\'',
        'spec.rules[0].http.paths[3].backend: Required value: port name or number is required',
        'spec.rules[0].http.paths[4].backend: Invalid value: "": resource or service backend is required',
        `spec.rules[1].host: Invalid value: "foo.*.com": a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character (e.g. '*.example.com', regex used for validation is '\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`,
        'spec.rules[1].http.paths: Required value',
      ],
    );
    assert.deepEqual(ingress({}), [
      'spec: Invalid value: []networking.IngressRule(nil): either `defaultBackend` or `rules` must be specified',
    ]);
  });

  it('requires an IngressClass controller, domain-prefixed and immutable', () => {
    assert.deepEqual(createErrors(NET, 'v1', 'ingressclasses', { spec: {} }), [
      'spec.controller: Required value',
    ]);
    assert.deepEqual(createErrors(NET, 'v1', 'ingressclasses', { spec: { controller: 'nginx' } }), [
      'spec.controller: Invalid value: "nginx": must be a domain-prefixed path (such as "acme.io/foo")',
    ]);
    const { obj, errors } = createObject(NET, 'v1', 'ingressclasses', {
      spec: { controller: 'k8s.io/ingress-nginx', parameters: { kind: 'IngressParameters', name: 'p' } },
    });
    assert.deepEqual(errors, []);
    assert.equal(((obj.spec as Obj).parameters as Obj).scope, 'Cluster');
    assert.deepEqual(
      updateErrors(NET, 'v1', 'ingressclasses', obj, (o) => {
        (o.spec as Obj).controller = 'example.com/other';
      }),
      ['spec.controller: Invalid value: "example.com/other": field is immutable'],
    );
  });
});

describe('autoscaling, scheduling, coordination and policy validation', () => {
  it('checks an HPA’s replica bounds, target and metrics', () => {
    const hpa = (spec: Obj, version = 'v2') =>
      createErrors('autoscaling', version, 'horizontalpodautoscalers', { spec });
    const ref = { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web' };
    assert.deepEqual(
      hpa({ scaleTargetRef: ref, minReplicas: 2, maxReplicas: 10, targetCPUUtilizationPercentage: 80 }, 'v1'),
      [],
    );
    assert.deepEqual(
      hpa({
        scaleTargetRef: { kind: 'Deployment' },
        minReplicas: 0,
        maxReplicas: 0,
        metrics: [
          {
            type: 'Resource',
            resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 0 } },
          },
          { type: 'Memory' },
        ],
      }),
      [
        'spec.minReplicas: Invalid value: 0: must be greater than or equal to 1',
        'spec.maxReplicas: Invalid value: 0: must be greater than 0',
        'spec.scaleTargetRef.name: Required value',
        'spec.metrics[0].resource.target.averageUtilization: Invalid value: 0: must be greater than 0',
        'spec.metrics[1].type: Unsupported value: "Memory": supported values: "ContainerResource", "External", "Object", "Pods", "Resource"',
      ],
    );
    assert.deepEqual(hpa({ scaleTargetRef: ref, minReplicas: 5, maxReplicas: 3 }), [
      'spec.maxReplicas: Invalid value: 3: must be greater than or equal to `minReplicas`',
    ]);
  });

  it('limits user PriorityClasses and keeps their value', () => {
    const pc = (body: Obj) => createErrors('scheduling.k8s.io', 'v1', 'priorityclasses', body);
    assert.deepEqual(pc({ value: 1000, preemptionPolicy: 'Never' }), []);
    assert.deepEqual(pc({ value: 2_000_000_000 }), [
      'value: Forbidden: maximum allowed value of a user defined priority is 1000000000',
    ]);
    assert.deepEqual(pc({ metadata: { name: 'system-cluster-critical' }, value: 2_000_000_000 }), []);
    assert.deepEqual(pc({ metadata: { name: 'system-important' }, value: 1 }), [
      "metadata.name: Forbidden: priority class names with 'system-' prefix are reserved for system use only. error: system-important is not a known system priority class",
    ]);
    assert.deepEqual(pc({ value: 1, preemptionPolicy: 'Always' }), [
      'preemptionPolicy: Unsupported value: "Always": supported values: "PreemptLowerPriority", "Never"',
    ]);
    const { obj } = createObject('scheduling.k8s.io', 'v1', 'priorityclasses', { value: 10 });
    assert.deepEqual(
      updateErrors('scheduling.k8s.io', 'v1', 'priorityclasses', obj, (o) => {
        o.value = 20;
      }),
      ['value: Forbidden: may not be changed in an update.'],
    );
  });

  it('checks a Lease’s duration and transitions', () => {
    assert.deepEqual(
      createErrors('coordination.k8s.io', 'v1', 'leases', {
        spec: { holderIdentity: 'a', leaseDurationSeconds: 15 },
      }),
      [],
    );
    assert.deepEqual(
      createErrors('coordination.k8s.io', 'v1', 'leases', {
        spec: { leaseDurationSeconds: 0, leaseTransitions: -1 },
      }),
      [
        'spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0',
        'spec.leaseTransitions: Invalid value: -1: must be greater than or equal to 0',
      ],
    );
  });

  it('allows a PodDisruptionBudget only one of minAvailable and maxUnavailable', () => {
    const pdb = (spec: Obj) => createErrors('policy', 'v1', 'poddisruptionbudgets', { spec });
    assert.deepEqual(pdb({ minAvailable: 1, selector: { matchLabels: { app: 'a' } } }), []);
    assert.deepEqual(pdb({ minAvailable: 1, maxUnavailable: '50%' }), [
      'spec: Invalid value: {"maxUnavailable":"50%","minAvailable":1}: minAvailable and maxUnavailable cannot be both set',
    ]);
    assert.deepEqual(pdb({ maxUnavailable: '150%' }), [
      'spec.maxUnavailable: Invalid value: 150%: must not be greater than 100%',
    ]);
    assert.deepEqual(pdb({ minAvailable: -1 }), [
      'spec.minAvailable: Invalid value: -1: must be greater than or equal to 0',
    ]);
  });
});
