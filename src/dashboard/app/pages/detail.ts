// One object: what it is, its actions (each shown only when RBAC allows
// it), its events, and its YAML, editable by server-side apply.

import { useState } from 'preact/hooks';
import { stringify } from 'yaml';
import { type AccessAttributes, useCan } from '../access.ts';
import { describeError, request } from '../api.ts';
import { Confirm, ErrorBox, Modal, Notice } from '../components.ts';
import { groupOf, groupSegment, useSession } from '../context.ts';
import { type ResourceType, resourcePath, typeFor, typeForKind } from '../discovery.ts';
import { drainNode } from '../drain.ts';
import type { DrainOptions } from '../drain-plan.ts';
import { age, labelText } from '../format.ts';
import { html } from '../html.ts';
import { useLiveList } from '../live.ts';
import { ROLLOUT_KINDS, rolloutUndo } from '../rollout.ts';
import { href, navigate } from '../router.ts';
import { EventList } from './overview.ts';
import { YamlEditor } from './yaml-editor.ts';

export function DetailPage(props: { group: string; resource: string; namespace: string; name: string }) {
  const { types } = useSession();
  const type = typeFor(types, groupOf(props.group), props.resource);
  const live = useLiveList(
    type
      ? `${resourcePath(type, props.namespace || undefined)}?fieldSelector=${encodeURIComponent(`metadata.name=${props.name}`)}`
      : undefined,
  );
  if (!type)
    return html`<${ErrorBox} error=${`The cluster serves no ${props.resource} in group ${props.group}`} />`;
  const obj = live.items.get(`${props.namespace}/${props.name}`);
  return html`<div class="page detail">
    <nav aria-label="Breadcrumb" class="crumbs">
      <a href=${href(['r', props.group, props.resource], { ns: props.namespace || undefined })}>${type.kind}</a>
      ${props.namespace ? ` / ${props.namespace}` : ''} /
    </nav>
    <h1>${props.name}</h1>
    <${ErrorBox} error=${live.error} />
    ${
      live.loading
        ? html`<p>Loading…</p>`
        : obj
          ? html`<${Detail} type=${type} obj=${obj} />`
          : html`<p role="status">${type.kind} ${props.name} does not exist (any more).</p>`
    }
  </div>`;
}

function attrs(type: ResourceType, obj: any, verb: string, subresource?: string): AccessAttributes {
  return {
    verb,
    group: type.group,
    resource: type.resource,
    name: obj.metadata.name,
    ...(obj.metadata.namespace ? { namespace: obj.metadata.namespace } : {}),
    ...(subresource ? { subresource } : {}),
  };
}

function Detail({ type, obj }: { type: ResourceType; obj: any }) {
  const isPod = type.group === '' && type.resource === 'pods';
  const isNode = type.group === '' && type.resource === 'nodes';
  const scalable = type.subresources.includes('scale');
  const can = useCan({
    patch: attrs(type, obj, 'patch'),
    delete: attrs(type, obj, 'delete'),
    scale: scalable ? attrs(type, obj, 'patch', 'scale') : undefined,
    logs: isPod ? attrs(type, obj, 'get', 'log') : undefined,
    exec: isPod ? attrs(type, obj, 'create', 'exec') : undefined,
    // Drain evicts pods of every namespace.
    evict: isNode ? { verb: 'create', group: '', resource: 'pods', subresource: 'eviction' } : undefined,
  });
  const [error, setError] = useState<string>();
  const [notice, setNotice] = useState<string>();
  const [confirming, setConfirming] = useState(false);
  const [draining, setDraining] = useState(false);
  const path = resourcePath(type, obj.metadata.namespace, obj.metadata.name);
  /** Runs an action; shows `what` (or what it makes of the result) when it succeeds, the error when not. */
  const act = async <T>(what: string | ((result: T) => string), run: () => Promise<T>) => {
    setError(undefined);
    setNotice(undefined);
    try {
      const result = await run();
      setNotice(typeof what === 'string' ? what : what(result));
    } catch (err) {
      setError(describeError(err));
    }
  };
  const patch = (body: unknown, contentType: string, sub = '') =>
    request(`${path}${sub}`, { method: 'PATCH', body, contentType });
  const ns = obj.metadata.namespace ?? '';
  const containers: any[] = obj.spec?.containers ?? [];
  return html`
    <div class="actions" role="toolbar" aria-label="Actions">
      ${isPod && can.logs ? html`<a class="button" href=${href(['logs', ns, obj.metadata.name])}>Logs</a>` : null}
      ${isPod && can.exec ? html`<a class="button" href=${href(['exec', ns, obj.metadata.name])}>Terminal</a>` : null}
      ${
        scalable && can.scale
          ? html`<${ScaleForm} obj=${obj} onScale=${(n: number) =>
              act(`Scaled to ${n}`, () =>
                patch({ spec: { replicas: n } }, 'application/merge-patch+json', '/scale'),
              )} />`
          : null
      }
      ${
        ROLLOUT_KINDS.has(`${type.group}/${type.resource}`) && can.patch
          ? html`<button type="button" onClick=${() =>
              act('Restart requested', () =>
                patch(
                  {
                    spec: {
                      template: {
                        metadata: {
                          annotations: { 'kubectl.kubernetes.io/restartedAt': new Date().toISOString() },
                        },
                      },
                    },
                  },
                  'application/strategic-merge-patch+json',
                ),
              )}>Rollout restart</button>`
          : null
      }
      ${
        ROLLOUT_KINDS.has(`${type.group}/${type.resource}`) && can.patch
          ? html`<button type="button" onClick=${() =>
              act(`${type.kind} ${obj.metadata.name} rolled back`, () =>
                rolloutUndo(type, obj),
              )}>Rollout undo</button>`
          : null
      }
      ${
        isNode && can.patch
          ? html`<button type="button" onClick=${() => {
              const cordon = !obj.spec?.unschedulable;
              act(cordon ? 'Cordoned' : 'Uncordoned', () =>
                patch({ spec: { unschedulable: cordon ? true : null } }, 'application/merge-patch+json'),
              );
            }}>${obj.spec?.unschedulable ? 'Uncordon' : 'Cordon'}</button>`
          : null
      }
      ${
        isNode && can.patch && can.evict
          ? html`<button type="button" class="danger" onClick=${() => setDraining(true)}>Drain</button>`
          : null
      }
      ${can.delete ? html`<button type="button" class="danger" onClick=${() => setConfirming(true)}>Delete</button>` : null}
      ${
        'patch' in can && !can.patch && !can.delete
          ? html`<p class="muted" role="note">Read only: your roles allow no changes to this ${type.kind}.</p>`
          : null
      }
    </div>
    ${
      confirming
        ? html`<${Confirm}
            question=${`Delete ${type.kind} ${obj.metadata.name}${ns ? ` in ${ns}` : ''}?`}
            action="Delete"
            onCancel=${() => setConfirming(false)}
            onConfirm=${() => {
              setConfirming(false);
              const here = location.hash;
              act('Deleted', async () => {
                await request(path, { method: 'DELETE' });
                // Back to the list, unless the user has gone elsewhere meanwhile.
                if (location.hash === here)
                  navigate(href(['r', groupSegment(type.group), type.resource], { ns: ns || undefined }));
              });
            }}
          />`
        : null
    }
    ${
      draining
        ? html`<${DrainDialog}
            node=${obj.metadata.name}
            onCancel=${() => setDraining(false)}
            onDrain=${(options: DrainOptions) => {
              setDraining(false);
              // The notice shows the drain's progress, then its summary.
              act(
                (summary: string) => summary,
                () => drainNode(obj.metadata.name, options, setNotice),
              );
            }}
          />`
        : null
    }
    <${ErrorBox} error=${error} />
    <${Notice} text=${notice} />
    <${Summary} type=${type} obj=${obj} />
    ${isPod ? html`<${PodContainers} pod=${obj} containers=${containers} canLogs=${can.logs} canExec=${can.exec} />` : null}
    <${ObjectEvents} obj=${obj} />
    <section aria-labelledby="yaml-h">
      <h2 id="yaml-h">YAML</h2>
      <${YamlEditor} type=${type} obj=${obj} canEdit=${can.patch} />
    </section>
  `;
}

/** kubectl drain's choices, asked before the node is cordoned and its pods evicted. */
function DrainDialog(props: { node: string; onDrain(o: DrainOptions): void; onCancel(): void }) {
  const [options, setOptions] = useState<DrainOptions>({
    ignoreDaemonSets: true,
    deleteEmptyDirData: false,
    force: false,
  });
  const option = (key: keyof DrainOptions, label: string) =>
    html`<label class="check"><input
      type="checkbox"
      checked=${options[key]}
      onChange=${(e: Event) => setOptions({ ...options, [key]: (e.target as HTMLInputElement).checked })}
    /> ${label}</label>`;
  return html`<${Modal} label="Drain" onClose=${props.onCancel}>
    <p>Drain node ${props.node}? It is cordoned, and its pods are evicted (disruption budgets hold).</p>
    <fieldset>
      <legend>Options</legend>
      ${option('ignoreDaemonSets', 'Ignore DaemonSets')}
      ${option('deleteEmptyDirData', 'Delete emptyDir data')}
      ${option('force', 'Force (pods no controller recreates)')}
    </fieldset>
    <div class="buttons">
      <button type="button" onClick=${props.onCancel}>Cancel</button>
      <button type="button" class="danger" onClick=${() => props.onDrain(options)}>Drain</button>
    </div>
  <//>`;
}

function ScaleForm({ obj, onScale }: { obj: any; onScale(n: number): void }) {
  const [n, setN] = useState(String(obj.spec?.replicas ?? 1));
  return html`<form class="inline" onSubmit=${(e: Event) => {
    e.preventDefault();
    onScale(Number(n));
  }}>
    <label>Replicas <input type="number" min="0" name="replicas" value=${n} onInput=${(e: Event) => setN((e.target as HTMLInputElement).value)} /></label>
    <button type="submit">Scale</button>
  </form>`;
}

function Summary({ type, obj }: { type: ResourceType; obj: any }) {
  const { types } = useSession();
  const m = obj.metadata;
  const owners: any[] = m.ownerReferences ?? [];
  return html`<section aria-labelledby="summary-h">
    <h2 id="summary-h">Summary</h2>
    <dl class="summary">
      <dt>Kind</dt><dd>${type.kind} (${obj.apiVersion})</dd>
      ${m.namespace ? html`<dt>Namespace</dt><dd>${m.namespace}</dd>` : null}
      <dt>Created</dt><dd>${age(m.creationTimestamp)} ago (${m.creationTimestamp})</dd>
      <dt>Labels</dt><dd>${labelText(m.labels) || 'none'}</dd>
      ${
        owners.length
          ? html`<dt>Controlled by</dt><dd>${owners.map((o) => {
              const t = typeForKind(types, o.apiVersion, o.kind);
              return t
                ? html`<a href=${href(['r', groupSegment(t.group), t.resource, m.namespace || '_', o.name])}>${o.kind}/${o.name}</a> `
                : `${o.kind}/${o.name} `;
            })}</dd>`
          : null
      }
      ${obj.status?.phase ? html`<dt>Phase</dt><dd>${obj.status.phase}</dd>` : null}
      ${obj.spec?.nodeName ? html`<dt>Node</dt><dd><a href=${href(['r', 'core', 'nodes', '_', obj.spec.nodeName])}>${obj.spec.nodeName}</a></dd>` : null}
      ${obj.status?.podIP ? html`<dt>Pod IP</dt><dd>${obj.status.podIP}</dd>` : null}
    </dl>
  </section>`;
}

function PodContainers(props: { pod: any; containers: any[]; canLogs: boolean; canExec: boolean }) {
  const statuses = new Map<string, any>(
    (props.pod.status?.containerStatuses ?? []).map((s: any) => [s.name, s]),
  );
  const ns = props.pod.metadata.namespace;
  const name = props.pod.metadata.name;
  return html`<section aria-labelledby="containers-h">
    <h2 id="containers-h">Containers</h2>
    <table aria-label="Containers">
      <thead><tr><th scope="col">Name</th><th scope="col">Image</th><th scope="col">Ready</th><th scope="col">Restarts</th><th scope="col">State</th><th scope="col"><span class="sr-only">Links</span></th></tr></thead>
      <tbody>
        ${props.containers.map((c) => {
          const s = statuses.get(c.name);
          const state = (s?.state ? Object.keys(s.state)[0] : undefined) ?? 'waiting';
          return html`<tr>
            <td>${c.name}</td><td>${c.image}</td>
            <td class=${s?.ready ? 'good' : 'warn'}>${s?.ready ? 'yes' : 'no'}</td>
            <td>${s?.restartCount ?? 0}</td>
            <td>${state}${s?.state?.[state]?.reason ? ` (${s.state[state].reason})` : ''}</td>
            <td>
              ${props.canLogs ? html`<a href=${href(['logs', ns, name], { c: c.name })} aria-label=${`Logs of ${c.name}`}>logs</a> ` : null}
              ${props.canExec ? html`<a href=${href(['exec', ns, name], { c: c.name })} aria-label=${`Terminal in ${c.name}`}>terminal</a>` : null}
            </td>
          </tr>`;
        })}
      </tbody>
    </table>
  </section>`;
}

function ObjectEvents({ obj }: { obj: any }) {
  const m = obj.metadata;
  const base = m.namespace
    ? `/api/v1/namespaces/${encodeURIComponent(m.namespace)}/events`
    : '/api/v1/events';
  const events = useLiveList(`${base}?fieldSelector=${encodeURIComponent(`involvedObject.uid=${m.uid}`)}`);
  return html`<section aria-labelledby="events-h">
    <h2 id="events-h">Events</h2>
    <${ErrorBox} error=${events.error} />
    <${EventList} events=${[...events.items.values()]} limit=${50} />
  </section>`;
}

/** The object as it is worth editing: no managedFields, no status. */
export function editable(obj: any): string {
  const { managedFields: _m, ...metadata } = obj.metadata ?? {};
  const { status: _s, ...rest } = obj;
  return stringify({ ...rest, metadata });
}
