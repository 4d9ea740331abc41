// Server-side printing: meta.k8s.io/v1 Table responses, which is what
// `kubectl get` asks for (Accept: application/json;as=Table;v=v1;g=meta.k8s.io).
// Columns and cells come from the registry entry of each kind.

import type { KubeList, KubeObject } from '../api/meta.ts';
import type { PrinterColumn, ResourceType } from '../api/registry.ts';

export type IncludeObject = 'None' | 'Metadata' | 'Object';

export interface Table {
  kind: 'Table';
  apiVersion: 'meta.k8s.io/v1';
  metadata: { resourceVersion?: string; continue?: string; remainingItemCount?: number };
  columnDefinitions: PrinterColumn[];
  rows: Array<{ cells: unknown[]; object?: unknown }>;
}

const defaultColumns: PrinterColumn[] = [
  {
    name: 'Name',
    type: 'string',
    format: 'name',
    description: 'Name must be unique within a namespace.',
    priority: 0,
  },
  {
    name: 'Created At',
    type: 'date',
    description:
      'CreationTimestamp is a timestamp representing the server time when this object was created.',
    priority: 0,
  },
];

function rowObject(obj: KubeObject, include: IncludeObject): unknown {
  if (include === 'None') return undefined;
  if (include === 'Object') return obj;
  return { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: obj.metadata };
}

export function toTable(
  rt: ResourceType,
  items: KubeObject[],
  listMeta: KubeList['metadata'],
  opts: { include: IncludeObject; noHeaders?: boolean; now?: Date },
): Table {
  const now = opts.now ?? new Date();
  const columns = rt.columns ?? defaultColumns;
  const rows = items.map((obj) => {
    let cells: unknown[];
    if (!rt.cells) cells = [obj.metadata.name, obj.metadata.creationTimestamp];
    else if (rt.namelessTable) cells = rt.cells(obj, now);
    else cells = [obj.metadata.name, ...rt.cells(obj, now)];
    const object = rowObject(obj, opts.include);
    return object === undefined ? { cells } : { cells, object };
  });
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: listMeta,
    columnDefinitions: opts.noHeaders ? [] : columns,
    rows,
  };
}

/** Parses an Accept header's media types with their parameters. */
export function parseAccept(
  accept: string | undefined,
): Array<{ type: string; params: Record<string, string> }> {
  if (!accept) return [{ type: '*/*', params: {} }];
  return accept.split(',').map((part) => {
    const [type = '', ...rest] = part.split(';').map((s) => s.trim());
    const params: Record<string, string> = {};
    for (const p of rest) {
      const eq = p.indexOf('=');
      if (eq > 0) params[p.slice(0, eq).trim()] = p.slice(eq + 1).trim();
    }
    return { type: type.toLowerCase(), params };
  });
}

/** True when the client prefers a Table over the object (the first acceptable type is a Table). */
export function wantsTable(accept: string | undefined): boolean {
  for (const m of parseAccept(accept)) {
    if (
      m.params.as === 'Table' &&
      m.params.g === 'meta.k8s.io' &&
      (m.params.v === 'v1' || m.params.v === 'v1beta1')
    ) {
      return true;
    }
    if (m.type === 'application/json' || m.type === '*/*' || m.type === 'application/*') {
      if (!m.params.as) return false;
    }
  }
  return false;
}
