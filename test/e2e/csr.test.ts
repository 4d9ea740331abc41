// The CertificateSigningRequest API with the real kubectl: a new user makes
// a key and a CSR with openssl, the admin submits it and approves (or
// denies) it with `kubectl certificate`, the cluster CA signs it, and the
// certificate works as a kubeconfig credential under RBAC. Also: approving
// without `approve` on the signer is refused, and a bootstrap token's node
// client CSR is approved and signed by the controllers alone.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { eventually, KUBECTL_VERSIONS, ok, type Skiff, skiffCli, startSkiff } from './harness.ts';

let skiff: Skiff;
let work: string;

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'skiff-csr-e2e-'));
  skiff = await startSkiff(['--authorization-mode', 'Node,RBAC']);
  await ok(skiff, ['create', 'namespace', 'team']);
});
after(async () => {
  await skiff?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** A new key and CSR, made as a user would with the openssl CLI. */
function userRequest(name: string, subject: string): { keyFile: string; csr: string } {
  const keyFile = join(work, `${name}.key`);
  execFileSync('openssl', [
    'genpkey',
    '-algorithm',
    'EC',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-out',
    keyFile,
  ]);
  const csr = execFileSync('openssl', ['req', '-new', '-key', keyFile, '-subj', subject], {
    encoding: 'utf8',
  });
  return { keyFile, csr };
}

const csrManifest = (
  name: string,
  csr: string,
  signerName: string,
  usages: string[],
  expirationSeconds?: number,
) =>
  JSON.stringify({
    apiVersion: 'certificates.k8s.io/v1',
    kind: 'CertificateSigningRequest',
    metadata: { name },
    spec: {
      request: Buffer.from(csr).toString('base64'),
      signerName,
      usages,
      ...(expirationSeconds ? { expirationSeconds } : {}),
    },
  });

const caFile = () => join(skiff.dataDir, 'server', 'tls', 'ca.crt');

/** A kubeconfig holding the user's issued certificate and key. */
function kubeconfigFor(name: string, certPem: string, keyFile: string): string {
  const certFile = join(work, `${name}.crt`);
  writeFileSync(certFile, certPem);
  const file = join(work, `${name}.kubeconfig`);
  writeFileSync(
    file,
    `apiVersion: v1
kind: Config
clusters:
- name: skiff
  cluster:
    server: https://127.0.0.1:${skiff.port}
    certificate-authority: ${caFile()}
users:
- name: ${name}
  user:
    client-certificate: ${certFile}
    client-key: ${keyFile}
contexts:
- name: ${name}
  context: {cluster: skiff, user: ${name}}
current-context: ${name}
`,
  );
  return file;
}

const issued = (name: string) =>
  eventually(`certificate for ${name}`, async () => {
    const b64 = await ok(skiff, ['get', 'csr', name, '-o', 'jsonpath={.status.certificate}']);
    return b64 ? Buffer.from(b64, 'base64').toString() : undefined;
  });

describe('CertificateSigningRequest with kubectl', () => {
  for (const version of KUBECTL_VERSIONS) {
    const v = version.replace(/\W/g, '');

    it(`kubectl ${version}: certificate approve issues a certificate the user then authenticates with`, async () => {
      const user = `dana-${v}`;
      const { keyFile, csr } = userRequest(user, `/O=devs/CN=${user}`);
      await ok(skiff, ['create', '-f', '-'], {
        version,
        input: csrManifest(user, csr, 'kubernetes.io/kube-apiserver-client', ['client auth'], 3600),
      });
      const pending = await ok(skiff, ['get', 'csr', user], { version });
      assert.match(pending, /^NAME\s+AGE\s+SIGNERNAME\s+REQUESTOR\s+REQUESTEDDURATION\s+CONDITION\n/);
      assert.match(
        pending,
        new RegExp(`${user}\\s+\\S+\\s+kubernetes.io/kube-apiserver-client\\s+\\S+\\s+60m\\s+Pending`),
      );
      // The requester is who created it (the admin), not anything the manifest could claim.
      const admin = JSON.parse(await ok(skiff, ['auth', 'whoami', '-o', 'json'])).status.userInfo.username;
      assert.equal(await ok(skiff, ['get', 'csr', user, '-o', 'jsonpath={.spec.username}']), admin);

      const approved = await ok(skiff, ['certificate', 'approve', user], { version });
      assert.match(approved, new RegExp(`certificatesigningrequest.certificates.k8s.io/${user} approved`));
      const certPem = await issued(user);
      const cert = new X509Certificate(certPem);
      assert.equal(cert.subject, `O=devs\nCN=${user}`);
      assert.ok(cert.verify(new X509Certificate(readFileSync(caFile())).publicKey));
      // One hour asked and granted (short-lived: not shortened by the 5 minute backdate).
      assert.equal(Date.parse(cert.validTo) - Date.parse(cert.validFrom), 65 * 60_000);
      assert.match(await ok(skiff, ['get', 'csr', user], { version }), /Approved,Issued/);

      const kubeconfig = kubeconfigFor(user, certPem, keyFile);
      const asUser = { version, env: { KUBECONFIG: kubeconfig } };
      const before = await skiff.kubectl(['get', 'pods', '-n', 'team'], asUser);
      assert.notEqual(before.code, 0);
      assert.match(
        before.stderr,
        new RegExp(
          `Error from server \\(Forbidden\\): pods is forbidden: User "${user}" cannot list resource "pods" in API group "" in the namespace "team"`,
        ),
      );
      await ok(skiff, [
        'create',
        'rolebinding',
        `${user}-view`,
        '--clusterrole=view',
        `--user=${user}`,
        '-n',
        'team',
      ]);
      await eventually('view binding in effect', async () => {
        const r = await skiff.kubectl(['get', 'pods', '-n', 'team'], asUser);
        return r.code === 0;
      });
    });

    it(`kubectl ${version}: certificate deny leaves the request unsigned`, async () => {
      const user = `erin-${v}`;
      const { csr } = userRequest(user, `/CN=${user}`);
      await ok(skiff, ['create', '-f', '-'], {
        version,
        input: csrManifest(user, csr, 'kubernetes.io/kube-apiserver-client', [
          'digital signature',
          'client auth',
        ]),
      });
      const denied = await ok(skiff, ['certificate', 'deny', user], { version });
      assert.match(denied, new RegExp(`certificatesigningrequest.certificates.k8s.io/${user} denied`));
      const row = await ok(skiff, ['get', 'csr', user], { version });
      assert.match(
        row,
        new RegExp(`${user}\\s+\\S+\\s+kubernetes.io/kube-apiserver-client\\s+\\S+\\s+<none>\\s+Denied\\n`),
      );
      const condition = JSON.parse(await ok(skiff, ['get', 'csr', user, '-o', 'json'])).status.conditions[0];
      assert.equal(condition.type, 'Denied');
      assert.equal(condition.status, 'True');
      assert.ok(condition.lastUpdateTime);
      // Denied stays denied: kubectl will not approve it (the server refuses both as well, see the unit tests).
      const both = await skiff.kubectl(['certificate', 'approve', user], { version });
      assert.notEqual(both.code, 0);
      assert.match(both.stderr, new RegExp(`certificate signing request "${user}" is already Denied`));
      await new Promise((r) => setTimeout(r, 1000));
      assert.equal(await ok(skiff, ['get', 'csr', user, '-o', 'jsonpath={.status.certificate}']), '');
    });
  }

  it('approving without approve on the signer is forbidden (CertificateApproval), and allowed once granted', async () => {
    const file = join(work, 'frank.kubeconfig');
    const made = await skiffCli(['kubeconfig', '--user', 'frank', '--data-dir', skiff.dataDir, '-o', file]);
    assert.equal(made.code, 0, made.stderr);
    await ok(skiff, [
      'create',
      'clusterrole',
      'csr-approval-writer',
      '--verb=get,list,update',
      '--resource=certificatesigningrequests,certificatesigningrequests/approval',
    ]);
    await ok(skiff, [
      'create',
      'clusterrolebinding',
      'frank-csr',
      '--clusterrole=csr-approval-writer',
      '--user=frank',
    ]);
    const { csr } = userRequest('gina', '/CN=gina');
    await ok(skiff, ['create', '-f', '-'], {
      input: csrManifest('gina', csr, 'kubernetes.io/kube-apiserver-client', ['client auth']),
    });
    const asFrank = { env: { KUBECONFIG: file } };
    let last = '';
    const refused = await eventually(
      'frank may update approval',
      async () => {
        const r = await skiff.kubectl(['certificate', 'approve', 'gina'], asFrank);
        last = r.stderr;
        return /user not permitted/.test(r.stderr) ? r : undefined;
      },
      10_000,
    ).catch((err) => {
      throw new Error(`${err}: ${last}`);
    });
    assert.notEqual(refused.code, 0);
    assert.match(
      refused.stderr,
      /certificatesigningrequests.certificates.k8s.io "gina" is forbidden: user not permitted to approve requests with signerName "kubernetes.io\/kube-apiserver-client"/,
    );
    assert.match(await ok(skiff, ['get', 'csr', 'gina']), /Pending/);
    // Upstream's approver role for that signer grants it.
    await ok(skiff, [
      'create',
      'clusterrolebinding',
      'frank-approver',
      '--clusterrole=system:certificates.k8s.io:kube-apiserver-client-approver',
      '--user=frank',
    ]);
    await eventually(
      'frank approves',
      async () => (await skiff.kubectl(['certificate', 'approve', 'gina'], asFrank)).code === 0,
    );
    await issued('gina');
  });

  it("a bootstrap token's node client CSR is approved by csrapproving and signed", async () => {
    await ok(skiff, ['create', '-f', '-'], {
      input: JSON.stringify({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'bootstrap-token-abcdef', namespace: 'kube-system' },
        type: 'bootstrap.kubernetes.io/token',
        stringData: {
          'token-id': 'abcdef',
          'token-secret': '0123456789abcdef',
          'usage-bootstrap-authentication': 'true',
        },
      }),
    });
    // kubeadm's bindings: bootstrappers may submit CSRs and have node client ones approved.
    await ok(skiff, [
      'create',
      'clusterrolebinding',
      'kubelet-bootstrap',
      '--clusterrole=system:node-bootstrapper',
      '--group=system:bootstrappers',
    ]);
    await ok(skiff, [
      'create',
      'clusterrolebinding',
      'node-autoapprove-bootstrap',
      '--clusterrole=system:certificates.k8s.io:certificatesigningrequests:nodeclient',
      '--group=system:bootstrappers',
    ]);
    const bootstrap = [
      `--server=https://127.0.0.1:${skiff.port}`,
      `--certificate-authority=${caFile()}`,
      '--token=abcdef.0123456789abcdef',
    ];
    const bare = { env: { KUBECONFIG: '/dev/null' } };
    const { keyFile, csr } = userRequest('joiner', '/O=system:nodes/CN=system:node:joiner');
    await eventually('bootstrapper creates its CSR', async () => {
      const r = await skiff.kubectl([...bootstrap, 'create', '-f', '-'], {
        ...bare,
        input: csrManifest('node-csr-joiner', csr, 'kubernetes.io/kube-apiserver-client-kubelet', [
          'digital signature',
          'key encipherment',
          'client auth',
        ]),
      });
      return r.code === 0;
    });
    const got = JSON.parse(await ok(skiff, ['get', 'csr', 'node-csr-joiner', '-o', 'json']));
    assert.equal(got.spec.username, 'system:bootstrap:abcdef');
    assert.deepEqual(got.spec.groups, ['system:bootstrappers', 'system:authenticated']);
    const certPem = await issued('node-csr-joiner');
    const condition = JSON.parse(await ok(skiff, ['get', 'csr', 'node-csr-joiner', '-o', 'json'])).status
      .conditions[0];
    assert.equal(condition.type, 'Approved');
    assert.equal(condition.reason, 'AutoApproved');
    assert.equal(condition.message, 'Auto approving kubelet client certificate after SubjectAccessReview.');
    assert.equal(new X509Certificate(certPem).subject, 'O=system:nodes\nCN=system:node:joiner');
    // The certificate is the node's credential now.
    const who = JSON.parse(
      await ok(skiff, ['auth', 'whoami', '-o', 'json'], {
        env: { KUBECONFIG: kubeconfigFor('joiner', certPem, keyFile) },
      }),
    ).status.userInfo;
    assert.equal(who.username, 'system:node:joiner');
    assert.deepEqual(who.groups, ['system:nodes', 'system:authenticated']);
  });
});
