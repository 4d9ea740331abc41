// The webhook plugins end to end in the API server's write path, against a
// real HTTPS webhook server in the test (certificates from src/pki), reached
// as a Service (its Endpoints point at loopback) or by URL: mutation by
// JSONPatch, refusal, warnings, the failure policies for a webhook that is
// down, slow or answers garbage, matchConditions, selectors and dry run.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { ensureCA, issueLeaf } from '../../../pki/pki.ts';
import { startTestServer, type TestServer } from '../../testing.ts';

type Handler = (review: { request: Record<string, any> }) => unknown | Promise<unknown>;

const CONFIGS = '/apis/admissionregistration.k8s.io/v1';

describe('admission webhooks', () => {
  let srv: TestServer;
  let hookServer: Server;
  let hookPort = 0;
  let caBundle = '';
  let dir = '';
  const handlers = new Map<string, Handler>();
  const calls: string[] = [];

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'skiff-webhook-test-'));
    const ca = ensureCA(dir, 'webhook-test-ca');
    caBundle = Buffer.from(ca.cert).toString('base64');
    const leaf = issueLeaf(ca, {
      commonName: 'hook.default.svc',
      dnsNames: ['hook.default.svc', 'localhost'],
      ips: ['127.0.0.1'],
      usage: 'server',
    });
    hookServer = createServer({ cert: leaf.cert, key: leaf.key }, async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const route = (req.url ?? '').split('?')[0]!;
      calls.push(route);
      const handler = handlers.get(route);
      if (!handler) {
        res.writeHead(404).end();
        return;
      }
      const answer = await handler(JSON.parse(Buffer.concat(chunks).toString()));
      if (typeof answer === 'string') res.writeHead(200, { 'content-type': 'application/json' }).end(answer);
      else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer));
    });
    await new Promise<void>((r) => hookServer.listen(0, '127.0.0.1', r));
    hookPort = (hookServer.address() as { port: number }).port;
    srv = await startTestServer();
    await srv.request('POST', '/api/v1/namespaces/default/services', {
      metadata: { name: 'hook' },
      spec: { ports: [{ name: 'https', port: 443, targetPort: hookPort }] },
    });
    await srv.request('POST', '/api/v1/namespaces/default/endpoints', {
      metadata: { name: 'hook' },
      subsets: [{ addresses: [{ ip: '127.0.0.1' }], ports: [{ name: 'https', port: hookPort }] }],
    });
  });

  after(async () => {
    await srv.close();
    hookServer.closeAllConnections();
    await new Promise<void>((r) => hookServer.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  });

  beforeEach(async () => {
    handlers.clear();
    calls.length = 0;
    for (const kind of ['mutatingwebhookconfigurations', 'validatingwebhookconfigurations'])
      await srv.request('DELETE', `${CONFIGS}/${kind}`);
  });

  const allow = (review: { request: Record<string, any> }, extra: Record<string, unknown> = {}) => ({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    response: { uid: review.request.uid, allowed: true, ...extra },
  });

  const hook = (name: string, route: string, extra: Record<string, unknown> = {}) => ({
    name,
    clientConfig: { service: { namespace: 'default', name: 'hook', path: route }, caBundle },
    rules: [
      { operations: ['CREATE', 'UPDATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['configmaps'] },
    ],
    sideEffects: 'None',
    admissionReviewVersions: ['v1'],
    ...extra,
  });

  async function configure(kind: 'mutating' | 'validating', webhooks: unknown[]): Promise<void> {
    const plural = `${kind}webhookconfigurations`;
    const res = await srv.request('POST', `${CONFIGS}/${plural}`, {
      metadata: { name: `${kind}-test` },
      webhooks,
    });
    assert.equal(res.status, 201, res.text);
  }

  const createConfigMap = (name: string, labels: Record<string, string> = {}, query = '') =>
    srv.request('POST', `/api/v1/namespaces/default/configmaps${query}`, { metadata: { name, labels } });

  it('a mutating webhook adds a label by JSONPatch, and its warning reaches the client', async () => {
    handlers.set('/mutate', (review) => {
      assert.equal(review.request.operation, 'CREATE');
      assert.equal(review.request.resource.resource, 'configmaps');
      assert.equal(review.request.userInfo.username, 'test-admin');
      const patch = [{ op: 'add', path: '/metadata/labels/mutated', value: 'yes' }];
      return allow(review, {
        patchType: 'JSONPatch',
        patch: Buffer.from(JSON.stringify(patch)).toString('base64'),
        warnings: ['mutated by the test'],
      });
    });
    await configure('mutating', [hook('label.example.com', '/mutate')]);
    const res = await createConfigMap('m1', { app: 'x' });
    assert.equal(res.status, 201, res.text);
    assert.deepEqual(res.body.metadata.labels, { app: 'x', mutated: 'yes' });
    assert.match(res.headers.get('warning') ?? '', /mutated by the test/);
  });

  it('a validating webhook refuses with its message and code', async () => {
    handlers.set('/deny', (review) => ({
      ...allow(review),
      response: {
        uid: review.request.uid,
        allowed: false,
        status: { code: 403, message: 'no configmaps today' },
      },
    }));
    await configure('validating', [hook('deny.example.com', '/deny')]);
    const res = await createConfigMap('v1');
    assert.equal(res.status, 403);
    assert.equal(res.body.reason, 'Forbidden');
    assert.equal(
      res.body.message,
      'admission webhook "deny.example.com" denied the request: no configmaps today',
    );
  });

  it('runs mutating webhooks before the schema validation and validating ones after, on the mutated object', async () => {
    handlers.set('/mutate', (review) =>
      allow(review, {
        patchType: 'JSONPatch',
        patch: Buffer.from(JSON.stringify([{ op: 'add', path: '/data', value: { k: 'v' } }])).toString(
          'base64',
        ),
      }),
    );
    let seen: unknown;
    handlers.set('/check', (review) => {
      seen = review.request.object.data;
      return allow(review);
    });
    await configure('mutating', [hook('add-data.example.com', '/mutate')]);
    await configure('validating', [hook('check.example.com', '/check')]);
    assert.equal((await createConfigMap('order')).status, 201);
    assert.deepEqual(seen, { k: 'v' });
    assert.deepEqual(calls, ['/mutate', '/check']);
  });

  it('failurePolicy Fail refuses when the webhook is down; Ignore lets the request through', async () => {
    const down = { clientConfig: { url: 'https://127.0.0.1:1/down', caBundle } };
    await configure('validating', [hook('down.example.com', '/down', down)]);
    const res = await createConfigMap('f1');
    assert.equal(res.status, 500);
    assert.equal(res.body.reason, 'InternalError');
    assert.equal(
      res.body.message,
      'Internal error occurred: failed calling webhook "down.example.com": failed to call webhook: ' +
        'Post "https://127.0.0.1:1/down?timeout=10s": dial tcp 127.0.0.1:1: connect: connection refused',
    );
    await srv.request('DELETE', `${CONFIGS}/validatingwebhookconfigurations/validating-test`);
    await configure('validating', [hook('down.example.com', '/down', { ...down, failurePolicy: 'Ignore' })]);
    assert.equal((await createConfigMap('f2')).status, 201);
  });

  it('a slow webhook fails at its timeout, and garbage is an invalid response', async () => {
    handlers.set('/slow', () => new Promise(() => {}));
    handlers.set('/garbage', () => 'this is not json');
    await configure('validating', [hook('slow.example.com', '/slow', { timeoutSeconds: 1 })]);
    const slow = await createConfigMap('s1');
    assert.equal(slow.status, 500);
    assert.match(
      slow.body.message,
      /failed calling webhook "slow\.example\.com": .*context deadline exceeded/,
    );
    await srv.request('DELETE', `${CONFIGS}/validatingwebhookconfigurations/validating-test`);
    await configure('validating', [hook('garbage.example.com', '/garbage')]);
    const garbage = await createConfigMap('g1');
    assert.equal(garbage.status, 500);
    assert.match(
      garbage.body.message,
      /failed calling webhook "garbage\.example\.com": received invalid webhook response/,
    );
  });

  it('a response for another request (wrong uid) is refused', async () => {
    handlers.set('/uid', (review) => ({ ...allow(review), response: { uid: 'other', allowed: true } }));
    await configure('validating', [hook('uid.example.com', '/uid')]);
    const res = await createConfigMap('u1');
    assert.equal(res.status, 500);
    assert.match(res.body.message, /expected response\.uid=/);
  });

  it('calls only webhooks whose rules, objectSelector and matchConditions match', async () => {
    handlers.set('/deny', (review) => ({
      ...allow(review),
      response: { uid: review.request.uid, allowed: false },
    }));
    await configure('validating', [
      hook('selector.example.com', '/deny', { objectSelector: { matchLabels: { guarded: 'true' } } }),
      hook('condition.example.com', '/deny', {
        matchConditions: [{ name: 'named-deny', expression: 'object.metadata.name.startsWith("deny")' }],
      }),
      hook('secrets.example.com', '/deny', {
        rules: [{ operations: ['*'], apiGroups: [''], apiVersions: ['v1'], resources: ['secrets'] }],
      }),
    ]);
    assert.equal((await createConfigMap('plain')).status, 201);
    const guarded = await createConfigMap('guarded', { guarded: 'true' });
    assert.equal(guarded.status, 400);
    assert.equal(
      guarded.body.message,
      'admission webhook "selector.example.com" denied the request without explanation',
    );
    const named = await createConfigMap('deny-me');
    assert.equal(named.status, 400);
    assert.match(named.body.message, /"condition\.example\.com" denied/);
  });

  it('a dry run reaches webhooks without side effects, and changes nothing', async () => {
    handlers.set('/allow', (review) => {
      assert.equal(review.request.dryRun, true);
      return allow(review);
    });
    await configure('validating', [hook('dry.example.com', '/allow', { sideEffects: 'NoneOnDryRun' })]);
    const res = await createConfigMap('dry', {}, '?dryRun=All');
    assert.equal(res.status, 201, res.text);
    assert.deepEqual(calls, ['/allow']);
    assert.equal((await srv.request('GET', '/api/v1/namespaces/default/configmaps/dry')).status, 404);
  });

  it('never calls webhooks for webhook configurations themselves', async () => {
    handlers.set('/deny', (review) => ({
      ...allow(review),
      response: { uid: review.request.uid, allowed: false },
    }));
    await configure('validating', [
      hook('all.example.com', '/deny', {
        rules: [{ operations: ['*'], apiGroups: ['*'], apiVersions: ['*'], resources: ['*'] }],
      }),
    ]);
    const res = await srv.request('DELETE', `${CONFIGS}/validatingwebhookconfigurations/validating-test`);
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(calls, []);
  });
});

describe('webhook configuration validation', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startTestServer();
  });
  after(() => srv.close());

  it('defaults as upstream and refuses what upstream refuses', async () => {
    const ok = await srv.request('POST', `${CONFIGS}/validatingwebhookconfigurations`, {
      metadata: { name: 'v' },
      webhooks: [
        {
          name: 'a.b.c',
          clientConfig: { service: { namespace: 'ns', name: 'svc' } },
          sideEffects: 'None',
          admissionReviewVersions: ['v1'],
          rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'] }],
        },
      ],
    });
    assert.equal(ok.status, 201, ok.text);
    const w = ok.body.webhooks[0];
    assert.equal(w.failurePolicy, 'Fail');
    assert.equal(w.matchPolicy, 'Equivalent');
    assert.equal(w.timeoutSeconds, 10);
    assert.equal(w.clientConfig.service.port, 443);
    assert.equal(w.rules[0].scope, '*');
    assert.deepEqual(w.namespaceSelector, {});

    const bad = await srv.request('POST', `${CONFIGS}/mutatingwebhookconfigurations`, {
      metadata: { name: 'm' },
      webhooks: [
        {
          name: 'short',
          clientConfig: { url: 'http://example.com/x' },
          admissionReviewVersions: ['v2'],
          timeoutSeconds: 31,
          matchConditions: [{ name: 'c', expression: 'object.' }],
        },
      ],
    });
    assert.equal(bad.status, 422);
    const fields = bad.body.details.causes.map((c: { field: string }) => c.field);
    for (const f of [
      'webhooks[0].name',
      'webhooks[0].sideEffects',
      'webhooks[0].timeoutSeconds',
      'webhooks[0].admissionReviewVersions',
      'webhooks[0].clientConfig.url',
      'webhooks[0].matchConditions[0].expression',
    ])
      assert.ok(fields.includes(f), `${f} in ${fields.join(', ')}`);
  });

  it('prints the WEBHOOKS column', async () => {
    const res = await srv.request('GET', `${CONFIGS}/validatingwebhookconfigurations`, undefined, {
      accept: 'application/json;as=Table;v=v1;g=meta.k8s.io',
    });
    assert.deepEqual(
      res.body.columnDefinitions.map((c: { name: string }) => c.name),
      ['Name', 'Webhooks', 'Age'],
    );
    assert.equal(res.body.rows[0].cells[1], 1);
  });
});
