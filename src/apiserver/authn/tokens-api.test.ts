// TokenRequest (serviceaccounts/<name>/token) and TokenReview through the API
// server: issued tokens authenticate as their ServiceAccount until what they
// are bound to is gone; bad requests get upstream's Status.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, TEST_ISSUER, type TestServer } from '../testing.ts';
import { createAuthenticator } from './authenticator.ts';

let server: TestServer;
before(async () => {
  server = await startTestServer();
  await server.request('POST', '/api/v1/namespaces/default/serviceaccounts', { metadata: { name: 'robot' } });
});
after(() => server.close());

const requestToken = (body: object, sa = 'robot') =>
  server.request('POST', `/api/v1/namespaces/default/serviceaccounts/${sa}/token`, {
    apiVersion: 'authentication.k8s.io/v1',
    kind: 'TokenRequest',
    ...body,
  });

const review = async (token: string, audiences?: string[]) =>
  (
    (
      await server.request('POST', '/apis/authentication.k8s.io/v1/tokenreviews', {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenReview',
        spec: { token, ...(audiences ? { audiences } : {}) },
      })
    ).body as { status: Record<string, unknown> }
  ).status;

describe('TokenRequest and TokenReview', () => {
  it('issues a token with the defaults that reviews as the ServiceAccount', async () => {
    const r = await requestToken({ spec: {} });
    assert.equal(r.status, 201, r.text);
    const tr = r.body as {
      spec: { audiences: string[]; expirationSeconds: number };
      status: { token: string; expirationTimestamp: string };
    };
    assert.deepEqual(tr.spec.audiences, [TEST_ISSUER]);
    assert.equal(tr.spec.expirationSeconds, 3600);
    const ttl = Date.parse(tr.status.expirationTimestamp) - Date.now();
    assert.ok(ttl > 3590_000 && ttl <= 3600_000, String(ttl));
    const status = await review(tr.status.token);
    assert.equal(status.authenticated, true);
    const user = status.user as { username: string; groups: string[]; uid: string };
    assert.equal(user.username, 'system:serviceaccount:default:robot');
    assert.deepEqual(user.groups, [
      'system:serviceaccounts',
      'system:serviceaccounts:default',
      'system:authenticated',
    ]);
    assert.ok(user.uid);
    // For an audience the API server does not serve, the token is not good.
    const elsewhere = await review(tr.status.token, ['https://vault.example']);
    assert.equal(elsewhere.authenticated, undefined);
    assert.match(String(elsewhere.error), /invalid for the target audiences/);
  });

  it('refuses a short duration (422), a missing ServiceAccount (404), an unbindable kind (400), a stale uid (409)', async () => {
    const short = await requestToken({ spec: { expirationSeconds: 60 } });
    assert.equal(short.status, 422);
    assert.match(
      (short.body as { message: string }).message,
      /^TokenRequest.authentication.k8s.io "robot" is invalid: spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes$/,
    );
    const missing = await requestToken({ spec: {} }, 'nobody');
    assert.equal(missing.status, 404);
    assert.equal((missing.body as { message: string }).message, 'serviceaccounts "nobody" not found');
    const kind = await requestToken({
      spec: { boundObjectRef: { kind: 'ConfigMap', apiVersion: 'v1', name: 'x' } },
    });
    assert.equal(kind.status, 400);
    assert.match((kind.body as { message: string }).message, /cannot bind token to object of type/);
    await server.request('POST', '/api/v1/namespaces/default/pods', {
      metadata: { name: 'holder' },
      spec: { containers: [{ name: 'c', image: 'busybox' }] },
    });
    const stale = await requestToken({
      spec: { boundObjectRef: { kind: 'Pod', apiVersion: 'v1', name: 'holder', uid: 'not-its-uid' } },
    });
    assert.equal(stale.status, 409);
    assert.match((stale.body as { message: string }).message, /does not match the UID in record/);
  });

  it('a pod-bound token carries the pod and stops authenticating once the pod is gone', async () => {
    await server.request('POST', '/api/v1/namespaces/default/pods', {
      metadata: { name: 'bound' },
      spec: { containers: [{ name: 'c', image: 'busybox' }] },
    });
    const r = await requestToken({
      spec: { boundObjectRef: { kind: 'Pod', apiVersion: 'v1', name: 'bound' } },
    });
    assert.equal(r.status, 201, r.text);
    const token = (r.body as { status: { token: string } }).status.token;
    // (Not reviewed before the delete: a review's answer is cached for 10 s, as upstream's.)
    const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8'));
    assert.equal(claims['kubernetes.io'].pod.name, 'bound');
    assert.equal(claims.sub, 'system:serviceaccount:default:robot');
    await server.request('DELETE', '/api/v1/namespaces/default/pods/bound?gracePeriodSeconds=0');
    const gone = await review(token);
    assert.equal(gone.authenticated, undefined);
    assert.match(String(gone.error), /pod default\/bound has been deleted/);
  });
});

describe('the request authenticator', () => {
  it('prefers the client certificate, refuses a bad bearer token, and caches answers', async () => {
    let calls = 0;
    let now = 0;
    const authenticate = createAuthenticator({
      certificateUser: (req) => (req.headers['x-cert'] ? { name: 'cert-user', groups: [] } : null),
      tokens: [
        {
          authenticate: (t) => {
            calls++;
            return t === 'good' ? { name: 'token-user', groups: [] } : undefined;
          },
        },
      ],
      now: () => now,
    });
    const req = (headers: Record<string, string>) => ({ headers }) as never;
    assert.deepEqual(await authenticate(req({ 'x-cert': '1', authorization: 'Bearer bad' })), {
      user: { name: 'cert-user', groups: [] },
    });
    assert.deepEqual(await authenticate(req({ authorization: 'Bearer good' })), {
      user: { name: 'token-user', groups: [] },
    });
    assert.deepEqual(await authenticate(req({ authorization: 'bearer good' })), {
      user: { name: 'token-user', groups: [] },
    });
    assert.equal(calls, 1, 'the second request was answered from the cache');
    assert.deepEqual(await authenticate(req({ authorization: 'Bearer bad' })), {
      error: 'invalid bearer token',
    });
    assert.equal(await authenticate(req({})), undefined);
    now = 11_000;
    await authenticate(req({ authorization: 'Bearer good' }));
    assert.equal(calls, 3, 'asked again once the entry is older than 10 s');
  });

  it("takes a WebSocket's bearer token from its subprotocols, as a browser sends it, and removes it", async () => {
    const authenticate = createAuthenticator({
      certificateUser: () => null,
      tokens: [{ authenticate: (t) => (t === 'good' ? { name: 'token-user', groups: [] } : undefined) }],
    });
    const ws = (protocols: string) =>
      ({
        headers: { upgrade: 'websocket', connection: 'Upgrade', 'sec-websocket-protocol': protocols },
      }) as never;
    const encoded = (t: string) =>
      `base64url.bearer.authorization.k8s.io.${Buffer.from(t).toString('base64url')}`;
    const req = ws(`v5.channel.k8s.io, ${encoded('good')}, v4.channel.k8s.io`) as { headers: any };
    assert.deepEqual(await authenticate(req as never), { user: { name: 'token-user', groups: [] } });
    assert.equal(req.headers['sec-websocket-protocol'], 'v5.channel.k8s.io, v4.channel.k8s.io');
    assert.deepEqual(await authenticate(ws(`v5.channel.k8s.io, ${encoded('bad')}`)), {
      error: 'invalid bearer token',
    });
    assert.deepEqual(await authenticate(ws(encoded('good'))), { error: 'missing additional subprotocol' });
    assert.deepEqual(await authenticate(ws(`v5.channel.k8s.io, ${encoded('a')}, ${encoded('b')}`)), {
      error: 'multiple base64.bearer.authorization tokens specified',
    });
    // Not a WebSocket: the subprotocol header means nothing.
    assert.equal(
      await authenticate({
        headers: { 'sec-websocket-protocol': `v5.channel.k8s.io, ${encoded('good')}` },
      } as never),
      undefined,
    );
  });
});
