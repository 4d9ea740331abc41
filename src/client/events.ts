// An event recorder, as client-go's record.EventRecorder: components say what
// happened to an object ("Created pod: web-x7k2p") as core/v1 Events, which
// `kubectl describe` and `kubectl get events` show.
//
// As upstream's event correlator does, an event repeating an earlier one (same
// object, type, reason and message) is not written again: the earlier Event's
// count and lastTimestamp go up instead. Recording never blocks or throws; a
// failed write is logged and dropped, as events are best effort.

import { type KubeObject, rfc3339 } from '../api/meta.ts';
import type { Event } from '../api/types/core-v1.ts';
import type { Clientset } from './clientset.ts';

export type EventType = 'Normal' | 'Warning';

export interface EventRecorder {
  event(obj: KubeObject, type: EventType, reason: string, message: string): void;
  /** Resolves when every write started so far has finished (tests, shutdown). */
  flush(): Promise<void>;
}

export interface EventRecorderOptions {
  /** source.component and reportingComponent, e.g. "replicaset-controller". */
  component: string;
  /** source.host: the node, for kubelets. */
  host?: string;
  now?: () => Date;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

/** How many distinct events the correlator remembers (upstream: 4096). */
const CACHE_SIZE = 4096;

export function createEventRecorder(clients: Clientset, opts: EventRecorderOptions): EventRecorder {
  const now = opts.now ?? (() => new Date());
  // correlation key → the Event written for it (its name and count).
  const seen = new Map<string, { namespace: string; name: string; count: number }>();
  const pending = new Set<Promise<void>>();

  const write = async (obj: KubeObject, type: EventType, reason: string, message: string) => {
    const meta = obj.metadata;
    const namespace = meta.namespace || 'default';
    const key = [meta.uid, obj.kind, namespace, meta.name, type, reason, message].join('\u0000');
    const time = rfc3339(now());
    const prior = seen.get(key);
    if (prior) {
      prior.count++;
      seen.delete(key);
      seen.set(key, prior);
      try {
        await clients.events.patch(prior.namespace, prior.name, 'merge', {
          count: prior.count,
          lastTimestamp: time,
        });
        return;
      } catch {
        // The earlier Event is gone (expired, deleted): write a new one.
        seen.delete(key);
      }
    }
    const name = `${meta.name}.${(BigInt(now().getTime()) * 1_000_000n + BigInt(Math.floor(Math.random() * 1e6))).toString(16)}`;
    const event: Event = {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name, namespace },
      involvedObject: {
        kind: obj.kind,
        apiVersion: obj.apiVersion,
        name: meta.name,
        namespace: meta.namespace,
        uid: meta.uid,
        resourceVersion: meta.resourceVersion,
      },
      type,
      reason,
      message,
      source: { component: opts.component, ...(opts.host ? { host: opts.host } : {}) },
      firstTimestamp: time,
      lastTimestamp: time,
      count: 1,
      reportingComponent: opts.component,
      reportingInstance: opts.host ?? '',
    };
    await clients.events.create(namespace, event);
    seen.set(key, { namespace, name, count: 1 });
    if (seen.size > CACHE_SIZE) seen.delete(seen.keys().next().value as string);
  };

  return {
    event(obj, type, reason, message) {
      const p = write(obj, type, reason, message)
        .catch((err: unknown) => {
          opts.log?.('event not recorded', {
            object: `${obj.metadata.namespace ?? ''}/${obj.metadata.name}`,
            reason,
            error: String(err),
          });
        })
        .finally(() => pending.delete(p));
      pending.add(p);
    },
    async flush() {
      while (pending.size) await Promise.all([...pending]);
    },
  };
}
