// Resource metrics and autoscaling with a real agent (containerd, runc):
// the kubelet's /stats/summary and /metrics/resource (read through the API
// server's nodes/proxy), metrics.k8s.io as `kubectl top` reads it (kubectl
// 1.27 and 1.33), and a HorizontalPodAutoscaler scaling a Deployment whose
// pods burn CPU up to its maximum, then back to its minimum once the load
// is switched off (a new template, so the rollout replaces the busy pods).
//
// The server runs with a short --metric-resolution and HPA sync period so
// the loop turns in seconds; every wait is `eventually`, never a sleep or a
// timed assertion, since the machine is shared. Uses the real containerd:
// run it under `flock /tmp/skiff-real.lock`.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { findSamples, parseExposition } from '../../src/metrics/exposition.ts';
import { eventually, kubectlPath, ok, type Skiff, skiffCli, startSkiff } from './harness.ts';

let skiff: Skiff;
let node: string;
const NS = 'autoscaling-e2e';

before(async () => {
  skiff = await startSkiff([
    '--no-disable-agent',
    '--service-cidr',
    '10.165.0.0/16',
    '--cluster-cidr',
    '10.164.0.0/16',
    '--metric-resolution',
    '3s',
    '--horizontal-pod-autoscaler-sync-period',
    '2s',
    '--enable-pprof',
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
  await skiff?.kubectl(['delete', 'namespace', NS, '--grace-period=1', '--wait=true'], { timeoutMs: 60_000 });
  await skiff?.stop();
});

/** A Deployment whose container spins while LOAD is "on" (a shell loop, no forks), capped at 150 millicores. */
const deployment = (load: 'on' | 'off') => `apiVersion: apps/v1
kind: Deployment
metadata: {name: burn}
spec:
  replicas: 1
  selector: {matchLabels: {app: burn}}
  template:
    metadata: {labels: {app: burn}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: busybox
        imagePullPolicy: IfNotPresent
        env: [{name: LOAD, value: "${load}"}]
        command: [sh, -c, 'if [ "$LOAD" = on ]; then while :; do :; done; fi; sleep 3600']
        resources:
          requests: {cpu: 50m, memory: 16Mi}
          limits: {cpu: 150m, memory: 64Mi}
`;

describe('resource metrics and autoscaling with a real agent', () => {
  it('the kubelet serves /stats/summary and /metrics/resource; kubectl top shows nodes and pods', async () => {
    await ok(skiff, ['apply', '-n', NS, '-f', '-'], { input: deployment('on') });
    await ok(skiff, ['rollout', 'status', '-n', NS, 'deployment/burn', '--timeout=90s'], {
      timeoutMs: 100_000,
    });
    const pod = (
      await ok(skiff, ['get', 'pods', '-n', NS, '-l', 'app=burn', '-o', 'jsonpath={.items[0].metadata.name}'])
    ).trim();

    // The Summary API: the node's usage, and the pod's container with its CPU and memory.
    const summary = await eventually('the pod in /stats/summary with a CPU rate', async () => {
      const s = JSON.parse(await ok(skiff, ['get', '--raw', `/api/v1/nodes/${node}/proxy/stats/summary`]));
      const p = s.pods.find((x: { podRef: { name: string } }) => x.podRef.name === pod);
      return p?.containers?.[0]?.cpu?.usageNanoCores > 0 ? s : undefined;
    });
    assert.equal(summary.node.nodeName, node);
    assert.ok(summary.node.cpu.usageCoreNanoSeconds > 0);
    assert.ok(summary.node.memory.workingSetBytes > 0);
    const p = summary.pods.find((x: { podRef: { name: string } }) => x.podRef.name === pod);
    assert.equal(p.podRef.namespace, NS);
    assert.equal(p.containers[0].name, 'main');
    assert.ok(p.containers[0].memory.workingSetBytes > 0);
    // Spinning under a 150m limit: more than a trickle, never more than the quota allows (with slack for sampling).
    assert.ok(p.containers[0].cpu.usageNanoCores > 20e6, String(p.containers[0].cpu.usageNanoCores));
    assert.ok(p.containers[0].cpu.usageNanoCores < 400e6, String(p.containers[0].cpu.usageNanoCores));

    const resource = parseExposition(
      await ok(skiff, ['get', '--raw', `/api/v1/nodes/${node}/proxy/metrics/resource`]),
    );
    const cpu = findSamples(resource, 'container_cpu_usage_seconds_total', {
      namespace: NS,
      pod,
      container: 'main',
    });
    assert.equal(cpu.length, 1);
    assert.ok(cpu[0]!.value > 0);
    assert.equal(findSamples(resource, 'pod_memory_working_set_bytes', { namespace: NS, pod }).length, 1);
    assert.equal(findSamples(resource, 'node_cpu_usage_seconds_total').length, 1);

    // metrics.k8s.io, as both ends of the supported kubectl range read it.
    for (const version of ['1.27', '1.33']) {
      const kubectl = { version };
      assert.ok(kubectlPath(version));
      const nodes = await eventually(`kubectl ${version} top nodes`, async () => {
        const r = await skiff.kubectl(['top', 'nodes', '--no-headers'], kubectl);
        return r.code === 0 && r.stdout.includes(node) ? r.stdout : undefined;
      });
      assert.match(nodes, /\d+m\s+\d+%\s+\d+Mi\s+\d+%/);
      const pods = await eventually(`kubectl ${version} top pods`, async () => {
        const r = await skiff.kubectl(['top', 'pods', '-n', NS, '--containers', '--sort-by=cpu'], kubectl);
        return r.code === 0 && r.stdout.includes(pod) ? r.stdout : undefined;
      });
      assert.match(pods, new RegExp(`${pod}\\s+main\\s+\\d+m\\s+\\d+Mi`));
    }
    // A pod metrics-server has no samples of is NotFound, as metrics-server answers.
    const missing = await skiff.kubectl(['top', 'pod', 'nope', '-n', NS]);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /podmetrics.metrics.k8s.io "autoscaling-e2e\/nope" not found/);
  });

  it('an HPA scales the busy Deployment up to its maximum, and back to its minimum once the load is off', async () => {
    // Utilization of the 50m request: a pod spinning under its 150m limit is at about 300%, far above 60%.
    await ok(skiff, ['apply', '-n', NS, '-f', '-'], {
      input: `apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: burn}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: burn}
  minReplicas: 1
  maxReplicas: 2
  metrics:
  - type: Resource
    resource: {name: cpu, target: {type: Utilization, averageUtilization: 60}}
  behavior:
    scaleDown:
      stabilizationWindowSeconds: 0
      policies: [{type: Pods, value: 1, periodSeconds: 1}]
`,
    });
    const hpa = async () => JSON.parse(await ok(skiff, ['get', 'hpa', 'burn', '-n', NS, '-o', 'json']));
    const condition = (
      h: { status?: { conditions?: { type: string; status: string; reason: string }[] } },
      type: string,
    ) => h.status?.conditions?.find((c) => c.type === type);

    const up = await eventually(
      'the HPA to scale the Deployment to 2',
      async () => {
        const h = await hpa();
        return h.status?.desiredReplicas === 2 && h.status?.currentReplicas === 2 ? h : undefined;
      },
      180_000,
    );
    assert.equal(condition(up, 'ScalingActive')?.status, 'True');
    assert.equal(condition(up, 'ScalingActive')?.reason, 'ValidMetricFound');
    assert.equal(condition(up, 'AbleToScale')?.status, 'True');
    // Held at the maximum: the HPA says so.
    const limited = await eventually(
      'ScalingLimited TooManyReplicas',
      async () => {
        const h = await hpa();
        const c = condition(h, 'ScalingLimited');
        return c?.status === 'True' && c.reason === 'TooManyReplicas' ? h : undefined;
      },
      120_000,
    );
    const current = limited.status.currentMetrics[0].resource;
    assert.equal(current.name, 'cpu');
    assert.ok(current.current.averageUtilization > 60, JSON.stringify(current));
    assert.equal(
      (await ok(skiff, ['get', 'deployment', 'burn', '-n', NS, '-o', 'jsonpath={.spec.replicas}'])).trim(),
      '2',
    );
    const events = await ok(skiff, [
      'get',
      'events',
      '-n',
      NS,
      '--field-selector',
      'involvedObject.kind=HorizontalPodAutoscaler',
    ]);
    assert.match(events, /SuccessfulRescale/);
    assert.match(
      events,
      /New size: 2; reason: cpu resource utilization \(percentage of request\) above target/,
    );
    // kubectl's table: the current and target utilization.
    assert.match(
      await ok(skiff, ['get', 'hpa', '-n', NS]),
      /burn\s+Deployment\/burn\s+cpu: \d+%\/60%\s+1\s+2\s+2/,
    );

    // The load off: a new template, so the rollout replaces the spinning pods with idle ones.
    // (kubectl set env changes only the env: an apply without replicas would reset them to 1 itself.)
    await ok(skiff, ['set', 'env', '-n', NS, 'deployment/burn', 'LOAD=off']);
    await eventually(
      'the HPA to scale the Deployment back to 1',
      async () => {
        const h = await hpa();
        return h.status?.desiredReplicas === 1 && h.status?.currentReplicas === 1 ? h : undefined;
      },
      240_000,
    );
    const down = await ok(skiff, [
      'get',
      'events',
      '-n',
      NS,
      '--field-selector',
      'involvedObject.kind=HorizontalPodAutoscaler',
    ]);
    assert.match(down, /New size: 1; reason: All metrics below target/);
  });

  it('skiff debug profile takes a CPU profile of the running server over its API', async () => {
    const out = join(skiff.dataDir, 'server.cpuprofile');
    const r = await skiffCli(
      ['debug', 'profile', '--seconds', '2', '--kubeconfig', skiff.kubeconfig, '-o', out],
      60_000,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), out);
    const profile = JSON.parse(readFileSync(out, 'utf8'));
    assert.ok(profile.nodes.length > 10, 'a profile of a busy server has many frames');
    assert.ok(profile.endTime - profile.startTime >= 1_500_000, 'about two seconds, in microseconds');
  });
});
