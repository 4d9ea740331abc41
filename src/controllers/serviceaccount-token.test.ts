import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { isApiError } from '../api/errors.ts';
import type { Secret } from '../api/types/core-v1.ts';
import { generateServiceAccountKey, TokenSigner } from '../apiserver/authn/serviceaccount-token.ts';
import { defaultControllerOptions } from './context.ts';
import { serviceAccountTokenController } from './serviceaccount-token.ts';
import { type ControllerTest, startControllerTest } from './testing.ts';

const CA = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
let t: ControllerTest;
before(async () => {
  t = await startControllerTest(
    { 'serviceaccount-token': serviceAccountTokenController },
    {
      options: {
        ...defaultControllerOptions,
        rootCA: CA,
        legacyTokenSigner: new TokenSigner(
          generateServiceAccountKey(),
          'https://kubernetes.default.svc.cluster.local',
        ),
      },
    },
  );
});
after(() => t.close());

const secret = (name: string) =>
  t.clients.secrets.get('default', name).catch((err) => {
    if (isApiError(err, 'NotFound')) return undefined;
    throw err;
  });
const field = (s: Secret, k: string) => Buffer.from(s.data?.[k] ?? '', 'base64').toString('utf8');

describe('tokens controller', () => {
  it('fills a service-account-token Secret with a token, the CA and the namespace, and deletes it with its ServiceAccount', async () => {
    const sa = await t.clients.serviceAccounts.create('default', { metadata: { name: 'builder' } });
    await t.clients.secrets.create('default', {
      metadata: { name: 'builder-token', annotations: { 'kubernetes.io/service-account.name': 'builder' } },
      type: 'kubernetes.io/service-account-token',
    });
    const filled = await t.until('token filled', async () => {
      const s = await secret('builder-token');
      return s?.data?.token ? s : undefined;
    });
    assert.equal(field(filled, 'ca.crt'), CA);
    assert.equal(field(filled, 'namespace'), 'default');
    assert.equal(filled.metadata.annotations?.['kubernetes.io/service-account.uid'], sa.metadata.uid);
    const claims = JSON.parse(
      Buffer.from(field(filled, 'token').split('.')[1]!, 'base64url').toString('utf8'),
    );
    assert.equal(claims.iss, 'kubernetes/serviceaccount');
    assert.equal(claims.sub, 'system:serviceaccount:default:builder');
    assert.equal(claims['kubernetes.io/serviceaccount/secret.name'], 'builder-token');
    assert.equal(claims.exp, undefined, 'legacy tokens do not expire');

    await t.clients.serviceAccounts.delete('default', 'builder');
    await t.until('token secret deleted', async () => ((await secret('builder-token')) ? undefined : true));
  });

  it('deletes a token Secret that names no ServiceAccount that exists', async () => {
    await t.clients.secrets.create('default', {
      metadata: { name: 'orphan-token', annotations: { 'kubernetes.io/service-account.name': 'ghost' } },
      type: 'kubernetes.io/service-account-token',
    });
    await t.until('orphan deleted', async () => ((await secret('orphan-token')) ? undefined : true));
  });
});
