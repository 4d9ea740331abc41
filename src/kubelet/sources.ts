// Where a kubelet reads its Node, its pods and the Services from.
//
// One kubelet watches the API itself, as upstream's does: its Node by name,
// the pods with spec.nodeName=<node>, and every Service (ownSources).
//
// Many kubelets in one process (hollow nodes, like kubemark's) share one
// watch of each instead (sharedSources): with per-kubelet watches, 1,000
// hollow nodes held 3,000 watches open, more than one client's connection
// pool can carry, and the API server sent every Service change 1,000 times.
// The shared informers' events are routed to the kubelet whose node they
// concern, so each kubelet still sees only its own Node and pods.

import type { KubeObject } from '../api/meta.ts';
import type { Node, Pod, Service } from '../api/types/core-v1.ts';
import type { Clientset } from '../client/clientset.ts';
import { createInformer, type Informer, type InformerHandlers, indexByNodeName } from '../client/informer.ts';
import { NODE_INDEX } from '../client/informer-factory.ts';

/** A read-only cache of one kind, as the kubelet uses it. */
export interface KubeletSource<T extends KubeObject> {
  get(key: string): T | undefined;
  list(): T[];
  /** Handlers added after the cache synced are told about what it already holds (as client-go's). */
  on(handlers: InformerHandlers<T>): void;
  /** Resolves once the cache holds the first list. */
  start(): Promise<void>;
  stop(): void;
}

export interface KubeletSources {
  /** The kubelet's own Node (keyed by its name). */
  node: KubeletSource<Node>;
  /** The pods bound to the node. */
  pods: KubeletSource<Pod>;
  services: KubeletSource<Service>;
}

const fromInformer = <T extends KubeObject>(inf: Informer<T>): KubeletSource<T> => ({
  get: (key) => inf.indexer.get(key),
  list: () => inf.indexer.list(),
  on: (h) => inf.on(h),
  start: () => inf.start(),
  stop: () => inf.stop(),
});

/** A kubelet's own watches: its Node, its pods, the Services. */
export function ownSources(clients: Clientset, nodeName: string): KubeletSources {
  return {
    node: fromInformer(createInformer(clients.nodes, { fieldSelector: `metadata.name=${nodeName}` })),
    pods: fromInformer(createInformer(clients.pods, { fieldSelector: `spec.nodeName=${nodeName}` })),
    services: fromInformer(createInformer(clients.services)),
  };
}

export interface SharedSources {
  /** The view of one node's kubelet. */
  forNode(nodeName: string): KubeletSources;
  start(): Promise<void>;
  stop(): void;
}

/** One watch of Nodes, pods and Services for every kubelet in the process. */
export function sharedSources(clients: Clientset): SharedSources {
  const nodes = createInformer(clients.nodes);
  const pods = createInformer(clients.pods, { indexers: { [NODE_INDEX]: indexByNodeName } });
  const services = createInformer(clients.services);
  const nodeHandlers = new Map<string, InformerHandlers<Node>[]>();
  const podHandlers = new Map<string, InformerHandlers<Pod>[]>();
  const each = <T>(
    map: Map<string, InformerHandlers<T>[]>,
    node: string | undefined,
    fn: (h: InformerHandlers<T>) => void,
  ) => {
    if (!node) return;
    for (const h of map.get(node) ?? []) fn(h);
  };
  const nodeOf = (p: Pod) => p.spec?.nodeName || undefined;
  nodes.on({
    add: (n) => each(nodeHandlers, n.metadata.name, (h) => h.add?.(n)),
    update: (a, b) => each(nodeHandlers, b.metadata.name, (h) => h.update?.(a, b)),
    delete: (n) => each(nodeHandlers, n.metadata.name, (h) => h.delete?.(n)),
  });
  pods.on({
    add: (p) => each(podHandlers, nodeOf(p), (h) => h.add?.(p)),
    update: (a, b) => {
      // Binding sets spec.nodeName once: to the node's kubelet that is the pod arriving.
      if (nodeOf(a) === nodeOf(b)) return each(podHandlers, nodeOf(b), (h) => h.update?.(a, b));
      each(podHandlers, nodeOf(a), (h) => h.delete?.(a));
      each(podHandlers, nodeOf(b), (h) => h.add?.(b));
    },
    delete: (p) => each(podHandlers, nodeOf(p), (h) => h.delete?.(p)),
  });

  let started: Promise<void> | undefined;
  const start = () => {
    started ??= Promise.all([nodes.start(), pods.start(), services.start()]).then(() => undefined);
    return started;
  };
  const register = <T extends KubeObject>(
    map: Map<string, InformerHandlers<T>[]>,
    node: string,
    h: InformerHandlers<T>,
    existing: () => T[],
  ) => {
    map.set(node, [...(map.get(node) ?? []), h]);
    // The informer emits adds only while it lists; a kubelet that comes later
    // hears of what is already there now.
    for (const obj of existing()) h.add?.(obj);
  };

  return {
    start,
    stop() {
      nodes.stop();
      pods.stop();
      services.stop();
    },
    forNode(nodeName) {
      const own = (p: Pod | undefined) => (p && nodeOf(p) === nodeName ? p : undefined);
      const myNode = () => nodes.indexer.get(nodeName);
      return {
        node: {
          get: (key) => (key === nodeName ? myNode() : undefined),
          list: () => [myNode()].filter((n): n is Node => n !== undefined),
          on: (h) => register(nodeHandlers, nodeName, h, () => [myNode()].filter((n): n is Node => !!n)),
          start,
          stop: () => nodeHandlers.delete(nodeName),
        },
        pods: {
          get: (key) => own(pods.indexer.get(key)),
          list: () => pods.indexer.byIndex(NODE_INDEX, nodeName),
          on: (h) => register(podHandlers, nodeName, h, () => pods.indexer.byIndex(NODE_INDEX, nodeName)),
          start,
          stop: () => podHandlers.delete(nodeName),
        },
        services: {
          get: (key) => services.indexer.get(key),
          list: () => services.indexer.list(),
          on: (h) => services.on(h),
          start,
          stop: () => undefined,
        },
      };
    },
  };
}
