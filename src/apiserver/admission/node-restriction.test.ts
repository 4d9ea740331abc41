import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { KubeObject } from '../../api/meta.ts';
import type { Pod } from '../../api/types/core-v1.ts';
import type { AdmissionAttributes } from './admission.ts';
import { nodeRestrictionPlugin } from './node-restriction.ts';

const pods = new Map<string, Pod>([
  [
    'team/mine',
    { metadata: { name: 'mine', namespace: 'team' }, spec: { nodeName: 'n1', containers: [] } } as Pod,
  ],
  [
    'team/theirs',
    { metadata: { name: 'theirs', namespace: 'team' }, spec: { nodeName: 'n2', containers: [] } } as Pod,
  ],
]);
const plugin = nodeRestrictionPlugin({ getPod: async (ns, name) => pods.get(`${ns}/${name}`) });
const n1 = { name: 'system:node:n1', groups: ['system:nodes', 'system:authenticated'] };

const attrs = (a: Partial<AdmissionAttributes>): AdmissionAttributes => ({
  operation: 'CREATE',
  group: '',
  version: 'v1',
  kind: '',
  resource: 'pods',
  subresource: '',
  namespace: 'team',
  name: '',
  user: n1,
  dryRun: false,
  ...a,
});
const refused = (a: Partial<AdmissionAttributes>, message: RegExp) =>
  assert.rejects(plugin.validate(attrs(a)), (err: { code: number; message: string }) => {
    assert.equal(err.code, 403);
    assert.match(err.message, message);
    return true;
  });

describe('NodeRestriction', () => {
  it('only for node users', () => {
    assert.equal(plugin.handles(attrs({ user: { name: 'bob', groups: [] } })), false);
    assert.equal(plugin.handles(attrs({})), true);
  });

  it('pods: only mirror pods of its own, without secrets; status, delete and eviction of its own pods only', async () => {
    const mirror = (spec: object, annotations = { 'kubernetes.io/config.mirror': 'x' }) =>
      ({
        metadata: { name: 'static-n1', annotations },
        spec: { nodeName: 'n1', containers: [], ...spec },
      }) as unknown as KubeObject;
    await plugin.validate(attrs({ object: mirror({}) }));
    await refused({ object: mirror({}, {} as never) }, /node "n1" can only create mirror pods/);
    await refused(
      { object: mirror({ nodeName: 'n2' }) },
      /can only create pods with spec.nodeName set to itself/,
    );
    await refused(
      { object: mirror({ volumes: [{ name: 's', secret: { secretName: 'x' } }] }) },
      /can not create pods that reference secrets/,
    );
    await plugin.validate(
      attrs({
        operation: 'UPDATE',
        subresource: 'status',
        name: 'mine',
        oldObject: pods.get('team/mine') as never,
      }),
    );
    await refused(
      {
        operation: 'UPDATE',
        subresource: 'status',
        name: 'theirs',
        oldObject: pods.get('team/theirs') as never,
      },
      /^pods "theirs" is forbidden: node "n1" can only update pod status with spec.nodeName set to itself$/,
    );
    await refused(
      { operation: 'DELETE', name: 'theirs', oldObject: pods.get('team/theirs') as never },
      /can only delete pods/,
    );
    await refused({ subresource: 'eviction', name: 'theirs' }, /can only evict pods/);
    await plugin.validate(attrs({ subresource: 'eviction', name: 'mine' }));
  });

  it('nodes: its own only, no node-restriction labels, no taint changes on update', async () => {
    const node = (name: string, labels: Record<string, string> = {}, taints: object[] = []) =>
      ({ metadata: { name, labels }, spec: { taints } }) as unknown as KubeObject;
    const nodes = { group: '', resource: 'nodes', namespace: '' };
    await plugin.validate(attrs({ ...nodes, object: node('n1') }));
    await refused(
      { ...nodes, object: node('n2') },
      /^nodes "n2" is forbidden: node "n1" is not allowed to modify node "n2"$/,
    );
    await refused(
      { ...nodes, object: node('n1', { 'node-restriction.kubernetes.io/tier': 'gold' }) },
      /is not allowed to modify labels: node-restriction.kubernetes.io\/tier/,
    );
    await refused(
      {
        ...nodes,
        operation: 'UPDATE',
        oldObject: node('n1'),
        object: node('n1', {}, [{ key: 'k', effect: 'NoSchedule' }]),
      },
      /is not allowed to modify taints/,
    );
    await plugin.validate(
      attrs({
        ...nodes,
        operation: 'UPDATE',
        subresource: 'status',
        oldObject: node('n1'),
        object: node('n1', { a: 'b' }),
      }),
    );
  });

  it('leases and tokens: its own lease; tokens bound to its own pods only', async () => {
    const lease = { group: 'coordination.k8s.io', resource: 'leases', namespace: 'kube-node-lease' };
    await plugin.validate(
      attrs({ ...lease, operation: 'UPDATE', name: 'n1', object: { metadata: { name: 'n1' } } }),
    );
    await refused(
      { ...lease, operation: 'UPDATE', name: 'n2', object: { metadata: { name: 'n2' } } },
      /same name as the requesting node/,
    );
    const token = (ref?: object) => ({
      resource: 'serviceaccounts',
      subresource: 'token',
      name: 'default',
      object: { metadata: { name: 'default' }, spec: ref ? { boundObjectRef: ref } : {} } as KubeObject,
    });
    await plugin.validate(attrs(token({ kind: 'Pod', name: 'mine' })));
    await refused(token(), /node requested token not bound to a pod/);
    await refused(token({ kind: 'Pod', name: 'theirs' }), /bound to a pod scheduled on a different node/);
  });
});
