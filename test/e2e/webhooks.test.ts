// Admission webhooks and ValidatingAdmissionPolicy with the real kubectl.
// The webhook server is this test's own HTTPS server on loopback (its
// certificate from src/pki), reached by URL with a caBundle: a mutating
// webhook that adds a label, a validating one that refuses; failurePolicy
// Fail vs Ignore for a webhook behind a Service with no endpoints (as when
// its pod is deleted); then a ValidatingAdmissionPolicy limiting Deployment
// replicas with a param ConfigMap. (A webhook served by a pod, through the
// cluster network, is left to a test with an agent and an HTTPS image.)

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { ensureCA, issueLeaf } from '../../src/pki/pki.ts';
import { eventually, ok, type Skiff, startSkiff } from './harness.ts';

let skiff: Skiff;
let hookServer: Server;
let hookPort = 0;
let caBundle = '';
let certDir = '';
const NS = 'webhooks-e2e';

/** The test's webhook: /label adds metadata.labels.mutated=yes, /deny refuses names starting with "bad". */
function serveWebhooks(cert: string, key: string): Server {
  return createServer({ cert, key }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const { request } = JSON.parse(Buffer.concat(chunks).toString());
      const route = (req.url ?? '').split('?')[0];
      let response: Record<string, unknown> = { uid: request.uid, allowed: true };
      if (route === '/label') {
        const labels = request.object.metadata.labels;
        const patch = labels
          ? [{ op: 'add', path: '/metadata/labels/mutated', value: 'yes' }]
          : [{ op: 'add', path: '/metadata/labels', value: { mutated: 'yes' } }];
        response = {
          ...response,
          patchType: 'JSONPatch',
          patch: Buffer.from(JSON.stringify(patch)).toString('base64'),
        };
      } else if (route === '/deny' && String(request.name).startsWith('bad')) {
        response = {
          uid: request.uid,
          allowed: false,
          status: { code: 403, message: 'names starting with bad are refused' },
        };
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response }));
    });
  });
}

before(async () => {
  certDir = mkdtempSync(path.join(tmpdir(), 'skiff-e2e-webhooks-'));
  const ca = ensureCA(certDir, 'e2e-webhook-ca');
  caBundle = Buffer.from(ca.cert).toString('base64');
  const leaf = issueLeaf(ca, {
    commonName: `hooks.${NS}.svc`,
    dnsNames: [`hooks.${NS}.svc`],
    ips: ['127.0.0.1'],
    usage: 'server',
  });
  hookServer = serveWebhooks(leaf.cert, leaf.key);
  await new Promise<void>((r) => hookServer.listen(0, '127.0.0.1', r));
  hookPort = (hookServer.address() as { port: number }).port;
  skiff = await startSkiff();
  await ok(skiff, ['create', 'namespace', NS]);
  await ok(skiff, ['apply', '-f', '-'], {
    input: `apiVersion: v1
kind: Service
metadata: {name: hooks, namespace: ${NS}}
spec:
  ports: [{name: https, port: 443, targetPort: ${hookPort}}]
`,
  });
});

after(async () => {
  await skiff?.kubectl(['delete', 'namespace', NS, '--wait=false']);
  await skiff?.stop();
  hookServer?.closeAllConnections();
  await new Promise<void>((r) => (hookServer ? hookServer.close(() => r()) : r()));
  rmSync(certDir, { recursive: true, force: true });
});

/** A webhook served by the test's server by URL, or (`viaService`) through the hooks Service. */
// Each test leaves no configuration behind, passing or not.
afterEach(async () => {
  for (const kind of [
    'mutatingwebhookconfigurations',
    'validatingwebhookconfigurations',
    'validatingadmissionpolicybindings',
    'validatingadmissionpolicies',
  ])
    await skiff.kubectl(['delete', kind, '--all']);
});

const webhook = (name: string, route: string, extra = '', viaService = false) => `
- name: ${name}
  clientConfig:
    ${viaService ? `service: {namespace: ${NS}, name: hooks, path: ${route}}` : `url: https://127.0.0.1:${hookPort}${route}`}
    caBundle: ${caBundle}
  rules:
  - {operations: [CREATE], apiGroups: [""], apiVersions: [v1], resources: [configmaps]}
  namespaceSelector:
    matchLabels: {kubernetes.io/metadata.name: ${NS}}
  sideEffects: None
  admissionReviewVersions: [v1]${extra}`;

describe('admission webhooks with kubectl', () => {
  it('a mutating webhook adds a label, and kubectl shows the configuration', async () => {
    await ok(skiff, ['apply', '-f', '-'], {
      input: `apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata: {name: e2e-label}
webhooks:${webhook('label.e2e.skiff.dev', '/label')}
`,
    });
    const get = await ok(skiff, ['get', 'mutatingwebhookconfigurations', 'e2e-label']);
    assert.match(get, /^NAME\s+WEBHOOKS\s+AGE$/m);
    assert.match(get, /e2e-label\s+1\s+/);
    // The configuration is read from the watch cache: the first create may precede it by a moment.
    await eventually('the mutating webhook labels a ConfigMap', async () => {
      const name = `labelled-${Date.now()}`;
      await ok(skiff, ['create', 'configmap', name, '-n', NS]);
      const labels = await ok(skiff, [
        'get',
        'configmap',
        name,
        '-n',
        NS,
        '-o',
        'jsonpath={.metadata.labels.mutated}',
      ]);
      assert.equal(labels, 'yes');
      return true;
    });
  });

  it('a validating webhook refuses, with its message as kubectl prints it', async () => {
    await ok(skiff, ['apply', '-f', '-'], {
      input: `apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {name: e2e-deny}
webhooks:${webhook('deny.e2e.skiff.dev', '/deny')}
`,
    });
    await eventually('the validating webhook refuses', async () => {
      const r = await skiff.kubectl(['create', 'configmap', 'bad-one', '-n', NS]);
      assert.notEqual(r.code, 0);
      assert.match(
        r.stderr,
        /admission webhook "deny\.e2e\.skiff\.dev" denied the request: names starting with bad are refused/,
      );
      return true;
    });
    await ok(skiff, ['create', 'configmap', 'good-one', '-n', NS]);
  });

  it('with the webhook gone, failurePolicy Fail refuses and Ignore lets the request through', async () => {
    const config = (policy: string) => `apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {name: e2e-gone}
webhooks:${webhook('gone.e2e.skiff.dev', '/deny', `\n  failurePolicy: ${policy}`, true)}
`;
    // The Service has no endpoints, as when the webhook's pod is deleted.
    await ok(skiff, ['apply', '-f', '-'], { input: config('Fail') });
    await eventually('the webhook failure refuses', async () => {
      const r = await skiff.kubectl(['create', 'configmap', `fail-${Date.now()}`, '-n', NS]);
      assert.notEqual(r.code, 0);
      assert.match(
        r.stderr,
        /Internal error occurred: failed calling webhook "gone\.e2e\.skiff\.dev": no endpoints available for service "hooks"/,
      );
      return true;
    });
    await ok(skiff, ['apply', '-f', '-'], { input: config('Ignore') });
    await eventually('Ignore lets the create through', () =>
      ok(skiff, ['create', 'configmap', `ignored-${Date.now()}`, '-n', NS]),
    );
  });
});

describe('ValidatingAdmissionPolicy with kubectl', () => {
  it('limits Deployment replicas with a param ConfigMap', async () => {
    await ok(skiff, ['create', 'configmap', 'replica-limit', '-n', NS, '--from-literal=maxReplicas=3']);
    await ok(skiff, ['apply', '-f', '-'], {
      input: `apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: replica-limit.e2e.skiff.dev}
spec:
  failurePolicy: Fail
  paramKind: {apiVersion: v1, kind: ConfigMap}
  matchConstraints:
    resourceRules:
    - {apiGroups: [apps], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [deployments]}
  validations:
  - expression: "object.spec.replicas <= int(params.data.maxReplicas)"
    messageExpression: "'replicas must be no greater than ' + params.data.maxReplicas"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: replica-limit-binding}
spec:
  policyName: replica-limit.e2e.skiff.dev
  validationActions: [Deny]
  paramRef: {name: replica-limit, namespace: ${NS}, parameterNotFoundAction: Deny}
  matchResources:
    namespaceSelector:
      matchLabels: {kubernetes.io/metadata.name: ${NS}}
`,
    });
    const policies = await ok(skiff, ['get', 'validatingadmissionpolicies']);
    assert.match(policies, /^NAME\s+VALIDATIONS\s+PARAMKIND\s+AGE$/m);
    assert.match(policies, /replica-limit\.e2e\.skiff\.dev\s+1\s+v1\/ConfigMap\s+/);
    const bindings = await ok(skiff, ['get', 'validatingadmissionpolicybindings']);
    assert.match(
      bindings,
      /replica-limit-binding\s+replica-limit\.e2e\.skiff\.dev\s+webhooks-e2e\/replica-limit\s+/,
    );
    await eventually('the policy refuses 5 replicas', async () => {
      const r = await skiff.kubectl([
        'create',
        'deployment',
        'big',
        '-n',
        NS,
        '--image=busybox',
        '--replicas=5',
      ]);
      assert.notEqual(r.code, 0);
      assert.match(
        r.stderr,
        /deployments\.apps "big" is invalid: : ValidatingAdmissionPolicy 'replica-limit\.e2e\.skiff\.dev' with binding 'replica-limit-binding' denied request: replicas must be no greater than 3/,
      );
      return true;
    });
    await ok(skiff, ['create', 'deployment', 'small', '-n', NS, '--image=busybox', '--replicas=2']);
    const patch = await skiff.kubectl([
      'patch',
      'deployment',
      'small',
      '-n',
      NS,
      '-p',
      '{"spec":{"replicas":4}}',
    ]);
    assert.notEqual(patch.code, 0);
    assert.match(patch.stderr, /replicas must be no greater than 3/);
    await ok(skiff, ['delete', 'validatingadmissionpolicybinding', 'replica-limit-binding']);
    await ok(skiff, ['delete', 'validatingadmissionpolicy', 'replica-limit.e2e.skiff.dev']);
  });
});
