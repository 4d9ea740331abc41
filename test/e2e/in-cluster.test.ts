// A pod's identity end to end (issue 13), with real containers: the
// ServiceAccount admission plugin mounts kube-api-access into the pod, the
// kubelet fills it from the TokenRequest API (bound to the pod), and kubectl
// inside the pod (this machine's static kubectl, mounted read-only) reaches
// the API through the kubernetes Service with that token: 403 until its
// ServiceAccount is bound to view, then it lists pods. client-node's
// loadFromCluster() reads the same files, from the node's side.
//
// The cluster has its own Service and pod CIDRs. The server listens on all
// addresses so that pods reach it at the node's own address, the kubernetes
// Service's endpoint. Needs root and what scripts/setup.sh installs.

import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import { eventually, kubectlPath, ok, type Skiff, startSkiff } from './harness.ts';

const SERVICE_CIDR = '10.177.0.0/16';
const CLUSTER_CIDR = '10.176.0.0/16';
const NS = 'incluster';
const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

let skiff: Skiff;
let scratch: string;

const inPod = async (script: string) => {
  const r = await skiff.kubectl(['exec', '-n', NS, 'client', '--', 'sh', '-c', script], {
    timeoutMs: 60_000,
  });
  return { code: r.code, out: r.stdout.trim(), err: r.stderr.trim() };
};

before(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'skiff-incluster-'));
  skiff = await startSkiff([
    '--no-disable-agent',
    '--bind-address',
    '0.0.0.0',
    '--service-cidr',
    SERVICE_CIDR,
    '--cluster-cidr',
    CLUSTER_CIDR,
  ]);
  await eventually(
    'the node Ready',
    async () => (await ok(skiff, ['get', 'nodes', '--no-headers'])).includes(' Ready '),
    120_000,
  );
  await ok(skiff, ['create', 'namespace', NS]);
  await ok(skiff, ['create', 'serviceaccount', 'reader', '-n', NS]);
  await ok(skiff, ['apply', '-f', '-'], {
    input: `apiVersion: v1
kind: Pod
metadata: {name: client, namespace: ${NS}}
spec:
  serviceAccountName: reader
  terminationGracePeriodSeconds: 1
  volumes:
  - {name: kubectl, hostPath: {path: ${kubectlPath('1.32')}, type: File}}
  containers:
  - name: main
    image: busybox
    imagePullPolicy: IfNotPresent
    command: [sleep, '3600']
    env: [{name: HOME, value: /tmp}]
    volumeMounts: [{name: kubectl, mountPath: /kubectl, readOnly: true}]
`,
  });
  await ok(skiff, ['wait', '--for=condition=Ready', '-n', NS, 'pod/client', '--timeout=90s'], {
    timeoutMs: 100_000,
  });
});

after(async () => {
  await skiff?.kubectl(['delete', 'namespace', NS, '--wait=true', '--timeout=60s'], { timeoutMs: 70_000 });
  // Stopping also removes the cluster's network state (nft table, routes, bridge).
  await skiff?.stop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

describe("a pod's ServiceAccount token", () => {
  it("is upstream's kube-api-access volume, with a token bound to the pod, the CA and the namespace", async () => {
    const pod = JSON.parse(await ok(skiff, ['get', 'pod', 'client', '-n', NS, '-o', 'json']));
    const volume = pod.spec.volumes.find((v: { name: string }) => v.name.startsWith('kube-api-access-'));
    assert.ok(volume, JSON.stringify(pod.spec.volumes));
    assert.deepEqual(pod.spec.containers[0].volumeMounts.at(-1), {
      name: volume.name,
      mountPath: SA_DIR,
      readOnly: true,
    });
    assert.equal((await inPod(`cat ${SA_DIR}/namespace`)).out, NS);
    assert.match((await inPod(`cat ${SA_DIR}/ca.crt`)).out, /^-----BEGIN CERTIFICATE-----/);
    const token = (await inPod(`cat ${SA_DIR}/token`)).out;
    const claims = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8'));
    assert.equal(claims.sub, `system:serviceaccount:${NS}:reader`);
    assert.equal(claims['kubernetes.io'].pod.uid, pod.metadata.uid);
    assert.equal(claims['kubernetes.io'].node.name, pod.spec.nodeName);
  });

  it('kubectl in the pod is refused until the ServiceAccount is bound to view, then lists pods', async () => {
    const list = () => inPod('/kubectl get pods -o name');
    const denied = await eventually('an answer from the API', async () => {
      const r = await list();
      return r.err.includes('Forbidden') || r.err.includes('forbidden') ? r : undefined;
    });
    assert.match(
      denied.err,
      new RegExp(
        `User "system:serviceaccount:${NS}:reader" cannot list resource "pods" in API group "" in the namespace "${NS}"`,
      ),
    );
    await ok(skiff, [
      'create',
      'rolebinding',
      'reader-view',
      '--clusterrole=view',
      `--serviceaccount=${NS}:reader`,
      '-n',
      NS,
    ]);
    const allowed = await eventually('view in effect', async () => {
      const r = await list();
      return r.code === 0 ? r : undefined;
    });
    assert.equal(allowed.out, 'pod/client');
    const secrets = await inPod('/kubectl get secrets -o name');
    assert.match(secrets.err, /cannot list resource "secrets"/);
  });

  it("client-node's loadFromCluster() reads the pod's files and authenticates as its ServiceAccount", async () => {
    const pod = JSON.parse(await ok(skiff, ['get', 'pod', 'client', '-n', NS, '-o', 'json']));
    const projected = join(skiff.dataDir, 'pods', pod.metadata.uid, 'volumes', 'kubernetes.io~projected');
    const volume = readdirSync(projected).find((n) => n.startsWith('kube-api-access-'));
    assert.ok(volume, `no kube-api-access volume under ${projected}`);
    // loadFromCluster(prefix) reads <prefix>/var/run/secrets/kubernetes.io/serviceaccount/*.
    const prefix = join(scratch, 'root');
    mkdirSync(join(prefix, '/var/run/secrets/kubernetes.io'), { recursive: true });
    symlinkSync(join(projected, volume), join(prefix, SA_DIR));
    assert.equal(readFileSync(join(prefix, SA_DIR, 'namespace'), 'utf8'), NS);
    const saved = { host: process.env.KUBERNETES_SERVICE_HOST, port: process.env.KUBERNETES_SERVICE_PORT };
    process.env.KUBERNETES_SERVICE_HOST = '127.0.0.1';
    process.env.KUBERNETES_SERVICE_PORT = String(skiff.port);
    try {
      const kc = new k8s.KubeConfig();
      kc.loadFromCluster(prefix);
      const core = kc.makeApiClient(k8s.CoreV1Api);
      const pods = await eventually('view in effect for client-node', async () =>
        core.listNamespacedPod({ namespace: NS }).catch(() => undefined),
      );
      assert.deepEqual(
        pods.items.map((p) => p.metadata?.name),
        ['client'],
      );
      await assert.rejects(
        core.listNamespacedSecret({ namespace: NS }),
        (err: { code?: number }) => err.code === 403,
      );
    } finally {
      if (saved.host === undefined) delete process.env.KUBERNETES_SERVICE_HOST;
      else process.env.KUBERNETES_SERVICE_HOST = saved.host;
      if (saved.port === undefined) delete process.env.KUBERNETES_SERVICE_PORT;
      else process.env.KUBERNETES_SERVICE_PORT = saved.port;
    }
  });
});
