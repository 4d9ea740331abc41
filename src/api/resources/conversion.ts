// Conversions between API versions that share one storage key, as upstream
// stores them: events.k8s.io/v1 Events are core/v1 Events on disk, and
// autoscaling/v1 HorizontalPodAutoscalers are autoscaling/v2 ones.
// (pkg/apis/events/v1/conversion.go, pkg/apis/autoscaling/v1/conversion.go)

import type { KubeObject } from '../meta.ts';
import { asObj, type Obj } from './printers.ts';

const defined = (o: Obj): Obj => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));

/** events.k8s.io/v1 Event ⇄ core/v1 Event. */
export const eventsV1Conversion = {
  toStorage(ev: KubeObject): KubeObject {
    const series = asObj(ev.series);
    return defined({
      apiVersion: 'v1',
      kind: 'Event',
      metadata: ev.metadata,
      involvedObject: ev.regarding,
      related: ev.related,
      reason: ev.reason,
      message: ev.note,
      type: ev.type,
      action: ev.action,
      eventTime: ev.eventTime,
      reportingComponent: ev.reportingController,
      reportingInstance: ev.reportingInstance,
      source: ev.deprecatedSource,
      firstTimestamp: ev.deprecatedFirstTimestamp,
      lastTimestamp: ev.deprecatedLastTimestamp,
      count: ev.deprecatedCount,
      series: ev.series
        ? defined({ count: series.count, lastObservedTime: series.lastObservedTime })
        : undefined,
    }) as KubeObject;
  },
  fromStorage(ev: KubeObject): KubeObject {
    return defined({
      metadata: ev.metadata,
      regarding: ev.involvedObject,
      related: ev.related,
      reason: ev.reason,
      note: ev.message,
      type: ev.type,
      action: ev.action,
      eventTime: ev.eventTime,
      reportingController: ev.reportingComponent,
      reportingInstance: ev.reportingInstance,
      deprecatedSource: ev.source,
      deprecatedFirstTimestamp: ev.firstTimestamp,
      deprecatedLastTimestamp: ev.lastTimestamp,
      deprecatedCount: ev.count,
      series: ev.series,
    }) as KubeObject;
  },
};

/** autoscaling/v1 HPA (targetCPUUtilizationPercentage) ⇄ autoscaling/v2 (metrics). */
export const hpaV1Conversion = {
  toStorage(hpa: KubeObject): KubeObject {
    const spec = asObj(hpa.spec);
    const status = asObj(hpa.status);
    const { targetCPUUtilizationPercentage: target, ...rest } = spec;
    const metrics =
      typeof target === 'number'
        ? [
            {
              type: 'Resource',
              resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: target } },
            },
          ]
        : undefined;
    const { currentCPUUtilizationPercentage: current, ...restStatus } = status;
    return {
      ...hpa,
      spec: defined({ ...rest, metrics }),
      ...(hpa.status
        ? {
            status: defined({
              ...restStatus,
              currentMetrics:
                typeof current === 'number'
                  ? [
                      {
                        type: 'Resource',
                        resource: { name: 'cpu', current: { averageUtilization: current } },
                      },
                    ]
                  : undefined,
            }),
          }
        : {}),
    };
  },
  fromStorage(hpa: KubeObject): KubeObject {
    const spec = asObj(hpa.spec);
    const status = asObj(hpa.status);
    const { metrics, behavior: _b, ...rest } = spec;
    const cpu = (Array.isArray(metrics) ? metrics : [])
      .map(asObj)
      .find((m) => m.type === 'Resource' && asObj(m.resource).name === 'cpu');
    const target = asObj(asObj(asObj(cpu?.resource).target)).averageUtilization;
    const { currentMetrics, conditions: _c, ...restStatus } = status;
    const currentCpu = (Array.isArray(currentMetrics) ? currentMetrics : [])
      .map(asObj)
      .find((m) => m.type === 'Resource' && asObj(m.resource).name === 'cpu');
    const current = asObj(asObj(currentCpu?.resource).current).averageUtilization;
    return {
      ...hpa,
      spec: defined({
        ...rest,
        targetCPUUtilizationPercentage: typeof target === 'number' ? target : undefined,
      }),
      ...(hpa.status
        ? {
            status: defined({
              ...restStatus,
              currentCPUUtilizationPercentage: typeof current === 'number' ? current : undefined,
            }),
          }
        : {}),
    };
  },
};
