// The DefaultIngressClass admission plugin: which class is the default, and
// through the API server (Ingresses created without a class get it).

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { IngressClass } from '../../api/types/networking-v1.ts';
import { startTestServer, type TestServer } from '../testing.ts';
import { defaultIngressClass } from './default-ingress-class.ts';

const ic = (name: string, created: string, annotations?: Record<string, string>): IngressClass => ({
  metadata: { name, creationTimestamp: created, ...(annotations ? { annotations } : {}) },
  spec: { controller: 'example.com/c' },
});
const isDefault = { 'ingressclass.kubernetes.io/is-default-class': 'true' };

describe('defaultIngressClass', () => {
  it('is undefined when no class is marked default with exactly "true"', () => {
    assert.equal(defaultIngressClass([]), undefined);
    assert.equal(
      defaultIngressClass([
        ic('a', '2024-01-01T00:00:00Z', { 'ingressclass.kubernetes.io/is-default-class': 'True' }),
      ]),
      undefined,
    );
  });

  it('picks the newest of several defaults, then the first by name (upstream since 1.28)', () => {
    const classes = [
      ic('older', '2024-01-01T00:00:00Z', isDefault),
      ic('zeta', '2024-02-01T00:00:00Z', isDefault),
      ic('alpha', '2024-02-01T00:00:00Z', isDefault),
      ic('newest-not-default', '2024-03-01T00:00:00Z'),
    ];
    assert.equal(defaultIngressClass(classes)?.metadata.name, 'alpha');
    assert.equal(defaultIngressClass(classes.reverse())?.metadata.name, 'alpha');
  });
});

describe('DefaultIngressClass admission', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer();
  });
  after(() => t.close());

  const createIngress = (
    name: string,
    spec: Record<string, unknown> = {},
    annotations?: Record<string, string>,
  ) =>
    t.request('POST', '/apis/networking.k8s.io/v1/namespaces/default/ingresses', {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'Ingress',
      metadata: { name, ...(annotations ? { annotations } : {}) },
      spec: { defaultBackend: { service: { name: 'web', port: { number: 80 } } }, ...spec },
    });

  it('sets the default class on an Ingress without one, and keeps a named class or the legacy annotation', async () => {
    const before = await createIngress('before-default');
    assert.equal(before.status, 201);
    assert.equal(before.body.spec.ingressClassName, undefined);
    const c = await t.request('POST', '/apis/networking.k8s.io/v1/ingressclasses', {
      metadata: { name: 'skiff', annotations: isDefault },
      spec: { controller: 'skiff.io/ingress' },
    });
    assert.equal(c.status, 201);
    let n = 0;
    let got: string | undefined;
    for (let i = 0; i < 100 && got !== 'skiff'; i++) {
      const r = await createIngress(`probe-${n++}`);
      assert.equal(r.status, 201);
      got = r.body.spec.ingressClassName;
      if (got !== 'skiff') await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(got, 'skiff');
    const named = await createIngress('named', { ingressClassName: 'other' });
    assert.equal(named.body.spec.ingressClassName, 'other');
    const legacy = await createIngress('legacy', {}, { 'kubernetes.io/ingress.class': 'nginx' });
    assert.equal(legacy.status, 201);
    assert.equal(legacy.body.spec.ingressClassName, undefined);
  });
});
