// Services end to end (issue 7): `skiff server` with its agent running
// busybox pods in containerd and the service proxy (nftables) programming
// this machine; kubectl creates Services, and traffic goes from the node
// (this test process) and from a pod (kubectl exec) to cluster IPs, node
// ports and load balancer addresses.
//
// The cluster gets its own Service and pod CIDRs, so its nftables table
// (skiff-10-163-0-0-16) and addresses cannot clash with another cluster on
// this machine. Traffic goes only to pod IPs, service IPs, loopback and the
// node's own address. Afterwards `skiff agent --cleanup` removes the table.
//
// Needs root and what scripts/setup.sh installs (containerd, runc, CNI
// plugins, nft, Skiff's offline busybox image).

import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { eventually, kubectlPath, ok, type Skiff, startSkiff } from './harness.ts';

const run = promisify(execFile);
const SERVICE_CIDR = '10.163.0.0/16';
const CLUSTER_CIDR = '10.162.0.0/16';
const TABLE = 'skiff-10-163-0-0-16';
/** The cluster DNS address the agent serves on (the service CIDR's tenth). */
const DNS_IP = '10.163.0.10';

let skiff: Skiff;
let nodeIP = '';

/** A busybox httpd answering its pod name on 8080. */
const webPod = (name: string, labels: string) => `apiVersion: v1
kind: Pod
metadata:
  name: ${name}
  labels: {${labels}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: httpd
    image: busybox
    imagePullPolicy: IfNotPresent
    ports: [{name: http, containerPort: 8080}]
    command: [sh, -c, 'mkdir -p /www && echo ${name} > /www/index.html && exec httpd -f -p 8080 -h /www']
`;

const service = (name: string, spec: string) => `apiVersion: v1
kind: Service
metadata: {name: ${name}}
spec:
${spec}`;

const clusterIP = async (name: string) =>
  (await ok(skiff, ['get', 'svc', name, '-o', 'jsonpath={.spec.clusterIP}'])).trim();
const nodePort = async (name: string) =>
  Number(await ok(skiff, ['get', 'svc', name, '-o', 'jsonpath={.spec.ports[0].nodePort}']));

/** One HTTP GET from this process (the node); the body, or the error code. */
function get(
  host: string,
  port: number,
  timeoutMs = 5000,
): Promise<{ body?: string; error?: string; ms: number }> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    const req = request({ host, port, path: '/', timeout: timeoutMs, agent: false }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ body: body.trim(), ms: Date.now() - t0 }));
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
    req.on('error', (e: NodeJS.ErrnoException) =>
      resolve({ error: e.code ?? e.message, ms: Date.now() - t0 }),
    );
    req.end();
  });
}

/** Runs a shell command in a pod. */
const inPod = async (pod: string, script: string) => {
  const r = await skiff.kubectl(['exec', pod, '--', 'sh', '-c', script], { timeoutMs: 60_000 });
  return { code: r.code, out: r.stdout.trim(), err: r.stderr.trim() };
};
/**
 * `n` HTTP GETs from a pod, one pod name per line. With busybox's nc: its
 * wget, statically linked against glibc, crashes in a container without
 * the NSS libraries.
 */
const httpN = (ip: string, port: number, n: number) =>
  `for i in $(seq ${n}); do printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 ${ip} ${port} | tail -n 1; done`;

before(async () => {
  skiff = await startSkiff([
    '--no-disable-agent',
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
  nodeIP = (
    await ok(skiff, [
      'get',
      'nodes',
      '-o',
      'jsonpath={.items[0].status.addresses[?(@.type=="InternalIP")].address}',
    ])
  ).trim();
  await ok(skiff, ['apply', '-f', '-'], {
    input: [
      webPod('web-0', 'app: web, pod: web-0'),
      webPod('web-1', 'app: web, pod: web-1'),
      webPod('victim', 'app: victim'),
      `apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {name: main, image: busybox, imagePullPolicy: IfNotPresent, command: [sleep, '3600']}
`,
      service('web', '  selector: {app: web}\n  ports: [{port: 80, targetPort: http}]\n'),
      service(
        'web-np',
        '  type: NodePort\n  selector: {app: web}\n  ports: [{port: 80, targetPort: 8080}]\n',
      ),
      service(
        'web-lb',
        '  type: LoadBalancer\n  selector: {app: web}\n  ports: [{port: 18080, targetPort: 8080}]\n',
      ),
      service(
        'sticky',
        '  selector: {app: web}\n  sessionAffinity: ClientIP\n  ports: [{port: 80, targetPort: 8080}]\n',
      ),
      service('solo', '  selector: {pod: web-0}\n  ports: [{port: 80, targetPort: 8080}]\n'),
      service('victim', '  selector: {app: victim}\n  ports: [{port: 80, targetPort: 8080}]\n'),
      // UDP: no selector, and a hand-written EndpointSlice to the node's
      // cluster DNS server (busybox has no UDP server; its nslookup is a client).
      service('udp-dns', '  ports: [{name: dns, port: 53, protocol: UDP}]\n'),
      `apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: udp-dns-1
  labels: {kubernetes.io/service-name: udp-dns}
addressType: IPv4
ports: [{name: dns, port: 53, protocol: UDP}]
endpoints: [{addresses: [${DNS_IP}]}]
`,
    ].join('---\n'),
  });
  await eventually(
    'pods Running',
    async () => {
      const out = await ok(skiff, ['get', 'pods', '--no-headers']);
      return out.split('\n').filter((l) => l.includes(' Running ')).length === 4;
    },
    180_000,
  );
});

after(async () => {
  try {
    if (skiff) {
      await skiff.kubectl(['delete', 'pods', '--all', '--grace-period=1', '--wait=true'], {
        timeoutMs: 60_000,
      });
      await skiff.stop();
    }
  } finally {
    // The proxy's rules outlive the agent, as kube-proxy's do; cleanup removes them.
    const main = new URL('../../src/cli/main.ts', import.meta.url).pathname;
    await run(process.execPath, [
      main,
      'agent',
      '--cleanup',
      '--data-dir',
      skiff?.dataDir ?? '/nonexistent',
      '--cluster-cidr',
      CLUSTER_CIDR,
      '--service-cidr',
      SERVICE_CIDR,
    ]);
  }
  const { stdout } = await run('nft', ['list', 'tables']);
  assert.ok(!stdout.includes(TABLE), `skiff agent --cleanup left ${TABLE}:\n${stdout}`);
});

describe('services through the proxy', () => {
  it('ClusterIP reaches both endpoints from the node and from a pod (named targetPort)', async () => {
    const ip = await clusterIP('web');
    const seen = await eventually('both endpoints from the node', async () => {
      const names = new Set<string>();
      for (let i = 0; i < 20; i++) names.add((await get(ip, 80)).body ?? 'error');
      return names.has('web-0') && names.has('web-1') ? names : undefined;
    });
    assert.deepEqual([...seen].sort(), ['web-0', 'web-1']);
    const r = await inPod('client', httpN(ip, 80, 20));
    assert.deepEqual(new Set(r.out.split('\n')), new Set(['web-0', 'web-1']), r.out);
  });

  it('NodePort answers on the node address and on localhost, from the node and from a pod', async () => {
    const port = await nodePort('web-np');
    for (const host of [nodeIP, '127.0.0.1']) {
      const r = await eventually(`${host}:${port}`, async () => (await get(host, port)).body);
      assert.match(r, /^web-[01]$/);
    }
    const fromPod = await inPod('client', httpN(nodeIP, port, 3));
    assert.match(fromPod.out, /^(web-[01]\n?){3}$/, fromPod.out);
  });

  it('LoadBalancer: ingress is the node address, and the port answers there', async () => {
    const ingress = await eventually('ingress', async () =>
      (
        await ok(skiff, ['get', 'svc', 'web-lb', '-o', 'jsonpath={.status.loadBalancer.ingress[*].ip}'])
      ).trim(),
    );
    assert.equal(ingress, nodeIP);
    const out = await ok(skiff, ['get', 'svc', 'web-lb', '--no-headers']);
    assert.match(
      out,
      new RegExp(`LoadBalancer\\s+\\S+\\s+${nodeIP.replace(/\./g, '\\.')}\\s+18080:3\\d{4}/TCP`),
      out,
    );
    const r = await eventually('LB from the node', async () => (await get(nodeIP, 18080)).body);
    assert.match(r, /^web-[01]$/);
    const fromPod = await inPod('client', httpN(nodeIP, 18080, 2));
    assert.match(fromPod.out, /^(web-[01]\n?){2}$/, fromPod.out);
  });

  it('sessionAffinity ClientIP keeps a client on one pod', async () => {
    const ip = await clusterIP('sticky');
    const r = await inPod('client', httpN(ip, 80, 12));
    const names = new Set(r.out.split('\n'));
    assert.equal(names.size, 1, r.out);
    assert.match([...names][0]!, /^web-[01]$/);
  });

  it('hairpin: a pod reaches itself through its own Service', async () => {
    const ip = await clusterIP('solo');
    const r = await inPod('web-0', httpN(ip, 80, 2));
    assert.equal(r.out, 'web-0\nweb-0');
  });

  it('UDP through a cluster IP, to a hand-written EndpointSlice', async () => {
    const ip = await clusterIP('udp-dns');
    const kubernetes = await clusterIP('kubernetes');
    const r = await eventually('an answer through the Service', async () => {
      const x = await inPod('client', `nslookup kubernetes.default.svc.cluster.local ${ip}`);
      return x.out.includes(kubernetes) ? x : undefined;
    });
    assert.match(r.out, new RegExp(`Server:\\s+${ip.replace(/\./g, '\\.')}`), r.out);
  });

  it('removing the last endpoint makes connections fail at once', async () => {
    const ip = await clusterIP('victim');
    assert.equal((await eventually('victim serves', async () => (await get(ip, 80)).body)) ?? '', 'victim');
    await ok(skiff, ['delete', 'pod', 'victim', '--grace-period=0', '--force']);
    await eventually(
      'no endpoints',
      async () =>
        (
          await ok(skiff, [
            'get',
            'endpointslices',
            '-l',
            'kubernetes.io/service-name=victim',
            '-o',
            'jsonpath={.items[*].endpoints}',
          ])
        ).trim() === '',
    );
    const refused = await eventually('refused from the node', async () => {
      const r = await get(ip, 80, 5000);
      return r.error === 'ECONNREFUSED' ? r : undefined;
    });
    assert.ok(refused.ms < 1000, `refused in ${refused.ms} ms`);
    const t0 = Date.now();
    const fromPod = await inPod('client', `nc -w 10 ${ip} 80 </dev/null; true`);
    assert.match(fromPod.err, /refused/i, `${fromPod.out} ${fromPod.err}`);
    assert.ok(Date.now() - t0 < 10_000, 'the pod did not wait for its timeout');
  });

  it('kubectl proxy reaches a service and a pod through services/proxy and pods/proxy', async () => {
    const proxy = spawn(kubectlPath('1.32'), ['proxy', '--port=0'], {
      env: { PATH: process.env.PATH ?? '', HOME: `${skiff.dataDir}/home`, KUBECONFIG: skiff.kubeconfig },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      let out = '';
      proxy.stdout.on('data', (d) => (out += d));
      const port = await eventually(
        'kubectl proxy serving',
        async () => /Starting to serve on 127\.0\.0\.1:(\d+)/.exec(out)?.[1],
      );
      const base = `http://127.0.0.1:${port}/api/v1/namespaces/default`;
      const names = new Set<string>();
      for (let i = 0; i < 10; i++) {
        const r = await fetch(`${base}/services/web:80/proxy/`);
        assert.equal(r.status, 200);
        names.add((await r.text()).trim());
      }
      assert.ok(
        [...names].every((n) => n === 'web-0' || n === 'web-1'),
        [...names].join(','),
      );
      const pod = await fetch(`${base}/pods/web-0:8080/proxy/index.html`);
      assert.equal((await pod.text()).trim(), 'web-0');
      const none = await fetch(`${base}/services/web:81/proxy/`);
      assert.equal(none.status, 503);
      assert.match(await none.text(), /no service port 81 found for service \\"web\\"/);
    } finally {
      proxy.kill();
    }
  });
});
