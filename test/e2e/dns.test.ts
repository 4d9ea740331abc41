// Cluster DNS end to end: `skiff server` with its agent running busybox pods
// in containerd; `nslookup` inside a pod asks the node's cluster DNS at the
// kube-dns address, as a pod's resolv.conf says.
//
// The cluster gets its own Service and pod CIDRs so its DNS address
// (10.153.0.10) cannot clash with another cluster running on this machine
// at the default 10.43.0.10. Only cluster names are asked: nothing is
// forwarded to the machine's real resolvers.
//
// Needs root and what scripts/setup.sh installs (containerd, runc, CNI
// plugins, Skiff's offline busybox image).

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { eventually, ok, type Skiff, startSkiff } from './harness.ts';

let skiff: Skiff;
const DNS_IP = '10.153.0.10';

const pod = (name: string, labels: string, extra = '', command = 'sleep 3600') => `apiVersion: v1
kind: Pod
metadata:
  name: ${name}
  labels: {${labels}}
spec:
  terminationGracePeriodSeconds: 1
${extra}  containers:
  - name: main
    image: busybox
    imagePullPolicy: IfNotPresent
    command: [sh, -c, '${command}']
`;

const get = (args: string[]) => ok(skiff, ['get', ...args]);
const exec = (args: string[]) => skiff.kubectl(['exec', 'shell', '--', ...args], { timeoutMs: 30_000 });

before(async () => {
  skiff = await startSkiff([
    '--no-disable-agent',
    '--service-cidr',
    '10.153.0.0/16',
    '--cluster-cidr',
    '10.152.0.0/16',
  ]);
  await eventually(
    'the node Ready',
    async () => (await ok(skiff, ['get', 'nodes', '--no-headers'])).includes(' Ready '),
    120_000,
  );
  await ok(skiff, ['create', 'namespace', 'other']);
  await ok(skiff, ['apply', '-f', '-'], {
    input: [
      pod('shell', 'app: shell'),
      pod('web', 'app: web'),
      pod('peer-0', 'app: peer', '  hostname: peer-0\n  subdomain: peers\n'),
      pod('peer-1', 'app: peer'),
      `apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
`,
      `apiVersion: v1
kind: Service
metadata: {name: peers}
spec:
  clusterIP: None
  selector: {app: peer}
  ports: [{name: gossip, port: 7946}]
`,
      `apiVersion: v1
kind: Service
metadata: {name: db, namespace: other}
spec:
  ports: [{port: 5432}]
`,
    ].join('---\n'),
  });
  for (const name of ['shell', 'web', 'peer-0', 'peer-1']) {
    await eventually(
      `pod ${name} Running and Ready`,
      async () =>
        (await get([
          'pod',
          name,
          '-o',
          'jsonpath={.status.phase}/{.status.conditions[?(@.type=="Ready")].status}',
        ])) === 'Running/True',
      120_000,
    );
  }
});

after(async () => {
  if (skiff) {
    await skiff.kubectl(['delete', 'pods', '--all', '--grace-period=1', '--wait=true'], {
      timeoutMs: 60_000,
    });
    await skiff.stop();
  }
});

/** `nslookup` in the shell pod until it prints `want` (the DNS caches follow the API with a short lag). */
async function lookup(args: string[], want: RegExp): Promise<string> {
  return eventually(
    `nslookup ${args.join(' ')} to match ${want}`,
    async () => {
      const r = await exec(['nslookup', ...args]);
      const out = r.stdout + r.stderr;
      return want.test(out) ? out : undefined;
    },
    30_000,
  );
}

describe('cluster DNS from a pod', () => {
  it('has the kube-dns Service at the cluster DNS address', async () => {
    assert.equal(
      await get(['svc', '-n', 'kube-system', 'kube-dns', '-o', 'jsonpath={.spec.clusterIP}']),
      DNS_IP,
    );
  });

  it("writes the pod's resolv.conf as upstream's kubelet: cluster DNS, namespace search path, ndots:5", async () => {
    const r = await exec(['cat', '/etc/resolv.conf']);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.ok(lines.includes(`nameserver ${DNS_IP}`), r.stdout);
    assert.equal(lines.filter((l) => l.startsWith('nameserver')).length, 1, r.stdout);
    assert.match(r.stdout, /^search default\.svc\.cluster\.local svc\.cluster\.local cluster\.local\b/m);
    assert.ok(lines.includes('options ndots:5'), r.stdout);
  });

  it('resolves a service by its short name through the search path', async () => {
    const ip = await get(['svc', 'web', '-o', 'jsonpath={.spec.clusterIP}']);
    const out = await lookup(['web'], new RegExp(`Address:\\s+${ip.replaceAll('.', '\\.')}\\b`));
    assert.match(out, /web\.default\.svc\.cluster\.local/);
  });

  it('resolves a service in another namespace as <svc>.<ns>.svc, as the search path completes <svc>.<ns>', async () => {
    // busybox's nslookup applies the search list to dot-less names only
    // (ignoring ndots), so `db.other` would leave the cluster; a libc
    // resolver with ndots:5 tries db.other.default.svc.cluster.local
    // (NXDOMAIN) and then db.other.svc.cluster.local, asked here.
    const ip = await get(['svc', '-n', 'other', 'db', '-o', 'jsonpath={.spec.clusterIP}']);
    const miss = await exec(['nslookup', 'db.other.default.svc.cluster.local.']);
    assert.match(miss.stdout + miss.stderr, /NXDOMAIN/);
    await lookup(['db.other.svc.cluster.local'], new RegExp(`Address:\\s+${ip.replaceAll('.', '\\.')}\\b`));
  });

  it("resolves a headless service to its pods' IPs, and a pod by its hostname under its subdomain", async () => {
    const ips = await Promise.all(
      ['peer-0', 'peer-1'].map((p) => get(['pod', p, '-o', 'jsonpath={.status.podIP}'])),
    );
    const out = await lookup(['peers.default.svc.cluster.local'], new RegExp(ips[1]!.replaceAll('.', '\\.')));
    assert.match(out, new RegExp(`Address:\\s+${ips[0]!.replaceAll('.', '\\.')}\\b`));
    await lookup(
      ['peer-0.peers.default.svc.cluster.local'],
      new RegExp(`Address:\\s+${ips[0]!.replaceAll('.', '\\.')}\\b`),
    );
  });

  it('serves SRV records for named ports', async () => {
    await lookup(
      ['-type=srv', '_http._tcp.web.default.svc.cluster.local'],
      /\b0 100 80 web\.default\.svc\.cluster\.local\b/,
    );
  });

  it('answers NXDOMAIN for a name that does not exist', async () => {
    const r = await exec(['nslookup', 'nosuch.default.svc.cluster.local.']);
    assert.notEqual(r.code, 0);
    assert.match(r.stdout + r.stderr, /NXDOMAIN/);
  });
});
