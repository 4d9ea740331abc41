import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApiError } from '../../api/errors.ts';
import type { KubeObject } from '../../api/meta.ts';
import type { Namespace, Pod, PodSpec } from '../../api/types/core-v1.ts';
import { type AdmissionAttributes, runAdmission, runValidating } from './admission.ts';
import { existingPodWarnings } from './pod-security/namespace-pods.ts';
import { POD_SECURITY_CHECKS, type PodSecurityOptions, podSecurityPlugin } from './pod-security.ts';

const ns = (name: string, labels?: Record<string, string>): Namespace => ({
  metadata: { name, ...(labels ? { labels } : {}) },
});

/** A plain pod: fine under baseline, not hardened for restricted. */
const plainPod = (name = 'p', image = 'nginx'): Pod => ({
  metadata: { name, namespace: 'team' },
  spec: { containers: [{ name: 'c', image }] },
});

const hardenedSpec = (): PodSpec => ({
  securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
  containers: [
    {
      name: 'c',
      image: 'nginx',
      securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
    },
  ],
});

const privilegedPod = (name = 'root'): Pod => ({
  metadata: { name, namespace: 'team' },
  spec: {
    hostNetwork: true,
    containers: [{ name: 'c', image: 'nginx', securityContext: { privileged: true } }],
  },
});

const RESTRICTED_PLAIN_DETAIL =
  'allowPrivilegeEscalation != false (container "c" must set securityContext.allowPrivilegeEscalation=false), ' +
  'unrestricted capabilities (container "c" must set securityContext.capabilities.drop=["ALL"]), ' +
  'runAsNonRoot != true (pod or container "c" must set securityContext.runAsNonRoot=true), ' +
  'seccompProfile (pod or container "c" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")';

function setup(namespaces: Namespace[], extra: Partial<PodSecurityOptions> = {}) {
  return podSecurityPlugin({
    getNamespace: async (name) => namespaces.find((n) => n.metadata.name === name),
    ...extra,
  });
}

function attrs(object: KubeObject, over: Partial<AdmissionAttributes> = {}): AdmissionAttributes {
  return {
    operation: 'CREATE',
    group: '',
    version: 'v1',
    kind: 'Pod',
    resource: 'pods',
    subresource: '',
    namespace: object.metadata.namespace ?? '',
    name: object.metadata.name ?? '',
    object,
    user: { name: 'alice', groups: ['system:authenticated'] },
    dryRun: false,
    ...over,
  };
}

const deployment = (spec: PodSpec): KubeObject => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'web', namespace: 'team' },
  spec: {
    selector: { matchLabels: { app: 'web' } },
    template: { metadata: { labels: { app: 'web' } }, spec },
  },
});

const asDeployment = { group: 'apps', kind: 'Deployment', resource: 'deployments' };

const refusal = (code: number, message: string) => (e: unknown) => {
  assert.ok(e instanceof ApiError);
  assert.equal(e.status.code, code);
  assert.equal(e.status.message, message);
  return true;
};

describe('PodSecurity admission: enforce', () => {
  const plugin = setup([ns('team', { 'pod-security.kubernetes.io/enforce': 'restricted' })]);

  it('refuses a violating pod with 403 and upstream message', async () => {
    await assert.rejects(
      plugin.validate(attrs(plainPod('web'))),
      refusal(
        403,
        `pods "web" is forbidden: violates PodSecurity "restricted:latest": ${RESTRICTED_PLAIN_DETAIL}`,
      ),
    );
    try {
      await plugin.validate(attrs(plainPod('web')));
    } catch (e) {
      assert.deepEqual((e as ApiError).status.reason, 'Forbidden');
      assert.deepEqual((e as ApiError).status.details, { name: 'web', group: '', kind: 'pods' });
    }
  });

  it('admits a compliant pod and records the enforced policy', async () => {
    const pod: Pod = { metadata: { name: 'ok', namespace: 'team' }, spec: hardenedSpec() };
    assert.deepEqual(await runValidating(attrs(pod), [plugin]), {
      warnings: [],
      auditAnnotations: { 'pod-security.kubernetes.io/enforce-policy': 'restricted:latest' },
    });
  });

  it('a refused pod keeps its audit annotations: what was enforced, what audit would refuse', async () => {
    const audited = setup([
      ns('team', {
        'pod-security.kubernetes.io/enforce': 'baseline',
        'pod-security.kubernetes.io/audit': 'restricted',
      }),
    ]);
    const notes: Record<string, string> = {};
    const a = {
      ...attrs(privilegedPod()),
      addAuditAnnotation: (k: string, v: string) => {
        notes[k] = v;
      },
    };
    await assert.rejects(audited.validate(a), (e: ApiError) => e.status.code === 403);
    assert.equal(notes['pod-security.kubernetes.io/enforce-policy'], 'baseline:latest');
    assert.match(
      notes['pod-security.kubernetes.io/audit-violations'] ?? '',
      /^would violate PodSecurity "restricted:latest": .*privileged \(container "c" must not set securityContext\.privileged=true\)/,
    );
  });

  it('names the pinned version', async () => {
    const pinned = setup([
      ns('team', {
        'pod-security.kubernetes.io/enforce': 'baseline',
        'pod-security.kubernetes.io/enforce-version': 'v1.30',
      }),
    ]);
    await assert.rejects(
      pinned.validate(attrs(privilegedPod())),
      refusal(
        403,
        'pods "root" is forbidden: violates PodSecurity "baseline:v1.30": host namespaces (hostNetwork=true), privileged (container "c" must not set securityContext.privileged=true)',
      ),
    );
  });

  it('does not re-check an update that changes no image (labels, status)', async () => {
    const old = plainPod('legacy');
    const relabelled: Pod = { ...old, metadata: { ...old.metadata, labels: { tier: 'web' } } };
    assert.deepEqual(await plugin.validate(attrs(relabelled, { operation: 'UPDATE', oldObject: old })), {});
  });

  it('re-checks an update that changes an image', async () => {
    await assert.rejects(
      plugin.validate(
        attrs(plainPod('legacy', 'nginx:2'), { operation: 'UPDATE', oldObject: plainPod('legacy') }),
      ),
      refusal(
        403,
        `pods "legacy" is forbidden: violates PodSecurity "restricted:latest": ${RESTRICTED_PLAIN_DETAIL}`,
      ),
    );
  });

  it('ignores subresources that cannot change the spec', async () => {
    assert.deepEqual(
      await plugin.validate(attrs(plainPod(), { operation: 'UPDATE', subresource: 'status' })),
      {},
    );
  });

  it('does not enforce pod templates: a Deployment is accepted', async () => {
    // Only warn and audit look at templates, and this namespace sets neither.
    assert.deepEqual(await plugin.validate(attrs(deployment(plainPod().spec ?? {}), asDeployment)), {});
    const strict = setup([
      ns('team', {
        'pod-security.kubernetes.io/enforce': 'restricted',
        'pod-security.kubernetes.io/warn': 'restricted',
      }),
    ]);
    const r = await strict.validate(attrs(deployment(plainPod().spec ?? {}), asDeployment));
    assert.deepEqual(r?.warnings, [
      `would violate PodSecurity "restricted:latest": ${RESTRICTED_PLAIN_DETAIL}`,
    ]);
  });

  it('a bad enforce label enforces restricted and says why in the audit event', async () => {
    const bad = setup([ns('team', { 'pod-security.kubernetes.io/enforce': 'strict' })]);
    const pod: Pod = { metadata: { name: 'ok', namespace: 'team' }, spec: hardenedSpec() };
    assert.deepEqual((await runValidating(attrs(pod), [bad])).auditAnnotations, {
      'pod-security.kubernetes.io/error':
        'Failed to parse policy: metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: "strict": must be one of privileged, baseline, restricted',
      'pod-security.kubernetes.io/enforce-policy': 'restricted:latest',
    });
    await assert.rejects(bad.validate(attrs(plainPod())), (e: ApiError) => e.status.code === 403);
  });
});

describe('PodSecurity admission: warn and audit', () => {
  const plugin = setup([
    ns('team', {
      'pod-security.kubernetes.io/enforce': 'baseline',
      'pod-security.kubernetes.io/warn': 'restricted',
      'pod-security.kubernetes.io/audit': 'restricted',
    }),
  ]);

  it('warns and annotates a pod that passes enforce but not warn or audit', async () => {
    const r = await runValidating(attrs(plainPod()), [plugin]);
    assert.deepEqual(r, {
      warnings: [`would violate PodSecurity "restricted:latest": ${RESTRICTED_PLAIN_DETAIL}`],
      auditAnnotations: {
        'pod-security.kubernetes.io/enforce-policy': 'baseline:latest',
        'pod-security.kubernetes.io/audit-violations': `would violate PodSecurity "restricted:latest": ${RESTRICTED_PLAIN_DETAIL}`,
      },
    });
  });

  it("the chain hands the annotations on to the request's (the audit record's)", async () => {
    const recorded: [string, string][] = [];
    const a = {
      ...attrs(plainPod()),
      addAuditAnnotation: (k: string, v: string) => void recorded.push([k, v]),
    };
    const r = await runAdmission(a, [], [plugin]);
    assert.deepEqual(recorded, Object.entries(r.auditAnnotations));
    assert.deepEqual(recorded, [
      ['pod-security.kubernetes.io/enforce-policy', 'baseline:latest'],
      [
        'pod-security.kubernetes.io/audit-violations',
        `would violate PodSecurity "restricted:latest": ${RESTRICTED_PLAIN_DETAIL}`,
      ],
    ]);
  });

  it('warns about workloads with pod templates', async () => {
    const kinds: [Partial<AdmissionAttributes>, KubeObject][] = [
      [asDeployment, deployment(plainPod().spec ?? {})],
      [
        { group: 'batch', kind: 'CronJob', resource: 'cronjobs' },
        {
          metadata: { name: 'nightly', namespace: 'team' },
          spec: {
            schedule: '@daily',
            jobTemplate: { spec: { template: { metadata: {}, spec: plainPod().spec } } },
          },
        },
      ],
      [
        { group: '', kind: 'PodTemplate', resource: 'podtemplates' },
        { metadata: { name: 't', namespace: 'team' }, template: { metadata: {}, spec: plainPod().spec } },
      ],
    ];
    for (const [over, obj] of kinds) {
      const r = await plugin.validate(attrs(obj, over));
      assert.deepEqual(
        r?.warnings,
        [`would violate PodSecurity "restricted:latest": ${RESTRICTED_PLAIN_DETAIL}`],
        over.kind,
      );
    }
  });

  it('a ReplicationController without a template is let through', async () => {
    const rc: KubeObject = { metadata: { name: 'rc', namespace: 'team' }, spec: { replicas: 0 } };
    assert.deepEqual(
      await plugin.validate(attrs(rc, { kind: 'ReplicationController', resource: 'replicationcontrollers' })),
      {},
    );
  });

  it('does not warn on a request it refuses', async () => {
    await assert.rejects(plugin.validate(attrs(privilegedPod())), (e: ApiError) => e.status.code === 403);
  });
});

describe('PodSecurity admission: defaults and scope', () => {
  const plugin = setup([
    ns('kube-system'),
    ns('team'),
    ns('labelled-system', { 'pod-security.kubernetes.io/enforce': 'baseline' }),
  ]);

  it('an unlabelled namespace is privileged, kube-system included', async () => {
    for (const namespace of ['team', 'kube-system']) {
      const pod = privilegedPod();
      pod.metadata.namespace = namespace;
      assert.deepEqual(await runValidating(attrs(pod), [plugin]), {
        warnings: [],
        auditAnnotations: { 'pod-security.kubernetes.io/enforce-policy': 'privileged:latest' },
      });
    }
  });

  it('a labelled system namespace is enforced like any other', async () => {
    const pod = privilegedPod();
    pod.metadata.namespace = 'labelled-system';
    await assert.rejects(plugin.validate(attrs(pod)), (e: ApiError) => e.status.code === 403);
  });

  it('handles pods, namespaces and workloads on create and update only', () => {
    const pod = plainPod();
    assert.equal(plugin.handles(attrs(pod)), true);
    assert.equal(plugin.handles(attrs(pod, { operation: 'DELETE' })), false);
    assert.equal(plugin.handles(attrs(pod, { kind: 'Service', resource: 'services' })), false);
    assert.equal(plugin.handles(attrs(pod, { group: 'apps', resource: 'deployments' })), true);
    assert.equal(
      plugin.handles(attrs(ns('x'), { kind: 'Namespace', resource: 'namespaces', namespace: '' })),
      true,
    );
  });

  it('exempt namespaces and users are not evaluated', async () => {
    const exempting = setup([ns('team', { 'pod-security.kubernetes.io/enforce': 'restricted' })], {
      exemptions: { usernames: ['system:serviceaccount:kube-system:replicaset-controller'] },
    });
    const user = { name: 'system:serviceaccount:kube-system:replicaset-controller', groups: [] };
    assert.deepEqual(await runValidating(attrs(privilegedPod(), { user }), [exempting]), {
      warnings: [],
      auditAnnotations: { 'pod-security.kubernetes.io/exempt': 'user' },
    });
  });

  it('a namespace that cannot be found is an internal error', async () => {
    const pod = plainPod();
    pod.metadata.namespace = 'gone';
    await assert.rejects(
      plugin.validate(attrs(pod)),
      refusal(500, 'Internal error occurred: failed to lookup namespace gone'),
    );
    // A workload is never refused by PodSecurity, so it only gets a note.
    const d = deployment(plainPod().spec ?? {});
    d.metadata.namespace = 'gone';
    assert.deepEqual(await runValidating(attrs(d, asDeployment), [plugin]), {
      warnings: [],
      auditAnnotations: {
        'pod-security.kubernetes.io/error': 'failed to lookup namespace gone: namespaces "gone" not found',
      },
    });
  });
});

describe('PodSecurity admission: namespaces', () => {
  const existing: Pod[] = [
    plainPod('b'),
    plainPod('a'),
    privilegedPod('root'),
    { metadata: { name: 'ok' }, spec: hardenedSpec() },
  ];
  const plugin = setup([], { listPods: async () => existing });
  const nsAttrs = (labels: Record<string, string> | undefined, old?: Record<string, string>) =>
    attrs(ns('team', labels), {
      kind: 'Namespace',
      resource: 'namespaces',
      namespace: '',
      name: 'team',
      ...(old !== undefined ? { operation: 'UPDATE' as const, oldObject: ns('team', old) } : {}),
    });

  it('refuses bad labels on create with 422', async () => {
    await assert.rejects(
      plugin.validate(
        nsAttrs({
          'pod-security.kubernetes.io/enforce': 'strict',
          'pod-security.kubernetes.io/warn-version': '1.30',
        }),
      ),
      refusal(
        422,
        'Namespace "team" is invalid: [metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: "strict": must be one of privileged, baseline, restricted, metadata.labels[pod-security.kubernetes.io/warn-version]: Invalid value: "1.30": must be "latest" or "v1.x"]',
      ),
    );
    await assert.rejects(
      plugin.validate(nsAttrs({ 'pod-security.kubernetes.io/audit': 'loud' })),
      (e: ApiError) =>
        e.status.reason === 'Invalid' &&
        JSON.stringify(e.status.details?.causes) ===
          JSON.stringify([
            {
              reason: 'FieldValueInvalid',
              message: 'Invalid value: "loud": must be one of privileged, baseline, restricted',
              field: 'metadata.labels[pod-security.kubernetes.io/audit]',
            },
          ]),
    );
    assert.deepEqual(
      await plugin.validate(nsAttrs({ 'pod-security.kubernetes.io/enforce-version': 'v1.31' })),
      {},
    );
  });

  it('raising enforce warns about the existing pods it would refuse, grouped', async () => {
    const r = await plugin.validate(nsAttrs({ 'pod-security.kubernetes.io/enforce': 'restricted' }, {}));
    assert.deepEqual(r?.warnings, [
      'existing pods in namespace "team" violate the new PodSecurity enforce level "restricted:latest"',
      'a (and 1 other pod): allowPrivilegeEscalation != false, unrestricted capabilities, runAsNonRoot != true, seccompProfile',
      'root: host namespaces, privileged, allowPrivilegeEscalation != false, unrestricted capabilities, runAsNonRoot != true, seccompProfile',
    ]);
  });

  it('relaxing, keeping or dropping enforce checks nothing', async () => {
    const restricted = { 'pod-security.kubernetes.io/enforce': 'restricted' };
    assert.deepEqual(
      await plugin.validate(nsAttrs({ 'pod-security.kubernetes.io/enforce': 'baseline' }, restricted)),
      {},
    );
    assert.deepEqual(await plugin.validate(nsAttrs({ ...restricted, team: 'x' }, restricted)), {});
    assert.deepEqual(await plugin.validate(nsAttrs({}, restricted)), {});
  });

  it('a failed pod list is a warning, not a refusal', async () => {
    const failing = setup([], {
      listPods: async () => {
        throw new Error('etcd is down');
      },
    });
    const r = await failing.validate(nsAttrs({ 'pod-security.kubernetes.io/enforce': 'baseline' }, {}));
    assert.deepEqual(r?.warnings, ['failed to list pods while checking new PodSecurity enforce level']);
  });

  it('an already-bad label does not block other label changes', async () => {
    const bad = { 'pod-security.kubernetes.io/audit': 'loud' };
    assert.deepEqual(await plugin.validate(nsAttrs({ ...bad, team: 'x' }, bad)), {});
  });
});

describe('PodSecurity admission: checking existing pods', () => {
  const replica = (name: string, uid: string): Pod => {
    const p = plainPod(name);
    p.metadata.ownerReferences = [
      { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: uid, uid, controller: true },
    ];
    return p;
  };

  it('checks one pod per controller first when it cannot check them all', () => {
    const pods = [replica('web-1', 'rs-web'), replica('web-2', 'rs-web'), privilegedPod('agent')];
    const warnings = existingPodWarnings(
      'team',
      { level: 'baseline', version: 'latest' },
      pods,
      POD_SECURITY_CHECKS,
      () => false,
      2,
    );
    assert.deepEqual(warnings, [
      'new PodSecurity enforce level only checked against the first 2 of 3 existing pods',
      'existing pods in namespace "team" violate the new PodSecurity enforce level "baseline:latest"',
      'agent: host namespaces, privileged',
    ]);
  });

  it('folds three or more pods into one line', () => {
    const warnings = existingPodWarnings(
      'team',
      { level: 'restricted', version: 'latest' },
      [plainPod('c'), plainPod('a'), plainPod('b')],
      POD_SECURITY_CHECKS,
      () => false,
    );
    assert.equal(
      warnings[1],
      'a (and 2 other pods): allowPrivilegeEscalation != false, unrestricted capabilities, runAsNonRoot != true, seccompProfile',
    );
  });
});
