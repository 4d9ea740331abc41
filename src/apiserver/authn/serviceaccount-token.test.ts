import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import {
  generateServiceAccountKey,
  InvalidTokenError,
  keyId,
  publicKeyOf,
  TokenSigner,
  TokenVerifier,
  tokenUser,
} from './serviceaccount-token.ts';

const ISSUER = 'https://kubernetes.default.svc.cluster.local';
const key = generateServiceAccountKey();
const signer = new TokenSigner(key, ISSUER);
const verifier = new TokenVerifier([publicKeyOf(key)], ISSUER, [ISSUER]);
const sa = { name: 'builder', uid: 'sa-uid' };

describe('service account tokens', () => {
  it('a bound token carries upstream claims and authenticates as the service account', async () => {
    const now = new Date('2026-12-07T05:00:00Z');
    const token = await signer.bound({
      namespace: 'team',
      serviceAccount: sa,
      pod: { name: 'web-1', uid: 'pod-uid' },
      node: { name: 'n1', uid: 'node-uid' },
      audiences: [ISSUER],
      expirationSeconds: 3600,
      now,
    });
    const header = decodeProtectedHeader(token);
    assert.equal(header.alg, 'ES256');
    assert.equal(header.kid, keyId(publicKeyOf(key)));
    const claims = decodeJwt(token);
    assert.equal(claims.sub, 'system:serviceaccount:team:builder');
    assert.equal(claims.iss, ISSUER);
    assert.deepEqual(claims.aud, [ISSUER]);
    assert.equal((claims.exp ?? 0) - (claims.iat ?? 0), 3600);
    assert.deepEqual(claims['kubernetes.io'], {
      namespace: 'team',
      serviceaccount: sa,
      pod: { name: 'web-1', uid: 'pod-uid' },
      node: { name: 'n1', uid: 'node-uid' },
    });

    const subject = await verifier.verify(token, new Date(now.getTime() + 60_000));
    const user = tokenUser(subject);
    assert.equal(user.name, 'system:serviceaccount:team:builder');
    assert.equal(user.uid, 'sa-uid');
    assert.deepEqual(user.groups, [
      'system:serviceaccounts',
      'system:serviceaccounts:team',
      'system:authenticated',
    ]);
    assert.deepEqual(user.extra['authentication.kubernetes.io/pod-name'], ['web-1']);
    assert.match(user.extra['authentication.kubernetes.io/credential-id']?.[0] ?? '', /^JTI=[0-9a-f-]{36}$/);
  });

  it('refuses an expired token, another audience, another key and a tampered payload', async () => {
    const now = new Date('2026-12-07T05:00:00Z');
    const token = await signer.bound({
      namespace: 'team',
      serviceAccount: sa,
      audiences: [ISSUER],
      expirationSeconds: 600,
      now,
    });
    await assert.rejects(verifier.verify(token, new Date(now.getTime() + 601_000)), InvalidTokenError);
    const vault = await signer.bound({
      namespace: 'team',
      serviceAccount: sa,
      audiences: ['vault'],
      expirationSeconds: 600,
      now,
    });
    await assert.rejects(verifier.verify(vault, now), InvalidTokenError);
    const other = new TokenSigner(generateServiceAccountKey(), ISSUER);
    const forged = await other.bound({
      namespace: 'team',
      serviceAccount: sa,
      audiences: [ISSUER],
      expirationSeconds: 600,
      now,
    });
    await assert.rejects(verifier.verify(forged, now), InvalidTokenError);
    const [h, p, s] = token.split('.');
    const payload = JSON.parse(Buffer.from(p ?? '', 'base64url').toString());
    payload['kubernetes.io'].namespace = 'kube-system';
    const tampered = [h, Buffer.from(JSON.stringify(payload)).toString('base64url'), s].join('.');
    await assert.rejects(verifier.verify(tampered, now), InvalidTokenError);
    await assert.rejects(verifier.verify('not-a-jwt', now), InvalidTokenError);
  });

  it('accepts tokens of any configured key (a rotation)', async () => {
    const next = generateServiceAccountKey();
    const both = new TokenVerifier([publicKeyOf(next), publicKeyOf(key)], ISSUER, [ISSUER]);
    const token = await signer.bound({
      namespace: 'team',
      serviceAccount: sa,
      audiences: [ISSUER],
      expirationSeconds: 600,
    });
    assert.equal((await both.verify(token)).serviceAccount.name, 'builder');
  });

  it('a legacy Secret token: no expiry, the secret named, the same user', async () => {
    const token = await signer.legacy('team', sa, 'builder-token');
    const claims = decodeJwt(token);
    assert.equal(claims.iss, 'kubernetes/serviceaccount');
    assert.equal(claims.exp, undefined);
    const subject = await verifier.verify(token);
    assert.deepEqual(subject.secret, { name: 'builder-token', uid: '' });
    assert.equal(tokenUser(subject).name, 'system:serviceaccount:team:builder');
    assert.ok(TokenVerifier.isServiceAccountToken(token, ISSUER));
    assert.equal(TokenVerifier.isServiceAccountToken('abc.def', ISSUER), false);
  });
});
