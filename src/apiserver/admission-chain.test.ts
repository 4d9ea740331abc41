// The admission chain in the API server's write path: where each phase runs
// relative to defaulting, the strategy's validation and storage, which
// operations and subresources are admitted with what attributes, and how a
// plugin's refusal and warnings reach the client. PodSecurity is the
// default chain's plugin checked here end to end.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ApiError } from '../api/errors.ts';
import type { AdmissionAttributes, MutatingPlugin, ValidatingPlugin } from './admission/admission.ts';
import { defaultAdmission, parseAdmissionPlugins } from './admission/chain.ts';
import { startTestServer, type TestServer } from './testing.ts';

const pod = (name: string, spec: Record<string, unknown> = {}) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name },
  spec: { containers: [{ name: 'c', image: 'busybox' }], ...spec },
});

describe('admission chain in the write path', () => {
  let srv: TestServer;
  const seen: Array<{ phase: string; attrs: AdmissionAttributes; snapshot: unknown }> = [];
  let refuse: string | undefined;

  const recorder: MutatingPlugin = {
    name: 'recorder',
    handles: (a) => a.resource === 'pods' || a.resource === 'configmaps',
    async admit(a) {
      seen.push({ phase: 'admit', attrs: a, snapshot: structuredClone(a.object) });
      // A mutation the strategy's validation must see: an invalid label
      // value is refused with 422 after admission.
      if (a.object && a.resource === 'configmaps' && a.operation !== 'DELETE') {
        const value = a.name === 'bad-label' ? 'not a label value!' : a.operation.toLowerCase();
        a.object.metadata.labels = { ...a.object.metadata.labels, admitted: value };
      }
      return { warnings: ['seen by recorder'] };
    },
  };
  const gate: ValidatingPlugin = {
    name: 'gate',
    handles: (a) => a.resource === 'pods' || a.resource === 'configmaps',
    async validate(a) {
      seen.push({ phase: 'validate', attrs: a, snapshot: structuredClone(a.object) });
      if (refuse && a.name === refuse)
        throw new ApiError(403, 'Forbidden', `${a.resource} "${a.name}" is forbidden: no`);
      return undefined;
    },
  };

  before(async () => {
    srv = await startTestServer(undefined, {
      admission: () => ({ mutating: [recorder], validating: [gate] }),
    });
  });
  after(() => srv.close());

  it('create: mutating after defaulting, validating after the strategy, both before storage', async () => {
    seen.length = 0;
    const r = await srv.request('POST', '/api/v1/namespaces/default/pods', pod('p1'));
    assert.equal(r.status, 201);
    const [admit, validate] = seen;
    assert.equal(admit?.phase, 'admit');
    assert.equal(admit.attrs.operation, 'CREATE');
    assert.equal(admit.attrs.namespace, 'default');
    assert.equal(admit.attrs.user.name, 'test-admin');
    // Defaulted (terminationGracePeriodSeconds), not yet prepared for create (no status).
    const admitted = admit.snapshot as { spec: Record<string, unknown>; status?: unknown };
    assert.equal(admitted.spec.terminationGracePeriodSeconds, 30);
    assert.equal(admitted.status, undefined);
    // The validating phase sees the object as it will be stored.
    assert.equal(validate?.phase, 'validate');
    assert.equal((validate.snapshot as { status?: { phase?: string } }).status?.phase, 'Pending');
    assert.deepEqual(r.headers.get('warning'), '299 - "seen by recorder"');
  });

  it('a mutation is stored, and what the strategy refuses after it is 422', async () => {
    const r = await srv.request('POST', '/api/v1/namespaces/default/configmaps', {
      metadata: { name: 'cm' },
    });
    assert.equal(r.status, 201);
    assert.equal(r.body.metadata.labels.admitted, 'create');
    const u = await srv.request('PUT', '/api/v1/namespaces/default/configmaps/cm', {
      metadata: { name: 'cm' },
      data: { a: 'b' },
    });
    assert.equal(u.status, 200);
    assert.equal(u.body.metadata.labels.admitted, 'update');
    const bad = await srv.request('POST', '/api/v1/namespaces/default/configmaps', {
      metadata: { name: 'bad-label' },
    });
    assert.equal(bad.status, 422);
    assert.match(bad.body.message, /metadata.labels: Invalid value: "not a label value!"/);
  });

  it('a validating refusal is the plugin Status and nothing is stored', async () => {
    refuse = 'p2';
    const r = await srv.request('POST', '/api/v1/namespaces/default/pods', pod('p2'));
    refuse = undefined;
    assert.equal(r.status, 403);
    assert.equal(r.body.kind, 'Status');
    assert.equal(r.body.message, 'pods "p2" is forbidden: no');
    assert.equal((await srv.request('GET', '/api/v1/namespaces/default/pods/p2')).status, 404);
  });

  it('dry runs are admitted with dryRun set', async () => {
    seen.length = 0;
    const r = await srv.request('POST', '/api/v1/namespaces/default/pods?dryRun=All', pod('dry'));
    assert.equal(r.status, 201);
    assert.ok(seen.length > 0 && seen.every((s) => s.attrs.dryRun));
  });

  it('update, patch and status writes are UPDATEs with the old object; delete is a DELETE', async () => {
    seen.length = 0;
    const p = await srv.request(
      'PATCH',
      '/api/v1/namespaces/default/pods/p1',
      { metadata: { labels: { a: 'b' } } },
      { 'content-type': 'application/merge-patch+json' },
    );
    assert.equal(p.status, 200);
    assert.equal(seen[0]?.attrs.operation, 'UPDATE');
    assert.equal(seen[0]?.attrs.oldObject?.metadata.labels, undefined);
    assert.deepEqual(seen[0]?.attrs.object?.metadata.labels, { a: 'b' });

    seen.length = 0;
    const s = await srv.request(
      'PATCH',
      '/api/v1/namespaces/default/pods/p1/status',
      { status: { message: 'hi' } },
      { 'content-type': 'application/merge-patch+json' },
    );
    assert.equal(s.status, 200);
    assert.equal(seen[0]?.attrs.subresource, 'status');

    seen.length = 0;
    const d = await srv.request('DELETE', '/api/v1/namespaces/default/pods/p1');
    assert.equal(d.status, 200);
    assert.deepEqual(
      seen.map((e) => [e.phase, e.attrs.operation, e.attrs.name, e.attrs.object === undefined]),
      [
        ['admit', 'DELETE', 'p1', true],
        ['validate', 'DELETE', 'p1', true],
      ],
    );
    assert.equal(seen[0]?.attrs.oldObject?.metadata.name, 'p1');
  });

  it('a refused delete keeps the object', async () => {
    await srv.request('POST', '/api/v1/namespaces/default/pods', pod('keep'));
    refuse = 'keep';
    const d = await srv.request('DELETE', '/api/v1/namespaces/default/pods/keep');
    refuse = undefined;
    assert.equal(d.status, 403);
    assert.equal((await srv.request('GET', '/api/v1/namespaces/default/pods/keep')).status, 200);
  });

  it('pods/binding and pods/eviction are CREATEs of a Binding and an Eviction', async () => {
    seen.length = 0;
    const b = await srv.request('POST', '/api/v1/namespaces/default/pods/keep/binding', {
      apiVersion: 'v1',
      kind: 'Binding',
      metadata: { name: 'keep' },
      target: { kind: 'Node', name: 'n1' },
    });
    assert.equal(b.status, 201);
    assert.deepEqual(
      [seen[0]?.attrs.kind, seen[0]?.attrs.subresource, seen[0]?.attrs.operation],
      ['Binding', 'binding', 'CREATE'],
    );
    seen.length = 0;
    refuse = 'keep';
    const e = await srv.request('POST', '/api/v1/namespaces/default/pods/keep/eviction', {
      apiVersion: 'policy/v1',
      kind: 'Eviction',
      metadata: { name: 'keep' },
    });
    refuse = undefined;
    assert.equal(e.status, 403);
    assert.deepEqual([seen[0]?.attrs.kind, seen[0]?.attrs.subresource], ['Eviction', 'eviction']);
    assert.equal((await srv.request('GET', '/api/v1/namespaces/default/pods/keep')).status, 200);
  });
});

describe('PodSecurity in the default chain', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startTestServer(undefined, { admission: defaultAdmission });
  });
  after(() => srv.close());

  const privileged = (name: string) =>
    pod(name, {
      containers: [{ name: 'c', image: 'busybox', securityContext: { privileged: true } }],
    });

  it('an unlabelled namespace is privileged: anything goes', async () => {
    const r = await srv.request('POST', '/api/v1/namespaces/default/pods', privileged('root'));
    assert.equal(r.status, 201);
    assert.equal(r.headers.get('warning'), null);
  });

  it('enforce=restricted refuses a privileged pod with upstream message', async () => {
    await srv.request('POST', '/api/v1/namespaces', {
      metadata: { name: 'locked', labels: { 'pod-security.kubernetes.io/enforce': 'restricted' } },
    });
    const r = await srv.request('POST', '/api/v1/namespaces/locked/pods', privileged('root'));
    assert.equal(r.status, 403);
    assert.equal(r.body.reason, 'Forbidden');
    assert.match(
      r.body.message,
      /^pods "root" is forbidden: violates PodSecurity "restricted:latest": privileged \(container "c" must not set securityContext.privileged=true\), /,
    );
    // The ephemeral containers subresource is checked too.
    const hardened = await srv.request('POST', '/api/v1/namespaces/locked/pods', {
      metadata: { name: 'ok' },
      spec: {
        securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
        containers: [
          {
            name: 'c',
            image: 'busybox',
            securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
          },
        ],
      },
    });
    assert.equal(hardened.status, 201, hardened.text);
    const live = hardened.body;
    live.spec.ephemeralContainers = [
      { name: 'debug', image: 'busybox', securityContext: { privileged: true } },
    ];
    const e = await srv.request('PUT', '/api/v1/namespaces/locked/pods/ok/ephemeralcontainers', live);
    assert.equal(e.status, 403);
    assert.match(e.body.message, /^pods "ok" is forbidden: violates PodSecurity "restricted:latest"/);
  });

  it('warn=baseline admits the pod with a Warning header', async () => {
    await srv.request('POST', '/api/v1/namespaces', {
      metadata: { name: 'warned', labels: { 'pod-security.kubernetes.io/warn': 'baseline' } },
    });
    const r = await srv.request('POST', '/api/v1/namespaces/warned/pods', privileged('root'));
    assert.equal(r.status, 201);
    assert.equal(
      r.headers.get('warning'),
      '299 - "would violate PodSecurity \\"baseline:latest\\": privileged (container \\"c\\" must not set securityContext.privileged=true)"',
    );
  });

  it('raising a namespace enforce level warns about the pods already there', async () => {
    const r = await srv.request(
      'PATCH',
      '/api/v1/namespaces/warned',
      { metadata: { labels: { 'pod-security.kubernetes.io/enforce': 'baseline' } } },
      { 'content-type': 'application/merge-patch+json' },
    );
    assert.equal(r.status, 200);
    assert.match(r.headers.get('warning') ?? '', /existing pods in namespace \\"warned\\" violate/);
  });

  it('a bad level label is refused as invalid', async () => {
    const r = await srv.request('POST', '/api/v1/namespaces', {
      metadata: { name: 'bad', labels: { 'pod-security.kubernetes.io/enforce': 'nope' } },
    });
    assert.equal(r.status, 422);
  });
});

describe('--disable-admission-plugins', () => {
  it('knows the plugins by upstream names and refuses others', () => {
    assert.deepEqual(parseAdmissionPlugins('ResourceQuota, PodSecurity'), ['ResourceQuota', 'PodSecurity']);
    assert.deepEqual(parseAdmissionPlugins(''), []);
    assert.throws(
      () => parseAdmissionPlugins('AlwaysPullImages'),
      /unknown plugin "AlwaysPullImages" \(one of LimitRanger, ServiceAccount, Priority, DefaultTolerationSeconds, NodeRestriction, PodSecurity, DefaultStorageClass, StorageObjectInUseProtection, PersistentVolumeClaimResize, CertificateApproval, CertificateSigning, CertificateSubjectRestriction, DefaultIngressClass, MutatingAdmissionWebhook, ValidatingAdmissionPolicy, ValidatingAdmissionWebhook, ResourceQuota\)/,
    );
  });

  it('leaves the disabled plugins out of the default chain, in upstream order otherwise', async () => {
    const srv = await startTestServer(undefined, {
      admission: (api) => defaultAdmission(api, { disabled: ['ResourceQuota', 'LimitRanger'] }),
    });
    try {
      const all = defaultAdmission(srv.api);
      assert.deepEqual(
        all.mutating.map((p) => p.name),
        [
          'LimitRanger',
          'Priority',
          'DefaultTolerationSeconds',
          'DefaultStorageClass',
          'StorageObjectInUseProtection',
          'DefaultIngressClass',
          'MutatingAdmissionWebhook',
        ],
      );
      assert.deepEqual(
        all.validating.map((p) => p.name),
        [
          'LimitRanger',
          'NodeRestriction',
          'PodSecurity',
          'PersistentVolumeClaimResize',
          'CertificateApproval',
          'CertificateSigning',
          'CertificateSubjectRestriction',
          'RBACEscalation',
          'ValidatingAdmissionPolicy',
          'ValidatingAdmissionWebhook',
          'ResourceQuota',
        ],
      );
      const some = defaultAdmission(srv.api, { disabled: ['ResourceQuota', 'LimitRanger'] });
      assert.deepEqual(
        [...some.mutating, ...some.validating].map((p) => p.name),
        [
          'Priority',
          'DefaultTolerationSeconds',
          'DefaultStorageClass',
          'StorageObjectInUseProtection',
          'DefaultIngressClass',
          'MutatingAdmissionWebhook',
          'NodeRestriction',
          'PodSecurity',
          'PersistentVolumeClaimResize',
          'CertificateApproval',
          'CertificateSigning',
          'CertificateSubjectRestriction',
          'RBACEscalation',
          'ValidatingAdmissionPolicy',
          'ValidatingAdmissionWebhook',
        ],
      );
      // No quota is enforced on this server.
      await srv.request('POST', '/api/v1/namespaces/default/resourcequotas', {
        metadata: { name: 'none' },
        spec: { hard: { configmaps: '0' } },
      });
      await srv.request(
        'PATCH',
        '/api/v1/namespaces/default/resourcequotas/none/status',
        { status: { hard: { configmaps: '0' }, used: { configmaps: '0' } } },
        { 'content-type': 'application/merge-patch+json' },
      );
      const cm = await srv.request('POST', '/api/v1/namespaces/default/configmaps', {
        metadata: { name: 'c' },
      });
      assert.equal(cm.status, 201);
    } finally {
      await srv.close();
    }
  });
});
