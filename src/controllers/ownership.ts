// Ownership of dependents, as upstream's ControllerRefManager: a controller
// adopts orphans that match its selector, releases the objects it owns that
// no longer match, and never touches objects another controller owns.
// Adoption and release are patches carrying the dependent's uid, so they fail
// rather than land on a different object of the same name.

import { isApiError } from '../api/errors.ts';
import type { Selector } from '../api/labels.ts';
import type { KubeObject, OwnerReference } from '../api/meta.ts';
import type { ResourceClient } from '../client/client.ts';

export const controllerRefOf = (obj: KubeObject): OwnerReference | undefined =>
  obj.metadata.ownerReferences?.find((r) => r.controller);

/** The ownerReference a controller puts on what it creates. */
export function ownerRef(owner: KubeObject, apiVersion: string, kind: string): OwnerReference {
  return {
    apiVersion,
    kind,
    name: owner.metadata.name ?? '',
    uid: owner.metadata.uid ?? '',
    controller: true,
    blockOwnerDeletion: true,
  };
}

export interface ClaimOptions<T extends KubeObject> {
  owner: KubeObject;
  ownerApiVersion: string;
  ownerKind: string;
  selector: Selector;
  client: ResourceClient<T>;
  /**
   * Before the first adoption, re-reads the owner from the API server (not
   * the cache) and refuses to adopt if it is being deleted or was replaced:
   * upstream's RecheckDeletionTimestamp.
   */
  recheckOwner: () => Promise<KubeObject | undefined>;
  /** Extra condition for adoption (e.g. a pod that is not being deleted). */
  adoptable?: (obj: T) => boolean;
}

/**
 * Returns the objects the owner controls after adopting and releasing.
 * Errors other than NotFound/Conflict on the dependents propagate (retry).
 */
export async function claimObjects<T extends KubeObject>(
  candidates: T[],
  opts: ClaimOptions<T>,
): Promise<T[]> {
  const ownerUID = opts.owner.metadata.uid;
  const claimed: T[] = [];
  let canAdopt: boolean | undefined;
  const mayAdopt = async () => {
    if (canAdopt === undefined) {
      const fresh = await opts.recheckOwner();
      canAdopt = !!fresh && fresh.metadata.uid === ownerUID && !fresh.metadata.deletionTimestamp;
    }
    return canAdopt;
  };
  for (const obj of candidates) {
    const ref = controllerRefOf(obj);
    const labels = obj.metadata.labels ?? {};
    const matches = opts.selector.matches(labels);
    if (ref) {
      if (ref.uid !== ownerUID) continue; // someone else's
      if (matches) {
        claimed.push(obj);
        continue;
      }
      // Ours but no longer matching: release, unless the owner is going away
      // (then the garbage collector deals with it).
      if (opts.owner.metadata.deletionTimestamp) continue;
      await ignoreGone(
        opts.client.patch(obj.metadata.namespace, obj.metadata.name ?? '', 'strategic', {
          metadata: { ownerReferences: [{ $patch: 'delete', uid: ownerUID }], uid: obj.metadata.uid },
        }),
      );
      continue;
    }
    // An orphan: adopt it if it matches and may be adopted.
    if (!matches || obj.metadata.deletionTimestamp || opts.owner.metadata.deletionTimestamp) continue;
    if (opts.adoptable && !opts.adoptable(obj)) continue;
    if (!(await mayAdopt())) continue;
    const adopted = await ignoreGone(
      opts.client.patch(obj.metadata.namespace, obj.metadata.name ?? '', 'strategic', {
        metadata: {
          ownerReferences: [ownerRef(opts.owner, opts.ownerApiVersion, opts.ownerKind)],
          uid: obj.metadata.uid,
        },
      }),
    );
    if (adopted) claimed.push(adopted);
  }
  return claimed;
}

/** Resolves to undefined when the object vanished or changed identity meanwhile. */
async function ignoreGone<T>(p: Promise<T>): Promise<T | undefined> {
  try {
    return await p;
  } catch (err) {
    if (isApiError(err, 'NotFound') || isApiError(err, 'Conflict') || isApiError(err, 'Invalid'))
      return undefined;
    throw err;
  }
}
