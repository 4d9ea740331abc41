// The HorizontalPodAutoscaler controller (upstream's horizontal-pod-autoscaler,
// pkg/controller/podautoscaler/horizontal.go), for autoscaling/v2 (v1 HPAs
// are the same objects, converted by the API).
//
// Every --horizontal-pod-autoscaler-sync-period (15 s) each HPA is
// reconciled: the target's scale subresource gives the current replicas and
// the pods' selector; each Resource (or ContainerResource) metric asks
// metrics.k8s.io for the pods' usage and the replica calculator
// (replica-calculator.ts) for a proposal; the largest proposal wins. Then,
// as upstream:
//   - without spec.behavior: scale-down recommendations are stabilized over
//     --horizontal-pod-autoscaler-downscale-stabilization (5 min), and a
//     scale-up is at most max(2× current, 4);
//   - with spec.behavior: each direction's stabilizationWindowSeconds, and
//     its policies (Pods or Percent per periodSeconds) over the scale
//     events of the last period, picked by selectPolicy (Max, Min, Disabled);
//   - the conditions AbleToScale, ScalingActive and ScalingLimited, the
//     events SuccessfulRescale, FailedGetScale, FailedGetResourceMetric,
//     FailedComputeMetricsReplicas, FailedRescale, and status.currentMetrics.
// Object, Pods and External metrics need a custom metrics API, which Skiff
// does not serve: they are reported as invalid metrics, as upstream does
// when that API is missing.

import { parseSelector, type Selector } from '../api/labels.ts';
import { deepCopy, jsonEqual, rfc3339 } from '../api/meta.ts';
import type {
  HorizontalPodAutoscaler,
  HorizontalPodAutoscalerBehavior,
  HorizontalPodAutoscalerCondition,
  HPAScalingRules,
  MetricSpec,
  MetricStatus,
} from '../api/types/autoscaling-v2.ts';
import type { Pod } from '../api/types/core-v1.ts';
import type { ResourceRef } from '../client/client.ts';
import { NAMESPACE_INDEX } from '../client/informer-factory.ts';
import type { ControllerFactory } from './context.ts';
import { keyOf, splitKey } from './context.ts';
import { queueController } from './controller.ts';
import {
  DEFAULT_TOLERANCE,
  milli,
  type PodMetrics,
  ReplicaCalculationError,
  rawResourceReplicas,
  resourceReplicas,
} from './replica-calculator.ts';

/** kube-controller-manager's HPA flags. */
export interface HPAOptions {
  /** --horizontal-pod-autoscaler-sync-period (15 s). */
  syncPeriodMs?: number;
  /** --horizontal-pod-autoscaler-downscale-stabilization (5 min). */
  downscaleStabilizationMs?: number;
  /** --horizontal-pod-autoscaler-cpu-initialization-period (5 min). */
  cpuInitializationPeriodMs?: number;
  /** --horizontal-pod-autoscaler-initial-readiness-delay (30 s). */
  initialReadinessDelayMs?: number;
  /** --horizontal-pod-autoscaler-tolerance (0.1). */
  tolerance?: number;
}

const SCALE_UP_LIMIT_FACTOR = 2;
const SCALE_UP_LIMIT_MINIMUM = 4;

/** Upstream's defaults for a behavior's missing parts (GenerateHPAScaleUpRules / ScaleDownRules). */
function scaleUpRules(r: HPAScalingRules | undefined): Required<Omit<HPAScalingRules, 'tolerance'>> {
  return {
    stabilizationWindowSeconds: r?.stabilizationWindowSeconds ?? 0,
    selectPolicy: r?.selectPolicy ?? 'Max',
    policies: r?.policies ?? [
      { type: 'Pods', value: 4, periodSeconds: 15 },
      { type: 'Percent', value: 100, periodSeconds: 15 },
    ],
  };
}
function scaleDownRules(
  r: HPAScalingRules | undefined,
  defaultWindowS: number,
): Required<Omit<HPAScalingRules, 'tolerance'>> {
  return {
    stabilizationWindowSeconds: r?.stabilizationWindowSeconds ?? defaultWindowS,
    selectPolicy: r?.selectPolicy ?? 'Max',
    policies: r?.policies ?? [{ type: 'Percent', value: 100, periodSeconds: 15 }],
  };
}

interface Recommendation {
  replicas: number;
  at: number;
}
interface ScaleEvent {
  change: number;
  at: number;
  outdated: boolean;
}

/** The scale subresource's plural for the kinds a HPA targets (upstream asks the RESTMapper). */
function scaleRef(apiVersion: string | undefined, kind: string | undefined): ResourceRef | undefined {
  const [group, version] = (apiVersion ?? '').includes('/')
    ? (apiVersion as string).split('/')
    : ['', apiVersion || 'v1'];
  const known: Record<string, string> = {
    Deployment: 'deployments',
    ReplicaSet: 'replicasets',
    StatefulSet: 'statefulsets',
    ReplicationController: 'replicationcontrollers',
  };
  if (!kind) return undefined;
  return {
    group: group ?? '',
    version: version ?? 'v1',
    plural: known[kind] ?? `${kind.toLowerCase()}s`,
    namespaced: true,
  };
}

interface Scale {
  metadata: { name?: string; namespace?: string; resourceVersion?: string };
  spec?: { replicas?: number };
  status?: { replicas?: number; selector?: string };
}

/** A condition to set, as upstream's setCondition (lastTransitionTime kept when the status did not change). */
type ConditionSetter = (type: string, status: 'True' | 'False', reason: string, message: string) => void;

export const horizontalPodAutoscalerController: ControllerFactory = (ctx) => {
  const o = ctx.options.hpa ?? {};
  const syncPeriodMs = o.syncPeriodMs ?? 15_000;
  const downscaleWindowMs = o.downscaleStabilizationMs ?? 5 * 60_000;
  const calcOpts = {
    tolerance: o.tolerance ?? DEFAULT_TOLERANCE,
    cpuInitializationPeriodMs: o.cpuInitializationPeriodMs ?? 5 * 60_000,
    initialReadinessDelayMs: o.initialReadinessDelayMs ?? 30_000,
    now: () => ctx.now().getTime(),
  };
  const hpas = ctx.informers.forResource<HorizontalPodAutoscaler>({
    group: 'autoscaling',
    version: 'v2',
    plural: 'horizontalpodautoscalers',
    namespaced: true,
  });
  const pods = ctx.informers.informer('pods');
  const podMetricsClient = ctx.clients.forResource({
    group: 'metrics.k8s.io',
    version: 'v1beta1',
    plural: 'pods',
    namespaced: true,
  });
  const hpaClient = ctx.clients.forResource<HorizontalPodAutoscaler>({
    group: 'autoscaling',
    version: 'v2',
    plural: 'horizontalpodautoscalers',
    namespaced: true,
  });
  const recorder = ctx.recorder('horizontal-pod-autoscaler');
  const log = ctx.log.with({ controller: 'horizontal-pod-autoscaler' });
  const recommendations = new Map<string, Recommendation[]>();
  const scaleUpEvents = new Map<string, ScaleEvent[]>();
  const scaleDownEvents = new Map<string, ScaleEvent[]>();

  /** The pods' usage of `resource` from metrics.k8s.io, in milli-units (upstream's resource metrics client). */
  async function resourceMetrics(
    namespace: string,
    selector: Selector,
    resource: string,
    container?: string,
  ): Promise<PodMetrics> {
    const list = (await podMetricsClient.list(namespace, {
      labelSelector: selector.toString(),
    })) as unknown as {
      items?: {
        metadata: { name?: string };
        timestamp?: string;
        window?: string;
        containers?: { name: string; usage?: Record<string, string> }[];
      }[];
    };
    const items = list.items ?? [];
    if (items.length === 0)
      throw new ReplicaCalculationError(
        'unable to get metrics for resource ' + `${resource}: no metrics returned from resource metrics API`,
      );
    const out: PodMetrics = new Map();
    for (const m of items) {
      let value = 0;
      let missing = false;
      let any = false;
      for (const c of m.containers ?? []) {
        if (container && c.name !== container) continue;
        const usage = c.usage?.[resource];
        if (usage === undefined) {
          missing = true;
          break;
        }
        value += milli(usage);
        any = true;
      }
      if (missing || !any) continue;
      out.set(m.metadata.name ?? '', {
        value,
        timestamp: Date.parse(m.timestamp ?? '') || ctx.now().getTime(),
        windowMs: (Number.parseFloat(m.window ?? '0') || 0) * 1000,
      });
    }
    return out;
  }

  /** One metric's proposal, or an error with the ScalingActive condition upstream sets for it. */
  async function replicasForMetric(
    hpa: HorizontalPodAutoscaler,
    spec: MetricSpec,
    specReplicas: number,
    selector: Selector,
    podList: Pod[],
  ): Promise<{ replicas: number; name: string; status: MetricStatus }> {
    const namespace = hpa.metadata.namespace ?? '';
    const source =
      spec.type === 'Resource'
        ? spec.resource
        : spec.type === 'ContainerResource'
          ? spec.containerResource
          : undefined;
    if (!source) {
      throw Object.assign(
        new ReplicaCalculationError(
          `unable to get ${spec.type} metric: the custom and external metrics APIs are not served by this cluster`,
        ),
        { reason: `FailedGet${spec.type ?? ''}Metric` },
      );
    }
    const resource = source.name ?? '';
    const container = spec.type === 'ContainerResource' ? spec.containerResource?.container : undefined;
    const reason = spec.type === 'Resource' ? 'FailedGetResourceMetric' : 'FailedGetContainerResourceMetric';
    try {
      const metrics = await resourceMetrics(namespace, selector, resource, container);
      const target = source.target ?? {};
      const statusOf = (current: MetricStatus['resource']) =>
        spec.type === 'Resource'
          ? { type: 'Resource', resource: current }
          : { type: 'ContainerResource', containerResource: { ...current, container: container ?? '' } };
      if (target.averageUtilization !== undefined) {
        const r = resourceReplicas(
          specReplicas,
          target.averageUtilization,
          resource,
          podList,
          metrics,
          calcOpts,
          container,
        );
        return {
          replicas: r.replicas,
          name: `${resource} resource utilization (percentage of request)`,
          status: statusOf({
            name: resource,
            current: { averageUtilization: r.utilization, averageValue: milliQuantity(r.rawAverage) },
          }),
        };
      }
      if (target.averageValue !== undefined) {
        const r = rawResourceReplicas(
          specReplicas,
          milli(target.averageValue),
          resource,
          podList,
          metrics,
          calcOpts,
        );
        return {
          replicas: r.replicas,
          name: `${resource} resource`,
          status: statusOf({ name: resource, current: { averageValue: milliQuantity(r.usage) } }),
        };
      }
      throw new ReplicaCalculationError(
        'invalid resource metric source: neither a utilization target nor a value target was set',
      );
    } catch (err) {
      throw Object.assign(err instanceof Error ? err : new Error(String(err)), { reason });
    }
  }

  /** Upstream's stabilizeRecommendation (no behavior): the highest recommendation of the window. */
  function stabilize(key: string, desired: number): number {
    const now = ctx.now().getTime();
    const recs = (recommendations.get(key) ?? []).filter((r) => r.at >= now - downscaleWindowMs);
    const best = Math.max(desired, ...recs.map((r) => r.replicas));
    recs.push({ replicas: desired, at: now });
    recommendations.set(key, recs);
    return best;
  }

  /** Upstream's stabilizeRecommendationWithBehaviors. */
  function stabilizeWithBehavior(
    key: string,
    current: number,
    desired: number,
    up: ReturnType<typeof scaleUpRules>,
    down: ReturnType<typeof scaleUpRules>,
  ): { replicas: number; reason: string; message: string } {
    const now = ctx.now().getTime();
    const scalingUp = desired >= current;
    const windowS = scalingUp ? up.stabilizationWindowSeconds : down.stabilizationWindowSeconds;
    const better = scalingUp ? Math.min : Math.max;
    const keepS = Math.max(up.stabilizationWindowSeconds, down.stabilizationWindowSeconds);
    const recs = (recommendations.get(key) ?? []).filter((r) => r.at >= now - keepS * 1000);
    let replicas = desired;
    for (const r of recs) if (r.at > now - windowS * 1000) replicas = better(replicas, r.replicas);
    recs.push({ replicas: desired, at: now });
    recommendations.set(key, recs);
    return scalingUp
      ? {
          replicas,
          reason: 'ScaleUpStabilized',
          message:
            'recent recommendations were lower than current one, applying the lowest recent recommendation',
        }
      : {
          replicas,
          reason: 'ScaleDownStabilized',
          message:
            'recent recommendations were higher than current one, applying the highest recent recommendation',
        };
  }

  /** Replicas added (or removed) in the last periodSeconds. */
  const changeInPeriod = (periodS: number, events: ScaleEvent[] | undefined) => {
    const cutoff = ctx.now().getTime() - periodS * 1000;
    return (events ?? []).reduce((n, e) => (e.at > cutoff && !e.outdated ? n + e.change : n), 0);
  };

  /** Upstream's calculateScaleUpLimitWithScalingRules. */
  function scaleUpLimit(key: string, current: number, rules: ReturnType<typeof scaleUpRules>): number {
    if (rules.selectPolicy === 'Disabled') return current;
    const pick = rules.selectPolicy === 'Min' ? Math.min : Math.max;
    let result = rules.selectPolicy === 'Min' ? Number.MAX_SAFE_INTEGER : Number.MIN_SAFE_INTEGER;
    for (const p of rules.policies) {
      const start =
        current -
        changeInPeriod(p.periodSeconds ?? 0, scaleUpEvents.get(key)) +
        changeInPeriod(p.periodSeconds ?? 0, scaleDownEvents.get(key));
      const proposed =
        p.type === 'Pods' ? start + (p.value ?? 0) : Math.ceil(start * (1 + (p.value ?? 0) / 100));
      result = pick(result, proposed);
    }
    return result;
  }

  /** Upstream's calculateScaleDownLimitWithBehaviors. */
  function scaleDownLimit(key: string, current: number, rules: ReturnType<typeof scaleUpRules>): number {
    if (rules.selectPolicy === 'Disabled') return current;
    const pick = rules.selectPolicy === 'Min' ? Math.max : Math.min;
    let result = rules.selectPolicy === 'Min' ? Number.MIN_SAFE_INTEGER : Number.MAX_SAFE_INTEGER;
    for (const p of rules.policies) {
      const start =
        current -
        changeInPeriod(p.periodSeconds ?? 0, scaleUpEvents.get(key)) +
        changeInPeriod(p.periodSeconds ?? 0, scaleDownEvents.get(key));
      const proposed =
        p.type === 'Pods' ? start - (p.value ?? 0) : Math.trunc(start * (1 - (p.value ?? 0) / 100));
      result = pick(result, proposed);
    }
    return result;
  }

  /** Upstream's storeScaleEvent: remembered for the longest policy period of the direction. */
  function storeScaleEvent(
    key: string,
    behavior: HorizontalPodAutoscalerBehavior | undefined,
    from: number,
    to: number,
  ) {
    if (!behavior) return;
    const now = ctx.now().getTime();
    const up = to > from;
    const rules = up ? scaleUpRules(behavior.scaleUp) : scaleDownRules(behavior.scaleDown, 0);
    const longest = Math.max(0, ...rules.policies.map((p) => p.periodSeconds ?? 0));
    const map = up ? scaleUpEvents : scaleDownEvents;
    const events = (map.get(key) ?? []).filter((e) => e.at > now - longest * 1000);
    events.push({ change: Math.abs(to - from), at: now, outdated: false });
    map.set(key, events);
  }

  async function reconcile(key: string, cached: HorizontalPodAutoscaler): Promise<void> {
    const hpa = deepCopy(cached);
    const before = deepCopy(cached);
    const { namespace } = splitKey(key);
    const now = rfc3339(ctx.now());
    const conditions = [...(hpa.status?.conditions ?? [])];
    const setCondition: ConditionSetter = (type, status, reason, message) => {
      const i = conditions.findIndex((c) => c.type === type);
      const old = conditions[i];
      const next: HorizontalPodAutoscalerCondition = {
        type,
        status,
        lastTransitionTime: old && old.status === status ? (old.lastTransitionTime ?? now) : now,
        reason,
        message,
      };
      if (i < 0) conditions.push(next);
      else conditions[i] = next;
    };
    const spec = hpa.spec ?? {};
    const ref = spec.scaleTargetRef ?? {};
    const target = scaleRef(ref.apiVersion, ref.kind);
    const reference = `${ref.kind}/${ref.name}`;
    const minReplicas = spec.minReplicas ?? 1;
    const maxReplicas = spec.maxReplicas ?? 1;

    const writeStatus = async (
      current: number,
      desired: number,
      metrics: MetricStatus[] | undefined,
      rescaled: boolean,
    ) => {
      hpa.status = {
        ...(hpa.status?.observedGeneration !== undefined || hpa.metadata.generation !== undefined
          ? { observedGeneration: hpa.metadata.generation ?? 0 }
          : {}),
        ...(rescaled
          ? { lastScaleTime: now }
          : hpa.status?.lastScaleTime
            ? { lastScaleTime: hpa.status.lastScaleTime }
            : {}),
        currentReplicas: current,
        desiredReplicas: desired,
        ...(metrics && metrics.length > 0 ? { currentMetrics: metrics } : {}),
        conditions,
      };
      if (jsonEqual(before.status, hpa.status)) return;
      await hpaClient.updateStatus(hpa);
    };

    // The target's scale: current replicas and the pods' selector.
    let scale: Scale;
    try {
      if (!target || !ref.name) throw new Error(`invalid scaleTargetRef ${JSON.stringify(ref)}`);
      scale = (
        await ctx.clients.transport.request({
          method: 'GET',
          path: ctx.clients.forResource(target).path(namespace, ref.name, 'scale'),
        })
      ).body as Scale;
    } catch (err) {
      const message = `the HPA controller was unable to get the target's current scale: ${errorText(err)}`;
      recorder.event(hpa, 'Warning', 'FailedGetScale', errorText(err));
      setCondition('AbleToScale', 'False', 'FailedGetScale', message);
      await writeStatus(
        hpa.status?.currentReplicas ?? 0,
        hpa.status?.desiredReplicas ?? 0,
        hpa.status?.currentMetrics,
        false,
      );
      throw err;
    }
    setCondition(
      'AbleToScale',
      'True',
      'SucceededGetScale',
      "the HPA controller was able to get the target's current scale",
    );
    const currentReplicas = scale.spec?.replicas ?? 0;
    let desiredReplicas = currentReplicas;
    let rescaleReason = '';
    let metricStatuses: MetricStatus[] | undefined = hpa.status?.currentMetrics;

    if (currentReplicas === 0 && minReplicas !== 0) {
      // Scaling to zero by hand turns the HPA off, as upstream.
      desiredReplicas = 0;
      setCondition(
        'ScalingActive',
        'False',
        'ScalingDisabled',
        'scaling is disabled since the replica count of the target is zero',
      );
    } else if (currentReplicas > maxReplicas) {
      rescaleReason = 'Current number of replicas above Spec.MaxReplicas';
      desiredReplicas = maxReplicas;
    } else if (currentReplicas < minReplicas) {
      rescaleReason = 'Current number of replicas below Spec.MinReplicas';
      desiredReplicas = minReplicas;
    } else {
      // The metrics: the largest proposal wins; all invalid (or some invalid on a scale-down) is an error.
      let selector: Selector;
      try {
        if (!scale.status?.selector) throw new Error("the HPA target's scale is missing a selector");
        selector = parseSelector(scale.status.selector);
      } catch (err) {
        const message = errorText(err);
        recorder.event(
          hpa,
          'Warning',
          scale.status?.selector ? 'InvalidSelector' : 'SelectorRequired',
          message,
        );
        setCondition('ScalingActive', 'False', 'InvalidSelector', message);
        await writeStatus(
          currentReplicas,
          hpa.status?.desiredReplicas ?? currentReplicas,
          metricStatuses,
          false,
        );
        return;
      }
      const podList = pods.indexer
        .byIndex(NAMESPACE_INDEX, namespace ?? '')
        .filter((p) => selector.matches(p.metadata.labels));
      const specs =
        spec.metrics && spec.metrics.length > 0
          ? spec.metrics
          : [
              {
                type: 'Resource',
                resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 80 } },
              },
            ];
      const statuses: MetricStatus[] = [];
      let proposal = 0;
      let metricName = '';
      let invalid = 0;
      let firstError: (Error & { reason?: string }) | undefined;
      for (const m of specs) {
        try {
          const r = await replicasForMetric(hpa, m, currentReplicas, selector, podList);
          statuses.push(r.status);
          if (proposal === 0 || r.replicas > proposal) {
            proposal = r.replicas;
            metricName = r.name;
          }
        } catch (err) {
          statuses.push({ type: m.type ?? '' });
          const e = err as Error & { reason?: string };
          if (!firstError) firstError = e;
          invalid++;
          recorder.event(hpa, 'Warning', e.reason ?? 'FailedGetResourceMetric', e.message);
        }
      }
      metricStatuses = statuses.filter((s) => s.resource || s.containerResource);
      if (invalid >= specs.length || (invalid > 0 && proposal < currentReplicas)) {
        const message = `invalid metrics (${invalid} invalid out of ${specs.length}), first error is: ${firstError?.message}`;
        setCondition(
          'ScalingActive',
          'False',
          firstError?.reason ?? 'FailedGetResourceMetric',
          `the HPA was unable to compute the replica count: ${firstError?.message}`,
        );
        recorder.event(hpa, 'Warning', 'FailedComputeMetricsReplicas', message);
        await writeStatus(
          currentReplicas,
          hpa.status?.desiredReplicas ?? currentReplicas,
          metricStatuses,
          false,
        );
        log.debug('computing replicas failed', { hpa: key, error: message });
        return;
      }
      setCondition(
        'ScalingActive',
        'True',
        'ValidMetricFound',
        `the HPA was able to successfully calculate a replica count from ${metricName}`,
      );
      rescaleReason = proposal > currentReplicas ? `${metricName} above target` : 'All metrics below target';
      desiredReplicas = spec.behavior
        ? normalizeWithBehavior(key, hpa, currentReplicas, proposal, minReplicas, maxReplicas, setCondition)
        : normalize(key, currentReplicas, proposal, minReplicas, maxReplicas, setCondition);
    }

    const rescale = desiredReplicas !== currentReplicas;
    if (rescale) {
      try {
        // An update of the scale we read (a conflict retries the whole sync), as upstream's.
        await ctx.clients.transport.request({
          method: 'PUT',
          path: ctx.clients.forResource(target!).path(namespace, ref.name, 'scale'),
          body: { ...scale, spec: { ...scale.spec, replicas: desiredReplicas } },
        });
      } catch (err) {
        recorder.event(
          hpa,
          'Warning',
          'FailedRescale',
          `New size: ${desiredReplicas}; reason: ${rescaleReason}; error: ${errorText(err)}`,
        );
        setCondition(
          'AbleToScale',
          'False',
          'FailedUpdateScale',
          `the HPA controller was unable to update the target scale: ${errorText(err)}`,
        );
        await writeStatus(currentReplicas, desiredReplicas, metricStatuses, false);
        throw err;
      }
      setCondition(
        'AbleToScale',
        'True',
        'SucceededRescale',
        `the HPA controller was able to update the target scale to ${desiredReplicas}`,
      );
      recorder.event(
        hpa,
        'Normal',
        'SuccessfulRescale',
        `New size: ${desiredReplicas}; reason: ${rescaleReason}`,
      );
      storeScaleEvent(key, spec.behavior, currentReplicas, desiredReplicas);
      log('scaled', {
        hpa: key,
        target: reference,
        from: currentReplicas,
        to: desiredReplicas,
        reason: rescaleReason,
      });
    }
    await writeStatus(currentReplicas, desiredReplicas, metricStatuses, rescale);
  }

  /** Upstream's normalizeDesiredReplicas (no behavior). */
  function normalize(
    key: string,
    current: number,
    proposal: number,
    min: number,
    max: number,
    setCondition: ConditionSetter,
  ): number {
    const stabilized = stabilize(key, proposal);
    if (stabilized !== proposal)
      setCondition(
        'AbleToScale',
        'True',
        'ScaleDownStabilized',
        'recent recommendations were higher than current one, applying the highest recent recommendation',
      );
    else setCondition('AbleToScale', 'True', 'ReadyForNewScale', 'recommended size matches current size');
    const upLimit = Math.max(SCALE_UP_LIMIT_FACTOR * current, SCALE_UP_LIMIT_MINIMUM);
    let desired = stabilized;
    let reason = 'DesiredWithinRange';
    let message = 'the desired count is within the acceptable range';
    const [maxAllowed, maxReason, maxMessage] =
      max > upLimit
        ? [
            upLimit,
            'ScaleUpLimit',
            'the desired replica count is increasing faster than the maximum scale rate',
          ]
        : [max, 'TooManyReplicas', 'the desired replica count is more than the maximum replica count'];
    if (desired < min) {
      desired = min;
      reason = 'TooFewReplicas';
      message = 'the desired replica count is less than the minimum replica count';
    } else if (desired > maxAllowed) {
      desired = maxAllowed;
      reason = maxReason;
      message = maxMessage;
    }
    setCondition('ScalingLimited', desired === stabilized ? 'False' : 'True', reason, message);
    return desired;
  }

  /** Upstream's normalizeDesiredReplicasWithBehaviors. */
  function normalizeWithBehavior(
    key: string,
    hpa: HorizontalPodAutoscaler,
    current: number,
    proposal: number,
    min: number,
    max: number,
    setCondition: ConditionSetter,
  ): number {
    const up = scaleUpRules(hpa.spec?.behavior?.scaleUp);
    const down = scaleDownRules(hpa.spec?.behavior?.scaleDown, Math.round(downscaleWindowMs / 1000));
    const s = stabilizeWithBehavior(key, current, proposal, up, down);
    if (s.replicas !== proposal) setCondition('AbleToScale', 'True', s.reason, s.message);
    else setCondition('AbleToScale', 'True', 'ReadyForNewScale', 'recommended size matches current size');
    let desired = s.replicas;
    let reason = 'DesiredWithinRange';
    let message = 'the desired count is within the acceptable range';
    if (s.replicas > current) {
      const limit = Math.max(scaleUpLimit(key, current, up), current);
      const [allowed, r, m] =
        max > limit
          ? [
              limit,
              'ScaleUpLimit',
              'the desired replica count is increasing faster than the maximum scale rate',
            ]
          : [max, 'TooManyReplicas', 'the desired replica count is more than the maximum replica count'];
      if (desired > allowed) [desired, reason, message] = [allowed, r, m];
    } else if (s.replicas < current) {
      const limit = Math.min(scaleDownLimit(key, current, down), current);
      const [allowed, r, m] =
        min < limit
          ? [
              limit,
              'ScaleDownLimit',
              'the desired replica count is decreasing faster than the maximum scale rate',
            ]
          : [min, 'TooFewReplicas', 'the desired replica count is less than the minimum replica count'];
      if (desired < allowed) [desired, reason, message] = [allowed, r, m];
    }
    setCondition('ScalingLimited', desired === s.replicas ? 'False' : 'True', reason, message);
    return desired;
  }

  const c = queueController(ctx, {
    name: 'horizontalpodautoscaling',
    workers: 5,
    async sync(key) {
      const cached = hpas.indexer.get(key);
      if (!cached) {
        recommendations.delete(key);
        scaleUpEvents.delete(key);
        scaleDownEvents.delete(key);
        return;
      }
      try {
        await reconcile(key, cached);
      } finally {
        // Level-triggered on a clock: every HPA again after the sync period, as upstream's resync.
        c.queue.addAfter(key, syncPeriodMs);
      }
    },
  });
  // A spec change is looked at now; the controller's own status writes wait for the next period.
  hpas.on({
    add: (h) => c.queue.add(keyOf(h)),
    update: (old, h) => {
      if (old.metadata.generation !== h.metadata.generation || !jsonEqual(old.spec, h.spec))
        c.queue.add(keyOf(h));
    },
    delete: (h) => c.queue.add(keyOf(h)),
  });
  return c;
};

const milliQuantity = (m: number) => (m % 1000 === 0 ? String(m / 1000) : `${m}m`);

const errorText = (err: unknown) => (err instanceof Error ? err.message : String(err));
