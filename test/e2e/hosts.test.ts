// A real multi-node cluster on this machine (issue 14, seed 002's node
// failure and return): a server and two agent hosts made by src/hosts,
// each a network namespace with its own agent and containerd, driven with
// the real kubectl from the root namespace. What a user sees:
//
//   - every host's node Ready, with its own address as InternalIP;
//   - a pod placed on each host runs a real container there, and `kubectl
//     logs`, `exec` and `port-forward` reach it through that node's kubelet;
//   - a host killed (agent and containerd SIGKILLed, link cut) goes
//     NotReady after the grace period, its pods are evicted once their
//     tolerations run out, a Deployment's pods come back on the other
//     hosts; when the host returns it is Ready again and its stale
//     containers are removed;
//   - `kubectl drain` moves pods to the other hosts.
//
//   - pods on different hosts reach each other by pod IP over the overlay
//     (VXLAN, src/network/), and through a ClusterIP Service by its DNS name;
//   - a LoadBalancer Service (servicelb: every node) reaches a pod on another
//     host from every node; with externalTrafficPolicy Local only the pod's
//     own node answers, and the pod sees the client's real address.
//
// Uses real containerd: run under `flock /tmp/skiff-real.lock`.

import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { type HostsCluster, startHostsCluster } from '../../src/hosts/hosts.ts';
import { eventually, kubectlPath, skiffCommand } from './harness.ts';
import {
  containersOn as containersOnHost,
  hostsKubectl,
  type NodeJSON,
  nodeReady,
  type PodJSON,
  podReady,
} from './hosts-helpers.ts';

const run = promisify(execFile);

/** This file's own 198.18.<id>.0/24, bridge and namespaces. */
const HOSTS_ID = 41;
const NS = 'hosts-e2e';
/** Short, so a killed host turns NotReady in well under a minute (upstream's default is 40 s). */
const GRACE = '15s';

let cluster: HostsCluster;
let home = '';
let tmp = '';

const kubectl = hostsKubectl(
  () => cluster,
  () => home,
);

const pods = async (selector: string): Promise<PodJSON[]> =>
  JSON.parse(await kubectl(['get', 'pods', '-n', NS, '-l', selector, '-o', 'json'])).items;
const node = async (name: string): Promise<NodeJSON> =>
  JSON.parse(await kubectl(['get', 'node', name, '-o', 'json']));
const ready = nodeReady;
const containersOn = (nodeName: string) => containersOnHost(cluster, nodeName);

/** `kubectl port-forward` to the pod's 8080 from this (the root) namespace: what GET / answers. */
async function throughPortForward(pod: string): Promise<string> {
  const child = spawn(kubectlPath('1.32'), ['port-forward', '-n', NS, `pod/${pod}`, ':8080'], {
    env: { PATH: process.env.PATH ?? '', HOME: home, KUBECONFIG: cluster.kubeconfig },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  try {
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const port = await eventually(`kubectl port-forward to ${pod}`, async () => {
      if (child.exitCode !== null) throw new Error(`kubectl port-forward exited: ${out}`);
      return /Forwarding from 127\.0\.0\.1:(\d+)/.exec(out)?.[1];
    });
    return (await fetch(`http://127.0.0.1:${port}/`)).text();
  } finally {
    child.kill();
  }
}

/** Runs on the node named, with the node's name in its log and on its port 8080. */
const pinnedPod = (name: string, nodeName: string) => `apiVersion: v1
kind: Pod
metadata:
  name: ${name}
  namespace: ${NS}
  labels: {app: pinned}
spec:
  nodeName: ${nodeName}
  terminationGracePeriodSeconds: 1
  tolerations:
  - {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: 2}
  - {key: node.kubernetes.io/not-ready, operator: Exists, effect: NoExecute, tolerationSeconds: 2}
  containers:
  - name: c
    image: busybox
    env:
    - name: NODE
      valueFrom: {fieldRef: {fieldPath: spec.nodeName}}
    command: [sh, -c, 'echo "running on $NODE"; mkdir /www; echo "$NODE" >/www/index.html; exec httpd -f -p 8080 -h /www']
`;

/** Two replicas, never two on one host, each evicted 2 s after its host goes. */
const deployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: ${NS}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata:
      labels: {app: web}
    spec:
      terminationGracePeriodSeconds: 1
      tolerations:
      - {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: 2}
      - {key: node.kubernetes.io/not-ready, operator: Exists, effect: NoExecute, tolerationSeconds: 2}
      affinity:
        podAntiAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
          - labelSelector: {matchLabels: {app: web}}
            topologyKey: kubernetes.io/hostname
      containers:
      - name: c
        image: busybox
        command: [sleep, '3600']
`;

/** The Deployment's live pods, once both are Ready on two different hosts. */
async function webSpread(): Promise<PodJSON[]> {
  return eventually(
    'both web pods Ready, on two hosts',
    async () => {
      const live = (await pods('app=web')).filter((p) => !p.metadata.deletionTimestamp);
      const hosts = new Set(live.map((p) => p.spec.nodeName));
      return live.length === 2 && hosts.size === 2 && live.every(podReady) ? live : undefined;
    },
    120_000,
  );
}

describe('a cluster of hosts on one machine', { timeout: 600_000 }, () => {
  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'skiff-hosts-e2e-'));
    home = join(tmp, 'home');
    cluster = await startHostsCluster({
      id: HOSTS_ID,
      dataDir: join(tmp, 'data'),
      agents: 2,
      serverArgs: ['--node-monitor-grace-period', GRACE],
      skiff: skiffCommand(),
    });
    await kubectl(['create', 'namespace', NS]);
  });

  after(async () => {
    // Whatever happened above: every process, container, mount, namespace and the bridge.
    await cluster?.stop();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('lists every host Ready, each with its own address as InternalIP', async () => {
    const nodes = JSON.parse(await kubectl(['get', 'nodes', '-o', 'json'])).items as NodeJSON[];
    const seen = Object.fromEntries(
      nodes.map((n) => [
        n.metadata.name,
        [ready(n), n.status.addresses?.find((a) => a.type === 'InternalIP')?.address],
      ]),
    );
    assert.deepEqual(seen, {
      server: ['True', `198.18.${HOSTS_ID}.10`],
      'host-1': ['True', `198.18.${HOSTS_ID}.11`],
      'host-2': ['True', `198.18.${HOSTS_ID}.12`],
    });
  });

  it('runs a pod on each host; kubectl logs, exec and port-forward reach it through its node', async () => {
    for (const host of ['host-1', 'host-2'])
      await kubectl(['apply', '-f', '-'], pinnedPod(`on-${host}`, host));
    for (const host of ['host-1', 'host-2']) {
      const name = `on-${host}`;
      await eventually(
        `${name} Running`,
        async () => (await pods('app=pinned')).find((p) => p.metadata.name === name && podReady(p)),
        120_000,
      );
      assert.ok((await containersOn(host)).includes(`${NS}/${name}`), `runc runs ${name} on ${host}`);
      const logs = await eventually(`${name}'s log`, async () =>
        (await kubectl(['logs', '-n', NS, name])).includes('running on')
          ? kubectl(['logs', '-n', NS, name])
          : '',
      );
      assert.equal(logs.trim(), `running on ${host}`);
      assert.equal((await kubectl(['exec', '-n', NS, name, '--', 'sh', '-c', 'echo $NODE'])).trim(), host);
      assert.equal((await throughPortForward(name)).trim(), host);
    }
    await kubectl(['delete', 'pods', '-n', NS, '-l', 'app=pinned', '--wait=true']);
  });

  it('pods reach each other across hosts over the overlay, by pod IP and through a Service by its DNS name', async () => {
    const nodes = ['server', 'host-1', 'host-2'];
    for (const host of nodes) await kubectl(['apply', '-f', '-'], pinnedPod(`net-${host}`, host));
    const ips: Record<string, string> = {};
    for (const host of nodes) {
      const pod = await eventually(
        `net-${host} Running`,
        async () => (await pods('app=pinned')).find((p) => p.metadata.name === `net-${host}` && podReady(p)),
        120_000,
      );
      ips[host] = pod.status.podIP!;
    }
    // An HTTP GET with busybox nc (its wget segfaults here): the answer is the serving pod's node.
    const get = (from: string, to: string) =>
      kubectl([
        'exec',
        '-n',
        NS,
        `net-${from}`,
        '--',
        'sh',
        '-c',
        `printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 5 ${to} 8080 | tail -n 1`,
      ]);
    for (const from of nodes)
      for (const to of nodes) {
        if (from === to) continue;
        const answer = await eventually(`net-${from} → net-${to} (${ips[to]})`, async () =>
          (await get(from, ips[to]!).catch(() => '')).trim() === to ? to : undefined,
        );
        assert.equal(answer, to);
      }
    // A ClusterIP Service whose only endpoint is on host-2, asked by name from host-1's pod.
    await kubectl(['label', 'pod', '-n', NS, 'net-host-2', 'target=yes']);
    await kubectl(
      ['apply', '-f', '-'],
      `apiVersion: v1
kind: Service
metadata: {name: target, namespace: ${NS}}
spec:
  selector: {target: 'yes'}
  ports: [{port: 80, targetPort: 8080}]
`,
    );
    const viaService = await eventually('host-1 → Service target → host-2', async () => {
      const out = await kubectl([
        'exec',
        '-n',
        NS,
        'net-host-1',
        '--',
        'sh',
        '-c',
        `printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 5 target.${NS}.svc.cluster.local 80 | tail -n 1`,
      ]).catch(() => '');
      return out.trim() === 'host-2' ? out.trim() : undefined;
    });
    assert.equal(viaService, 'host-2');
    await kubectl(['delete', 'service', '-n', NS, 'target']);
    await kubectl(['delete', 'pods', '-n', NS, '-l', 'app=pinned', '--wait=true']);
  });

  it('a LoadBalancer Service answers on every host for an endpoint on one; externalTrafficPolicy Local only on that host, with the client address', async () => {
    // On host-2: GET / answers the node's name, GET /cgi-bin/ip the client's address as the pod sees it.
    await kubectl(
      ['apply', '-f', '-'],
      `apiVersion: v1
kind: Pod
metadata: {name: lb-backend, namespace: ${NS}, labels: {app: lb}}
spec:
  nodeName: host-2
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: busybox
    command: [sh, -c, 'mkdir -p /www/cgi-bin; echo host-2 >/www/index.html; printf "#!/bin/sh\\necho Content-Type: text/plain\\necho\\necho \\$REMOTE_ADDR\\n" >/www/cgi-bin/ip; chmod +x /www/cgi-bin/ip; exec httpd -f -p 8080 -h /www']
---
apiVersion: v1
kind: Service
metadata: {name: lb, namespace: ${NS}}
spec:
  type: LoadBalancer
  selector: {app: lb}
  ports: [{port: 8081, targetPort: 8080}]
`,
    );
    try {
      await eventually('lb-backend Running', async () => (await pods('app=lb')).find(podReady), 120_000);
      const addresses = cluster.hosts.map((h) => h.link.address).sort();
      const ingress = await eventually('the load balancer on every node', async () => {
        const svc = JSON.parse(await kubectl(['get', 'service', '-n', NS, 'lb', '-o', 'json']));
        const ips = ((svc.status?.loadBalancer?.ingress ?? []) as { ip: string }[]).map((i) => i.ip).sort();
        return ips.length === addresses.length ? ips : undefined;
      });
      assert.deepEqual(ingress, addresses);
      // A new connection each time: one kept alive from before the policy
      // changed would keep the address translation conntrack gave it then.
      const get = (ip: string, path = '/') =>
        new Promise<string>((resolve, reject) => {
          const req = httpGet(
            // busybox httpd passes a CGI's LF-only header lines on as they are.
            { host: ip, port: 8081, path, agent: false, timeout: 3000, insecureHTTPParser: true },
            (res) => {
              let body = '';
              res.on('data', (d) => (body += d));
              res.on('end', () => resolve(body.trim()));
              res.on('error', reject);
            },
          );
          req.on('timeout', () => req.destroy(new Error(`${ip}:8081 timed out`)));
          req.on('error', reject);
        });
      for (const ip of addresses)
        assert.equal(await eventually(`${ip}:8081 → host-2`, () => get(ip).catch(() => undefined)), 'host-2');

      await kubectl(['patch', 'service', '-n', NS, 'lb', '-p', '{"spec":{"externalTrafficPolicy":"Local"}}']);
      const host1 = cluster.hosts.find((h) => h.node === 'host-1')!.link.address;
      const host2 = cluster.hosts.find((h) => h.node === 'host-2')!.link.address;
      // host-1 has no endpoint of its own: outside traffic to it is dropped, not sent on.
      await eventually(`${host1}:8081 refused under Local`, async () =>
        get(host1).then(
          () => false,
          () => true,
        ),
      );
      // host-2 serves it, and the pod sees the client's own address (the
      // bridge's, 198.18.<id>.1), not a node's (busybox httpd writes it as
      // [::ffff:a.b.c.d]). Under Cluster it saw its node's gateway.
      const clientAddress = (text: string) => text.replace(/^\[(::ffff:)?|\]$/g, '');
      assert.equal(
        await eventually('the client address through host-2', async () => {
          const seen = clientAddress(await get(host2, '/cgi-bin/ip').catch(() => ''));
          return seen === `198.18.${HOSTS_ID}.1` ? seen : undefined;
        }),
        `198.18.${HOSTS_ID}.1`,
      );
    } finally {
      // Also after a failure: a bare pod left on host-2 would stop the drain test below.
      await kubectl(['delete', 'service', '-n', NS, 'lb', '--ignore-not-found']);
      await kubectl(['delete', 'pod', '-n', NS, 'lb-backend', '--ignore-not-found', '--wait=true']);
    }
  });

  it('an Ingress is served on port 80 of every host for a pod on one, with every host in its status', async () => {
    await kubectl(
      ['apply', '-f', '-'],
      `apiVersion: v1
kind: Pod
metadata: {name: ing-backend, namespace: ${NS}, labels: {app: ing}}
spec:
  nodeName: host-1
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: busybox
    command: [sh, -c, 'mkdir -p /www; echo ingress-on-host-1 >/www/index.html; exec httpd -f -p 8080 -h /www']
---
apiVersion: v1
kind: Service
metadata: {name: ing, namespace: ${NS}}
spec:
  selector: {app: ing}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: ing, namespace: ${NS}}
spec:
  rules:
  - host: hosts.test
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: ing, port: {number: 80}}}}]}
`,
    );
    try {
      const addresses = cluster.hosts.map((h) => h.link.address).sort();
      const get = (ip: string) =>
        new Promise<string>((resolve, reject) => {
          const req = httpGet(
            { host: ip, port: 80, path: '/', headers: { host: 'hosts.test' }, agent: false, timeout: 3000 },
            (res) => {
              let body = '';
              res.on('data', (d) => (body += d));
              res.on('end', () => resolve(`${res.statusCode} ${body.trim()}`));
              res.on('error', reject);
            },
          );
          req.on('timeout', () => req.destroy(new Error(`${ip}:80 timed out`)));
          req.on('error', reject);
        });
      for (const ip of addresses)
        assert.equal(
          await eventually(
            `${ip}:80 → host-1's pod`,
            async () => {
              const answer = await get(ip).catch(() => undefined);
              return answer === '200 ingress-on-host-1' ? answer : undefined;
            },
            120_000,
          ),
          '200 ingress-on-host-1',
        );
      const status = await eventually('the Ingress status with every host', async () => {
        const ing = JSON.parse(await kubectl(['get', 'ingress', '-n', NS, 'ing', '-o', 'json']));
        const ips = ((ing.status?.loadBalancer?.ingress ?? []) as { ip: string }[]).map((i) => i.ip).sort();
        return ips.length === addresses.length ? ips : undefined;
      });
      assert.deepEqual(status, addresses);
    } finally {
      await kubectl(['delete', 'ingress,service', '-n', NS, 'ing', '--ignore-not-found']);
      await kubectl(['delete', 'pod', '-n', NS, 'ing-backend', '--ignore-not-found', '--wait=true']);
    }
  });

  it('a killed host goes NotReady, its pods are evicted and recreated elsewhere; back, it is Ready and clean', async () => {
    await kubectl(['apply', '-f', '-'], deployment);
    const before = await webSpread();
    // An agent host with a web pod (at most one of the two is on the server).
    const victim = before.map((p) => p.spec.nodeName!).find((n) => n !== 'server')!;
    const evicted = before.find((p) => p.spec.nodeName === victim)!.metadata.name;
    await kubectl(['apply', '-f', '-'], pinnedPod('stranded', victim));
    await eventually('stranded Running', async () => (await pods('app=pinned')).find(podReady), 120_000);

    await cluster.killHost(victim);
    await eventually(`${victim} NotReady`, async () => ready(await node(victim)) === 'Unknown', 120_000);
    // The replacement runs on a host that is still up; the pinned pod is gone.
    const after = await webSpread();
    assert.ok(
      after.every((p) => p.spec.nodeName !== victim),
      `web pods: ${after.map((p) => p.spec.nodeName)}`,
    );
    assert.ok(!after.some((p) => p.metadata.name === evicted));
    await eventually(
      'the stranded pod evicted',
      async () => (await pods('app=pinned')).every((p) => p.metadata.deletionTimestamp),
      60_000,
    );
    // Cut off, the host still runs the containers of the pods evicted from it.
    const stale = await containersOn(victim);
    assert.ok(stale.includes(`${NS}/stranded`), `containers on ${victim}: ${stale}`);

    await cluster.startHost(victim);
    assert.equal(ready(await node(victim)), 'True');
    await eventually(
      `the evicted pods' containers removed from ${victim}`,
      async () => {
        const left = await containersOn(victim);
        return !left.includes(`${NS}/stranded`) && !left.includes(`${NS}/${evicted}`);
      },
      120_000,
    );
    await eventually(
      'the evicted pods gone from the API',
      async () => (await pods('app=pinned')).length === 0,
      60_000,
    );
  });

  it('kubectl drain moves pods to the other hosts', async () => {
    const before = await webSpread();
    const drained = before.map((p) => p.spec.nodeName!).find((n) => n !== 'server')!;
    await kubectl(['drain', drained, '--ignore-daemonsets', '--delete-emptydir-data', '--timeout=120s']);
    assert.equal((await node(drained)).spec.unschedulable, true);
    const after = await webSpread();
    assert.ok(
      after.every((p) => p.spec.nodeName !== drained),
      `web pods: ${after.map((p) => p.spec.nodeName)}`,
    );
    await eventually(
      `no container left on ${drained}`,
      async () => (await containersOn(drained)).length === 0,
      60_000,
    );
    await kubectl(['uncordon', drained]);
    await kubectl(['delete', 'namespace', NS, '--wait=true']);
  });
});

describe('scripts/up.sh --kill-host and --start-host', () => {
  const upSh = new URL('../../scripts/up.sh', import.meta.url).pathname;

  it('say so when the data dir holds no cluster of hosts, and change nothing', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'skiff-hosts-none-'));
    try {
      for (const flag of ['--kill-host', '--start-host']) {
        const err = await run('bash', [upSh, '--data-dir', dataDir, flag, 'host-1']).then(
          () => undefined,
          (e: { code?: number; stderr?: string }) => e,
        );
        assert.equal(err?.code, 1, `${flag} exits 1`);
        assert.match(err?.stderr ?? '', /no cluster of hosts in .*up\.sh --hosts N makes one/);
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('--help lists --hosts, --kill-host and --start-host', async () => {
    const { stdout } = await run('bash', [upSh, '--help']);
    for (const flag of ['--hosts N', '--kill-host NODE', '--start-host NODE'])
      assert.ok(stdout.includes(flag), flag);
  });
});
