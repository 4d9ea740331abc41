import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Pod } from '../api/types/core-v1.ts';
import { createInProcessTransport } from '../apiserver/in-process.ts';
import { startTestServer, type TestServer } from '../apiserver/testing.ts';
import { createClientset } from '../client/clientset.ts';
import { createTokenManager } from './token-manager.ts';

let server: TestServer;
let pod: Pod;
before(async () => {
  server = await startTestServer();
  await server.request('POST', '/api/v1/namespaces/default/serviceaccounts', { metadata: { name: 'robot' } });
  const r = await server.request('POST', '/api/v1/namespaces/default/pods', {
    metadata: { name: 'p' },
    spec: { serviceAccountName: 'robot', containers: [{ name: 'c', image: 'busybox' }] },
  });
  pod = r.body as Pod;
});
after(() => server.close());

describe('the kubelet token manager', () => {
  it("asks TokenRequest for a pod-bound token, keeps it until 80% of its life, and forgets a pod's", async () => {
    let now = Date.now();
    const clients = createClientset(
      createInProcessTransport(server.api, { name: 'admin', groups: ['system:masters'] }),
    );
    const tokens = createTokenManager(clients, () => now);
    const projection = { path: 'token', expirationSeconds: 3600, audience: 'vault' };
    const first = await tokens.serviceAccountToken(pod, projection);
    const claims = JSON.parse(Buffer.from(first.split('.')[1]!, 'base64url').toString('utf8'));
    assert.equal(claims.sub, 'system:serviceaccount:default:robot');
    assert.deepEqual(claims.aud, ['vault']);
    assert.equal(claims['kubernetes.io'].pod.uid, pod.metadata.uid);
    assert.equal(claims.exp - claims.iat, 3600);
    now += 2000_000; // 55% of the hour: still the same token
    assert.equal(await tokens.serviceAccountToken(pod, projection), first);
    now += 1000_000; // 83%: a fresh one
    const second = await tokens.serviceAccountToken(pod, projection);
    assert.notEqual(second, first);
    tokens.forgetPod(pod.metadata.uid!);
    assert.notEqual(await tokens.serviceAccountToken(pod, projection), second);
  });
});
