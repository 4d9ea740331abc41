import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { isApiError } from '../api/errors.ts';
import { defaultControllerOptions } from './context.ts';
import { ROOT_CA_CONFIGMAP, rootCAPublisherController } from './root-ca-publisher.ts';
import { type ControllerTest, startControllerTest } from './testing.ts';

const CA = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
let t: ControllerTest;
before(async () => {
  t = await startControllerTest(
    { 'root-ca-cert-publisher': rootCAPublisherController },
    { options: { ...defaultControllerOptions, rootCA: CA } },
  );
});
after(() => t.close());

const rootCA = (ns: string) =>
  t.clients.configMaps.get(ns, ROOT_CA_CONFIGMAP).catch((err) => {
    if (isApiError(err, 'NotFound')) return undefined;
    throw err;
  });

describe('root CA publisher', () => {
  it('publishes kube-root-ca.crt in existing and new namespaces, with upstream annotation', async () => {
    const cm = await t.until('kube-root-ca.crt in default', () => rootCA('default'));
    assert.deepEqual(cm.data, { 'ca.crt': CA });
    assert.match(cm.metadata.annotations?.['kubernetes.io/description'] ?? '', /^Contains a CA bundle/);
    await t.clients.namespaces.create(undefined, { metadata: { name: 'team-ca' } });
    await t.until('kube-root-ca.crt in team-ca', () => rootCA('team-ca'));
  });

  it('puts back an edited or deleted one', async () => {
    const cm = await t.until('published', () => rootCA('default'));
    await t.clients.configMaps.update({ ...cm, data: { 'ca.crt': 'tampered', extra: 'x' } });
    await t.until('restored', async () => {
      const now = await rootCA('default');
      return now?.data?.['ca.crt'] === CA && Object.keys(now.data).length === 1 ? now : undefined;
    });
    await t.clients.configMaps.delete('default', ROOT_CA_CONFIGMAP);
    const again = await t.until('recreated', async () => {
      const now = await rootCA('default');
      return now && now.metadata.uid !== cm.metadata.uid ? now : undefined;
    });
    assert.deepEqual(again.data, { 'ca.crt': CA });
  });
});
