import assert from 'node:assert/strict';
import { it } from 'node:test';
import { Registry } from 'prom-client';
import { parseExposition } from './exposition.ts';
import { volumeStatsMetrics } from './kubelet.ts';

it('kubelet_volume_stats_*: one series per claim on the node, none for other volumes', async () => {
  const registry = new Registry();
  let listings = 0;
  const stat = (name: string, used: number, pvc?: string) => ({
    name,
    time: '2026-12-08T01:00:00Z',
    capacityBytes: 1000,
    availableBytes: 600,
    usedBytes: used,
    inodes: 50,
    inodesFree: 40,
    inodesUsed: 10,
    ...(pvc ? { pvcRef: { name: pvc, namespace: 'db' } } : {}),
  });
  volumeStatsMetrics(registry, async () => {
    listings++;
    return [
      { namespace: 'db', stats: [stat('data', 300, 'data-0'), stat('scratch', 5)] },
      // A second pod mounting the same claim: still one series.
      { namespace: 'db', stats: [stat('data', 300, 'data-0')] },
    ];
  });
  const samples = parseExposition(await registry.metrics());
  const of = (name: string) => samples.filter((s) => s.name === name);
  assert.deepEqual(
    of('kubelet_volume_stats_used_bytes').map((s) => [s.labels, s.value]),
    [[{ namespace: 'db', persistentvolumeclaim: 'data-0' }, 300]],
  );
  assert.equal(of('kubelet_volume_stats_capacity_bytes')[0]?.value, 1000);
  assert.equal(of('kubelet_volume_stats_inodes_free')[0]?.value, 40);
  assert.equal(listings, 1, 'one listing for the six gauges of a scrape');
});
