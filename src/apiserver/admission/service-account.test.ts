import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApiError } from '../../api/errors.ts';
import type { KubeObject } from '../../api/meta.ts';
import type { Pod } from '../../api/types/core-v1.ts';
import type { AdmissionAttributes } from './admission.ts';
import { serviceAccountPlugin, TOKEN_MOUNT_PATH } from './service-account.ts';

const accounts = new Map<string, KubeObject>([
  ['team/default', { metadata: { name: 'default', namespace: 'team', uid: 'u1' } }],
  [
    'team/builder',
    {
      metadata: { name: 'builder', namespace: 'team' },
      imagePullSecrets: [{ name: 'registry' }],
    } as KubeObject,
  ],
  [
    'team/quiet',
    { metadata: { name: 'quiet', namespace: 'team' }, automountServiceAccountToken: false } as KubeObject,
  ],
]);
let lookups = 0;
const plugin = serviceAccountPlugin({
  getServiceAccount: async (ns, name) => {
    lookups++;
    const sa = accounts.get(`${ns}/${name}`);
    if (!sa) throw new ApiError(404, 'NotFound', `serviceaccounts "${name}" not found`);
    return sa;
  },
  randomSuffix: () => 'abcde',
  retryIntervalMs: 1,
});

const attrs = (pod: Pod, namespace = 'team'): AdmissionAttributes => ({
  operation: 'CREATE',
  group: '',
  version: 'v1',
  kind: 'Pod',
  resource: 'pods',
  subresource: '',
  namespace,
  name: pod.metadata.name ?? '',
  object: pod as unknown as KubeObject,
  user: { name: 'u', groups: [] },
  dryRun: false,
});
const pod = (spec: Partial<Pod['spec']> = {}, annotations?: Record<string, string>): Pod =>
  ({
    metadata: { name: 'p', ...(annotations ? { annotations } : {}) },
    spec: {
      initContainers: [{ name: 'init', image: 'busybox' }],
      containers: [{ name: 'app', image: 'busybox' }],
      ...spec,
    },
  }) as Pod;

describe('ServiceAccount admission', () => {
  it("runs a pod as default and mounts upstream's kube-api-access volume in every container", async () => {
    const p = pod();
    await plugin.admit(attrs(p));
    assert.equal(p.spec!.serviceAccountName, 'default');
    assert.deepEqual(p.spec!.volumes, [
      {
        name: 'kube-api-access-abcde',
        projected: {
          defaultMode: 0o644,
          sources: [
            { serviceAccountToken: { expirationSeconds: 3607, path: 'token' } },
            { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
            {
              downwardAPI: {
                items: [
                  { path: 'namespace', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } },
                ],
              },
            },
          ],
        },
      },
    ]);
    for (const c of [...(p.spec!.initContainers ?? []), ...(p.spec!.containers ?? [])])
      assert.deepEqual(c.volumeMounts, [
        { name: 'kube-api-access-abcde', readOnly: true, mountPath: TOKEN_MOUNT_PATH },
      ]);
  });

  it('leaves a container that mounts something at the path, and opts out by pod or ServiceAccount', async () => {
    const own = pod({
      containers: [
        { name: 'app', image: 'busybox', volumeMounts: [{ name: 'mine', mountPath: TOKEN_MOUNT_PATH }] },
      ],
      initContainers: [],
      volumes: [{ name: 'mine', emptyDir: {} }],
    });
    await plugin.admit(attrs(own));
    assert.deepEqual(own.spec!.volumes, [{ name: 'mine', emptyDir: {} }]);
    const optOut = pod({ automountServiceAccountToken: false });
    await plugin.admit(attrs(optOut));
    assert.equal(optOut.spec!.volumes, undefined);
    const quiet = pod({ serviceAccountName: 'quiet' });
    await plugin.admit(attrs(quiet));
    assert.equal(quiet.spec!.volumes, undefined);
    // The pod's own true wins over the ServiceAccount's false.
    const forced = pod({ serviceAccountName: 'quiet', automountServiceAccountToken: true });
    await plugin.admit(attrs(forced));
    assert.equal(forced.spec!.volumes?.length, 1);
  });

  it("adds the ServiceAccount's imagePullSecrets to a pod that has none", async () => {
    const p = pod({ serviceAccountName: 'builder' });
    await plugin.admit(attrs(p));
    assert.deepEqual(p.spec!.imagePullSecrets, [{ name: 'registry' }]);
  });

  it('refuses a missing ServiceAccount (after retrying the default one) and a mirror pod naming one', async () => {
    lookups = 0;
    await assert.rejects(plugin.admit(attrs(pod(), 'empty')), (err: ApiError) => {
      assert.equal(err.code, 403);
      assert.equal(
        err.message,
        'pods "p" is forbidden: error looking up service account empty/default: serviceaccount "default" not found',
      );
      return true;
    });
    assert.equal(lookups, 10);
    await assert.rejects(
      plugin.admit(attrs(pod({ serviceAccountName: 'x' }, { 'kubernetes.io/config.mirror': 'h' }))),
      /a mirror pod may not reference service accounts/,
    );
    const mirror = pod({}, { 'kubernetes.io/config.mirror': 'h' });
    await plugin.admit(attrs(mirror));
    assert.equal(mirror.spec!.serviceAccountName, undefined);
  });
});
