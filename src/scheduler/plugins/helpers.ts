// Small pieces several plugins share: how a taint is printed in reasons, and
// upstream's score normalization. Toleration and node-affinity matching are
// in src/api/scheduling.ts, shared with the controllers.

import type { Taint } from '../../api/types/core-v1.ts';
import { MAX_NODE_SCORE, type NodeScore } from '../framework.ts';

/** How upstream prints a taint in reasons: {key: value} (value omitted when empty). */
export const taintString = (t: Taint): string => (t.value ? `{${t.key}: ${t.value}}` : `{${t.key}: }`);

/**
 * upstream's DefaultNormalizeScore: scales scores so the highest becomes
 * MAX_NODE_SCORE; with `reverse`, higher raw scores end up lower.
 */
export function defaultNormalize(scores: NodeScore[], reverse: boolean): void {
  let max = 0;
  for (const s of scores) if (s.score > max) max = s.score;
  if (max === 0) {
    if (reverse) for (const s of scores) s.score = MAX_NODE_SCORE;
    return;
  }
  for (const s of scores) {
    let v = Math.trunc((MAX_NODE_SCORE * s.score) / max);
    if (reverse) v = MAX_NODE_SCORE - v;
    s.score = v;
  }
}
