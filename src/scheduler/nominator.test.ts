// Nominated pods hold the room a preemption made: filtering counts them for
// pods of equal or lower priority only.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Pod } from '../api/types/core-v1.ts';
import { SchedulerCache } from './cache.ts';
import { Code, CycleState } from './framework.ts';
import { Nominator, runFiltersWithNominatedPods } from './nominator.ts';
import { DEFAULT_WEIGHTS, defaultPlugins } from './plugins/index.ts';
import { buildProfile } from './profile.ts';
import { makeNode, makePod } from './testing.ts';

const profile = buildProfile('default-scheduler', defaultPlugins({ clients: {} as never }), DEFAULT_WEIGHTS);

const pod = (name: string, priority: number, cpu: string): Pod => {
  const p = makePod(name, {
    priority,
    containers: [{ name: 'c', image: 'busybox', resources: { requests: { cpu } } }],
  });
  p.metadata.uid = `uid-${name}`;
  return p;
};

describe('nominated pods', () => {
  const cache = new SchedulerCache();
  cache.addOrUpdateNode(makeNode('n', { cpu: '2' }));
  const nominator = new Nominator();
  const preemptor = pod('preemptor', 1000, '2');
  nominator.set(preemptor, 'n');

  const filter = (p: Pod) => {
    const state = new CycleState();
    for (const pf of profile.preFilter) pf.preFilter(state, p, cache);
    return runFiltersWithNominatedPods(
      profile.preFilter,
      profile.filter,
      state,
      p,
      cache.get('n')!,
      nominator.podsForNode('n'),
    );
  };

  it('keep pods of equal or lower priority off the node they were nominated to', () => {
    const low = filter(pod('low', 10, '1'));
    assert.equal(low.code, Code.Unschedulable);
    assert.deepEqual(low.reasons, ['Insufficient cpu']);
    assert.equal(filter(pod('peer', 1000, '1')).code, Code.Unschedulable);
    assert.equal(cache.get('n')!.pods.size, 0, 'the node itself is not changed');
  });

  it('do not hold back more important pods, nor the nominated pod itself', () => {
    assert.equal(filter(pod('critical', 2000, '1')).code, Code.Success);
    assert.equal(filter(preemptor).code, Code.Success);
  });

  it('follow status.nominatedNodeName, keep an unwritten nomination, and are forgotten when cleared', () => {
    const n = new Nominator();
    const p = pod('p', 5, '1');
    const nominatedToA = { ...p, status: { nominatedNodeName: 'a' } };
    n.update(undefined, nominatedToA);
    assert.deepEqual(
      n.podsForNode('a').map((i) => i.pod.metadata.name),
      ['p'],
    );
    n.set(p, 'b');
    assert.equal(n.nodeOf(p), 'b');
    assert.deepEqual(n.podsForNode('a'), []);
    // An update without a nomination keeps one made here and not yet written...
    n.update(p, p);
    assert.equal(n.nodeOf(p), 'b');
    // ...but one removed through the API is gone.
    n.update(nominatedToA, p);
    assert.equal(n.nodeOf(p), undefined);
    n.set(p, 'c');
    n.set(p, '');
    assert.equal(n.nodeOf(p), undefined);
  });
});
