// The HPA controller against a real API server: the target's scale
// subresource, metrics.k8s.io answered by a stand-in for metrics-server (its
// PodMetrics set by the test), the pods in the informer cache. No
// Deployment controller runs, so the pods stay as the test made them.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { HorizontalPodAutoscaler } from '../api/types/autoscaling-v2.ts';
import type { PodMetrics, ResourceMetricsProvider } from '../metrics/metrics-server.ts';
import { horizontalPodAutoscalerController } from './horizontal.ts';
import { type ControllerTest, startControllerTest } from './testing.ts';

/** Millicores each pod uses now, by pod name. */
const usage = new Map<string, number>();
const provider: ResourceMetricsProvider = {
  nodeMetrics: () => [],
  podMetrics: (_labels, namespace) =>
    [...usage].map(
      ([name, m]): PodMetrics => ({
        kind: 'PodMetrics',
        apiVersion: 'metrics.k8s.io/v1beta1',
        metadata: { name, namespace: namespace ?? 'default', labels: { app: name.split('-')[0]! } },
        timestamp: new Date().toISOString(),
        window: '15s',
        containers: [{ name: 'c', usage: { cpu: `${m}m`, memory: '10Mi' } }],
      }),
    ),
};

let t: ControllerTest;
const hpaRef = { group: 'autoscaling', version: 'v2', plural: 'horizontalpodautoscalers', namespaced: true };
const hpas = () => t.clients.forResource<HorizontalPodAutoscaler>(hpaRef);

before(async () => {
  t = await startControllerTest(
    { horizontalpodautoscaling: horizontalPodAutoscalerController },
    {
      server: { resourceMetrics: provider },
      options: { hpa: { syncPeriodMs: 50, downscaleStabilizationMs: 0 } },
    },
  );
});
after(() => t.close());

/** A Deployment of `replicas` (no controller acts on it) and `pods` Ready pods requesting 100m each. */
async function target(app: string, replicas: number, pods: number) {
  await t.clients.deployments.create('default', {
    metadata: { name: app },
    spec: {
      replicas,
      selector: { matchLabels: { app } },
      template: { metadata: { labels: { app } }, spec: { containers: [{ name: 'c', image: 'x' }] } },
    },
  });
  const longAgo = new Date(Date.now() - 10 * 60_000).toISOString();
  for (let i = 0; i < pods; i++) {
    const pod = await t.clients.pods.create('default', {
      metadata: { name: `${app}-${i}`, labels: { app } },
      spec: { containers: [{ name: 'c', image: 'x', resources: { requests: { cpu: '100m' } } }] },
    });
    await t.clients.pods.updateStatus({
      ...pod,
      status: {
        phase: 'Running',
        startTime: longAgo,
        conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: longAgo }],
      },
    });
  }
}

const replicasOf = async (app: string) => (await t.clients.deployments.get('default', app)).spec?.replicas;
const condition = (h: HorizontalPodAutoscaler, type: string) =>
  h.status?.conditions?.find((c) => c.type === type);

describe('HorizontalPodAutoscaler controller', () => {
  it('scales up at most to max(2×, 4) without behavior, then down to the minimum, with conditions and status', async () => {
    await target('web', 2, 2);
    usage.set('web-0', 200).set('web-1', 200);
    await hpas().create('default', {
      metadata: { name: 'web' },
      spec: {
        scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web' },
        minReplicas: 1,
        maxReplicas: 10,
        metrics: [
          {
            type: 'Resource',
            resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 50 } },
          },
        ],
      },
    });
    // 200% of a 50% target on 2 ready pods wants 8; without behavior a step is at most max(2 × 2, 4) = 4.
    await t.until('scaled to 4', async () => (await replicasOf('web')) === 4);
    const h = await t.until('the status', async () => {
      const x = await hpas().get('default', 'web');
      return x.status?.currentMetrics ? x : undefined;
    });
    assert.deepEqual(h.status?.currentMetrics, [
      {
        type: 'Resource',
        resource: { name: 'cpu', current: { averageUtilization: 200, averageValue: '200m' } },
      },
    ]);
    assert.equal(condition(h, 'ScalingActive')?.reason, 'ValidMetricFound');
    assert.equal(
      condition(h, 'ScalingActive')?.message,
      'the HPA was able to successfully calculate a replica count from cpu resource utilization (percentage of request)',
    );
    assert.ok(h.status?.lastScaleTime);
    // The next rounds see current 4 and want 8 (ratio 4 on the 2 ready pods): the limit is now 8.
    await t.until('scaled to 8', async () => (await replicasOf('web')) === 8);

    // Quiet: 10% of 50% on 2 ready pods: ceil(0.2 × 2) = 1, at once (no stabilization window here).
    usage.set('web-0', 10).set('web-1', 10);
    await t.until('scaled down to 1', async () => (await replicasOf('web')) === 1);
    const down = await t.until('ScalingLimited False', async () => {
      const x = await hpas().get('default', 'web');
      return condition(x, 'ScalingLimited')?.status === 'False' && x.status?.currentReplicas === 1
        ? x
        : undefined;
    });
    assert.equal(condition(down, 'AbleToScale')?.status, 'True');
    const events = await t.clients.events.list('default');
    const reasons = events.items
      ?.filter((e) => e.involvedObject?.name === 'web')
      .map((e) => `${e.reason}: ${e.message}`);
    assert.ok(
      reasons?.includes(
        'SuccessfulRescale: New size: 4; reason: cpu resource utilization (percentage of request) above target',
      ),
      String(reasons),
    );
    assert.ok(
      reasons?.includes('SuccessfulRescale: New size: 1; reason: All metrics below target'),
      String(reasons),
    );
  });

  it('with behavior: a Pods policy limits each period, and ScalingLimited says ScaleUpLimit', async () => {
    await target('api', 1, 1);
    usage.set('api-0', 500);
    await hpas().create('default', {
      metadata: { name: 'api' },
      spec: {
        scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'api' },
        minReplicas: 1,
        maxReplicas: 10,
        metrics: [
          {
            type: 'Resource',
            resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 50 } },
          },
        ],
        behavior: { scaleUp: { policies: [{ type: 'Pods', value: 1, periodSeconds: 3600 }] } },
      },
    });
    await t.until('scaled to 2', async () => (await replicasOf('api')) === 2);
    const h = await t.until('ScaleUpLimit', async () => {
      const x = await hpas().get('default', 'api');
      return condition(x, 'ScalingLimited')?.reason === 'ScaleUpLimit' && x.status?.currentReplicas === 2
        ? x
        : undefined;
    });
    assert.equal(condition(h, 'ScalingLimited')?.status, 'True');
    assert.equal(h.status?.desiredReplicas, 2, 'one pod per hour: no further');
    assert.equal(await replicasOf('api'), 2);
  });

  it('a target without metrics is ScalingActive False with the reason, and nothing is scaled', async () => {
    await target('idle', 3, 3);
    await hpas().create('default', {
      metadata: { name: 'idle' },
      spec: {
        scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'idle' },
        minReplicas: 1,
        maxReplicas: 5,
        metrics: [
          {
            type: 'Resource',
            resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 50 } },
          },
        ],
      },
    });
    const h = await t.until('ScalingActive False', async () => {
      const x = await hpas().get('default', 'idle');
      return condition(x, 'ScalingActive')?.status === 'False' ? x : undefined;
    });
    assert.equal(condition(h, 'ScalingActive')?.reason, 'FailedGetResourceMetric');
    assert.match(
      condition(h, 'ScalingActive')?.message ?? '',
      /the HPA was unable to compute the replica count: /,
    );
    assert.equal(await replicasOf('idle'), 3);
  });
});

describe('autoscaling/v2 defaults', () => {
  it('no metrics means 80% CPU; a partial behavior gets upstream rules for the rest', async () => {
    const h = await hpas().create('default', {
      metadata: { name: 'defaults' },
      spec: {
        scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'none' },
        maxReplicas: 3,
        behavior: { scaleDown: { stabilizationWindowSeconds: 60 } },
      },
    });
    assert.equal(h.spec?.minReplicas, 1);
    assert.deepEqual(h.spec?.metrics, [
      {
        type: 'Resource',
        resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 80 } },
      },
    ]);
    assert.deepEqual(h.spec?.behavior, {
      scaleUp: {
        stabilizationWindowSeconds: 0,
        selectPolicy: 'Max',
        policies: [
          { type: 'Pods', value: 4, periodSeconds: 15 },
          { type: 'Percent', value: 100, periodSeconds: 15 },
        ],
      },
      scaleDown: {
        stabilizationWindowSeconds: 60,
        selectPolicy: 'Max',
        policies: [{ type: 'Percent', value: 100, periodSeconds: 15 }],
      },
    });
  });
});
