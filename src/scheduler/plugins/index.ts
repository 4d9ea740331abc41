// The default profile: upstream's default plugins, in upstream's order, with
// upstream's score weights (pkg/scheduler/apis/config/v1/default_plugins.go).

import type { Clientset } from '../../client/clientset.ts';
import type { InformerFactory } from '../../client/informer-factory.ts';
import type { Plugin } from '../framework.ts';
import { buildProfile, type Profile } from '../profile.ts';
import { nodeAffinity, nodeName, nodeUnschedulable, prioritySort, taintToleration } from './basic.ts';
import { defaultBinder } from './binder.ts';
import { interPodAffinity } from './interpodaffinity.ts';
import { podTopologySpread } from './podtopologyspread.ts';
import { defaultPreemption } from './preemption.ts';
import { imageLocality, nodePorts, nodeResourcesBalancedAllocation, nodeResourcesFit } from './resources.ts';
import type { NamespaceLabels } from './topology.ts';
import { volumeBinding } from './volumebinding.ts';

export const DEFAULT_WEIGHTS: Record<string, number> = {
  TaintToleration: 3,
  NodeAffinity: 2,
  NodeResourcesFit: 1,
  NodeResourcesBalancedAllocation: 1,
  ImageLocality: 1,
  InterPodAffinity: 2,
  PodTopologySpread: 2,
};

export interface DefaultPluginsOptions {
  clients: Clientset;
  /** For namespaceSelector in pod affinity terms. */
  namespaceLabels?: NamespaceLabels;
  /** The scheduler's informers: with them, VolumeBinding runs (it reads claims, volumes and classes). */
  informers?: InformerFactory;
  /** Plugins beyond the default set. */
  extra?: Plugin[];
}

export function defaultPlugins(opts: DefaultPluginsOptions): Plugin[] {
  return [
    prioritySort,
    nodeUnschedulable,
    nodeName,
    taintToleration,
    nodeAffinity,
    ...(opts.informers ? [volumeBinding(opts.clients, opts.informers)] : []),
    nodePorts,
    nodeResourcesFit,
    nodeResourcesBalancedAllocation,
    imageLocality,
    podTopologySpread,
    interPodAffinity(opts.namespaceLabels),
    defaultPreemption(),
    ...(opts.extra ?? []),
    defaultBinder(opts.clients),
  ];
}

export function defaultProfile(schedulerName: string, opts: DefaultPluginsOptions): Profile {
  return buildProfile(schedulerName, defaultPlugins(opts), DEFAULT_WEIGHTS);
}
