// DefaultPreemption against hand-built snapshots: which pods become victims
// on a node, which node is chosen, and what the pod is told when preemption
// cannot help. The scheduler-level behaviour (victims deleted, nomination,
// the preemptor bound) is tested through the API server in
// ../preemption.test.ts.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Node, Pod } from '../../api/types/core-v1.ts';
import type { PodDisruptionBudget } from '../../api/types/policy-v1.ts';
import type { EventRecorder } from '../../client/events.ts';
import type { InformerFactory } from '../../client/informer-factory.ts';
import { SchedulerCache } from '../cache.ts';
import { Code, CycleState, type FrameworkHandle, type Status } from '../framework.ts';
import { newPodInfo } from '../nodeinfo.ts';
import { runFiltersWithNominatedPods, runPreFilterExtensions } from '../nominator.ts';
import { buildProfile } from '../profile.ts';
import { makeNode, makePod } from '../testing.ts';
import { DEFAULT_WEIGHTS, defaultPlugins } from './index.ts';
import {
  type Candidate,
  defaultPreemption,
  dryRunPreemption,
  eligibleToPreemptOthers,
  filterPodsWithPDBViolation,
  numCandidates,
  pickOneNodeForPreemption,
  selectVictimsOnNode,
} from './preemption.ts';

const profile = buildProfile('default-scheduler', defaultPlugins({ clients: {} as never }), DEFAULT_WEIGHTS);

function snapshot(nodes: Node[], bound: Pod[] = []): SchedulerCache {
  const c = new SchedulerCache();
  for (const n of nodes) c.addOrUpdateNode(n);
  for (const p of bound) c.addOrUpdatePod(p);
  return c;
}

/** A pod with a priority and a cpu request, bound to `nodeName` when given, started at `started` (seconds). */
function pod(name: string, priority: number, cpu: string, nodeName?: string, started?: number): Pod {
  const p = makePod(name, {
    priority,
    ...(nodeName ? { nodeName } : {}),
    containers: [{ name: 'c', image: 'busybox', resources: { requests: { cpu } } }],
  });
  p.metadata.uid = `uid-${name}`;
  if (started !== undefined) p.status = { startTime: new Date(started * 1000).toISOString() };
  return p;
}

/** A framework handle over a snapshot: the default profile's filters, no API server. */
function handleFor(snap: SchedulerCache, opts: { pdbs?: PodDisruptionBudget[]; pods?: Pod[] } = {}) {
  const lists: Record<string, unknown[]> = { podDisruptionBudgets: opts.pdbs ?? [], pods: opts.pods ?? [] };
  const informers = {
    informer: (r: string) => ({
      indexer: {
        list: () => lists[r] ?? [],
        get: (key: string) =>
          (lists[r] as Pod[] | undefined)?.find((p) => `${p.metadata.namespace}/${p.metadata.name}` === key),
      },
    }),
  } as unknown as InformerFactory;
  const handle: FrameworkHandle = {
    snapshot: snap,
    schedulerName: 'default-scheduler',
    clients: {} as never,
    recorder: { event() {}, flush: async () => {} } satisfies EventRecorder,
    informers,
    runFilterPluginsWithNominatedPods: (state, p, node) =>
      runFiltersWithNominatedPods(profile.preFilter, profile.filter, state, p, node, []),
    runPreFilterExtensionRemovePod: (state, p, victim, node) =>
      runPreFilterExtensions(profile.preFilter, state, (pf) => pf.removePod?.(state, p, victim, node)),
    runPreFilterExtensionAddPod: (state, p, added, node) =>
      runPreFilterExtensions(profile.preFilter, state, (pf) => pf.addPod?.(state, p, added, node)),
    nominatedPodsForNode: () => [],
    rand: () => 0,
    now: () => new Date(1_000_000_000),
  };
  return handle;
}

const prepared = (p: Pod) => {
  const state = new CycleState();
  for (const pf of profile.preFilter) pf.preFilter(state, p, snapshot([]));
  return state;
};
const names = (victims: { pod: Pod }[]) => victims.map((v) => v.pod.metadata.name);

describe('DefaultPreemption: victims on a node (SelectVictimsOnNode)', () => {
  it('removes only lower-priority pods and reprieves the most important ones first', () => {
    const snap = snapshot(
      [makeNode('n', { cpu: '4' })],
      [
        pod('high', 10, '1', 'n'),
        pod('mid', 5, '1', 'n', 100),
        pod('low-old', 1, '1', 'n', 100),
        pod('low-new', 1, '1', 'n', 200),
      ],
    );
    const preemptor = pod('preemptor', 8, '2');
    const node = snap.get('n')!.clone();
    const r = selectVictimsOnNode(handleFor(snap), prepared(preemptor), preemptor, node, []);
    assert.equal(r.status.code, Code.Success);
    // With mid, low-old and low-new gone 3 cpus are free; mid goes back (2 free, still fits);
    // then neither low pod can stay.
    assert.deepEqual(names(r.victims), ['low-old', 'low-new']);
    assert.equal(r.numPDBViolations, 0);
    assert.equal(snap.get('n')!.pods.size, 4, 'the snapshot itself is untouched');
  });

  it('finds no victims when every pod is as important, and none when removing them all does not help', () => {
    const snap = snapshot(
      [makeNode('n', { cpu: '2' })],
      [pod('same', 8, '1', 'n'), pod('low', 1, '500m', 'n')],
    );
    const equal = selectVictimsOnNode(
      handleFor(snap),
      new CycleState(),
      pod('p', 1, '2'),
      snap.get('n')!.clone(),
      [],
    );
    assert.equal(equal.status.code, Code.UnschedulableAndUnresolvable);
    assert.deepEqual(equal.status.reasons, ['No preemption victims found for incoming pod']);
    const big = pod('big', 8, '2');
    const tooBig = selectVictimsOnNode(handleFor(snap), prepared(big), big, snap.get('n')!.clone(), []);
    assert.equal(tooBig.status.code, Code.Unschedulable, 'the pod at priority 8 still holds 1 cpu');
    assert.deepEqual(tooBig.victims, []);
  });

  it('reprieves PDB-covered pods first and counts the budgets it breaks', () => {
    const guarded = (name: string, nodeName: string) => {
      const p = pod(name, 1, '1', nodeName, 100);
      p.metadata.labels = { app: 'db' };
      return p;
    };
    const snap = snapshot(
      [makeNode('n', { cpu: '2' })],
      [guarded('db-1', 'n'), pod('plain', 1, '1', 'n', 100)],
    );
    const pdb: PodDisruptionBudget = {
      metadata: { name: 'db', namespace: 'default', generation: 1 },
      spec: { selector: { matchLabels: { app: 'db' } }, minAvailable: 1 },
      status: { observedGeneration: 1, disruptionsAllowed: 0 },
    };
    const budgets = [
      {
        pdb,
        budget: {
          expectedPods: 1,
          desiredHealthy: 1,
          currentHealthy: 1,
          disruptionsAllowed: 0,
          disruptedPods: {},
        },
      },
    ];
    const preemptor = pod('p', 10, '1');
    const r = selectVictimsOnNode(
      handleFor(snap),
      prepared(preemptor),
      preemptor,
      snap.get('n')!.clone(),
      budgets,
    );
    assert.deepEqual(names(r.victims), ['plain'], 'the budgeted pod is reprieved, the other one goes');
    assert.equal(r.numPDBViolations, 0);
    const all = pod('all', 10, '2');
    const r2 = selectVictimsOnNode(handleFor(snap), prepared(all), all, snap.get('n')!.clone(), budgets);
    assert.deepEqual(names(r2.victims).sort(), ['db-1', 'plain']);
    assert.equal(r2.numPDBViolations, 1);
  });

  it('spends a budget pod by pod and skips pods the API server already approved (disruptedPods)', () => {
    const db = (name: string) =>
      newPodInfo({
        ...pod(name, 1, '1', 'n'),
        metadata: { name, namespace: 'default', labels: { app: 'db' } },
      });
    const pdb: PodDisruptionBudget = {
      metadata: { name: 'db', namespace: 'default' },
      spec: { selector: { matchLabels: { app: 'db' } } },
    };
    const budget = {
      expectedPods: 3,
      desiredHealthy: 2,
      currentHealthy: 3,
      disruptionsAllowed: 1,
      disruptedPods: { 'db-0': 'now' },
    };
    const r = filterPodsWithPDBViolation([db('db-0'), db('db-1'), db('db-2')], [{ pdb, budget }]);
    assert.deepEqual(names(r.nonViolating), ['db-0', 'db-1']);
    assert.deepEqual(names(r.violating), ['db-2']);
  });

  it('a budget with an empty selector protects nothing here, as upstream preemption', () => {
    // Unlike eviction and the disruption controller (policy/v1: {} selects all).
    const p = newPodInfo({
      ...pod('x', 1, '1', 'n'),
      metadata: { name: 'x', namespace: 'default', labels: { a: 'b' } },
    });
    const budget = {
      expectedPods: 1,
      desiredHealthy: 1,
      currentHealthy: 1,
      disruptionsAllowed: 0,
      disruptedPods: {},
    };
    const pdb: PodDisruptionBudget = {
      metadata: { name: 'all', namespace: 'default' },
      spec: { selector: {} },
    };
    const r = filterPodsWithPDBViolation([p], [{ pdb, budget }]);
    assert.deepEqual(names(r.nonViolating), ['x']);
  });
});

describe('DefaultPreemption: candidate nodes (DryRunPreemption)', () => {
  const snap = snapshot(
    [
      makeNode('a', { cpu: '2' }),
      makeNode('b', { cpu: '2' }),
      makeNode('c', { cpu: '2' }),
      makeNode('d', { cpu: '2' }),
    ],
    [
      pod('a-mid', 50, '2', 'a'),
      pod('b-low', 5, '1', 'b'),
      pod('b-low2', 5, '1', 'b'),
      pod('c-low', 5, '2', 'c'),
      pod('d-peer', 100, '2', 'd'),
    ],
  );
  const preemptor = pod('p', 100, '2');
  const all = ['a', 'b', 'c', 'd'].map((n) => snap.get(n)!);

  it('dry-runs each node on copies and picks the cheapest: one victim of the lowest priority', () => {
    const { candidates, statuses } = dryRunPreemption(
      handleFor(snap),
      prepared(preemptor),
      preemptor,
      all,
      [],
      0,
      4,
    );
    assert.deepEqual(
      candidates.map((c) => [c.name, names(c.victims)]),
      [
        ['a', ['a-mid']],
        ['b', ['b-low', 'b-low2']],
        ['c', ['c-low']],
      ],
    );
    assert.deepEqual(statuses.get('d')?.reasons, ['No preemption victims found for incoming pod']);
    assert.equal(pickOneNodeForPreemption(candidates, 1_000_000_000)?.name, 'c');
    assert.equal(snap.get('b')!.pods.size, 2, 'the snapshot is untouched');
  });

  it('stops once it has enough candidates, starting at the offset', () => {
    const { candidates } = dryRunPreemption(handleFor(snap), prepared(preemptor), preemptor, all, [], 1, 2);
    assert.deepEqual(
      candidates.map((c) => c.name),
      ['b', 'c'],
    );
  });
});

describe('DefaultPreemption: choosing the node (pickOneNodeForPreemption)', () => {
  const c = (name: string, numPDBViolations: number, ...victims: Pod[]): Candidate => ({
    name,
    numPDBViolations,
    victims: victims.map(newPodInfo),
  });
  const pick = (...cs: Candidate[]) => pickOneNodeForPreemption(cs, 1_000_000_000)?.name;

  it('prefers fewest PDB violations, then the lowest highest victim priority', () => {
    assert.equal(pick(c('a', 1, pod('x', 1, '1')), c('b', 0, pod('y', 5, '1'))), 'b');
    assert.equal(pick(c('a', 0, pod('x', 5, '1')), c('b', 0, pod('y', 3, '1'), pod('z', 3, '1'))), 'b');
  });

  it('then the smallest sum of priorities, then the fewest victims, then the latest start', () => {
    assert.equal(
      pick(c('a', 0, pod('x', 3, '1'), pod('w', 2, '1')), c('b', 0, pod('y', 3, '1'), pod('z', 1, '1'))),
      'b',
    );
    assert.equal(
      pick(c('a', 0, pod('x', 3, '1'), pod('w', -5, '1')), c('b', 0, pod('y', 3, '1'))),
      'b',
      'priorities are shifted to be positive, so a negative one still adds cost',
    );
    assert.equal(pick(c('a', 0, pod('x', 0, '1'), pod('w', 0, '1')), c('b', 0, pod('y', 0, '1'))), 'b');
    assert.equal(pick(c('a', 0, pod('x', 3, '1', 'a', 100)), c('b', 0, pod('y', 3, '1', 'b', 500))), 'b');
    assert.equal(
      pick(c('a', 0, pod('x', 3, '1', 'a', 100)), c('b', 0, pod('y', 3, '1', 'b', 100))),
      'a',
      'ties keep the first',
    );
  });

  it('dry-runs at least 10% of the potential nodes and 100 of them, never more than there are', () => {
    assert.equal(numCandidates(50), 50);
    assert.equal(numCandidates(500), 100);
    assert.equal(numCandidates(5000), 500);
    assert.equal(numCandidates(5000, { minCandidateNodesPercentage: 1, minCandidateNodesAbsolute: 10 }), 50);
  });
});

describe('DefaultPreemption: PostFilter', () => {
  const run = async (snap: SchedulerCache, p: Pod, statuses: Map<string, Status>) =>
    defaultPreemption().postFilter(prepared(p), p, statuses, handleFor(snap, { pods: [p] }));

  it('says "No preemption victims found" when no node has lower-priority pods, and clears the nomination', async () => {
    const snap = snapshot(
      [makeNode('a', { cpu: '1' }), makeNode('b', { cpu: '1' })],
      [pod('x', 5, '1', 'a'), pod('y', 5, '1', 'b')],
    );
    const p = pod('p', 5, '1');
    const insufficient = { code: Code.Unschedulable, reasons: ['Insufficient cpu'] } as Status;
    const r = await run(
      snap,
      p,
      new Map([
        ['a', insufficient],
        ['b', insufficient],
      ]),
    );
    assert.equal(r.status.code, Code.Unschedulable);
    assert.deepEqual(r.status.reasons, [
      'preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod.',
    ]);
    assert.equal(r.nominatedNodeName, '');
  });

  it('says "Preemption is not helpful" for nodes rejected as unresolvable (taints, affinity, ...)', async () => {
    const snap = snapshot(
      [makeNode('a', { cpu: '1' }), makeNode('b', { cpu: '1' })],
      [pod('x', 1, '1', 'a')],
    );
    const p = pod('p', 5, '1');
    // a was not evaluated (a PreFilter narrowed the nodes to b), b rejected the pod outright.
    const none = await run(
      snap,
      p,
      new Map<string, Status>([['b', { code: Code.UnschedulableAndUnresolvable, reasons: ['x'] }]]),
    );
    assert.deepEqual(none.status.reasons, [
      'preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling.',
    ]);
  });

  it('is not eligible with preemptionPolicy Never, or while its victims on the nominated node terminate', () => {
    const never = pod('p', 5, '1');
    never.spec!.preemptionPolicy = 'Never';
    assert.deepEqual(eligibleToPreemptOthers(never, snapshot([]), undefined), {
      eligible: false,
      message: 'not eligible due to preemptionPolicy=Never.',
    });
    const victim = pod('victim', 1, '1', 'a');
    victim.metadata.deletionTimestamp = '2026-01-01T00:00:00Z';
    victim.status = {
      conditions: [{ type: 'DisruptionTarget', status: 'True', reason: 'PreemptionByScheduler' }],
    };
    const snap = snapshot([makeNode('a')], [victim]);
    const waiting = pod('p', 5, '1');
    waiting.status = { nominatedNodeName: 'a' };
    assert.deepEqual(eligibleToPreemptOthers(waiting, snap, undefined), {
      eligible: false,
      message: 'not eligible due to a terminating pod on the nominated node.',
    });
    assert.equal(
      eligibleToPreemptOthers(waiting, snap, { code: Code.UnschedulableAndUnresolvable, reasons: [] })
        .eligible,
      true,
      'a nominated node that now rejects the pod outright is given up',
    );
  });
});
