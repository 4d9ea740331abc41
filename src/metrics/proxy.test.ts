import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { startControllerTest } from '../controllers/testing.ts';
import type { ProxyBackend } from '../proxy/backend.ts';
import { createProxy } from '../proxy/proxy.ts';
import { parseExposition, sumOf } from './exposition.ts';
import { proxyMetrics } from './proxy.ts';

describe('kube-proxy metrics', () => {
  it('time every sync of the rules, and keep the last good one', async () => {
    const t = await startControllerTest({});
    const registry = new Registry();
    let fail = false;
    const backend: ProxyBackend = {
      mode: 'nftables',
      async sync() {
        if (fail) throw new Error('nft: busy');
      },
      async cleanup() {},
    };
    const proxy = createProxy({
      clients: t.clients,
      backend,
      nodeName: 'n1',
      minSyncIntervalMs: 1,
      metrics: proxyMetrics(registry, () => 42_000),
    });
    try {
      await proxy.start();
      let s = parseExposition(await registry.metrics());
      assert.equal(sumOf(s, 'kubeproxy_sync_proxy_rules_duration_seconds_count'), 1);
      assert.equal(sumOf(s, 'kubeproxy_sync_proxy_rules_last_timestamp_seconds'), 42);
      fail = true;
      await t.clients.services.create('default', {
        metadata: { name: 'web' },
        spec: { ports: [{ port: 80 }], selector: { app: 'web' } },
      });
      await proxy.flushed();
      s = parseExposition(await registry.metrics());
      assert.equal(proxy.syncs.failed, 1);
      assert.equal(sumOf(s, 'kubeproxy_sync_proxy_rules_duration_seconds_count'), 2);
      assert.equal(sumOf(s, 'kubeproxy_sync_proxy_rules_last_timestamp_seconds'), 42);
    } finally {
      await proxy.stop();
      await t.close();
    }
  });
});
