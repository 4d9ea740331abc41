// Formatting shared by the pages, as kubectl prints it.

/** kubectl's short age (HumanDuration): 45s, 12m, 5h, 3d, 2y. */
export function age(timestamp: string | undefined, now = Date.now()): string {
  if (!timestamp) return '<unknown>';
  const t = Date.parse(timestamp);
  if (Number.isNaN(t)) return timestamp;
  const s = Math.max(0, Math.floor((now - t) / 1000));
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 120) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h`;
  const d = Math.floor(h / 24);
  return d < 730 ? `${d}d` : `${Math.floor(d / 365)}y`;
}

/** A Table cell as text: dates (RFC 3339) as their age, objects as JSON. */
export function cellText(value: unknown, type: string | undefined): string {
  if (value === null || value === undefined) return '';
  if (type === 'date' && typeof value === 'string' && /^\d{4}-\d\d-\d\dT/.test(value)) return age(value);
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

/** labels as "k=v, k2=v2" */
export const labelText = (labels: Record<string, string> | undefined) =>
  Object.entries(labels ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');

/** Whether an object's labels match a simple selector (k=v, k!=v, k, !k; comma-separated). */
export function matchesSelector(labels: Record<string, string> | undefined, selector: string): boolean {
  const l = labels ?? {};
  for (const term of selector
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean)) {
    const ne = term.match(/^([^!=]+)!=(.*)$/);
    const eq = term.match(/^([^!=]+)==?(.*)$/);
    if (ne) {
      if (l[ne[1]!.trim()] === ne[2]!.trim()) return false;
    } else if (eq) {
      if (l[eq[1]!.trim()] !== eq[2]!.trim()) return false;
    } else if (term.startsWith('!')) {
      if (term.slice(1).trim() in l) return false;
    } else if (!(term in l)) return false;
  }
  return true;
}
