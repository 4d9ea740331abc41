// The node's metrics with a real agent (containerd, nftables, the cluster
// DNS): the kubelet's through the API server (nodes/<name>/proxy/metrics,
// with the real kubectl), kube-proxy's on 127.0.0.1:10249 and the DNS's on
// 127.0.0.1:9153, each moving as a pod starts, a Service is programmed and
// the pod resolves a name. Uses the real containerd: run it under
// `flock /tmp/skiff-real.lock`.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { findSamples, parseExposition, sumOf } from '../../src/metrics/exposition.ts';
import { eventually, ok, type Skiff, startSkiff } from './harness.ts';

let skiff: Skiff;
let node: string;
const NS = 'node-metrics-e2e';

const scrape = async (url: string) => parseExposition(await (await fetch(url)).text());
const kubeletMetrics = async () =>
  parseExposition(await ok(skiff, ['get', '--raw', `/api/v1/nodes/${node}/proxy/metrics`]));

before(async () => {
  skiff = await startSkiff([
    '--no-disable-agent',
    '--service-cidr',
    '10.163.0.0/16',
    '--cluster-cidr',
    '10.162.0.0/16',
  ]);
  await eventually(
    'the node Ready',
    async () => (await ok(skiff, ['get', 'nodes', '--no-headers'])).includes(' Ready '),
    120_000,
  );
  node = (await ok(skiff, ['get', 'nodes', '-o', 'jsonpath={.items[0].metadata.name}'])).trim();
  await ok(skiff, ['create', 'namespace', NS]);
});

after(async () => {
  // The pod's volumes are mounts under the data dir: gone before it is removed.
  await skiff?.kubectl(['delete', 'namespace', NS, '--grace-period=1', '--wait=true'], { timeoutMs: 60_000 });
  await skiff?.stop();
});

describe('node metrics with a real agent', () => {
  it('the kubelet counts the running pod and times its start; the proxy its syncs; the DNS its queries', async () => {
    const proxyBefore = sumOf(
      await scrape('http://127.0.0.1:10249/metrics'),
      'kubeproxy_sync_proxy_rules_duration_seconds_count',
    );
    await ok(skiff, ['apply', '-n', NS, '-f', '-'], {
      input: `apiVersion: v1
kind: Pod
metadata: {name: shell, labels: {app: shell}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: busybox
    imagePullPolicy: IfNotPresent
    command: [sh, -c, 'sleep 3600']
---
apiVersion: v1
kind: Service
metadata: {name: shell}
spec:
  selector: {app: shell}
  ports: [{port: 80}]
`,
    });
    await ok(skiff, ['wait', '-n', NS, '--for=condition=Ready', 'pod/shell', '--timeout=90s'], {
      timeoutMs: 100_000,
    });

    const kubelet = await kubeletMetrics();
    assert.ok(
      sumOf(kubelet, 'kubelet_running_pods') >= 1,
      JSON.stringify(findSamples(kubelet, 'kubelet_running_pods')),
    );
    assert.ok(sumOf(kubelet, 'kubelet_running_containers', { container_state: 'running' }) >= 1);
    assert.ok(sumOf(kubelet, 'kubelet_pod_start_duration_seconds_count') >= 1);
    assert.equal(findSamples(kubelet, 'process_resident_memory_bytes').length, 1);

    await eventually('the proxy to sync the new Service', async () => {
      const s = await scrape('http://127.0.0.1:10249/metrics');
      return sumOf(s, 'kubeproxy_sync_proxy_rules_duration_seconds_count') > proxyBefore;
    });
    const proxy = await scrape('http://127.0.0.1:10249/metrics');
    assert.ok(sumOf(proxy, 'kubeproxy_sync_proxy_rules_last_timestamp_seconds') > 0);

    const dnsBefore = sumOf(await scrape('http://127.0.0.1:9153/metrics'), 'coredns_dns_requests_total');
    const lookup = await skiff.kubectl(
      ['exec', '-n', NS, 'shell', '--', 'nslookup', `shell.${NS}.svc.cluster.local`],
      {
        timeoutMs: 30_000,
      },
    );
    assert.equal(lookup.code, 0, lookup.stderr + lookup.stdout);
    const dns = await scrape('http://127.0.0.1:9153/metrics');
    assert.ok(
      sumOf(dns, 'coredns_dns_requests_total', { proto: 'udp' }) > dnsBefore,
      JSON.stringify(findSamples(dns, 'coredns_dns_requests_total')),
    );
    assert.ok(sumOf(dns, 'coredns_dns_responses_total', { rcode: 'NOERROR' }) >= 1);
  });
});
