// kube-proxy's sync metrics, with upstream's names (pkg/proxy/metrics):
// every sync of the rules is timed, and the time of the last one kept.

import { Gauge, Histogram } from 'prom-client';
import type { ProxyMetrics } from '../proxy/proxy.ts';
import type { Registry } from './prometheus.ts';

export function proxyMetrics(registry: Registry, wallClock: () => number = Date.now): ProxyMetrics {
  const registers = [registry];
  const duration = new Histogram({
    name: 'kubeproxy_sync_proxy_rules_duration_seconds',
    help: 'SyncProxyRules latency in seconds',
    // Upstream's: 1 ms doubling 15 times.
    buckets: Array.from({ length: 15 }, (_, i) => 0.001 * 2 ** i),
    registers,
  });
  const last = new Gauge({
    name: 'kubeproxy_sync_proxy_rules_last_timestamp_seconds',
    help: 'The last time proxy rules were successfully synced',
    registers,
  });
  return {
    synced(seconds, ok) {
      duration.observe(seconds);
      if (ok) last.set(wallClock() / 1000);
    },
  };
}
