// The Node authorizer: what a kubelet may read is what its pods use.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Pod } from '../../api/types/core-v1.ts';
import type { Attributes } from './authorizer.ts';
import { bootstrapClusterRoles } from './bootstrap-policy.ts';
import { type NodeAttributes, NodeAuthorizer, NodeGraph, nodeIdentity, podReferences } from './node.ts';

const nodeRules = bootstrapClusterRoles().find((r) => r.metadata.name === 'system:node')!.rules ?? [];
const nodeUser = (name: string) => ({
  name: `system:node:${name}`,
  groups: ['system:nodes', 'system:authenticated'],
});

function attrs(over: Partial<NodeAttributes>): NodeAttributes {
  return {
    user: nodeUser('n1'),
    verb: 'get',
    isResourceRequest: true,
    path: '',
    apiGroup: '',
    apiVersion: 'v1',
    namespace: 'default',
    resource: 'secrets',
    subresource: '',
    name: '',
    ...over,
  };
}

const webPod = (node: string | undefined): Pod => ({
  metadata: { name: 'web', namespace: 'default' },
  spec: {
    ...(node ? { nodeName: node } : {}),
    serviceAccountName: 'web-sa',
    imagePullSecrets: [{ name: 'pull' }],
    containers: [
      {
        name: 'c',
        image: 'busybox',
        env: [{ name: 'A', valueFrom: { secretKeyRef: { name: 'env-secret', key: 'a' } } }],
        envFrom: [{ configMapRef: { name: 'env-cm' } }],
      },
    ],
    volumes: [
      { name: 'v1', secret: { secretName: 'vol-secret' } },
      { name: 'v2', projected: { sources: [{ configMap: { name: 'proj-cm' } }] } },
      { name: 'data', persistentVolumeClaim: { claimName: 'data' } },
    ],
  },
});

describe('node identity', () => {
  it('needs both the system:node: name and the system:nodes group', () => {
    assert.equal(nodeIdentity(nodeUser('n1')), 'n1');
    assert.equal(nodeIdentity({ name: 'system:node:n1', groups: [] }), undefined);
    assert.equal(nodeIdentity({ name: 'bob', groups: ['system:nodes'] }), undefined);
  });

  it('finds every Secret, ConfigMap and claim a pod names', () => {
    const refs = podReferences(webPod('n1'));
    assert.deepEqual([...refs.secrets].sort(), ['env-secret', 'pull', 'vol-secret']);
    assert.deepEqual([...refs.configmaps].sort(), ['env-cm', 'proj-cm']);
    assert.deepEqual([...refs.pvcs], ['data']);
  });
});

describe('Node authorizer', () => {
  const setup = () => {
    const graph = new NodeGraph();
    graph.setPod(webPod('n1'));
    graph.setPVC({ metadata: { name: 'data', namespace: 'default' }, spec: { volumeName: 'pv-1' } });
    return { graph, authz: new NodeAuthorizer(graph, nodeRules) };
  };

  it('reads the Secrets, ConfigMaps, PVC and PV of its own pods, and no others', () => {
    const { authz } = setup();
    const decide = (a: Partial<NodeAttributes>) => authz.authorize(attrs(a)).decision;
    assert.equal(decide({ name: 'vol-secret' }), 'allow');
    assert.equal(decide({ name: 'env-secret', verb: 'watch' }), 'allow', 'a single-object watch');
    assert.equal(decide({ resource: 'configmaps', name: 'proj-cm' }), 'allow');
    assert.equal(decide({ resource: 'persistentvolumeclaims', name: 'data' }), 'allow');
    assert.equal(decide({ resource: 'persistentvolumes', name: 'pv-1', namespace: '' }), 'allow');
    assert.equal(decide({ name: 'someone-elses' }), 'noOpinion');
    assert.deepEqual(authz.authorize(attrs({ name: 'someone-elses' })), {
      decision: 'noOpinion',
      reason: "no relationship found between node 'n1' and this object",
    });
    assert.equal(authz.authorize(attrs({ verb: 'list' })).reason, 'No Object name found');
    assert.equal(
      authz.authorize(attrs({ verb: 'delete', name: 'vol-secret' })).reason,
      'can only read resources of this type',
    );
    // Another node sees none of it.
    assert.equal(authz.authorize(attrs({ user: nodeUser('n2'), name: 'vol-secret' })).decision, 'noOpinion');
  });

  it('follows pods: unbound, rebound and deleted pods grant nothing', () => {
    const { graph, authz } = setup();
    graph.setPod(webPod('n2'));
    assert.equal(authz.authorize(attrs({ name: 'vol-secret' })).decision, 'noOpinion');
    assert.equal(authz.authorize(attrs({ user: nodeUser('n2'), name: 'vol-secret' })).decision, 'allow');
    graph.deletePod(webPod('n2'));
    assert.equal(authz.authorize(attrs({ user: nodeUser('n2'), name: 'vol-secret' })).decision, 'noOpinion');
    graph.setPod(webPod(undefined));
    assert.equal(authz.authorize(attrs({ name: 'vol-secret' })).decision, 'noOpinion');
  });

  it('two pods on one node sharing a secret: deleting one keeps access', () => {
    const { graph, authz } = setup();
    const twin = webPod('n1');
    twin.metadata.name = 'web-2';
    graph.setPod(twin);
    graph.deletePod(webPod('n1'));
    assert.equal(authz.authorize(attrs({ name: 'vol-secret' })).decision, 'allow');
  });

  it('tokens only for its pods service accounts; its own Node and Lease only', () => {
    const { authz } = setup();
    const d = (a: Partial<Attributes>) => authz.authorize(attrs(a)).decision;
    assert.equal(
      d({ verb: 'create', resource: 'serviceaccounts', subresource: 'token', name: 'web-sa' }),
      'allow',
    );
    assert.equal(
      d({ verb: 'create', resource: 'serviceaccounts', subresource: 'token', name: 'other' }),
      'noOpinion',
    );
    assert.equal(d({ verb: 'get', resource: 'serviceaccounts', name: 'web-sa' }), 'noOpinion');
    const node = { resource: 'nodes', namespace: '' };
    assert.equal(d({ ...node, name: 'n1' }), 'allow');
    assert.equal(d({ ...node, name: 'n2' }), 'noOpinion');
    assert.equal(
      authz.authorize(attrs({ ...node, verb: 'list' })).reason,
      "node 'n1' cannot read all nodes, only its own Node object",
    );
    assert.equal(d({ ...node, verb: 'patch', subresource: 'status', name: 'n1' }), 'allow');
    const lease = { apiGroup: 'coordination.k8s.io', resource: 'leases', namespace: 'kube-node-lease' };
    assert.equal(d({ ...lease, verb: 'update', name: 'n1' }), 'allow');
    assert.equal(d({ ...lease, verb: 'update', name: 'n2' }), 'noOpinion');
    assert.equal(d({ ...lease, verb: 'get', name: 'n1', namespace: 'default' }), 'noOpinion');
  });

  it('pods: list and watch only by spec.nodeName of its own; other resources by the system:node rules', () => {
    const { authz } = setup();
    const pods = { resource: 'pods' };
    const own = [{ field: 'spec.nodeName', op: '=' as const, value: 'n1' }];
    const other = [{ field: 'spec.nodeName', op: '=' as const, value: 'n2' }];
    assert.equal(
      authz.authorize(attrs({ ...pods, verb: 'watch', namespace: '', fieldSelector: own })).decision,
      'allow',
    );
    assert.equal(
      authz.authorize(attrs({ ...pods, verb: 'watch', namespace: '', fieldSelector: other })).decision,
      'noOpinion',
    );
    assert.equal(authz.authorize(attrs({ ...pods, verb: 'get', name: 'web' })).decision, 'allow');
    assert.equal(
      authz.authorize(attrs({ ...pods, verb: 'patch', subresource: 'status', name: 'x' })).decision,
      'allow',
    );
    // Not subdivided: the system:node role (services read, events written), and nothing else.
    assert.equal(authz.authorize(attrs({ resource: 'services', verb: 'list' })).decision, 'allow');
    assert.equal(authz.authorize(attrs({ resource: 'events', verb: 'create' })).decision, 'allow');
    assert.equal(
      authz.authorize(attrs({ resource: 'deployments', apiGroup: 'apps', verb: 'list' })).decision,
      'noOpinion',
    );
    // Not a node: no opinion at all.
    assert.equal(
      authz.authorize(attrs({ user: { name: 'bob', groups: [] }, name: 'vol-secret' })).decision,
      'noOpinion',
    );
  });
});
