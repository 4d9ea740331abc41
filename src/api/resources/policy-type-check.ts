// ValidatingAdmissionPolicy's status.typeChecking: each validation's
// expression is checked against the schema of every kind its
// matchConstraints name, and a field the kind does not have is a warning, as
// upstream's type checker reports it ("apps/v1, Kind=Deployment: ERROR:
// <input>:1:15: undefined field 'replicass'"). Skiff's CEL environment
// declares object as dyn, so the check here walks the expression's field
// selections from object and oldObject through the built-in type model;
// selections through lists, maps and macros' variables are not followed.

import { Environment } from '@marcbachmann/cel-js';
import type { KubeObject } from '../meta.ts';
import { fieldNamed, protoPackage, SPECIAL_MESSAGES, type TypeModel } from '../schema/model.ts';
import type { ExpressionWarning } from '../types/admissionregistration-v1.ts';
import { obj, objs, str, strings } from './checks.ts';

/** The kinds a policy's expressions are checked against: group, version, kind, from its resource rules. */
export type KindResolver = (group: string, version: string, resource: string) => string | undefined;

interface Node {
  op: string;
  args: unknown;
  range?: { start: number };
}

const isNode = (v: unknown): v is Node =>
  typeof v === 'object' && v !== null && typeof (v as Node).op === 'string';

/** The field selections rooted at `object` or `oldObject`: each as its path and where its last field is. */
function selections(ast: Node): { path: string[]; at: number }[] {
  const out: { path: string[]; at: number }[] = [];
  const chain = (n: Node): string[] | undefined => {
    if (n.op === 'id') return n.args === 'object' || n.args === 'oldObject' ? [] : undefined;
    if ((n.op === '.' || n.op === '.?') && Array.isArray(n.args) && isNode(n.args[0])) {
      const head = chain(n.args[0]);
      return head && [...head, String(n.args[1])];
    }
    return undefined;
  };
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) {
      for (const x of v) walk(x);
      return;
    }
    if (!isNode(v)) {
      if (v && typeof v === 'object') for (const x of Object.values(v)) walk(x);
      return;
    }
    const path = chain(v);
    if (path && path.length > 0) out.push({ path, at: v.range?.start ?? 0 });
    walk(v.args);
  };
  walk(ast);
  return out;
}

/** The first field of `path` that the kind's schema does not have, if any. */
function undefinedField(model: TypeModel, messageName: string, path: string[]): string | undefined {
  let message = model.message(messageName);
  for (const [i, name] of path.entries()) {
    if (!message) return undefined;
    if (i === 0 && (name === 'apiVersion' || name === 'kind')) return undefined;
    const field = fieldNamed(message, name);
    if (!field) return name;
    if (field.type !== 'message' || field.repeated || field.map || !field.message) return undefined;
    if (SPECIAL_MESSAGES[field.message]) return undefined;
    message = model.message(field.message);
  }
  return undefined;
}

const parser = new Environment({ unlistedVariablesAreDyn: true, enableOptionalTypes: true });

export function typeCheckPolicy(
  policy: KubeObject,
  model: TypeModel,
  kindOf: KindResolver,
): ExpressionWarning[] {
  const spec = obj(policy.spec);
  const kinds: { group: string; version: string; kind: string }[] = [];
  for (const rule of objs(obj(spec.matchConstraints).resourceRules)) {
    for (const group of strings(rule.apiGroups))
      for (const version of strings(rule.apiVersions))
        for (const resource of strings(rule.resources)) {
          if ([group, version, resource].includes('*') || resource.includes('/')) continue;
          const kind = kindOf(group, version, resource);
          if (kind && !kinds.some((k) => k.group === group && k.version === version && k.kind === kind))
            kinds.push({ group, version, kind });
        }
  }
  const warnings: ExpressionWarning[] = [];
  objs(spec.validations).forEach((v, i) => {
    const expression = str(v.expression);
    let ast: Node;
    try {
      ast = parser.parse(expression).ast as unknown as Node;
    } catch {
      return; // A parse error is refused by validation already.
    }
    const problems: string[] = [];
    for (const k of kinds) {
      const messageName = `${protoPackage(k.group, k.version)}.${k.kind}`;
      for (const sel of selections(ast)) {
        const missing = undefinedField(model, messageName, sel.path);
        const gv = k.group ? `${k.group}/${k.version}` : k.version;
        if (missing)
          problems.push(
            `${gv}, Kind=${k.kind}: ERROR: <input>:1:${sel.at + 1}: undefined field '${missing}'`,
          );
      }
    }
    if (problems.length)
      warnings.push({
        fieldRef: `spec.validations[${i}].expression`,
        warning: [...new Set(problems)].join('\n'),
      });
  });
  return warnings;
}
