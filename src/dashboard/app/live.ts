// Live lists, as an informer does: list, then watch from the list's
// resourceVersion, and list again when the watch ends or is too old (410).
// Changes are applied to a Map and the page re-renders at most once per
// animation frame, so 50 pod changes a second cost one render each frame.

import { useEffect, useState } from 'preact/hooks';
import { ApiError, describeError, request, TABLE_ACCEPT, type WatchEvent, watch } from './api.ts';

export interface LiveState<T> {
  items: Map<string, T>;
  /** Table column definitions, for lists fetched as=Table. */
  columns: TableColumn[];
  error?: string;
  loading: boolean;
}

export interface TableColumn {
  name: string;
  type: string;
  format?: string;
  description?: string;
  priority?: number;
}

export interface TableRow {
  cells: unknown[];
  object: { metadata: { name: string; namespace?: string; uid?: string; labels?: Record<string, string> } };
}

interface Source<T> {
  accept: string;
  /** The list's items (objects, or a Table's rows) and its resourceVersion. */
  fromList(body: any): { items: T[]; resourceVersion: string; columns: TableColumn[] };
  /** The objects a watch event carries (a Table event carries rows). */
  fromEvent(object: any): T[];
  key(item: T): string;
}

const metaKey = (m: { namespace?: string; name: string }) => `${m.namespace ?? ''}/${m.name}`;

const objects: Source<any> = {
  accept: 'application/json',
  fromList: (b) => ({
    items: b.items ?? [],
    resourceVersion: b.metadata?.resourceVersion ?? '',
    columns: [],
  }),
  fromEvent: (o) => [o],
  key: (o) => metaKey(o.metadata),
};

const tableRows: Source<TableRow> = {
  accept: TABLE_ACCEPT,
  fromList: (b) => ({
    items: b.rows ?? [],
    resourceVersion: b.metadata?.resourceVersion ?? '',
    columns: b.columnDefinitions ?? [],
  }),
  fromEvent: (o) => (o.kind === 'Table' ? (o.rows ?? []) : []),
  key: (r) => metaKey(r.object.metadata),
};

/**
 * A live list of objects at `path` (a collection URL, with its query), or
 * none while path is undefined. With pollMs, listed again that often instead
 * of watched: a browser keeps at most six HTTP/1.1 connections to a host, and
 * each watch holds one, so a page watches only what must change at once and
 * polls its summaries.
 */
export function useLiveList<T = any>(path: string | undefined, pollMs?: number): LiveState<T> {
  return useLive(path, objects, pollMs) as LiveState<T>;
}

/** A live list as the API's Table (the columns of kubectl get). */
export function useLiveTable(path: string | undefined): LiveState<TableRow> {
  return useLive(path, tableRows);
}

function useLive<T>(path: string | undefined, source: Source<T>, pollMs?: number): LiveState<T> {
  const [state, setState] = useState<LiveState<T>>({ items: new Map(), columns: [], loading: true });
  useEffect(() => {
    if (!path) return;
    const abort = new AbortController();
    const items = new Map<string, T>();
    let columns: TableColumn[] = [];
    let frame = 0;
    const publish = (error?: string) => {
      frame = 0;
      if (!abort.signal.aborted)
        setState({ items: new Map(items), columns, loading: false, ...(error ? { error } : {}) });
    };
    const schedule = () => {
      if (!frame) frame = requestAnimationFrame(() => publish());
    };
    setState({ items: new Map(), columns: [], loading: true });
    const run = async () => {
      while (!abort.signal.aborted) {
        try {
          const list = source.fromList(await request(path, { accept: source.accept, signal: abort.signal }));
          items.clear();
          for (const item of list.items) items.set(source.key(item), item);
          columns = list.columns.length ? list.columns : columns;
          publish();
          if (pollMs) {
            await new Promise((r) => setTimeout(r, pollMs));
            continue;
          }
          let rv = list.resourceVersion;
          const sep = path.includes('?') ? '&' : '?';
          // Watch until the server ends it, then resume from the last revision seen.
          for (;;) {
            let gone = false;
            await watch(
              `${path}${sep}resourceVersion=${encodeURIComponent(rv)}`,
              (e: WatchEvent) => {
                if (e.type === 'ERROR') {
                  gone = true;
                  return;
                }
                rv = e.object?.metadata?.resourceVersion ?? rv;
                if (e.type === 'BOOKMARK') return;
                for (const item of source.fromEvent(e.object)) {
                  if (e.type === 'DELETED') items.delete(source.key(item));
                  else items.set(source.key(item), item);
                }
                schedule();
              },
              abort.signal,
              source.accept,
            );
            if (gone || abort.signal.aborted) break;
          }
        } catch (err) {
          if (abort.signal.aborted) return;
          publish(describeError(err));
          // A 403 stays a 403: show it rather than ask again and again.
          if (err instanceof ApiError && (err.code === 403 || err.code === 401 || err.code === 404)) return;
          await new Promise((r) => setTimeout(r, 2000));
        }
      }
    };
    void run();
    return () => {
      abort.abort();
      if (frame) cancelAnimationFrame(frame);
    };
  }, [path, pollMs]);
  return state;
}
