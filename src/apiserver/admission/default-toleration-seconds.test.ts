// The DefaultTolerationSeconds admission plugin through the API server, with
// kube-apiserver's two flags set: a new pod tolerates not-ready and
// unreachable nodes for those seconds unless it says otherwise. (The 300 s
// default is tested in controllers/nodelifecycle.test.ts.)

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer } from '../testing.ts';
import { defaultAdmission } from './chain.ts';

describe('DefaultTolerationSeconds admission', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer(undefined, {
      admission: (api) =>
        defaultAdmission(api, { tolerationSeconds: { notReadySeconds: 7, unreachableSeconds: 11 } }),
    });
  });
  after(() => t.close());

  const createPod = (name: string, tolerations?: unknown[]) =>
    t.request('POST', '/api/v1/namespaces/default/pods', {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name },
      spec: { containers: [{ name: 'c', image: 'busybox' }], ...(tolerations ? { tolerations } : {}) },
    });

  it('gives a new pod the configured seconds for not-ready and unreachable', async () => {
    const res = await createPod('plain');
    assert.equal(res.status, 201);
    assert.deepEqual(res.body.spec.tolerations, [
      { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 7 },
      {
        key: 'node.kubernetes.io/unreachable',
        operator: 'Exists',
        effect: 'NoExecute',
        tolerationSeconds: 11,
      },
    ]);
  });

  it('keeps a toleration the pod has, by key or by an empty key, and adds only the other', async () => {
    const own = await createPod('own', [
      {
        key: 'node.kubernetes.io/unreachable',
        operator: 'Exists',
        effect: 'NoExecute',
        tolerationSeconds: 1,
      },
    ]);
    assert.deepEqual(
      own.body.spec.tolerations.map((x: { key: string; tolerationSeconds?: number }) => [
        x.key,
        x.tolerationSeconds,
      ]),
      [
        ['node.kubernetes.io/unreachable', 1],
        ['node.kubernetes.io/not-ready', 7],
      ],
    );
    const everything = await createPod('everything', [{ operator: 'Exists' }]);
    assert.deepEqual(everything.body.spec.tolerations, [{ operator: 'Exists' }]);
  });
});
