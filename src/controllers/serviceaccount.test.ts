import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { isApiError } from '../api/errors.ts';
import { serviceAccountController } from './serviceaccount.ts';
import { type ControllerTest, startControllerTest } from './testing.ts';

let t: ControllerTest;
before(async () => {
  t = await startControllerTest({ serviceaccount: serviceAccountController });
});
after(() => t.close());

const defaultSA = (ns: string) =>
  t.clients.serviceAccounts.get(ns, 'default').catch((err) => {
    if (isApiError(err, 'NotFound')) return undefined;
    throw err;
  });

describe('serviceaccount controller', () => {
  it('creates a default ServiceAccount in existing and new namespaces', async () => {
    await t.until('default SA in default', () => defaultSA('default'));
    await t.clients.namespaces.create(undefined, { metadata: { name: 'team-a' } });
    const sa = await t.until('default SA in team-a', () => defaultSA('team-a'));
    assert.equal(sa.metadata.namespace, 'team-a');
  });

  it('recreates it when deleted', async () => {
    const before = await t.until('default SA', () => defaultSA('default'));
    await t.clients.serviceAccounts.delete('default', 'default');
    const again = await t.until('a new default SA', async () => {
      const sa = await defaultSA('default');
      return sa && sa.metadata.uid !== before.metadata.uid ? sa : undefined;
    });
    assert.notEqual(again.metadata.uid, before.metadata.uid);
  });
});
