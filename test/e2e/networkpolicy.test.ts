// NetworkPolicy end to end (issue 14): `skiff server` with its agent
// running busybox pods in containerd, kubectl applying policies, and real
// connections between pods of two namespaces (busybox nc; its wget crashes
// here). As upstream's netpol e2e: default deny, then allow from a
// namespace, then removing the policies restores traffic.
//
// The cluster gets pod and Service CIDRs of its own, so its NetworkPolicy
// table (skiff-netpol-10-182-0-0-16) and the proxy's cannot clash with
// another cluster on this machine; `skiff agent --cleanup` removes them.
//
// Needs root and what scripts/setup.sh installs; uses the real containerd
// and nftables, so run it under /tmp/skiff-real.lock.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { eventually, ok, type Skiff, startSkiff } from './harness.ts';

const run = promisify(execFile);
const CLUSTER_CIDR = '10.182.0.0/16';
const SERVICE_CIDR = '10.183.0.0/16';
const TABLE = 'skiff-netpol-10-182-0-0-16';
const NS_A = 'snp-alpha';
const NS_B = 'snp-beta';

let skiff: Skiff;
let serverIP = '';

const pod = (namespace: string, name: string, command: string) => `apiVersion: v1
kind: Pod
metadata: {name: ${name}, namespace: ${namespace}, labels: {app: ${name}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: busybox
    imagePullPolicy: IfNotPresent
    ports: [{name: http, containerPort: 8080}]
    command: [sh, -c, '${command}']
`;

/** What `client` in `namespace` gets from the server over HTTP: its name, or '' when the connection fails. */
async function fetchFrom(namespace: string): Promise<string> {
  const r = await skiff.kubectl(
    [
      'exec',
      '-n',
      namespace,
      'client',
      '--',
      'sh',
      '-c',
      `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 ${serverIP} 8080 | tail -n 1`,
    ],
    { timeoutMs: 30_000 },
  );
  return r.stdout.trim();
}

/** Waits until each namespace's client gets what `want` says (true: the server's answer; false: nothing). */
async function reaches(want: Record<string, boolean>) {
  await eventually(
    `reachability ${JSON.stringify(want)}`,
    async () => {
      for (const [ns, allowed] of Object.entries(want))
        if ((await fetchFrom(ns)) !== (allowed ? 'server' : '')) return false;
      return true;
    },
    60_000,
  );
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
    async () => (await ok(skiff, ['get', 'nodes', '--no-headers'])).includes(' Ready '),
    120_000,
  );
  await ok(skiff, ['apply', '-f', '-'], {
    input: [
      `apiVersion: v1\nkind: Namespace\nmetadata: {name: ${NS_A}, labels: {team: alpha}}\n`,
      `apiVersion: v1\nkind: Namespace\nmetadata: {name: ${NS_B}, labels: {team: beta}}\n`,
      pod(NS_A, 'server', 'mkdir -p /www && echo server > /www/index.html && exec httpd -f -p 8080 -h /www'),
      pod(NS_A, 'client', 'exec sleep 3600'),
      pod(NS_B, 'client', 'exec sleep 3600'),
    ].join('---\n'),
  });
  await eventually(
    'pods Running',
    async () => {
      const out = await ok(skiff, ['get', 'pods', '-A', '--no-headers']);
      return out.split('\n').filter((l) => l.startsWith('snp-') && l.includes(' Running ')).length === 3;
    },
    180_000,
  );
  serverIP = (await ok(skiff, ['get', 'pod', '-n', NS_A, 'server', '-o', 'jsonpath={.status.podIP}'])).trim();
});

after(async () => {
  try {
    if (skiff) {
      await skiff.kubectl(['delete', 'namespace', NS_A, NS_B, '--wait=true'], { timeoutMs: 90_000 });
      await skiff.stop();
    }
  } finally {
    // The rules outlive the agent, as the proxy's do; cleanup removes them.
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

describe('NetworkPolicy with kubectl and real pods', () => {
  it('without a policy both namespaces reach the server', async () => {
    await reaches({ [NS_A]: true, [NS_B]: true });
  });

  it('default deny, then allow from a namespace, then removing the policies restores traffic', async () => {
    await ok(skiff, ['apply', '-n', NS_A, '-f', '-'], {
      input: `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny}
spec:
  podSelector: {}
  policyTypes: [Ingress]
`,
    });
    await reaches({ [NS_A]: false, [NS_B]: false });
    const { stdout } = await run('nft', ['list', 'table', 'ip', TABLE]);
    assert.match(stdout, new RegExp(`${serverIP.replace(/\./g, '\\.')} : jump ingress-`));

    await ok(skiff, ['apply', '-n', NS_A, '-f', '-'], {
      input: `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-from-beta}
spec:
  podSelector: {matchLabels: {app: server}}
  ingress:
  - from: [{namespaceSelector: {matchLabels: {team: beta}}}]
    ports: [{port: http}]
`,
    });
    await reaches({ [NS_A]: false, [NS_B]: true });
    assert.match(await ok(skiff, ['get', 'netpol', '-n', NS_A]), /allow-from-beta\s+app=server/);

    await ok(skiff, ['delete', 'netpol', '-n', NS_A, '--all']);
    await reaches({ [NS_A]: true, [NS_B]: true });
  });
});
