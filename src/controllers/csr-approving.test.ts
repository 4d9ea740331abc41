import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { CertificateSigningRequest } from '../api/types/certificates-v1.ts';
import { createInProcessTransport } from '../apiserver/in-process.ts';
import { type Clientset, createClientset } from '../client/clientset.ts';
import { makeTestCSR, requestField } from '../pki/testing.ts';
import { csrApprovingController } from './csr-approving.ts';
import { type ControllerTest, startControllerTest } from './testing.ts';

// As kubeadm's bindings: bootstrappers may create node client CSRs, nodes
// may renew their own; everything else is allowed so the test can act.
let t: ControllerTest;
before(async () => {
  t = await startControllerTest(
    { csrapproving: csrApprovingController },
    {
      server: {
        authorizer: {
          authorize: ({ user, resource, subresource }) => {
            if (
              resource !== 'certificatesigningrequests' ||
              !['nodeclient', 'selfnodeclient'].includes(subresource)
            ) {
              return { decision: 'allow', reason: '' };
            }
            const group = subresource === 'nodeclient' ? 'system:bootstrappers' : 'system:nodes';
            return user.groups.includes(group)
              ? { decision: 'allow', reason: 'test' }
              : { decision: 'noOpinion', reason: '' };
          },
        },
      },
    },
  );
});
after(() => t.close());

const as = (name: string, groups: string[]): Clientset =>
  createClientset(
    createInProcessTransport(t.server.api, { name, groups: [...groups, 'system:authenticated'] }),
  );

const KUBELET_CLIENT = 'kubernetes.io/kube-apiserver-client-kubelet';
const CLIENT_USAGES = ['digital signature', 'key encipherment', 'client auth'];

async function submit(
  clients: Clientset,
  name: string,
  subject: string,
  spec: Partial<NonNullable<CertificateSigningRequest['spec']>> = {},
) {
  const { csr } = makeTestCSR(subject);
  await clients.certificateSigningRequests.create(undefined, {
    metadata: { name },
    spec: { request: requestField(csr), signerName: KUBELET_CLIENT, usages: CLIENT_USAGES, ...spec },
  });
}
const approval = async (name: string) =>
  (await t.clients.certificateSigningRequests.get(undefined, name)).status?.conditions?.find(
    (c) => c.type === 'Approved',
  );

describe('csrapproving', () => {
  it('approves a bootstrap token node client request (nodeclient)', async () => {
    await submit(
      as('system:bootstrap:abcdef', ['system:bootstrappers']),
      'bootstrap',
      '/O=system:nodes/CN=system:node:new-1',
    );
    const c = await t.until('approved', () => approval('bootstrap'));
    assert.equal(c.status, 'True');
    assert.equal(c.reason, 'AutoApproved');
    assert.equal(c.message, 'Auto approving kubelet client certificate after SubjectAccessReview.');
    assert.ok(c.lastUpdateTime && c.lastTransitionTime);
  });

  it("approves a node renewing its own client certificate (selfnodeclient), and not another node's", async () => {
    const node = as('system:node:n1', ['system:nodes']);
    await submit(node, 'renew', '/O=system:nodes/CN=system:node:n1', {
      usages: ['digital signature', 'client auth'],
    });
    await submit(node, 'other-node', '/O=system:nodes/CN=system:node:n2');
    const c = await t.until('approved', () => approval('renew'));
    assert.equal(c.message, 'Auto approving self kubelet client certificate after SubjectAccessReview.');
    // n1 may not ask for n2's certificate: selfnodeclient does not match and it has no nodeclient.
    await submit(
      as('system:bootstrap:abcdef', ['system:bootstrappers']),
      'marker',
      '/O=system:nodes/CN=system:node:m',
    );
    await t.until('marker approved', () => approval('marker'));
    assert.equal(await approval('other-node'), undefined);
  });

  it('leaves requests that are not node client requests, or from users without permission, pending', async () => {
    const bootstrapper = as('system:bootstrap:abcdef', ['system:bootstrappers']);
    await submit(bootstrapper, 'not-a-node', '/O=dev/CN=bob');
    await submit(bootstrapper, 'san', '/O=system:nodes/CN=system:node:s', {});
    await submit(bootstrapper, 'wrong-usages', '/O=system:nodes/CN=system:node:u', {
      usages: ['client auth'],
    });
    await submit(bootstrapper, 'other-signer', '/O=system:nodes/CN=system:node:o', {
      signerName: 'kubernetes.io/kube-apiserver-client',
    });
    await submit(as('carol', []), 'no-permission', '/O=system:nodes/CN=system:node:c');
    await submit(bootstrapper, 'marker-2', '/O=system:nodes/CN=system:node:m2');
    await t.until('marker approved', () => approval('marker-2'));
    assert.ok(await approval('san'), 'a plain node client request is approved');
    for (const name of ['not-a-node', 'wrong-usages', 'other-signer', 'no-permission']) {
      assert.equal(await approval(name), undefined, name);
    }
  });
});
