// kubectl drain in the browser: cordon the node, then evict its pods
// through the Eviction API (so PodDisruptionBudgets hold), retrying those a
// budget refuses for now, and wait until they are gone.

import { ApiError, request } from './api.ts';
import { blockedMessage, type DrainOptions, type DrainPod, planDrain } from './drain-plan.ts';

const RETRY_MS = 5_000;
const GIVE_UP_MS = 120_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const nodePods = async (node: string): Promise<DrainPod[]> =>
  (await request(`/api/v1/pods?fieldSelector=${encodeURIComponent(`spec.nodeName=${node}`)}`)).items;

const podPath = (p: DrainPod) =>
  `/api/v1/namespaces/${encodeURIComponent(p.metadata.namespace ?? '')}/pods/${encodeURIComponent(p.metadata.name)}`;

/** Evicts one pod, trying again while a PodDisruptionBudget refuses (429), as kubectl does. */
async function evict(pod: DrainPod, deadline: number, onWait: (pod: DrainPod) => void): Promise<void> {
  for (;;) {
    try {
      await request(`${podPath(pod)}/eviction`, {
        method: 'POST',
        body: {
          apiVersion: 'policy/v1',
          kind: 'Eviction',
          metadata: { name: pod.metadata.name, namespace: pod.metadata.namespace },
        },
      });
      return;
    } catch (err) {
      if (err instanceof ApiError && err.code === 404) return; // gone already
      if (!(err instanceof ApiError && err.code === 429) || Date.now() > deadline) throw err;
      onWait(pod);
      await sleep(RETRY_MS);
    }
  }
}

/** Drains `node`; reports progress as text and resolves with a summary. */
export async function drainNode(
  node: string,
  options: DrainOptions,
  onProgress: (text: string) => void,
): Promise<string> {
  await request(`/api/v1/nodes/${encodeURIComponent(node)}`, {
    method: 'PATCH',
    body: { spec: { unschedulable: true } },
    contentType: 'application/merge-patch+json',
  });
  const plan = planDrain(await nodePods(node), options);
  if (plan.blocked.length) throw new Error(`Cordoned, but not drained: ${blockedMessage(plan.blocked)}`);
  const deadline = Date.now() + GIVE_UP_MS;
  let done = 0;
  onProgress(`Evicting ${plan.evict.length} pods`);
  await Promise.all(
    plan.evict.map(async (pod) => {
      await evict(pod, deadline, (p) =>
        onProgress(
          `Waiting for a disruption budget to allow evicting ${p.metadata.namespace}/${p.metadata.name}`,
        ),
      );
      onProgress(`Evicted ${++done} of ${plan.evict.length} pods`);
    }),
  );
  // kubectl waits until the evicted pods are gone (deleted, or replaced by new ones).
  const evicted = new Set(plan.evict.map((p) => `${p.metadata.namespace}/${p.metadata.name}`));
  for (;;) {
    const left = (await nodePods(node)).filter((p) =>
      evicted.has(`${p.metadata.namespace}/${p.metadata.name}`),
    );
    if (!left.length) break;
    if (Date.now() > deadline) throw new Error(`Evicted, but ${left.length} pods are still terminating`);
    onProgress(`Waiting for ${left.length} evicted pods to terminate`);
    await sleep(1_000);
  }
  const skipped = plan.skipped.length
    ? ` (left ${plan.skipped.length}: ${[...new Set(plan.skipped.map((s) => s.reason))].join(', ')})`
    : '';
  return `Drained: ${plan.evict.length} pods evicted${skipped}`;
}
