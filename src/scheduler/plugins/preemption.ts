// DefaultPreemption (PostFilter), after upstream's
// pkg/scheduler/framework/plugins/defaultpreemption/default_preemption.go and
// the evaluator in pkg/scheduler/framework/preemption/preemption.go.
//
// When no node fits a pod, preemption looks for nodes where evicting pods of
// lower priority would make it fit. On each such node it removes every
// lower-priority pod, checks the pod fits, then puts back ("reprieves") as
// many as it can, most important first, so as few and as unimportant pods as
// possible are victims. Among the candidate nodes it picks one by upstream's
// criteria, deletes the victims there (marking them with the DisruptionTarget
// condition first) and nominates the node for the pod, which then waits for
// the victims to go; the deletions requeue it.

import { type DisruptionBudget, disruptionBudget, pdbMatches, pdbSelector } from '../../api/disruption.ts';
import { rfc3339 } from '../../api/meta.ts';
import type { Pod, PodCondition } from '../../api/types/core-v1.ts';
import type { PodDisruptionBudget } from '../../api/types/policy-v1.ts';
import {
  Code,
  type CycleState,
  type FrameworkHandle,
  type PodInfo,
  type PostFilterPlugin,
  type Status,
  unresolvable,
  unschedulable,
} from '../framework.ts';
import type { NodeInfo } from '../nodeinfo.ts';
import { FitError } from '../scheduler.ts';

export const NAME = 'DefaultPreemption';
export const ERR_NO_VICTIMS = 'No preemption victims found for incoming pod';
export const ERR_NOT_HELPFUL = 'Preemption is not helpful for scheduling';
/** upstream's v1.PodReasonPreemptionByScheduler */
export const REASON_PREEMPTION_BY_SCHEDULER = 'PreemptionByScheduler';

export interface DefaultPreemptionArgs {
  /** At least this share of the potential nodes is dry-run (upstream default 10). */
  minCandidateNodesPercentage?: number;
  /** ... and at least this many (upstream default 100). */
  minCandidateNodesAbsolute?: number;
}

/** A node where preemption would work, and what it costs there. */
export interface Candidate {
  name: string;
  /** Most important first. */
  victims: PodInfo[];
  numPDBViolations: number;
}

const priorityOf = (pod: Pod): number => pod.spec?.priority ?? 0;

/** When a pod started, for ordering victims; a pod not started yet counts as starting now (upstream's GetPodStartTime). */
const startTimeOf = (pod: Pod, now: number): number => {
  const t = pod.status?.startTime ? Date.parse(pod.status.startTime) : Number.NaN;
  return Number.isNaN(t) ? now : t;
};

/** upstream's MoreImportantPod: higher priority, then the one that started earlier. */
export function moreImportant(a: Pod, b: Pod, now = Date.now()): boolean {
  const pa = priorityOf(a);
  const pb = priorityOf(b);
  if (pa !== pb) return pa > pb;
  return startTimeOf(a, now) < startTimeOf(b, now);
}

/** How many nodes to dry-run: a share of the potential ones, at least an absolute number, at most all. */
export function numCandidates(numNodes: number, args: DefaultPreemptionArgs = {}): number {
  const pct = args.minCandidateNodesPercentage ?? 10;
  const abs = args.minCandidateNodesAbsolute ?? 100;
  let n = Math.trunc((numNodes * pct) / 100);
  if (n < abs) n = abs;
  return Math.min(n, numNodes);
}

/** A victim is a pod being deleted because this scheduler preempted it. */
const terminatingByPreemption = (pod: Pod): boolean =>
  !!pod.metadata.deletionTimestamp &&
  !!pod.status?.conditions?.some(
    (c) =>
      c.type === 'DisruptionTarget' && c.status === 'True' && c.reason === REASON_PREEMPTION_BY_SCHEDULER,
  );

/**
 * upstream's PodEligibleToPreemptOthers: never with preemptionPolicy Never;
 * and not again while victims of its last preemption are still terminating on
 * its nominated node (unless that node now rejects it outright).
 */
export function eligibleToPreemptOthers(
  pod: Pod,
  snapshot: FrameworkHandle['snapshot'],
  nominatedNodeStatus: Status | undefined,
): { eligible: boolean; message?: string } {
  if (pod.spec?.preemptionPolicy === 'Never') {
    return { eligible: false, message: 'not eligible due to preemptionPolicy=Never.' };
  }
  const nominated = pod.status?.nominatedNodeName;
  if (nominated) {
    if (nominatedNodeStatus?.code === Code.UnschedulableAndUnresolvable) return { eligible: true };
    const node = snapshot.get(nominated);
    for (const p of node?.pods.values() ?? []) {
      if (priorityOf(p.pod) < priorityOf(pod) && terminatingByPreemption(p.pod)) {
        return { eligible: false, message: 'not eligible due to a terminating pod on the nominated node.' };
      }
    }
  }
  return { eligible: true };
}

/**
 * Splits pods into those whose eviction would break a PodDisruptionBudget and
 * those it would not, spending each budget's allowed disruptions in order
 * (upstream's filterPodsWithPDBViolation). Pods already listed in a budget's
 * disruptedPods were approved by the API server and cost nothing.
 */
export function filterPodsWithPDBViolation(
  pods: PodInfo[],
  pdbs: { pdb: PodDisruptionBudget; budget: DisruptionBudget }[],
): { violating: PodInfo[]; nonViolating: PodInfo[] } {
  const allowed = pdbs.map((p) => p.budget.disruptionsAllowed);
  const violating: PodInfo[] = [];
  const nonViolating: PodInfo[] = [];
  for (const info of pods) {
    let violated = false;
    if (Object.keys(info.pod.metadata.labels ?? {}).length > 0) {
      pdbs.forEach(({ pdb, budget }, i) => {
        // upstream: "A PDB with a nil or empty selector matches nothing" here.
        if (pdbSelector(pdb)?.empty() !== false || !pdbMatches(pdb, info.pod)) return;
        if (info.pod.metadata.name && info.pod.metadata.name in budget.disruptedPods) return;
        allowed[i]!--;
        if (allowed[i]! < 0) violated = true;
      });
    }
    (violated ? violating : nonViolating).push(info);
  }
  return { violating, nonViolating };
}

/**
 * upstream's SelectVictimsOnNode, on a copy of the node and cycle state:
 * remove every lower-priority pod; if the pod then fits, reprieve victims,
 * PDB-violating ones first, each group most important first; whatever cannot
 * be reprieved is a victim.
 */
export function selectVictimsOnNode(
  handle: FrameworkHandle,
  state: CycleState,
  pod: Pod,
  node: NodeInfo,
  pdbs: { pdb: PodDisruptionBudget; budget: DisruptionBudget }[],
): { victims: PodInfo[]; numPDBViolations: number; status: Status } {
  const now = handle.now().getTime();
  const remove = (p: PodInfo) => {
    node.removePod(`${p.pod.metadata.namespace}/${p.pod.metadata.name}`);
    return handle.runPreFilterExtensionRemovePod(state, pod, p, node);
  };
  const add = (p: PodInfo) => {
    node.addPod(p);
    return handle.runPreFilterExtensionAddPod(state, pod, p, node);
  };
  const potential: PodInfo[] = [];
  for (const p of [...node.pods.values()]) {
    if (priorityOf(p.pod) < priorityOf(pod)) {
      potential.push(p);
      const s = remove(p);
      if (s.code !== Code.Success) return { victims: [], numPDBViolations: 0, status: s };
    }
  }
  if (potential.length === 0)
    return { victims: [], numPDBViolations: 0, status: unresolvable(ERR_NO_VICTIMS) };
  // Not even with every lower-priority pod gone. (A pod needing affinity to
  // one of the victims is not considered, as upstream.)
  const fits = handle.runFilterPluginsWithNominatedPods(state, pod, node);
  if (fits.code !== Code.Success) return { victims: [], numPDBViolations: 0, status: fits };

  potential.sort((a, b) =>
    moreImportant(a.pod, b.pod, now) ? -1 : moreImportant(b.pod, a.pod, now) ? 1 : 0,
  );
  const { violating, nonViolating } = filterPodsWithPDBViolation(potential, pdbs);
  const victims: PodInfo[] = [];
  let numPDBViolations = 0;
  const reprieve = (p: PodInfo): boolean => {
    add(p);
    if (handle.runFilterPluginsWithNominatedPods(state, pod, node).code === Code.Success) return true;
    remove(p);
    victims.push(p);
    return false;
  };
  for (const p of violating) if (!reprieve(p)) numPDBViolations++;
  for (const p of nonViolating) reprieve(p);
  if (violating.length && nonViolating.length) {
    victims.sort((a, b) =>
      moreImportant(a.pod, b.pod, now) ? -1 : moreImportant(b.pod, a.pod, now) ? 1 : 0,
    );
  }
  return { victims, numPDBViolations, status: { code: Code.Success, reasons: [] } };
}

/**
 * upstream's pickOneNodeForPreemption: fewest PDB violations, then the lowest
 * highest-priority victim, the smallest sum of victim priorities, the fewest
 * victims, and the latest start among the most important victims. Ties keep
 * the first candidate.
 */
export function pickOneNodeForPreemption(candidates: Candidate[], now = Date.now()): Candidate | undefined {
  if (candidates.length === 0) return undefined;
  // Priorities are shifted to be positive, as upstream (int32 range), so sums compare sanely.
  const shifted = (p: number) => p + 2 ** 31;
  const earliestStartOfMostImportant = (c: Candidate) => {
    const top = priorityOf(c.victims[0]!.pod);
    let earliest = Number.POSITIVE_INFINITY;
    for (const v of c.victims) {
      if (priorityOf(v.pod) === top) earliest = Math.min(earliest, startTimeOf(v.pod, now));
    }
    return earliest;
  };
  const scoreFuncs: ((c: Candidate) => number)[] = [
    (c) => -c.numPDBViolations,
    (c) => -priorityOf(c.victims[0]!.pod),
    (c) => -c.victims.reduce((sum, v) => sum + shifted(priorityOf(v.pod)), 0),
    (c) => -c.victims.length,
    earliestStartOfMostImportant,
  ];
  let best = candidates;
  for (const score of scoreFuncs) {
    if (best.length === 1) break;
    let max = Number.NEGATIVE_INFINITY;
    let next: Candidate[] = [];
    for (const c of best) {
      const s = score(c);
      if (s > max) {
        max = s;
        next = [c];
      } else if (s === max) next.push(c);
    }
    best = next;
  }
  return best[0];
}

/** The PDBs with their current budgets, read from the handle's informers. */
function currentPDBs(handle: FrameworkHandle): { pdb: PodDisruptionBudget; budget: DisruptionBudget }[] {
  const pdbs = handle.informers.informer('podDisruptionBudgets').indexer.list();
  if (pdbs.length === 0) return [];
  const pods = handle.informers.informer('pods').indexer.list();
  return pdbs.map((pdb) =>
    // Budgets are computed from pods only when no disruption controller keeps their status.
    ({
      pdb,
      budget: disruptionBudget(
        pdb,
        pods.filter((p) => p.metadata.namespace === pdb.metadata.namespace),
      ),
    }),
  );
}

/**
 * upstream's DryRunPreemption: from a random offset, round-robin over the
 * nodes whose rejection preemption could fix, find victims on copies, until
 * enough candidates that violate no PDB are found.
 */
export function dryRunPreemption(
  handle: FrameworkHandle,
  state: CycleState,
  pod: Pod,
  potentialNodes: NodeInfo[],
  pdbs: { pdb: PodDisruptionBudget; budget: DisruptionBudget }[],
  offset: number,
  wanted: number,
): { candidates: Candidate[]; statuses: Map<string, Status> } {
  const nonViolating: Candidate[] = [];
  const violating: Candidate[] = [];
  const statuses = new Map<string, Status>();
  const n = potentialNodes.length;
  for (let i = 0; i < n; i++) {
    const node = potentialNodes[(offset + i) % n]!;
    const copy = node.clone();
    const r = selectVictimsOnNode(handle, state.clone(), pod, copy, pdbs);
    if (r.status.code === Code.Success && r.victims.length > 0) {
      const c = { name: node.name, victims: r.victims, numPDBViolations: r.numPDBViolations };
      (r.numPDBViolations === 0 ? nonViolating : violating).push(c);
      if (nonViolating.length > 0 && nonViolating.length + violating.length >= wanted) break;
      continue;
    }
    statuses.set(node.name, r.status);
  }
  return { candidates: [...nonViolating, ...violating], statuses };
}

/** The reasons of a what-if FitError: "0/3 nodes are available: 3 No preemption victims found for incoming pod." */
function noCandidatesMessage(numAllNodes: number, statuses: Map<string, Status>, allNames: string[]): string {
  const all = new Map<string, Status>();
  for (const name of allNames) all.set(name, statuses.get(name) ?? unresolvable(ERR_NOT_HELPFUL));
  return new FitError(numAllNodes, all).message;
}

export function defaultPreemption(args: DefaultPreemptionArgs = {}): PostFilterPlugin {
  return {
    name: NAME,
    async postFilter(state, queuedPod, statuses, handle) {
      // The latest copy: its nominatedNodeName may have changed since it was queued.
      const pod =
        handle.informers
          .informer('pods')
          .indexer.get(`${queuedPod.metadata.namespace}/${queuedPod.metadata.name}`) ?? queuedPod;
      const nominated = pod.status?.nominatedNodeName;
      const eligible = eligibleToPreemptOthers(
        pod,
        handle.snapshot,
        nominated ? statuses.get(nominated) : undefined,
      );
      if (!eligible.eligible) return { status: unschedulable(`preemption: ${eligible.message}`) };

      const all = handle.snapshot.nodes();
      // Only nodes that rejected the pod with a plain Unschedulable: for the
      // others (taints, node affinity, ...) evicting pods changes nothing.
      const potential = all.filter((n) => statuses.get(n.name)?.code === Code.Unschedulable);
      let candidates: Candidate[] = [];
      let dryRunStatuses = new Map<string, Status>();
      if (potential.length > 0) {
        const offset = Math.floor(handle.rand() * potential.length);
        ({ candidates, statuses: dryRunStatuses } = dryRunPreemption(
          handle,
          state,
          pod,
          potential,
          currentPDBs(handle),
          offset,
          numCandidates(potential.length, args),
        ));
      }
      if (candidates.length === 0) {
        const message = noCandidatesMessage(
          all.length,
          dryRunStatuses,
          all.map((n) => n.name),
        );
        // '' clears a nomination left from an earlier attempt.
        return { status: unschedulable(`preemption: ${message}`), nominatedNodeName: '' };
      }
      const best = pickOneNodeForPreemption(candidates, handle.now().getTime());
      if (!best) return { status: unschedulable('preemption: no candidate node for preemption') };
      await prepareCandidate(handle, best, pod);
      return { status: { code: Code.Success, reasons: [] }, nominatedNodeName: best.name };
    },
  };
}

/**
 * upstream's prepareCandidate: each victim gets DisruptionTarget
 * (PreemptionByScheduler) and is deleted, with a Preempted event; pods of
 * lower priority nominated to the same node lose their nomination, since
 * they may no longer fit there.
 */
async function prepareCandidate(handle: FrameworkHandle, c: Candidate, pod: Pod): Promise<void> {
  const { clients } = handle;
  await Promise.all(
    c.victims.map(async ({ pod: victim }) => {
      const ns = victim.metadata.namespace;
      const name = victim.metadata.name ?? '';
      const uid = victim.metadata.uid;
      const condition: PodCondition = {
        type: 'DisruptionTarget',
        status: 'True',
        reason: REASON_PREEMPTION_BY_SCHEDULER,
        message: `${handle.schedulerName}: preempting to accommodate a higher priority pod`,
        lastTransitionTime: rfc3339(handle.now()),
      };
      try {
        await clients.pods.patch(
          ns,
          name,
          'strategic',
          { status: { conditions: [condition] } },
          { subresource: 'status' },
        );
        await clients.pods.delete(ns, name, uid ? { preconditions: { uid } } : {});
      } catch (err) {
        // Already gone is what we wanted.
        if ((err as { code?: number }).code !== 404) throw err;
      }
      handle.recorder.event(
        victim,
        'Normal',
        'Preempted',
        `Preempted by pod ${pod.metadata.uid} on node ${c.name}`,
      );
    }),
  );
  const lower = handle
    .nominatedPodsForNode(c.name)
    .filter((p) => p.pod.metadata.uid !== pod.metadata.uid && priorityOf(p.pod) < priorityOf(pod));
  await Promise.all(
    lower.map(async ({ pod: p }) => {
      try {
        await clients.pods.patch(
          p.metadata.namespace,
          p.metadata.name ?? '',
          'merge',
          { status: { nominatedNodeName: null } },
          { subresource: 'status' },
        );
      } catch {
        // Best effort, as upstream: the pod's next cycle corrects it.
      }
    }),
  );
}
