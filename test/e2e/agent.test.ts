// The node agent with the hollow runtime, through the real kubectl: the
// agent inside `skiff server` registers the server's node (Ready, with the
// control-plane role), and a Deployment's pods are scheduled to it and run;
// a standalone `skiff agent` joins a second node with the client certificate
// the server wrote; a Job's pod completes; a deleted pod goes through the
// kubelet's graceful termination.

import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { eventually, ok, type Skiff, startSkiff } from './harness.ts';

const root = new URL('../../', import.meta.url).pathname;
let skiff: Skiff;
let worker: ChildProcess | undefined;
let workerLog = '';
const serverNode = hostname().toLowerCase();

before(async () => {
  skiff = await startSkiff(['--no-disable-agent', '--runtime', 'hollow']);
});
after(async () => {
  if (worker && worker.exitCode === null) {
    const exited = new Promise((r) => worker!.once('exit', r));
    worker.kill('SIGTERM');
    await exited;
  }
  await skiff?.stop();
});

const nodeReady = async (name: string) => {
  const out = await ok(skiff, [
    'get',
    'node',
    name,
    '-o',
    'jsonpath={.status.conditions[?(@.type=="Ready")].status}',
  ]);
  return out === 'True';
};

describe('skiff agent (hollow runtime)', () => {
  it('registers the server node Ready with the control-plane role and a Lease', async () => {
    await eventually('server node Ready', () => nodeReady(serverNode));
    const table = await ok(skiff, ['get', 'nodes']);
    const row = table.split('\n').find((l) => l.startsWith(`${serverNode} `)) ?? '';
    assert.match(row, /\sReady\s+control-plane\s/, table);
    const node = JSON.parse(await ok(skiff, ['get', 'node', serverNode, '-o', 'json']));
    assert.equal(node.metadata.labels['kubernetes.io/hostname'], serverNode);
    assert.equal(node.status.capacity.pods, '110');
    assert.equal(node.status.nodeInfo.containerRuntimeVersion, 'hollow://0.1.0');
    assert.ok(node.spec.podCIDR, 'the node IPAM controller gave it a podCIDR');
    const lease = JSON.parse(
      await ok(skiff, ['get', 'lease', '-n', 'kube-node-lease', serverNode, '-o', 'json']),
    );
    assert.equal(lease.spec.holderIdentity, serverNode);
  });

  it("runs a Deployment's pods: scheduled, Running and Ready with IPs from the node's podCIDR", async () => {
    await ok(skiff, ['create', 'deployment', 'web', '--image=nginx:1.27', '--replicas=3', '--port=80']);
    await ok(skiff, ['rollout', 'status', 'deployment/web', '--timeout=60s'], { timeoutMs: 70_000 });
    const pods = JSON.parse(await ok(skiff, ['get', 'pods', '-l', 'app=web', '-o', 'json'])).items;
    assert.equal(pods.length, 3);
    const node = JSON.parse(await ok(skiff, ['get', 'node', serverNode, '-o', 'json']));
    const prefix = String(node.spec.podCIDR).split('.').slice(0, 3).join('.');
    for (const p of pods) {
      assert.equal(p.status.phase, 'Running');
      assert.equal(p.spec.nodeName, serverNode);
      assert.ok(p.status.podIP.startsWith(`${prefix}.`), `${p.status.podIP} in ${node.spec.podCIDR}`);
    }
    const wide = await ok(skiff, ['get', 'pods', '-l', 'app=web', '-o', 'wide']);
    assert.equal(wide.split('\n').filter((l) => /\s1\/1\s+Running\s/.test(l)).length, 3, wide);
  });

  it('deletes a pod through the kubelet, and the ReplicaSet replaces it', async () => {
    const name = (
      await ok(skiff, ['get', 'pods', '-l', 'app=web', '-o', 'jsonpath={.items[0].metadata.name}'])
    ).trim();
    await ok(skiff, ['delete', 'pod', name, '--wait=true', '--timeout=60s'], { timeoutMs: 70_000 });
    await eventually('3 pods Running again', async () => {
      const out = await ok(skiff, [
        'get',
        'pods',
        '-l',
        'app=web',
        '-o',
        'jsonpath={.items[*].status.phase}',
      ]);
      const phases = out.split(' ').filter(Boolean);
      return phases.length === 3 && phases.every((p) => p === 'Running');
    });
  });

  it('completes a Job', async () => {
    await ok(skiff, ['create', 'job', 'once', '--image=busybox', '--', 'sh', '-c', 'exit 0']);
    await ok(skiff, ['wait', '--for=condition=complete', 'job/once', '--timeout=60s'], { timeoutMs: 70_000 });
    const phase = await ok(skiff, [
      'get',
      'pods',
      '-l',
      'job-name=once',
      '-o',
      'jsonpath={.items[0].status.phase}',
    ]);
    assert.equal(phase, 'Succeeded');
  });

  it('joins a standalone `skiff agent` with the agent kubeconfig the server wrote', async () => {
    worker = spawn(
      process.execPath,
      [
        join(root, 'src/cli/main.ts'),
        'agent',
        '--kubeconfig',
        join(skiff.dataDir, 'agent-kubeconfig.yaml'),
        '--runtime',
        'hollow',
        '--node-name',
        'worker-1',
        '--node-ip',
        '198.18.0.21',
        '--node-label',
        'tier=edge',
        '--data-dir',
        join(skiff.dataDir, 'worker-1'),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    worker.stdout?.on('data', (d) => (workerLog += d));
    worker.stderr?.on('data', (d) => (workerLog += d));
    await eventually('worker-1 Ready', () => nodeReady('worker-1'), 60_000).catch((err) => {
      throw new Error(`${err}\nagent output:\n${workerLog}`);
    });
    const node = JSON.parse(await ok(skiff, ['get', 'node', 'worker-1', '-o', 'json']));
    assert.equal(node.metadata.labels.tier, 'edge');
    assert.equal(node.metadata.labels['node-role.kubernetes.io/control-plane'], undefined);
    assert.deepEqual(node.status.addresses[0], { type: 'InternalIP', address: '198.18.0.21' });
    await ok(skiff, [
      'run',
      'edge',
      '--image=busybox',
      '--overrides={"apiVersion":"v1","spec":{"nodeSelector":{"tier":"edge"}}}',
      '--',
      'sleep',
      'infinity',
    ]);
    await ok(skiff, ['wait', '--for=condition=Ready', 'pod/edge', '--timeout=60s'], { timeoutMs: 70_000 });
    assert.equal(await ok(skiff, ['get', 'pod', 'edge', '-o', 'jsonpath={.spec.nodeName}']), 'worker-1');
    // The bootstrap certificate bought the node its own; by itself it may read nothing.
    const kubelet = await ok(skiff, [
      '--kubeconfig',
      join(skiff.dataDir, 'worker-1', 'agent', 'kubelet.kubeconfig'),
      'auth',
      'whoami',
      '-o',
      'jsonpath={.status.userInfo.username}',
    ]);
    assert.equal(kubelet, 'system:node:worker-1');
    const bootstrap = await skiff.kubectl([
      '--kubeconfig',
      join(skiff.dataDir, 'agent-kubeconfig.yaml'),
      'get',
      'pods',
      '-A',
    ]);
    assert.match(bootstrap.stderr, /User "system:skiff-agent" cannot list resource "pods"/);
  });
});
