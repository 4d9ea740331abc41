// The simple JSONPath of additionalPrinterColumns, selectableFields and the
// scale subresource's paths (`.spec.replicas`, `.status.conditions[0].type`,
// `.items[*].name`, `.status.conditions[?(@.type=="Ready")].status`), and
// how a found value prints in a table cell (k8s.io/client-go/util/jsonpath,
// as upstream's CRD table convertor uses it).

import { age } from '../api/resources/printers.ts';

type Step =
  | { kind: 'field'; name: string }
  | { kind: 'index'; index: number }
  | { kind: 'all' }
  | { kind: 'filter'; path: string[]; value: string };

const parsed = new Map<string, Step[]>();

function parse(path: string): Step[] {
  let steps = parsed.get(path);
  if (steps) return steps;
  steps = [];
  const src = path.replace(/^\{|\}$/g, '');
  const re =
    /\.([^.[\]]+)|\[\*\]|\[(-?\d+)\]|\[\?\(@((?:\.[^=!<>)]+)+)\s*==\s*(?:"([^"]*)"|'([^']*)'|([^)\s]+))\)\]|\['([^']+)'\]/gy;
  let m: RegExpExecArray | null;
  // biome-ignore lint/suspicious/noAssignInExpressions: the usual exec loop
  while ((m = re.exec(src)) !== null) {
    if (m[1] !== undefined) steps.push({ kind: 'field', name: m[1] });
    else if (m[2] !== undefined) steps.push({ kind: 'index', index: Number(m[2]) });
    else if (m[3] !== undefined) {
      steps.push({ kind: 'filter', path: m[3].slice(1).split('.'), value: m[4] ?? m[5] ?? m[6] ?? '' });
    } else if (m[7] !== undefined) steps.push({ kind: 'field', name: m[7] });
    else steps.push({ kind: 'all' });
  }
  parsed.set(path, steps);
  return steps;
}

const isObj = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Every value the path finds in obj, in order. */
export function findAll(obj: unknown, path: string): unknown[] {
  let current: unknown[] = [obj];
  for (const step of parse(path)) {
    const next: unknown[] = [];
    for (const v of current) {
      if (step.kind === 'field' && isObj(v) && v[step.name] !== undefined) next.push(v[step.name]);
      else if (step.kind === 'index' && Array.isArray(v)) {
        const item = v[step.index < 0 ? v.length + step.index : step.index];
        if (item !== undefined) next.push(item);
      } else if (step.kind === 'all') {
        if (Array.isArray(v)) next.push(...v);
        else if (isObj(v)) next.push(...Object.values(v));
      } else if (step.kind === 'filter' && Array.isArray(v)) {
        for (const item of v) {
          const found = findAll(item, `.${step.path.join('.')}`)[0];
          if (found !== undefined && String(found) === step.value) next.push(item);
        }
      }
    }
    current = next;
  }
  return current;
}

export const findFirst = (obj: unknown, path: string): unknown => findAll(obj, path)[0];

/** Sets the value at a path of plain fields (`.spec.replicas`), making the objects on the way. */
export function setAt(obj: Record<string, unknown>, path: string, value: unknown): void {
  const names = parse(path).map((s) => (s.kind === 'field' ? s.name : undefined));
  if (names.length === 0 || names.some((n) => n === undefined)) return;
  let at = obj;
  for (const name of names.slice(0, -1)) {
    if (!isObj(at[name!])) at[name!] = {};
    at = at[name!] as Record<string, unknown>;
  }
  at[names.at(-1)!] = value;
}

/** Go's %v of a JSON value, as jsonpath prints one that is not a string. */
export function goText(v: unknown): string {
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) return `[${v.map(goText).join(' ')}]`;
  if (isObj(v)) {
    return `map[${Object.keys(v)
      .sort()
      .map((k) => `${k}:${goText(v[k])}`)
      .join(' ')}]`;
  }
  if (v === null || v === undefined) return '<nil>';
  return String(v);
}

/**
 * A table cell of a printer column's type (upstream's cellForJSONValue):
 * null when the value does not fit; a date prints as its age.
 */
export function cellValue(type: string, v: unknown, now: Date): unknown {
  if (v === undefined) return null;
  switch (type) {
    case 'string':
      return goText(v);
    case 'integer':
      return typeof v === 'number' && Number.isInteger(v) ? v : null;
    case 'number':
      return typeof v === 'number' ? v : null;
    case 'boolean':
      return typeof v === 'boolean' ? v : null;
    case 'date':
      if (typeof v !== 'string') return null;
      return Number.isNaN(Date.parse(v)) ? '<invalid>' : age(v, now);
    default:
      return null;
  }
}
