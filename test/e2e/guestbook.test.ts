// The classic guestbook (Kubernetes 0.x's first walkthrough, on one node and
// current APIs) on a real `skiff server` with its agent running containerd,
// the service proxy and cluster DNS, driven the way docs/guestbook.md tells
// a newcomer to: `skiff kubectl apply -f examples/guestbook/`, then kubectl.
//
//   - the replicas find the master by its DNS name (redis-master) and the
//     frontend reads from them through their Service;
//   - `kubectl get pods,svc,rc` shows what upstream's walkthrough shows;
//   - a message posted through the frontend's NodePort reads back;
//   - the ReplicationController replaces a deleted replica pod;
//   - `kubectl scale rc frontend --replicas=1` leaves one frontend;
//   - stopping and starting the server keeps every object, and leaves every
//     container running (same container IDs, same start times), and the
//     message is still there (issue 7: "the apiserver sometimes fails to come
//     back after a restart" must not be Skiff's problem).
//
// Needs root and what scripts/setup.sh installs (containerd, runc, CNI
// plugins, Skiff's offline images).

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { unmountUnder } from '../../src/agent/containerd.ts';
import { eventually, kubectlPath, ok, type Skiff, startSkiff } from './harness.ts';

const root = new URL('../../', import.meta.url).pathname;
const EXAMPLE = join(root, 'examples/guestbook');

// Pod and Service ranges of this file's own, so this cluster's pods and
// ClusterIPs never meet another Skiff cluster's on the machine at the same time.
const CLUSTER_CIDR = '10.74.0.0/16';
const SERVICE_CIDR = '10.75.0.0/16';

let skiff: Skiff;
let nodeIP = '';
let nodePort = 0;
const message = `hello from the guestbook test, ${Date.now()}`;

interface ContainerStatus {
  name: string;
  containerID?: string;
  restartCount: number;
  ready: boolean;
  state?: { running?: { startedAt: string } };
}
interface PodJSON {
  metadata: { name: string; uid: string; labels?: Record<string, string> };
  status: { phase?: string; podIP?: string; containerStatuses?: ContainerStatus[] };
}

/** `skiff kubectl ARGS` as a user runs it: the built CLI, or src/ with SKIFF_E2E_FROM_SOURCE=1 (as the harness). */
function skiffKubectl(args: string[]): Promise<string> {
  const [command, prefix] = process.env.SKIFF_E2E_FROM_SOURCE
    ? [process.execPath, [join(root, 'src/cli/main.ts')]]
    : [join(root, 'bin/skiff'), []];
  return new Promise((resolve, reject) => {
    execFile(
      command,
      [...prefix, 'kubectl', '--data-dir', skiff.dataDir, ...args],
      // No KUBECONFIG: skiff kubectl finds the cluster's by its data dir. The
      // system kubectl of the harness goes first on PATH.
      {
        env: {
          PATH: `${join(kubectlPath('1.32'), '..')}:${process.env.PATH ?? ''}`,
          HOME: join(skiff.dataDir, 'home'),
        },
        timeout: 60_000,
      },
      (err, stdout, stderr) =>
        err ? reject(new Error(`${err.message}\n${stderr}${stdout}`)) : resolve(stdout),
    );
  });
}

const pods = async (selector: string): Promise<PodJSON[]> =>
  JSON.parse(await ok(skiff, ['get', 'pods', '-l', selector, '-o', 'json'])).items;

const isReady = (p: PodJSON) =>
  p.status.phase === 'Running' && (p.status.containerStatuses ?? []).every((c) => c.ready);

/** Waits until `selector` has exactly `count` pods, all running and ready; answers them. */
function readyPods(selector: string, count: number, ms = 120_000): Promise<PodJSON[]> {
  return eventually(
    `${count} ready pods ${selector}`,
    async () => {
      const list = await pods(selector);
      return list.length === count && list.every(isReady) ? list : undefined;
    },
    ms,
  ).catch(async (err) => {
    const table = await ok(skiff, ['get', 'pods,svc,rc,endpoints', '-o', 'wide']).catch(String);
    const events = await ok(skiff, ['get', 'events', '--sort-by=.lastTimestamp']).catch(String);
    throw new Error(`${err}\n${table}\nevents:\n${events.split('\n').slice(-30).join('\n')}`);
  });
}

/** GET http://host:port/path, with a timeout so a black-holed connection fails the try, not the test. */
async function httpGet(host: string, port: number, path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://${host}:${port}${path}`, { signal: AbortSignal.timeout(10_000) });
  return { status: res.status, body: await res.text() };
}

/** What the frontend answers for the guestbook's "messages" key, read from a replica. */
async function readMessages(host: string): Promise<string | undefined> {
  const res = await httpGet(host, nodePort, '/guestbook.php?cmd=get&key=messages');
  if (res.status !== 200) return undefined;
  return (JSON.parse(res.body) as { data?: string }).data;
}

before(async () => {
  skiff = await startSkiff([
    '--no-disable-agent',
    '--cluster-cidr',
    CLUSTER_CIDR,
    '--service-cidr',
    SERVICE_CIDR,
  ]);
  await eventually(
    'the node Ready',
    async () => {
      const node = JSON.parse(await ok(skiff, ['get', 'nodes', '-o', 'json'])).items[0];
      const ready = node?.status?.conditions?.find((c: { type: string }) => c.type === 'Ready');
      if (ready?.status !== 'True' || !node.spec.podCIDR) return false;
      nodeIP = node.status.addresses.find((a: { type: string }) => a.type === 'InternalIP').address;
      return true;
    },
    120_000,
  ).catch((err) => {
    throw new Error(`${err}\nserver output:\n${skiff.logs()}`);
  });
});

after(async () => {
  if (!skiff) return;
  // Containers outlive the server (that is the point of the restart test):
  // the guestbook goes through the kubelet before the server stops.
  await skiff.kubectl(['delete', '-f', EXAMPLE, '--wait=true', '--timeout=90s'], { timeoutMs: 100_000 });
  await skiff.kubectl(['delete', 'pods', '--all', '--grace-period=1', '--wait=true', '--timeout=60s'], {
    timeoutMs: 70_000,
  });
  const dataDir = skiff.dataDir;
  try {
    await skiff.stop().catch(async () => {
      await unmountUnder(dataDir);
      rmSync(dataDir, { recursive: true, force: true });
    });
  } finally {
    // The proxy's rules, the pod bridge and the DNS address outlive the
    // agent, as kube-proxy's do; `skiff agent --cleanup` removes this cluster's.
    await promisify(execFile)(process.execPath, [
      join(root, 'src/cli/main.ts'),
      'agent',
      '--cleanup',
      '--data-dir',
      dataDir,
      '--cluster-cidr',
      CLUSTER_CIDR,
      '--service-cidr',
      SERVICE_CIDR,
    ]);
  }
});

describe('the guestbook walkthrough', () => {
  it('skiff kubectl apply -f examples/guestbook/ creates it, and every pod comes up ready', async () => {
    const out = await skiffKubectl(['apply', '-f', EXAMPLE]);
    assert.deepEqual(out.trim().split('\n').sort(), [
      'configmap/guestbook-frontend created',
      'pod/redis-master created',
      'replicationcontroller/frontend created',
      'replicationcontroller/redis-replica created',
      'service/frontend created',
      'service/redis-master created',
      'service/redis-replica created',
    ]);
    await readyPods('app=redis,role=master', 1);
    // A replica is ready only once it is in sync with the master, which it
    // reached by the name redis-master: cluster DNS and the ClusterIP work.
    await readyPods('app=redis,role=replica', 2);
    await readyPods('app=guestbook,tier=frontend', 3);
  });

  it('kubectl get pods,svc,rc looks like upstream', async () => {
    const out = await ok(skiff, ['get', 'pods,svc,rc']);
    const lines = out.split('\n');
    const row = (name: string) => lines.find((l) => l.startsWith(`${name} `)) ?? '';
    // Three tables, each with upstream's columns.
    assert.match(out, /^NAME +READY +STATUS +RESTARTS +AGE$/m);
    assert.match(out, /^NAME +TYPE +CLUSTER-IP +EXTERNAL-IP +PORT\(S\) +AGE$/m);
    assert.match(out, /^NAME +DESIRED +CURRENT +READY +AGE$/m);
    assert.match(row('pod/redis-master'), /^pod\/redis-master +1\/1 +Running +0 +[0-9smh]+$/);
    assert.equal(
      lines.filter((l) => /^pod\/redis-replica-[a-z0-9]{5} +1\/1 +Running +0 /.test(l)).length,
      2,
      out,
    );
    assert.equal(lines.filter((l) => /^pod\/frontend-[a-z0-9]{5} +1\/1 +Running +0 /.test(l)).length, 3, out);
    assert.match(
      row('service/frontend'),
      /^service\/frontend +NodePort +10\.75\.\d+\.\d+ +<none> +80:3\d{4}\/TCP /,
    );
    assert.match(
      row('service/kubernetes'),
      /^service\/kubernetes +ClusterIP +10\.75\.0\.1 +<none> +443\/TCP /,
    );
    assert.match(
      row('service/redis-master'),
      /^service\/redis-master +ClusterIP +10\.75\.\d+\.\d+ +<none> +6379\/TCP /,
    );
    assert.match(
      row('service/redis-replica'),
      /^service\/redis-replica +ClusterIP +10\.75\.\d+\.\d+ +<none> +6379\/TCP /,
    );
    assert.match(
      row('replicationcontroller/frontend'),
      /^replicationcontroller\/frontend +3 +3 +3 +[0-9smh]+$/,
    );
    assert.match(
      row('replicationcontroller/redis-replica'),
      /^replicationcontroller\/redis-replica +2 +2 +2 +[0-9smh]+$/,
    );
    nodePort = Number(
      await ok(skiff, ['get', 'svc', 'frontend', '-o', 'jsonpath={.spec.ports[0].nodePort}']),
    );
    assert.ok(nodePort >= 30000 && nodePort <= 32767, String(nodePort));
  });

  it('posts a message through the NodePort and reads it back from the replicas', async () => {
    // The page, on the node's address and on localhost.
    for (const host of [nodeIP, '127.0.0.1']) {
      const page = await eventually(`the frontend on ${host}:${nodePort}`, () =>
        httpGet(host, nodePort, '/'),
      );
      assert.equal(page.status, 200);
      assert.match(page.body, /<h1>Guestbook<\/h1>/);
    }
    const query = new URLSearchParams({ cmd: 'set', key: 'messages', value: message });
    const set = await httpGet('127.0.0.1', nodePort, `/guestbook.php?${query}`);
    assert.deepEqual([set.status, JSON.parse(set.body)], [200, { message: 'Updated' }], set.body);
    // Written to the master, read from a replica: replication is asynchronous.
    await eventually('the message on a replica', async () => (await readMessages(nodeIP)) === message);
    // Every replica has it, whichever one the Service picks.
    for (const replica of await pods('app=redis,role=replica')) {
      await eventually(
        `the message on ${replica.metadata.name}`,
        async () =>
          (await ok(skiff, ['exec', replica.metadata.name, '--', 'redis-cli', 'get', 'messages'])).trim() ===
          message,
      );
    }
  });

  it('the ReplicationController replaces a deleted replica pod', async () => {
    const [victim, survivor] = await pods('app=redis,role=replica');
    assert.ok(victim && survivor);
    await ok(skiff, ['delete', 'pod', victim.metadata.name, '--wait=false']);
    const now = await eventually(
      'a replacement replica',
      async () => {
        const list = await pods('app=redis,role=replica');
        const names = list.map((p) => p.metadata.name);
        return list.length === 2 && !names.includes(victim.metadata.name) && list.every(isReady)
          ? list
          : undefined;
      },
      120_000,
    );
    assert.ok(
      now.some((p) => p.metadata.uid === survivor.metadata.uid),
      'the other replica was left alone',
    );
    const rc = await ok(skiff, ['get', 'rc', 'redis-replica', '-o', 'jsonpath={.status.readyReplicas}']);
    assert.equal(rc, '2');
    // The new replica synced from the master: it has the message too.
    const fresh = now.find((p) => p.metadata.uid !== survivor.metadata.uid)!;
    const got = await ok(skiff, ['exec', fresh.metadata.name, '--', 'redis-cli', 'get', 'messages']);
    assert.equal(got.trim(), message);
  });

  it('kubectl scale rc frontend --replicas=1 leaves one frontend, and the message is still there', async () => {
    const out = await ok(skiff, ['scale', 'rc', 'frontend', '--replicas=1']);
    assert.equal(out.trim(), 'replicationcontroller/frontend scaled');
    await readyPods('app=guestbook,tier=frontend', 1);
    const row = (await ok(skiff, ['get', 'rc', 'frontend'])).split('\n')[1] ?? '';
    assert.match(row, /^frontend +1 +1 +1 +\d+/);
    // The Service now has one endpoint; every read lands on it.
    for (let i = 0; i < 5; i++) {
      assert.equal(await eventually('the message', () => readMessages('127.0.0.1')), message);
    }
  });

  it('stopping and starting the server keeps every object, and the containers keep running', async () => {
    interface Snapshot {
      objects: string[];
      containers: string[];
    }
    const snapshot = async (): Promise<Snapshot> => {
      const all = JSON.parse(await ok(skiff, ['get', 'pods,svc,rc,configmap,endpoints', '-o', 'json']))
        .items as {
        kind: string;
        metadata: { name: string; uid: string };
        spec?: { clusterIP?: string; ports?: { nodePort?: number }[] };
      }[];
      const podList = (await pods('tier')).sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
      return {
        objects: all
          .map(
            (o) =>
              `${o.kind}/${o.metadata.name} ${o.metadata.uid} ${o.spec?.clusterIP ?? ''} ${o.spec?.ports?.[0]?.nodePort ?? ''}`,
          )
          .sort(),
        containers: podList.flatMap((p) =>
          (p.status.containerStatuses ?? []).map(
            (c) =>
              `${p.metadata.name} ${p.status.podIP} ${c.containerID} ${c.state?.running?.startedAt} restarts=${c.restartCount}`,
          ),
        ),
      };
    };
    const before = await snapshot();
    assert.equal(before.containers.length, 4, before.containers.join('\n'));
    assert.ok(
      before.containers.every((c) => /containerd:\/\/\w+ \d{4}-/.test(c)),
      before.containers.join('\n'),
    );

    await skiff.restart();
    // The apiserver is back and answers at once (the harness waited for it to listen).
    assert.equal((await ok(skiff, ['get', '--raw', '/readyz'])).trim(), 'ok');
    await eventually(
      'the node Ready after the restart',
      async () =>
        (await ok(skiff, [
          'get',
          'nodes',
          '-o',
          'jsonpath={.items[0].status.conditions[?(@.type=="Ready")].status}',
        ])) === 'True',
      120_000,
    );
    // Every pod ready again, as the restarted kubelet found them in containerd.
    await readyPods('app=redis,role=replica', 2);
    await readyPods('app=guestbook,tier=frontend', 1);
    const afterRestart = await snapshot();
    assert.deepEqual(afterRestart.objects, before.objects);
    assert.deepEqual(afterRestart.containers, before.containers);
    // The same Redis processes still hold the message, and the proxy serves the NodePort again.
    assert.equal(
      await eventually('the message after the restart', () => readMessages(nodeIP), 60_000),
      message,
    );
  });
});
