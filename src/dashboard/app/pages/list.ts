// A list of any kind, as the API's Table (the columns of `kubectl get`, so
// CRDs' additionalPrinterColumns show without code), live by watch, with a
// namespace, a label selector (sent to the API) and a search (in the page).

import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { useCan } from '../access.ts';
import { ErrorBox, VirtualTable } from '../components.ts';
import { groupOf, groupSegment, useSession } from '../context.ts';
import { resourcePath, typeFor } from '../discovery.ts';
import { cellText } from '../format.ts';
import { html } from '../html.ts';
import { useKeys } from '../keys.ts';
import { useLiveList, useLiveTable } from '../live.ts';
import { href, navigate } from '../router.ts';

export function ListPage(props: { group: string; resource: string; query: URLSearchParams }) {
  const { types } = useSession();
  const type = typeFor(types, groupOf(props.group), props.resource);
  const ns = props.query.get('ns') ?? '';
  const labels = props.query.get('l') ?? '';
  const search = props.query.get('q') ?? '';
  const wide = props.query.get('wide') === '1';
  const path = type
    ? `${resourcePath(type, ns || undefined)}${labels ? `?labelSelector=${encodeURIComponent(labels)}` : ''}`
    : undefined;
  const table = useLiveTable(path);
  const can = useCan({
    create: type && {
      verb: 'create',
      group: type.group,
      resource: type.resource,
      ...(type.namespaced ? { namespace: ns || 'default' } : {}),
    },
  });
  const setQuery = (changes: Record<string, string>) => {
    const q = Object.fromEntries(props.query.entries());
    navigate(href(['r', props.group, props.resource], { ...q, ...changes }), true);
  };
  const searchBox = useRef<HTMLInputElement>(null);
  const [selected, setSelected] = useState(-1);
  useEffect(() => setSelected(-1), [path, search]);
  const [labelDraft, setLabelDraft] = useState(labels);
  useEffect(() => setLabelDraft(labels), [labels]);

  const rows = useMemo(() => {
    if (!type) return [];
    const columns = table.columns.map((c, i) => ({ ...c, i })).filter((c) => wide || !c.priority);
    const needle = search.toLowerCase();
    const all = [...table.items.values()].filter(
      (r) =>
        !needle ||
        r.cells.some((c) =>
          String(c ?? '')
            .toLowerCase()
            .includes(needle),
        ),
    );
    all.sort(
      (a, b) =>
        (a.object.metadata.namespace ?? '').localeCompare(b.object.metadata.namespace ?? '') ||
        a.object.metadata.name.localeCompare(b.object.metadata.name),
    );
    return all.map((r) => {
      const m = r.object.metadata;
      const link = href(['r', groupSegment(type.group), type.resource, m.namespace || '_', m.name]);
      const cells = columns.map((c) =>
        c.format === 'name'
          ? html`<a href=${link}>${String(r.cells[c.i])}</a>`
          : cellText(r.cells[c.i], c.type),
      );
      return {
        key: `${m.namespace ?? ''}/${m.name}`,
        link,
        cells: type.namespaced && !ns ? [m.namespace ?? '', ...cells] : cells,
      };
    });
  }, [table, search, wide, type, ns]);

  useKeys((e) => {
    const move = (by: number) => {
      e.preventDefault();
      setSelected((i) => Math.max(0, Math.min(rows.length - 1, i + by)));
    };
    if (e.key === '/') {
      // "/" goes to the search box, as in many web apps.
      e.preventDefault();
      searchBox.current?.focus();
    } else if (e.key === 'j' || e.key === 'ArrowDown') move(1);
    else if (e.key === 'k' || e.key === 'ArrowUp') move(-1);
    else if (e.key === 'Enter' && rows[selected]) {
      e.preventDefault();
      navigate(rows[selected].link);
    }
  });

  if (!type)
    return html`<${ErrorBox} error=${`The cluster serves no ${props.resource} in group ${props.group}`} />`;
  const columns = [
    ...(type.namespaced && !ns ? [{ name: 'Namespace' }] : []),
    ...table.columns.filter((c) => wide || !c.priority),
  ];
  return html`<div class="page list">
    <div class="row">
      <h1>${type.kind}${type.group ? html` <small class="muted">${type.group}</small>` : null}</h1>
      <span class="spacer"></span>
      ${
        can.create
          ? html`<a class="button" href=${href(['create'], { ns: ns || undefined })}>Create</a>`
          : null
      }
    </div>
    <form class="filters" onSubmit=${(e: Event) => {
      e.preventDefault();
      setQuery({ l: labelDraft });
    }}>
      ${type.namespaced ? html`<${NamespaceSelect} value=${ns} onChange=${(v: string) => setQuery({ ns: v })} />` : null}
      <label>Label selector
        <input
          type="text"
          name="labelSelector"
          placeholder="app=frontend,tier!=db"
          value=${labelDraft}
          onInput=${(e: Event) => setLabelDraft((e.target as HTMLInputElement).value)}
          onBlur=${() => labelDraft !== labels && setQuery({ l: labelDraft })}
        />
      </label>
      <label>Search
        <input
          ref=${searchBox}
          type="search"
          name="search"
          placeholder="Press / to search"
          value=${search}
          onInput=${(e: Event) => setQuery({ q: (e.target as HTMLInputElement).value })}
        />
      </label>
      <label class="check"><input
        type="checkbox"
        checked=${wide}
        onChange=${(e: Event) => setQuery({ wide: (e.target as HTMLInputElement).checked ? '1' : '' })}
      /> Wide</label>
      <span class="muted count" aria-live="polite">${table.loading ? 'Loading…' : `${rows.length} shown`}</span>
    </form>
    <${ErrorBox} error=${table.error} />
    <${VirtualTable} label=${type.kind} columns=${columns} rows=${rows} selected=${selected} />
  </div>`;
}

/** The namespace to show ('' for all), from the live namespace list. */
export function NamespaceSelect(props: { value: string; onChange(ns: string): void }) {
  // Polled, not watched: it shares the browser's six connections with the page's watches.
  const namespaces = useLiveList('/api/v1/namespaces', 10_000);
  const names = [...namespaces.items.keys()].map((k) => k.slice(1)).sort();
  if (props.value && !names.includes(props.value)) names.unshift(props.value);
  return html`<label>Namespace
    <select name="namespace" value=${props.value} onChange=${(e: Event) => props.onChange((e.target as HTMLSelectElement).value)}>
      <option value="">All namespaces</option>
      ${names.map((n) => html`<option value=${n}>${n}</option>`)}
    </select>
  </label>`;
}
