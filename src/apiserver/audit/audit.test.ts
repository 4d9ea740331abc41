// The audit Event's annotations through the API server: the authorization
// decision, and what admission plugins noted (PodSecurity's), on admitted
// and refused writes alike.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { parseRequestInfo } from '../request-info.ts';
import { startTestServer, type TestServer } from '../testing.ts';
import { type AuditEvent, Auditor } from './audit.ts';
import { parsePolicy } from './policy.ts';

describe('audit annotations', () => {
  const lines: string[] = [];
  let t: TestServer;
  before(async () => {
    const policy = parsePolicy(`
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
  resources:
  - group: ""
    resources: [pods]
`);
    t = await startTestServer(undefined, { audit: new Auditor(policy, (l) => void lines.push(l)) });
    const ns = await t.request('POST', '/api/v1/namespaces', {
      metadata: {
        name: 'locked',
        labels: {
          'pod-security.kubernetes.io/enforce': 'baseline',
          'pod-security.kubernetes.io/audit': 'restricted',
        },
      },
    });
    assert.equal(ns.status, 201);
  });
  after(() => t.close());

  const createPod = (name: string, securityContext: Record<string, unknown> = {}) =>
    t.request('POST', '/api/v1/namespaces/locked/pods', {
      metadata: { name },
      spec: { containers: [{ name: 'c', image: 'busybox', securityContext }] },
    });
  it("an admitted pod's event carries the authorization decision and PodSecurity's notes", async () => {
    lines.length = 0;
    assert.equal((await createPod('plain')).status, 201);
    const events = lines.map((l) => JSON.parse(l) as AuditEvent);
    assert.equal(events.length, 1);
    const e = events[0]!;
    assert.equal(e.stage, 'ResponseComplete');
    assert.equal(e.responseStatus?.code, 201);
    assert.equal(e.annotations?.['authorization.k8s.io/decision'], 'allow');
    assert.equal(e.annotations?.['pod-security.kubernetes.io/enforce-policy'], 'baseline:latest');
    assert.match(
      e.annotations?.['pod-security.kubernetes.io/audit-violations'] ?? '',
      /^would violate PodSecurity "restricted:latest": allowPrivilegeEscalation != false/,
    );
  });

  it("a refused pod's event keeps them", async () => {
    lines.length = 0;
    const r = await createPod('root', { privileged: true });
    assert.equal(r.status, 403);
    const events = lines.map((l) => JSON.parse(l) as AuditEvent);
    assert.equal(events.length, 1);
    const e = events[0]!;
    assert.equal(e.responseStatus?.code, 403);
    assert.equal(e.annotations?.['pod-security.kubernetes.io/enforce-policy'], 'baseline:latest');
    assert.match(e.annotations?.['pod-security.kubernetes.io/audit-violations'] ?? '', /privileged/);
  });
});

describe('AuditRecord.annotate', () => {
  it('adds to the stages written after it; a key keeps its first value', () => {
    const lines: string[] = [];
    const policy = parsePolicy('apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n');
    const auditor = new Auditor(policy, (l) => void lines.push(l));
    const info = parseRequestInfo('POST', '/api/v1/namespaces/default/pods', new URLSearchParams());
    const record = auditor.begin(
      info,
      { name: 'bob', groups: [] },
      {
        uri: '/api/v1/namespaces/default/pods',
        sourceIP: '127.0.0.1',
        userAgent: undefined,
      },
    );
    assert.ok(record);
    record.authorized('allow', 'RBAC: allowed by ClusterRoleBinding "x"');
    record.annotate('example.com/note', 'first');
    record.annotate('example.com/note', 'second');
    record.complete(201);
    const [received, complete] = lines.map((l) => JSON.parse(l) as AuditEvent);
    assert.equal(received?.annotations, undefined);
    assert.deepEqual(complete?.annotations, {
      'authorization.k8s.io/decision': 'allow',
      'authorization.k8s.io/reason': 'RBAC: allowed by ClusterRoleBinding "x"',
      'example.com/note': 'first',
    });
  });
});
