// InterPodAffinity and PodTopologySpread against hand-built snapshots.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Node, Pod } from '../../api/types/core-v1.ts';
import { SchedulerCache } from '../cache.ts';
import { Code, CycleState, type NodeScore } from '../framework.ts';
import { makeNode, makePod } from '../testing.ts';
import {
  ERR_AFFINITY,
  ERR_ANTI_AFFINITY,
  ERR_EXISTING_ANTI_AFFINITY,
  interPodAffinity,
} from './interpodaffinity.ts';
import { ERR_CONSTRAINTS_NOT_MATCH, ERR_MISSING_LABEL, podTopologySpread } from './podtopologyspread.ts';

function snapshot(nodes: Node[], bound: Pod[] = []): SchedulerCache {
  const c = new SchedulerCache();
  for (const n of nodes) c.addOrUpdateNode(n);
  for (const p of bound) c.addOrUpdatePod(p);
  return c;
}

const zoned = (name: string, zone?: string) =>
  makeNode(name, zone ? { labels: { 'topology.kubernetes.io/zone': zone } } : {});

const on = (
  name: string,
  node: string,
  labels: Record<string, string>,
  spec: Partial<NonNullable<Pod['spec']>> = {},
) => makePod(name, { nodeName: node, ...spec }, labels);

const term = (labels: Record<string, string>, topologyKey: string) => ({
  labelSelector: { matchLabels: labels },
  topologyKey,
});

function filterAll(
  plugin: ReturnType<typeof interPodAffinity> | typeof podTopologySpread,
  snap: SchedulerCache,
  pod: Pod,
) {
  const state = new CycleState();
  const pre = plugin.preFilter(state, pod, snap);
  const out: Record<string, string> = {};
  for (const n of snap.nodes()) {
    if (pre.status.code === Code.Skip) out[n.name] = 'ok';
    else {
      const s = plugin.filter(state, pod, n);
      out[n.name] = s.code === Code.Success ? 'ok' : s.reasons.join();
    }
  }
  return out;
}

describe('InterPodAffinity', () => {
  const ipa = interPodAffinity();

  it('required anti-affinity keeps a pod off hosts running what it avoids', () => {
    const snap = snapshot([makeNode('a'), makeNode('b')], [on('web-1', 'a', { app: 'web' })]);
    const pod = makePod(
      'web-2',
      {
        affinity: {
          podAntiAffinity: {
            requiredDuringSchedulingIgnoredDuringExecution: [term({ app: 'web' }, 'kubernetes.io/hostname')],
          },
        },
      },
      { app: 'web' },
    );
    assert.deepEqual(filterAll(ipa, snap, pod), { a: ERR_ANTI_AFFINITY, b: 'ok' });
  });

  it("honours existing pods' anti-affinity towards the incoming pod", () => {
    const lonely = on(
      'lonely',
      'a',
      { app: 'lonely' },
      {
        affinity: {
          podAntiAffinity: {
            requiredDuringSchedulingIgnoredDuringExecution: [term({ app: 'db' }, 'kubernetes.io/hostname')],
          },
        },
      },
    );
    const snap = snapshot([makeNode('a'), makeNode('b')], [lonely]);
    assert.deepEqual(filterAll(ipa, snap, makePod('db', {}, { app: 'db' })), {
      a: ERR_EXISTING_ANTI_AFFINITY,
      b: 'ok',
    });
    assert.deepEqual(filterAll(ipa, snap, makePod('other', {}, { app: 'x' })), { a: 'ok', b: 'ok' });
  });

  it('required affinity places a pod in the zone of the pods it follows', () => {
    const snap = snapshot(
      [zoned('a', 'z1'), zoned('b', 'z2'), zoned('c', 'z1')],
      [on('cache', 'a', { app: 'cache' })],
    );
    const pod = makePod('app', {
      affinity: {
        podAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: [
            term({ app: 'cache' }, 'topology.kubernetes.io/zone'),
          ],
        },
      },
    });
    assert.deepEqual(filterAll(ipa, snap, pod), { a: 'ok', b: ERR_AFFINITY, c: 'ok' });
  });

  it('lets the first pod of a self-affine group go anywhere', () => {
    const snap = snapshot([zoned('a', 'z1'), zoned('b', 'z2')]);
    const pod = makePod(
      'first',
      {
        affinity: {
          podAffinity: {
            requiredDuringSchedulingIgnoredDuringExecution: [
              term({ app: 'g' }, 'topology.kubernetes.io/zone'),
            ],
          },
        },
      },
      { app: 'g' },
    );
    assert.deepEqual(filterAll(ipa, snap, pod), { a: 'ok', b: 'ok' });
  });

  it('scores preferred affinity up and preferred anti-affinity down', () => {
    const snap = snapshot(
      [makeNode('a'), makeNode('b'), makeNode('c')],
      [on('friend', 'a', { role: 'friend' }), on('foe', 'b', { role: 'foe' })],
    );
    const pod = makePod('p', {
      affinity: {
        podAffinity: {
          preferredDuringSchedulingIgnoredDuringExecution: [
            { weight: 10, podAffinityTerm: term({ role: 'friend' }, 'kubernetes.io/hostname') },
          ],
        },
        podAntiAffinity: {
          preferredDuringSchedulingIgnoredDuringExecution: [
            { weight: 10, podAffinityTerm: term({ role: 'foe' }, 'kubernetes.io/hostname') },
          ],
        },
      },
    });
    const state = new CycleState();
    assert.equal(ipa.preScore(state, pod, snap.nodes(), snap).code, Code.Success);
    const scores: NodeScore[] = snap.nodes().map((n) => ({ name: n.name, score: ipa.score(state, pod, n) }));
    ipa.normalize!(state, pod, scores);
    assert.deepEqual(Object.fromEntries(scores.map((s) => [s.name, s.score])), { a: 100, b: 0, c: 50 });
  });
});

describe('PodTopologySpread', () => {
  const spread = (maxSkew: number, extra: object = {}) => ({
    maxSkew,
    topologyKey: 'topology.kubernetes.io/zone',
    whenUnsatisfiable: 'DoNotSchedule',
    labelSelector: { matchLabels: { app: 'web' } },
    ...extra,
  });

  it('refuses a zone where the pod would exceed maxSkew over the least loaded zone', () => {
    const snap = snapshot(
      [zoned('a', 'z1'), zoned('b', 'z2'), zoned('nolabel')],
      [
        on('w1', 'a', { app: 'web' }),
        on('w2', 'a', { app: 'web' }),
        on('w3', 'b', { app: 'web' }),
        on('other', 'b', { app: 'other' }),
      ],
    );
    const pod = makePod('w4', { topologySpreadConstraints: [spread(1)] }, { app: 'web' });
    assert.deepEqual(filterAll(podTopologySpread, snap, pod), {
      a: ERR_CONSTRAINTS_NOT_MATCH,
      b: 'ok',
      nolabel: ERR_MISSING_LABEL,
    });
  });

  it('counts the least loaded domain as empty while fewer than minDomains exist', () => {
    const snap = snapshot([zoned('a', 'z1')], [on('w1', 'a', { app: 'web' })]);
    const pod = makePod('w2', { topologySpreadConstraints: [spread(1, { minDomains: 2 })] }, { app: 'web' });
    assert.deepEqual(filterAll(podTopologySpread, snap, pod), { a: ERR_CONSTRAINTS_NOT_MATCH });
    const relaxed = makePod('w2', { topologySpreadConstraints: [spread(1)] }, { app: 'web' });
    assert.deepEqual(filterAll(podTopologySpread, snap, relaxed), { a: 'ok' });
  });

  it('counts each constraint with its own selector, even when two share a topology key', () => {
    // Counting by key=value alone would add web and front pods together:
    // 2 in each zone, no skew. Each constraint counted by itself (upstream's
    // TpValueToMatchNum) sees 2 against 0 in one zone or the other.
    const snap = snapshot(
      [zoned('a', 'z1'), zoned('b', 'z2')],
      [
        on('w1', 'a', { app: 'web' }),
        on('w2', 'a', { app: 'web' }),
        on('f1', 'b', { tier: 'front' }),
        on('f2', 'b', { tier: 'front' }),
      ],
    );
    const pod = makePod(
      'both',
      {
        topologySpreadConstraints: [
          spread(1),
          spread(1, { labelSelector: { matchLabels: { tier: 'front' } } }),
        ],
      },
      { app: 'web', tier: 'front' },
    );
    assert.deepEqual(filterAll(podTopologySpread, snap, pod), {
      a: ERR_CONSTRAINTS_NOT_MATCH,
      b: ERR_CONSTRAINTS_NOT_MATCH,
    });
  });

  it('ScheduleAnyway scores emptier domains higher', () => {
    const snap = snapshot(
      [zoned('a', 'z1'), zoned('b', 'z2')],
      [on('w1', 'a', { app: 'web' }), on('w2', 'a', { app: 'web' })],
    );
    const pod = makePod(
      'w3',
      { topologySpreadConstraints: [spread(1, { whenUnsatisfiable: 'ScheduleAnyway' })] },
      { app: 'web' },
    );
    const state = new CycleState();
    assert.equal(podTopologySpread.preScore(state, pod, snap.nodes(), snap).code, Code.Success);
    const scores: NodeScore[] = snap
      .nodes()
      .map((n) => ({ name: n.name, score: podTopologySpread.score(state, pod, n) }));
    podTopologySpread.normalize!(state, pod, scores);
    const byName = Object.fromEntries(scores.map((s) => [s.name, s.score]));
    assert.ok(byName.b! > byName.a!, JSON.stringify(byName));
    assert.equal(byName.b, 100);
  });
});
