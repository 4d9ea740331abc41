// A scheduling profile: which plugins run at which stage, with which score
// weights. The default profile mirrors upstream's default plugin set and
// weights (pkg/scheduler/apis/config/v1/default_plugins.go).

import type {
  BindPlugin,
  ClusterEventWithHint,
  EnqueueExtensions,
  FilterPlugin,
  Plugin,
  PostFilterPlugin,
  PreBindPlugin,
  PreFilterPlugin,
  PreScorePlugin,
  QueueSortPlugin,
  ReservePlugin,
  ScorePlugin,
} from './framework.ts';

export interface Profile {
  schedulerName: string;
  queueSort: QueueSortPlugin;
  preFilter: PreFilterPlugin[];
  filter: FilterPlugin[];
  postFilter: PostFilterPlugin[];
  preScore: PreScorePlugin[];
  score: { plugin: ScorePlugin; weight: number }[];
  reserve: ReservePlugin[];
  preBind: PreBindPlugin[];
  bind: BindPlugin[];
}

const has = <K extends string>(p: Plugin, method: K): p is Plugin & Record<K, unknown> =>
  typeof (p as unknown as Record<string, unknown>)[method] === 'function';

/**
 * Builds a profile from plugin instances: each plugin takes part in every
 * stage whose method it implements. `weights` gives score weights by plugin name.
 */
export function buildProfile(
  schedulerName: string,
  plugins: Plugin[],
  weights: Record<string, number>,
): Profile {
  const queueSort = plugins.find((p) => has(p, 'less')) as QueueSortPlugin | undefined;
  if (!queueSort) throw new Error('a profile needs a queue-sort plugin');
  return {
    schedulerName,
    queueSort,
    preFilter: plugins.filter((p) => has(p, 'preFilter')) as PreFilterPlugin[],
    filter: plugins.filter((p) => has(p, 'filter')) as FilterPlugin[],
    postFilter: plugins.filter((p) => has(p, 'postFilter')) as PostFilterPlugin[],
    preScore: plugins.filter((p) => has(p, 'preScore')) as PreScorePlugin[],
    score: (plugins.filter((p) => has(p, 'score')) as ScorePlugin[]).map((plugin) => ({
      plugin,
      weight: weights[plugin.name] ?? 1,
    })),
    reserve: plugins.filter((p) => has(p, 'reserve')) as ReservePlugin[],
    preBind: plugins.filter((p) => has(p, 'preBind')) as PreBindPlugin[],
    bind: plugins.filter((p) => has(p, 'bind')) as BindPlugin[],
  };
}

/** Every plugin's declared events, for the queue's targeted requeueing. */
export function eventsByPlugin(profile: Profile): Map<string, ClusterEventWithHint[]> {
  const all = new Set<Plugin>([
    ...profile.preFilter,
    ...profile.filter,
    ...profile.postFilter,
    ...profile.reserve,
    ...profile.score.map((s) => s.plugin),
  ]);
  const out = new Map<string, ClusterEventWithHint[]>();
  for (const p of all) {
    if (has(p, 'events')) out.set(p.name, (p as EnqueueExtensions).events());
  }
  return out;
}
