// The cluster at a glance: nodes (capacity, allocatable, conditions, taints),
// namespaces, workloads and their health, and recent Warning events. Every
// list is live (watched), so the page never needs a reload.

import { ErrorBox } from '../components.ts';
import { age } from '../format.ts';
import { html } from '../html.ts';
import { type LiveState, type TableRow, useLiveList, useLiveTable } from '../live.ts';
import { href } from '../router.ts';

interface Workload {
  label: string;
  group: string;
  resource: string;
  path: string;
  /** Ready and desired counts of one object. */
  health(o: any): [number, number];
}

const WORKLOADS: Workload[] = [
  {
    label: 'Deployments',
    group: 'apps',
    resource: 'deployments',
    path: '/apis/apps/v1/deployments',
    health: (o) => [o.status?.readyReplicas ?? 0, o.spec?.replicas ?? 1],
  },
  {
    label: 'StatefulSets',
    group: 'apps',
    resource: 'statefulsets',
    path: '/apis/apps/v1/statefulsets',
    health: (o) => [o.status?.readyReplicas ?? 0, o.spec?.replicas ?? 1],
  },
  {
    label: 'DaemonSets',
    group: 'apps',
    resource: 'daemonsets',
    path: '/apis/apps/v1/daemonsets',
    health: (o) => [o.status?.numberReady ?? 0, o.status?.desiredNumberScheduled ?? 0],
  },
  {
    label: 'ReplicationControllers',
    group: 'core',
    resource: 'replicationcontrollers',
    path: '/api/v1/replicationcontrollers',
    health: (o) => [o.status?.readyReplicas ?? 0, o.spec?.replicas ?? 1],
  },
  {
    label: 'Jobs',
    group: 'batch',
    resource: 'jobs',
    path: '/apis/batch/v1/jobs',
    health: (o) => [o.status?.succeeded ?? 0, o.spec?.completions ?? 1],
  },
];

/** How often the summaries (workload counts, warnings) are listed again; nodes and pods are watched. */
const SUMMARY_POLL_MS = 5000;

export function OverviewPage() {
  const nodes = useLiveList('/api/v1/nodes');
  const namespaces = useLiveList('/api/v1/namespaces');
  // The pods as a Table: a row of cells each, far less than 10,000 whole pods.
  const pods = useLiveTable('/api/v1/pods');
  const warnings = useLiveList('/api/v1/events?fieldSelector=type%3DWarning', SUMMARY_POLL_MS);
  return html`<div class="page overview">
    <h1>Cluster overview</h1>
    <section aria-labelledby="nodes-h">
      <h2 id="nodes-h">Nodes (${nodes.items.size})</h2>
      <${ErrorBox} error=${nodes.error} />
      <div class="cards">${[...nodes.items.values()].slice(0, 50).map((n) => html`<${NodeCard} node=${n} />`)}</div>
      ${nodes.items.size > 50 ? html`<p><a href="#/r/core/nodes">All ${nodes.items.size} nodes</a></p>` : null}
    </section>
    <section aria-labelledby="workloads-h">
      <h2 id="workloads-h">Workloads</h2>
      <div class="stats">
        <${PodStats} pods=${pods} />
        ${WORKLOADS.map((w) => html`<${WorkloadStat} workload=${w} />`)}
      </div>
    </section>
    <section aria-labelledby="ns-h">
      <h2 id="ns-h">Namespaces (${namespaces.items.size})</h2>
      <${ErrorBox} error=${namespaces.error} />
      <ul class="chips">
        ${[...namespaces.items.values()].map(
          (ns) =>
            html`<li><a href=${href(['r', 'core', 'pods'], { ns: ns.metadata.name })}>${ns.metadata.name}</a>
              ${ns.status?.phase === 'Terminating' ? html` <span class="bad">Terminating</span>` : null}</li>`,
        )}
      </ul>
    </section>
    <section aria-labelledby="warn-h">
      <h2 id="warn-h">Recent warnings</h2>
      <${ErrorBox} error=${warnings.error} />
      <${EventList} events=${[...warnings.items.values()]} limit=${15} />
    </section>
  </div>`;
}

function condition(node: any, type: string): any {
  return (node.status?.conditions ?? []).find((c: any) => c.type === type);
}

function NodeCard({ node }: { node: any }) {
  const ready = condition(node, 'Ready');
  const pressures = (node.status?.conditions ?? []).filter(
    (c: any) => c.type !== 'Ready' && c.status === 'True',
  );
  const cap = node.status?.capacity ?? {};
  const alloc = node.status?.allocatable ?? {};
  const taints: any[] = node.spec?.taints ?? [];
  const name = node.metadata.name;
  return html`<article class="card node" aria-label=${`Node ${name}`}>
    <h3><a href=${href(['r', 'core', 'nodes', '_', name])}>${name}</a></h3>
    <p>
      <span class=${ready?.status === 'True' ? 'good' : 'bad'}>${ready?.status === 'True' ? 'Ready' : 'NotReady'}</span>
      ${node.spec?.unschedulable ? html` <span class="warn">SchedulingDisabled</span>` : null}
      ${pressures.map((c: any) => html` <span class="warn">${c.type}</span>`)}
    </p>
    <table class="kv" aria-label=${`Resources of ${name}`}>
      <thead><tr><th scope="col">Resource</th><th scope="col">Capacity</th><th scope="col">Allocatable</th></tr></thead>
      <tbody>
        ${['cpu', 'memory', 'pods', 'ephemeral-storage']
          .filter((r) => cap[r] !== undefined)
          .map((r) => html`<tr><th scope="row">${r}</th><td>${cap[r]}</td><td>${alloc[r] ?? ''}</td></tr>`)}
      </tbody>
    </table>
    <p class="taints">
      ${taints.length ? taints.map((t) => html`<code>${t.key}${t.value ? `=${t.value}` : ''}:${t.effect}</code> `) : 'No taints'}
    </p>
    <p class="muted">${node.status?.nodeInfo?.kubeletVersion ?? ''} · ${age(node.metadata.creationTimestamp)}</p>
  </article>`;
}

function PodStats({ pods }: { pods: LiveState<TableRow> }) {
  // kubectl's STATUS column: Running, Pending, Completed, CrashLoopBackOff...
  const status = pods.columns.findIndex((c) => c.name === 'Status');
  const phases = new Map<string, number>();
  for (const row of pods.items.values()) {
    const s = String(row.cells[status] ?? 'Unknown');
    phases.set(s, (phases.get(s) ?? 0) + 1);
  }
  return html`<div class="stat" aria-label="Pods">
    <a href="#/r/core/pods"><strong>${pods.items.size}</strong> Pods</a>
    <span class="muted">
      ${[...phases.entries()].map(
        ([phase, n]) =>
          html`<span class=${phase === 'Running' || phase === 'Completed' ? 'good' : phase === 'Pending' || phase === 'ContainerCreating' ? 'warn' : 'bad'}
            >${n} ${phase}</span
          > `,
      )}
    </span>
    <${ErrorBox} error=${pods.error} />
  </div>`;
}

function WorkloadStat({ workload }: { workload: Workload }) {
  const list = useLiveList(workload.path, SUMMARY_POLL_MS);
  const all = [...list.items.values()];
  const healthy = all.filter((o) => {
    const [ready, desired] = workload.health(o);
    return ready >= desired;
  }).length;
  return html`<div class="stat" aria-label=${workload.label}>
    <a href=${href(['r', workload.group, workload.resource])}><strong>${all.length}</strong> ${workload.label}</a>
    <span class=${healthy === all.length ? 'good' : 'warn'}>${healthy}/${all.length} healthy</span>
  </div>`;
}

/** Events as a timeline, newest first. */
export function EventList({ events, limit }: { events: any[]; limit?: number }) {
  const when = (e: any) =>
    e.lastTimestamp ?? e.eventTime ?? e.firstTimestamp ?? e.metadata?.creationTimestamp;
  const sorted = events.sort((a, b) => String(when(b)).localeCompare(String(when(a)))).slice(0, limit ?? 500);
  if (!sorted.length) return html`<p class="muted">No events.</p>`;
  return html`<ol class="timeline">
    ${sorted.map(
      (e) =>
        html`<li key=${e.metadata.uid ?? e.metadata.name} class=${e.type === 'Warning' ? 'warning' : ''}>
          <span class="muted">${age(when(e))}</span>
          <strong>${e.reason}</strong>
          <span class="muted">${e.involvedObject?.kind}/${e.involvedObject?.name}${e.count > 1 ? ` (×${e.count})` : ''}</span>
          <span>${e.message}</span>
        </li>`,
    )}
  </ol>`;
}
