// DefaultTolerationSeconds: the built-in admission plugin (upstream
// plugin/pkg/admission/defaulttolerationseconds) that lets every new pod
// tolerate its node being not-ready or unreachable for a while (300 s by
// default, kube-apiserver's --default-not-ready-toleration-seconds and
// --default-unreachable-toleration-seconds) before the taint eviction
// controller deletes it, so a short network blip does not evict everything.
//
// A pod that already tolerates the taint, by its key or by an empty key
// (which matches every taint), with effect NoExecute or any effect, keeps
// its own toleration. Only creates of pods are looked at, as upstream: an
// update cannot add tolerations the user did not send.

import { TAINT_NODE_NOT_READY, TAINT_NODE_UNREACHABLE } from '../../api/scheduling.ts';
import type { Toleration } from '../../api/types/core-v1.ts';
import type { MutatingPlugin } from './admission.ts';

/** Upstream's default for both flags. */
export const DEFAULT_TOLERATION_SECONDS = 300;

export interface DefaultTolerationSecondsOptions {
  /** --default-not-ready-toleration-seconds. */
  notReadySeconds?: number;
  /** --default-unreachable-toleration-seconds. */
  unreachableSeconds?: number;
}

export function defaultTolerationSecondsPlugin(opts: DefaultTolerationSecondsOptions = {}): MutatingPlugin {
  const defaults: [string, number][] = [
    [TAINT_NODE_NOT_READY, opts.notReadySeconds ?? DEFAULT_TOLERATION_SECONDS],
    [TAINT_NODE_UNREACHABLE, opts.unreachableSeconds ?? DEFAULT_TOLERATION_SECONDS],
  ];
  return {
    name: 'DefaultTolerationSeconds',
    handles: (a) =>
      a.operation === 'CREATE' && a.group === '' && a.resource === 'pods' && a.subresource === '',
    async admit(a) {
      const spec = a.object?.spec as { tolerations?: Toleration[] } | undefined;
      if (!spec) return undefined;
      const tolerations = Array.isArray(spec.tolerations) ? spec.tolerations : [];
      const tolerates = (key: string) =>
        tolerations.some((t) => (t.key === key || !t.key) && (t.effect === 'NoExecute' || !t.effect));
      const added: Toleration[] = defaults
        .filter(([key]) => !tolerates(key))
        .map(([key, tolerationSeconds]) => ({
          key,
          operator: 'Exists',
          effect: 'NoExecute',
          tolerationSeconds,
        }));
      if (added.length > 0) spec.tolerations = [...tolerations, ...added];
      return undefined;
    },
  };
}
