// Shared informers, as client-go's SharedInformerFactory: every controller
// that watches pods shares one pods informer (one list, one watch, one cache).
// Controllers ask for informers and add handlers while they are constructed;
// the manager then starts the factory and waits until every cache has synced.

import type { KubeObject } from '../api/meta.ts';
import type { ResourceRef } from './client.ts';
import type { Clientset, ResourceName, ResourceTypes } from './clientset.ts';
import {
  createInformer,
  type IndexFunc,
  type Informer,
  indexByControllerUID,
  indexByNamespace,
  indexByNodeName,
} from './informer.ts';

/** Indexes every shared informer has: by namespace, and by controller owner's uid. */
export const NAMESPACE_INDEX = 'namespace';
export const CONTROLLER_INDEX = 'controller';
/** Pods only: by spec.nodeName. */
export const NODE_INDEX = 'node';

export interface InformerFactory {
  readonly clients: Clientset;
  /** The shared informer of a resource, created on first use. */
  informer<R extends ResourceName>(resource: R): Informer<ResourceTypes[R]>;
  /**
   * The shared informer of any resource, typed by the caller: a custom
   * resource's (client-go's dynamic informer), created on first use.
   */
  forResource<T extends KubeObject = KubeObject>(ref: ResourceRef): Informer<T>;
  /** Starts every informer created so far (and any created later, at once). */
  start(): Promise<void>;
  stop(): void;
}

export interface InformerFactoryOptions {
  /** Re-deliver every cached object this often; 0 turns resync off. */
  resyncMs?: number;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

export function createInformerFactory(
  clients: Clientset,
  opts: InformerFactoryOptions = {},
): InformerFactory {
  // Keyed by group/version/plural, so a built-in resource asked for by
  // name or by reference shares one informer.
  const informers = new Map<string, Informer<KubeObject>>();
  let started = false;
  const starting: Promise<void>[] = [];
  const shared = (ref: ResourceRef): Informer<KubeObject> => {
    const key = `${ref.group}/${ref.version}/${ref.plural}`;
    let inf = informers.get(key);
    if (!inf) {
      const indexers: Record<string, IndexFunc> = {
        [NAMESPACE_INDEX]: indexByNamespace,
        [CONTROLLER_INDEX]: indexByControllerUID,
        ...(ref.group === '' && ref.plural === 'pods' ? { [NODE_INDEX]: indexByNodeName } : {}),
      };
      inf = createInformer(clients.forResource(ref), {
        indexers,
        ...(opts.resyncMs ? { resyncMs: opts.resyncMs } : {}),
        ...(opts.log ? { log: opts.log } : {}),
      });
      informers.set(key, inf);
      if (started) starting.push(inf.start());
    }
    return inf;
  };

  return {
    clients,
    informer<R extends ResourceName>(resource: R) {
      return shared(clients[resource].ref) as unknown as Informer<ResourceTypes[R]>;
    },
    forResource<T extends KubeObject>(ref: ResourceRef) {
      return shared(ref) as unknown as Informer<T>;
    },
    async start() {
      started = true;
      for (const inf of informers.values()) starting.push(inf.start());
      // Informers created while others sync are started by informer() itself.
      for (let i = 0; i < starting.length; i++) await starting[i];
    },
    stop() {
      for (const inf of informers.values()) inf.stop();
    },
  };
}
