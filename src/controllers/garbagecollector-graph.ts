// The garbage collector's dependency graph, as upstream's GraphBuilder
// (pkg/controller/garbagecollector/graph_builder.go and graph.go): one node
// per object uid, edges from every ownerReference, built from the informer
// events of every resource the collector monitors. It never talks to the API
// server; it decides which nodes the workers must look at (attemptToDelete,
// attemptToOrphan) and they verify against the live objects.
//
// An ownerReference to a uid the graph has not seen yet creates a "virtual"
// node for the owner. A worker then checks with a live GET whether that
// owner exists; if not, a virtual delete event removes the node and its
// dependents are looked at again (they may be garbage now).

import { jsonEqual, type KubeObject, type OwnerReference } from '../api/meta.ts';

export const FINALIZER_ORPHAN = 'orphan';
export const FINALIZER_FOREGROUND = 'foregroundDeletion';

/** Where an object is: its ownerReference coordinates plus the namespace (upstream's objectReference). */
export interface ObjectIdentity {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  /** '' for cluster-scoped objects, and for virtual owners of cluster-scoped dependents. */
  namespace: string;
}

export interface GraphNode {
  identity: ObjectIdentity;
  /** The object's ownerReferences as last observed. */
  owners: OwnerReference[];
  dependents: Set<GraphNode>;
  /** Seen through an informer; false for a virtual node made from an ownerReference. */
  observed: boolean;
  /** Has a deletionTimestamp: a one-way trip, the worker waits for the final delete. */
  beingDeleted: boolean;
  /** Being deleted with the foregroundDeletion finalizer: its blocking dependents go first. */
  deletingDependents: boolean;
}

/** What the graph asks the collector's workers to do. */
export interface GraphQueues {
  attemptToDelete(n: GraphNode): void;
  attemptToOrphan(n: GraphNode): void;
  /** Upstream's reportInvalidNamespaceOwnerRef: a Warning event on the dependent. */
  invalidNamespaceOwnerRef(dependent: GraphNode, owner: OwnerReference): void;
}

export type GraphEvent =
  | { type: 'add' | 'update'; obj: KubeObject; old?: KubeObject; apiVersion: string; kind: string }
  | { type: 'delete'; obj: KubeObject; apiVersion: string; kind: string }
  /** From a worker: the API server says this identity does not exist. */
  | { type: 'virtualDelete'; identity: ObjectIdentity };

export const identityKey = (i: ObjectIdentity): string =>
  `${i.apiVersion}|${i.kind}|${i.namespace}|${i.name}|${i.uid}`;

export const sameIdentity = (a: ObjectIdentity, b: ObjectIdentity): boolean =>
  identityKey(a) === identityKey(b);

const hasFinalizer = (obj: KubeObject, f: string) => (obj.metadata.finalizers ?? []).includes(f);
const beingDeleted = (obj: KubeObject) => !!obj.metadata.deletionTimestamp;

/** Does the reference point at exactly these coordinates (upstream's ownerReferenceMatchesCoordinates)? */
const refMatches = (ref: OwnerReference, i: ObjectIdentity) =>
  ref.uid === i.uid && ref.name === i.name && ref.kind === i.kind && ref.apiVersion === i.apiVersion;

/**
 * Remembers owners verified absent (upstream's absentOwnerCache, an LRU of
 * 500), so dependents of one deleted owner do not each GET it again.
 */
export class AbsentOwnerCache {
  readonly #keys = new Map<string, true>();
  readonly #size: number;
  constructor(size = 500) {
    this.#size = size;
  }
  add(i: ObjectIdentity): void {
    const k = identityKey(i);
    this.#keys.delete(k);
    this.#keys.set(k, true);
    if (this.#keys.size > this.#size) this.#keys.delete(this.#keys.keys().next().value as string);
  }
  has(i: ObjectIdentity): boolean {
    const k = identityKey(i);
    if (!this.#keys.has(k)) return false;
    this.#keys.delete(k);
    this.#keys.set(k, true);
    return true;
  }
}

export class DependencyGraph {
  readonly uidToNode = new Map<string, GraphNode>();
  readonly absentOwnerCache = new AbsentOwnerCache();
  readonly #queues: GraphQueues;

  constructor(queues: GraphQueues) {
    this.#queues = queues;
  }

  /**
   * Applies one event. Informer handlers call it synchronously, which makes
   * it the single graph-changes worker upstream runs (nothing else mutates
   * the graph, and JavaScript runs one handler at a time).
   */
  process(event: GraphEvent): void {
    if (event.type === 'virtualDelete') {
      this.#delete(event.identity, true);
      return;
    }
    const obj = event.obj;
    const identity: ObjectIdentity = {
      apiVersion: event.apiVersion,
      kind: event.kind,
      name: obj.metadata.name ?? '',
      uid: obj.metadata.uid ?? '',
      namespace: obj.metadata.namespace ?? '',
    };
    if (!identity.uid) return;
    if (event.type === 'delete') {
      this.#delete(identity, false);
      return;
    }
    let existing = this.uidToNode.get(identity.uid);
    if (existing && !existing.observed) {
      // The real object behind a virtual node. Dependents that referred to it
      // with other coordinates (another namespace, kind or name) may hold an
      // invalid reference: let the workers verify them.
      if (!sameIdentity(existing.identity, identity)) {
        const { nonmatching } = partitionDependents(existing.dependents, identity);
        for (const dep of nonmatching) {
          if (identity.namespace && dep.identity.namespace !== identity.namespace) {
            const ref = dep.owners.find((r) => r.uid === identity.uid);
            if (ref) this.#queues.invalidNamespaceOwnerRef(dep, ref);
          }
          this.#queues.attemptToDelete(dep);
        }
        existing.identity = identity;
      }
      existing.observed = true;
    }
    const owners = obj.metadata.ownerReferences ?? [];
    if (!existing) {
      existing = {
        identity,
        owners,
        dependents: new Set(),
        observed: true,
        beingDeleted: beingDeleted(obj),
        deletingDependents: beingDeleted(obj) && hasFinalizer(obj, FINALIZER_FOREGROUND),
      };
      this.uidToNode.set(identity.uid, existing);
      if (this.#addDependentToOwners(existing, owners)) this.#queues.attemptToDelete(existing);
    } else {
      const { added, removed, changed } = referencesDiffs(existing.owners, owners);
      if (added.length || removed.length || changed.length) {
        this.#addUnblockedOwnersToDeleteQueue(removed, changed);
        existing.owners = owners;
        const suspicious = this.#addDependentToOwners(existing, added);
        this.#removeDependentFromOwners(existing, removed);
        if (suspicious) this.#queues.attemptToDelete(existing);
      }
      if (beingDeleted(obj)) existing.beingDeleted = true;
    }
    this.#processTransitions(event.old, obj, existing);
  }

  /** Dependents whose reference to n blocks n's foreground deletion. */
  blockingDependents(n: GraphNode): GraphNode[] {
    return [...n.dependents].filter((dep) =>
      dep.owners.some((r) => r.uid === n.identity.uid && r.blockOwnerDeletion),
    );
  }

  // Upstream's processTransitions: an owner that just started deleting with
  // the orphan finalizer goes to attemptToOrphan; one that just started a
  // foreground deletion has its dependents looked at (they must go first).
  #processTransitions(old: KubeObject | undefined, obj: KubeObject, n: GraphNode): void {
    if (startsWith(old, obj, FINALIZER_ORPHAN)) {
      this.#queues.attemptToOrphan(n);
      return;
    }
    if (startsWith(old, obj, FINALIZER_FOREGROUND)) {
      n.deletingDependents = true;
      for (const dep of n.dependents) this.#queues.attemptToDelete(dep);
      this.#queues.attemptToDelete(n);
    }
  }

  /**
   * Links n into its owners' dependents, creating virtual owners as needed.
   * Returns true when a reference looks invalid (another namespace, other
   * coordinates), so the caller has n verified by a worker.
   */
  #addDependentToOwners(n: GraphNode, refs: OwnerReference[]): boolean {
    let suspicious = false;
    for (const ref of refs) {
      let owner = this.uidToNode.get(ref.uid);
      if (!owner) {
        owner = {
          identity: {
            apiVersion: ref.apiVersion,
            kind: ref.kind,
            name: ref.name,
            uid: ref.uid,
            namespace: n.identity.namespace,
          },
          owners: [],
          dependents: new Set(),
          observed: false,
          beingDeleted: false,
          deletingDependents: false,
        };
        this.uidToNode.set(ref.uid, owner);
        owner.dependents.add(n);
        // The worker GETs it and removes the node if there is no such owner.
        this.#queues.attemptToDelete(owner);
        continue;
      }
      owner.dependents.add(n);
      if (suspicious) continue;
      const ownerNamespaced = owner.identity.namespace !== '';
      if (ownerNamespaced && owner.identity.namespace !== n.identity.namespace) {
        // A namespaced owner in another namespace: ownerReferences cannot
        // point across namespaces, so this reference resolves to nothing.
        if (owner.observed) this.#queues.invalidNamespaceOwnerRef(n, ref);
        suspicious = true;
      } else if (!refMatches(ref, owner.identity)) {
        suspicious = true;
      } else if (!ownerNamespaced && owner.identity.namespace !== n.identity.namespace && !owner.observed) {
        suspicious = true;
      }
    }
    return suspicious;
  }

  #removeDependentFromOwners(n: GraphNode, refs: OwnerReference[]): void {
    for (const ref of refs) this.uidToNode.get(ref.uid)?.dependents.delete(n);
  }

  // A dependent that stopped blocking an owner's foreground deletion may have
  // been the last thing it waited for.
  #addUnblockedOwnersToDeleteQueue(
    removed: OwnerReference[],
    changed: { oldRef: OwnerReference; newRef: OwnerReference }[],
  ): void {
    for (const ref of removed) {
      const owner = ref.blockOwnerDeletion ? this.uidToNode.get(ref.uid) : undefined;
      if (owner) this.#queues.attemptToDelete(owner);
    }
    for (const { oldRef, newRef } of changed) {
      const owner = oldRef.blockOwnerDeletion && !newRef.blockOwnerDeletion && this.uidToNode.get(newRef.uid);
      if (owner) this.#queues.attemptToDelete(owner);
    }
  }

  #delete(identity: ObjectIdentity, virtual: boolean): void {
    const existing = this.uidToNode.get(identity.uid);
    if (!existing) return;
    let remove = true;
    if (virtual) {
      // A worker found no object at these coordinates. Dependents that name
      // the owner differently keep the node alive under their coordinates.
      const { matching, nonmatching } = partitionDependents(existing.dependents, identity);
      if (!existing.observed) {
        if (nonmatching.length > 0) {
          remove = false;
          if (matching.length > 0) {
            this.absentOwnerCache.add(identity);
            for (const dep of matching) this.#queues.attemptToDelete(dep);
          }
          if (sameIdentity(existing.identity, identity)) {
            const alternative = alternateOwnerIdentity(nonmatching, identity);
            if (alternative) {
              existing.identity = alternative;
              this.#queues.attemptToDelete(existing);
            }
          }
        }
      } else if (!sameIdentity(existing.identity, identity)) {
        // The real object exists elsewhere: only references naming these
        // coordinates are dangling.
        remove = false;
        if (matching.length > 0) {
          this.absentOwnerCache.add(identity);
          for (const dep of matching) this.#queues.attemptToDelete(dep);
        }
      }
    }
    if (!remove) return;
    this.uidToNode.delete(identity.uid);
    this.#removeDependentFromOwners(existing, existing.owners);
    if (existing.dependents.size > 0) this.absentOwnerCache.add(identity);
    // Its dependents may be garbage now; owners deleting in the foreground
    // may have been waiting for this one.
    for (const dep of existing.dependents) this.#queues.attemptToDelete(dep);
    for (const ref of existing.owners) {
      const owner = this.uidToNode.get(ref.uid);
      if (owner?.deletingDependents) this.#queues.attemptToDelete(owner);
    }
  }
}

/** Did the object just start being deleted with this finalizer (upstream's deletionStartsWithFinalizer)? */
function startsWith(old: KubeObject | undefined, obj: KubeObject, finalizer: string): boolean {
  if (!beingDeleted(obj) || !hasFinalizer(obj, finalizer)) return false;
  return !old || !beingDeleted(old) || !hasFinalizer(old, finalizer);
}

/** Dependents whose reference to the owner's uid names these coordinates, and those naming others. */
function partitionDependents(dependents: Iterable<GraphNode>, owner: ObjectIdentity) {
  const matching: GraphNode[] = [];
  const nonmatching: GraphNode[] = [];
  for (const dep of dependents) {
    let match = false;
    let mismatch = false;
    if (owner.namespace && owner.namespace !== dep.identity.namespace) mismatch = true;
    else {
      for (const ref of dep.owners) {
        if (ref.uid !== owner.uid) continue;
        if (refMatches(ref, owner)) match = true;
        else mismatch = true;
      }
    }
    if (match) matching.push(dep);
    if (mismatch) nonmatching.push(dep);
  }
  return { matching, nonmatching };
}

/**
 * Another way the dependents name a virtual owner, to try next. As upstream,
 * the candidates are ordered so every coordinate is tried once: the first
 * after the one verified absent, wrapping around.
 */
function alternateOwnerIdentity(
  deps: GraphNode[],
  verifiedAbsent: ObjectIdentity,
): ObjectIdentity | undefined {
  const candidates = new Map<string, ObjectIdentity>();
  for (const dep of deps) {
    for (const ref of dep.owners) {
      if (ref.uid !== verifiedAbsent.uid) continue;
      const i = {
        apiVersion: ref.apiVersion,
        kind: ref.kind,
        name: ref.name,
        uid: ref.uid,
        namespace: dep.identity.namespace,
      };
      candidates.set(identityKey(i), i);
    }
  }
  const keys = [...candidates.keys()].sort();
  const absent = identityKey(verifiedAbsent);
  const next = keys.find((k) => k > absent) ?? keys.find((k) => k !== absent);
  return next ? candidates.get(next) : undefined;
}

function referencesDiffs(old: OwnerReference[], next: OwnerReference[]) {
  const oldByUID = new Map(old.map((r) => [r.uid, r]));
  const nextByUID = new Map(next.map((r) => [r.uid, r]));
  const added = next.filter((r) => !oldByUID.has(r.uid));
  const removed = old.filter((r) => !nextByUID.has(r.uid));
  const changed: { oldRef: OwnerReference; newRef: OwnerReference }[] = [];
  for (const r of next) {
    const o = oldByUID.get(r.uid);
    if (o && !jsonEqual(o, r)) changed.push({ oldRef: o, newRef: r });
  }
  return { added, removed, changed };
}
