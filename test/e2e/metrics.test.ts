// Prometheus metrics against a real Prometheus (Debian's) and the real
// kubectl: the API server's /metrics is authorized as upstream's (the
// system:monitoring group may read it, a user without the role may not),
// and a Prometheus started on loopback scrapes the API server, the
// controller manager (10257's endpoint) and the scheduler (10259's) with a
// bearer token and the cluster CA; the series exist and move under load.
// The agent is hollow (no containers), so pods run without containerd.

import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { eventually, freePort, KUBECTL_VERSIONS, ok, type Skiff, startSkiff } from './harness.ts';

const MONITOR_TOKEN = 'metrics-e2e-monitor-token';
const NOBODY_TOKEN = 'metrics-e2e-nobody-token';

let skiff: Skiff;
let dir: string;
let prometheus: ChildProcess | undefined;
let prometheusUrl: string;
let prometheusLog = '';
let ports: { controllerManager: number; scheduler: number };

const tokenArgs = (token: string) => [
  `--server=https://127.0.0.1:${skiff.port}`,
  `--certificate-authority=${join(skiff.dataDir, 'server', 'tls', 'ca.crt')}`,
  `--token=${token}`,
];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'skiff-metrics-e2e-'));
  const tokenFile = join(dir, 'tokens.csv');
  writeFileSync(
    tokenFile,
    `${MONITOR_TOKEN},monitor,u-monitor,"system:monitoring"\n${NOBODY_TOKEN},nobody,u-nobody\n`,
  );
  ports = { controllerManager: await freePort(), scheduler: await freePort() };
  skiff = await startSkiff([
    '--no-disable-agent',
    '--runtime',
    'hollow',
    '--token-auth-file',
    tokenFile,
    '--controller-manager-secure-port',
    String(ports.controllerManager),
    '--scheduler-secure-port',
    String(ports.scheduler),
  ]);
  await ok(skiff, ['create', 'namespace', 'metrics-e2e']);
});

after(async () => {
  if (prometheus && prometheus.exitCode === null) {
    const exited = new Promise((r) => prometheus!.once('exit', r));
    prometheus.kill('SIGTERM');
    await exited;
  }
  await skiff?.kubectl(['delete', 'namespace', 'metrics-e2e', '--wait=false']);
  await skiff?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('the API server /metrics with kubectl', () => {
  for (const version of KUBECTL_VERSIONS) {
    it(`kubectl ${version} get --raw /metrics: upstream's series; system:monitoring may read it, others get 403`, async () => {
      const text = await ok(skiff, ['get', '--raw', '/metrics'], { version });
      for (const name of [
        'apiserver_request_total',
        'apiserver_request_duration_seconds_bucket',
        'apiserver_current_inflight_requests',
        'apiserver_storage_objects',
        'etcd_request_duration_seconds_bucket',
        'process_cpu_seconds_total',
        'nodejs_eventloop_lag_seconds',
      ])
        assert.match(text, new RegExp(`^${name}[{ ]`, 'm'), name);
      const monitor = await skiff.kubectl(['get', '--raw', '/metrics', ...tokenArgs(MONITOR_TOKEN)], {
        version,
        env: { KUBECONFIG: '/dev/null' },
      });
      assert.equal(monitor.code, 0, monitor.stderr);
      assert.match(monitor.stdout, /^apiserver_request_total\{/m);
      const nobody = await skiff.kubectl(['get', '--raw', '/metrics', ...tokenArgs(NOBODY_TOKEN)], {
        version,
        env: { KUBECONFIG: '/dev/null' },
      });
      assert.notEqual(nobody.code, 0);
      assert.match(nobody.stderr, /forbidden: User "nobody" cannot get path "\/metrics"/);
    });
  }
});

/** Prometheus' HTTP API: an instant query's vector as { labels, value } pairs. */
async function query(promql: string): Promise<Array<{ labels: Record<string, string>; value: number }>> {
  const r = await fetch(`${prometheusUrl}/api/v1/query?query=${encodeURIComponent(promql)}`);
  const body = (await r.json()) as {
    status: string;
    data: { result: Array<{ metric: Record<string, string>; value: [number, string] }> };
  };
  assert.equal(body.status, 'success', JSON.stringify(body));
  return body.data.result.map((s) => ({ labels: s.metric, value: Number(s.value[1]) }));
}

const sum = (samples: Array<{ value: number }>) => samples.reduce((a, s) => a + s.value, 0);

describe('scraped by a real Prometheus', () => {
  before(async () => {
    const port = await freePort();
    prometheusUrl = `http://127.0.0.1:${port}`;
    const tls = `    scheme: https\n    authorization: { type: Bearer, credentials: ${MONITOR_TOKEN} }\n    tls_config: { ca_file: ${join(skiff.dataDir, 'server', 'tls', 'ca.crt')}, server_name: localhost }\n`;
    const job = (name: string, target: string) =>
      `  - job_name: ${name}\n${tls}    static_configs: [{ targets: ['${target}'] }]\n`;
    const config = join(dir, 'prometheus.yml');
    writeFileSync(
      config,
      `global: { scrape_interval: 1s, scrape_timeout: 1s }\nscrape_configs:\n${job('apiserver', `127.0.0.1:${skiff.port}`)}${job('kube-controller-manager', `127.0.0.1:${ports.controllerManager}`)}${job('kube-scheduler', `127.0.0.1:${ports.scheduler}`)}`,
    );
    prometheus = spawn(
      '/usr/bin/prometheus',
      [
        `--config.file=${config}`,
        `--storage.tsdb.path=${join(dir, 'tsdb')}`,
        `--web.listen-address=127.0.0.1:${port}`,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    prometheus.stdout?.on('data', (d) => (prometheusLog += d));
    prometheus.stderr?.on('data', (d) => (prometheusLog += d));
    await eventually(
      'every target up',
      async () => {
        const up = await query('up');
        return up.length === 3 && up.every((s) => s.value === 1);
      },
      60_000,
    ).catch((err) => {
      throw new Error(`${err.message}\n${prometheusLog.slice(-3000)}`);
    });
  });

  it('the API server series exist and count the requests made under load', async () => {
    const created = 'apiserver_request_total{job="apiserver",verb="POST",resource="configmaps",code="201"}';
    const before = sum(await query(created));
    for (let i = 0; i < 20; i++)
      await ok(skiff, ['create', 'configmap', `load-${i}`, '-n', 'metrics-e2e', '--from-literal=k=v']);
    await eventually(
      'Prometheus to see the 20 creates',
      async () => sum(await query(created)) >= before + 20,
    );
    const stored = await query('apiserver_storage_objects{resource="configmaps"}');
    assert.ok(sum(stored) >= 20, JSON.stringify(stored));
    const etcd = await query('etcd_request_duration_seconds_count{operation="create",type="configmaps"}');
    assert.ok(sum(etcd) >= 20, JSON.stringify(etcd));
    const p99 = await query(
      'histogram_quantile(0.99, sum by (le) (apiserver_request_duration_seconds_bucket{verb="POST",resource="configmaps"}))',
    );
    assert.equal(p99.length, 1);
    assert.ok(p99[0]!.value > 0 && p99[0]!.value <= 60, JSON.stringify(p99));
    const inflight = await query('apiserver_current_inflight_requests');
    assert.deepEqual(inflight.map((s) => s.labels.request_kind).sort(), ['mutating', 'readOnly']);
    assert.equal(sum(await query('process_resident_memory_bytes{job="apiserver"}')) > 0, true);
  });

  it("the controller manager's work queues and the scheduler's attempts move as a Deployment rolls out", async () => {
    const adds = 'workqueue_adds_total{job="kube-controller-manager",name="deployment"}';
    const attempts = 'scheduler_schedule_attempts_total{job="kube-scheduler",result="scheduled"}';
    const addsBefore = sum(await query(adds));
    const attemptsBefore = sum(await query(attempts));
    await ok(skiff, ['create', 'deployment', 'web', '-n', 'metrics-e2e', '--image=busybox', '--replicas=3']);
    await eventually('the deployment queue to count adds', async () => sum(await query(adds)) > addsBefore);
    await eventually('three pods scheduled', async () => sum(await query(attempts)) >= attemptsBefore + 3);
    for (const name of [
      'workqueue_depth',
      'workqueue_queue_duration_seconds_bucket',
      'workqueue_work_duration_seconds_bucket',
      'workqueue_unfinished_work_seconds',
      'workqueue_longest_running_processor_seconds',
      'workqueue_retries_total',
    ])
      assert.ok((await query(`${name}{job="kube-controller-manager",name="replicaset"}`)).length > 0, name);
    const buckets = await query(
      'scheduler_scheduling_attempt_duration_seconds_bucket{job="kube-scheduler",result="scheduled",le="+Inf"}',
    );
    assert.ok(sum(buckets) >= 3, JSON.stringify(buckets));
    const pending = await query('scheduler_pending_pods{job="kube-scheduler"}');
    assert.deepEqual(pending.map((s) => s.labels.queue).sort(), [
      'active',
      'backoff',
      'gated',
      'unschedulable',
    ]);
  });
});
