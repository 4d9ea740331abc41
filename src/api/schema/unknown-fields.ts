// Unknown-field detection for fieldValidation=Strict|Warn: the fields of a
// request body that the kind's schema does not have, named as upstream's
// strict decoder names them (`spec.containers[0].imagePullPolcy`).

import { fieldNamed, SPECIAL_MESSAGES, type TypeModel } from './model.ts';

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Returns the paths of fields the schema does not know. With prune, also
 * removes them from value (in place), as decoding into upstream's Go types
 * would drop them.
 */
export function unknownFields(
  model: TypeModel,
  messageName: string,
  value: unknown,
  prune = false,
): string[] {
  const out: string[] = [];
  walk(model, messageName, value, '', out, true, prune);
  return out;
}

function walk(
  model: TypeModel,
  name: string,
  value: unknown,
  path: string,
  out: string[],
  root: boolean,
  prune: boolean,
): void {
  if (SPECIAL_MESSAGES[name] || !isPlainObject(value)) return;
  const message = model.message(name);
  if (!message) return;
  for (const [key, child] of Object.entries(value)) {
    if (root && (key === 'apiVersion' || key === 'kind')) continue;
    const field = fieldNamed(message, key);
    const here = path ? `${path}.${key}` : key;
    if (!field) {
      out.push(here);
      if (prune) delete value[key];
      continue;
    }
    if (field.map) {
      if (field.map.type === 'message' && field.map.message && isPlainObject(child)) {
        for (const [k, v] of Object.entries(child))
          walk(model, field.map.message, v, `${here}.${k}`, out, false, prune);
      }
      continue;
    }
    if (field.type !== 'message' || !field.message) continue;
    if (field.repeated) {
      if (Array.isArray(child)) {
        for (const [i, item] of child.entries())
          walk(model, field.message, item, `${here}[${i}]`, out, false, prune);
      }
    } else walk(model, field.message, child, here, out, false, prune);
  }
}
