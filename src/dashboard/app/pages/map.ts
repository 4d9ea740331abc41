// The live map: each node with the pods on it (and the controller that owns
// each pod), pods not yet scheduled, and each Service with its endpoints.
// All of it is watched, so a pod's move from Pending to Ready shows as it
// happens.

import { ErrorBox } from '../components.ts';
import { html } from '../html.ts';
import { useLiveList } from '../live.ts';
import { href, navigate } from '../router.ts';
import { NamespaceSelect } from './list.ts';

/** kubectl's READY notion of a pod: its Ready condition. */
export function podReady(pod: any): boolean {
  return (pod.status?.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True');
}

function podState(pod: any): 'ready' | 'pending' | 'failed' | 'done' | 'terminating' {
  if (pod.metadata.deletionTimestamp) return 'terminating';
  if (podReady(pod)) return 'ready';
  const phase = pod.status?.phase;
  if (phase === 'Failed') return 'failed';
  if (phase === 'Succeeded') return 'done';
  return 'pending';
}

const owner = (pod: any) =>
  (pod.metadata.ownerReferences ?? []).find((o: any) => o.controller) ?? pod.metadata.ownerReferences?.[0];

export function MapPage({ namespace }: { namespace: string }) {
  const scope = namespace ? `/namespaces/${encodeURIComponent(namespace)}` : '';
  const nodes = useLiveList('/api/v1/nodes');
  const pods = useLiveList(`/api/v1${scope}/pods`);
  const services = useLiveList(`/api/v1${scope}/services`);
  const endpoints = useLiveList(`/api/v1${scope}/endpoints`);
  const byNode = new Map<string, any[]>();
  for (const p of pods.items.values()) {
    const node = p.spec?.nodeName ?? '';
    byNode.set(node, [...(byNode.get(node) ?? []), p]);
  }
  const columns = [...nodes.items.values()].map((n) => n.metadata.name);
  if (byNode.has('')) columns.push('');
  return html`<div class="page map">
    <div class="row">
      <h1>Live map</h1>
      <span class="spacer"></span>
      <${NamespaceSelect} value=${namespace} onChange=${(v: string) => navigate(href(['map'], { ns: v }), true)} />
    </div>
    <${ErrorBox} error=${nodes.error ?? pods.error} />
    <section aria-labelledby="map-nodes-h">
      <h2 id="map-nodes-h">Nodes and their pods</h2>
      <div class="lanes">
        ${columns.map((name) => html`<${NodeLane} name=${name} pods=${byNode.get(name) ?? []} />`)}
      </div>
    </section>
    <section aria-labelledby="map-svc-h">
      <h2 id="map-svc-h">Services and their endpoints</h2>
      <${ErrorBox} error=${services.error ?? endpoints.error} />
      <div class="cards">
        ${[...services.items.values()].map((svc) => {
          const key = `${svc.metadata.namespace}/${svc.metadata.name}`;
          return html`<${ServiceCard} svc=${svc} endpoints=${endpoints.items.get(key)} />`;
        })}
      </div>
    </section>
  </div>`;
}

function NodeLane({ name, pods }: { name: string; pods: any[] }) {
  const sorted = pods.sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  const title = name || 'Not scheduled';
  return html`<article class="lane" aria-label=${`Node ${title}`}>
    <h3>${name ? html`<a href=${href(['r', 'core', 'nodes', '_', name])}>${name}</a>` : title} <span class="muted">${pods.length} pods</span></h3>
    <ul>
      ${sorted.slice(0, 200).map((p) => {
        const o = owner(p);
        const state = podState(p);
        return html`<li class=${`pod ${state}`} data-pod=${p.metadata.name} data-state=${state}>
          <a href=${href(['r', 'core', 'pods', p.metadata.namespace, p.metadata.name])}>${p.metadata.name}</a>
          <span class="badge">${state}</span>
          ${o ? html`<span class="muted owner">${o.kind}/${o.name}</span>` : null}
        </li>`;
      })}
      ${sorted.length > 200 ? html`<li class="muted">and ${sorted.length - 200} more</li>` : null}
    </ul>
  </article>`;
}

function ServiceCard({ svc, endpoints }: { svc: any; endpoints: any }) {
  const ready: any[] = [];
  const notReady: any[] = [];
  for (const subset of endpoints?.subsets ?? []) {
    ready.push(...(subset.addresses ?? []));
    notReady.push(...(subset.notReadyAddresses ?? []));
  }
  const ports = (svc.spec?.ports ?? []).map(
    (p: any) => `${p.port}${p.nodePort ? `:${p.nodePort}` : ''}/${p.protocol ?? 'TCP'}`,
  );
  return html`<article class="card service" aria-label=${`Service ${svc.metadata.name}`}>
    <h3><a href=${href(['r', 'core', 'services', svc.metadata.namespace, svc.metadata.name])}>${svc.metadata.name}</a></h3>
    <p class="muted">${svc.spec?.type} ${svc.spec?.clusterIP} ${ports.join(', ')}</p>
    <ul>
      ${ready.map((a) => html`<li class="good">${a.ip} ${a.targetRef ? `→ ${a.targetRef.name}` : ''}</li>`)}
      ${notReady.map((a) => html`<li class="warn">${a.ip} ${a.targetRef ? `→ ${a.targetRef.name}` : ''} (not ready)</li>`)}
      ${ready.length + notReady.length === 0 ? html`<li class="muted">No endpoints</li>` : null}
    </ul>
  </article>`;
}
