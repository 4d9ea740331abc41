// What `skiff check network` prints: every node's view of every other over
// the overlay, read from what the agents publish on their Nodes (probe.ts),
// so it runs anywhere a kubeconfig reaches the API and needs no access to
// the hosts themselves.
//
//   FROM \ TO   node-1   node-2    node-3
//   node-1      -        ok        TIMEOUT
//   node-2      ok       -         ok
//   ...
//   NODE     BACKEND  PUBLIC-IP     MTU   NetworkUnavailable
//   node-1   vxlan    198.18.41.11  1450  True  overlay peers unreachable over ...

import type { Node } from '../api/types/core-v1.ts';
import { BACKEND_TYPE_ANNOTATION, PUBLIC_IP_ANNOTATION } from './overlay.ts';
import { PROBE_ANNOTATION, type ProbeReport } from './probe.ts';

function columns(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]! + 2)))
        .join('')
        .trimEnd(),
    )
    .join('\n');
}

const reportOf = (n: Node): ProbeReport | undefined => {
  try {
    return JSON.parse(n.metadata.annotations?.[PROBE_ANNOTATION] ?? '') as ProbeReport;
  } catch {
    return undefined;
  }
};

export interface NetworkCheck {
  text: string;
  /** Every published probe found its peer. */
  healthy: boolean;
}

/** The reachability table and the per-node summary (pure). */
export function networkCheck(nodes: Node[]): NetworkCheck {
  const sorted = [...nodes].sort((a, b) => (a.metadata.name ?? '').localeCompare(b.metadata.name ?? ''));
  const names = sorted.map((n) => n.metadata.name ?? '');
  let healthy = true;
  const matrix = [['FROM \\ TO', ...names]];
  for (const n of sorted) {
    const r = reportOf(n);
    matrix.push([
      n.metadata.name ?? '',
      ...names.map((to) => {
        if (to === n.metadata.name) return '-';
        const p = r?.peers[to];
        if (!p) return r ? 'not a peer' : 'no report';
        if (!p.reachable) healthy = false;
        return p.reachable ? 'ok' : (p.error ?? 'unreachable');
      }),
    ]);
  }
  const summary = [['NODE', 'BACKEND', 'PUBLIC-IP', 'MTU', 'NetworkUnavailable']];
  for (const n of sorted) {
    const a = n.metadata.annotations ?? {};
    const c = n.status?.conditions?.find((x) => x.type === 'NetworkUnavailable');
    summary.push([
      n.metadata.name ?? '',
      a[BACKEND_TYPE_ANNOTATION] ?? '<none>',
      a[PUBLIC_IP_ANNOTATION] ?? '<none>',
      String(reportOf(n)?.mtu ?? '<none>'),
      c ? `${c.status}  ${c.message ?? c.reason ?? ''}` : '<not reported>',
    ]);
  }
  return { text: `${columns(matrix)}\n\n${columns(summary)}\n`, healthy };
}
