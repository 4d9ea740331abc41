// A pod's requests, made once here for the quota, LimitRanger and the
// scheduler: sidecars, init containers, overhead, and the scheduler's
// defaults for containers that ask for nothing.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { podRequests } from '../scheduler/nodeinfo.ts';
import { parseQuantity } from './quantity.ts';
import { formatList, podResources } from './resource-list.ts';
import type { Pod } from './types/core-v1.ts';

const pod: Pod = {
  metadata: { name: 'p' },
  spec: {
    containers: [
      { name: 'app', image: 'i', resources: { requests: { cpu: '200m', memory: '64Mi' } } },
      { name: 'bare', image: 'i' },
    ],
    initContainers: [
      // A sidecar keeps running with the app containers, and while later init containers run.
      { name: 'proxy', image: 'i', restartPolicy: 'Always', resources: { requests: { cpu: '100m' } } },
      { name: 'migrate', image: 'i', resources: { requests: { cpu: '1', memory: '16Mi' } } },
    ],
    overhead: { cpu: '10m' },
  },
};

describe('podResources', () => {
  it('sums the containers and sidecars, or the peak init container with the sidecars before it, plus overhead', () => {
    // cpu: max(200m + 100m, 1 + 100m) + 10m overhead; memory: max(64Mi, 16Mi).
    assert.deepEqual(formatList(podResources(pod, 'requests')), { cpu: '1110m', memory: '64Mi' });
    assert.deepEqual(formatList(podResources(pod, 'requests', { overhead: false })), {
      cpu: '1100m',
      memory: '64Mi',
    });
  });

  it('counts what a container does not state as nonMissingContainerRequests says', () => {
    const defaults = new Map([
      ['cpu', parseQuantity('100m')],
      ['memory', parseQuantity('200Mi')],
    ]);
    // app: 200m/64Mi, bare: 100m/200Mi, proxy: 100m/200Mi; migrate (1/16Mi) with proxy is the cpu peak.
    assert.deepEqual(formatList(podResources(pod, 'requests', { nonMissingContainerRequests: defaults })), {
      cpu: '1110m',
      memory: '464Mi',
    });
  });

  it("is the scheduler's podRequests, in its units", () => {
    const r = podRequests(pod);
    assert.equal(r.milliCPU, 1110);
    assert.equal(r.memory, 64 * 1024 * 1024);
    const nonZero = podRequests(pod, true);
    assert.equal(nonZero.milliCPU, 1110);
    assert.equal(nonZero.memory, 464 * 1024 * 1024);
  });
});
