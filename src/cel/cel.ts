// CEL, as Kubernetes uses it (ValidatingAdmissionPolicy, webhook
// matchConditions, CRD x-kubernetes-validations): an environment declares
// the variables an expression may use, compile() type-checks an expression
// against it once, and the program it returns evaluates against many
// activations within a cost limit.
//
// The language itself is @marcbachmann/cel-js (parser, type checker,
// evaluator, macros, optionals); Kubernetes' extension libraries that it
// lacks are in library/ (k8s.io/apiserver pkg/cel/library).
//
//   const env = celEnv({ variables: { object: 'dyn', params: 'dyn' } });
//   const r = compile('object.spec.replicas <= params.max', env);
//   if (!r.ok) ... r.errors
//   r.program.eval({ object, params })  → { value } | { error }

import { Environment } from '@marcbachmann/cel-js';
import { registerKubernetesLibraries } from './library/index.ts';

/** A CEL type name as the checker spells it: 'dyn', 'bool', 'map', 'list<string>', ... */
export type CelTypeName = string;

export interface EnvDeclaration {
  /** The variables an expression may reference, with their types. */
  variables: Readonly<Record<string, CelTypeName>>;
}

/** A declared environment; building one is costly, so build it once and share it. */
export interface CelEnv {
  readonly declaration: EnvDeclaration;
  /** @internal the library's environment */
  readonly environment: Environment;
}

/**
 * Upstream's per-expression runtime cost limit for admission
 * (PerCallLimit). Skiff charges one unit per element each time an input list
 * is iterated or sized, so nested comprehensions over big lists stop here.
 */
export const PER_CALL_COST_LIMIT = 1_000_000;

/** Parse-time limits: an expression the API server would never accept is refused before it is checked. */
const PARSE_LIMITS = { maxAstNodes: 10_000, maxDepth: 250, maxListElements: 1_000, maxMapEntries: 1_000 };

export function celEnv(declaration: EnvDeclaration): CelEnv {
  const environment = new Environment({
    enableOptionalTypes: true,
    homogeneousAggregateLiterals: false,
    limits: PARSE_LIMITS,
  });
  registerKubernetesLibraries(environment);
  for (const [name, type] of Object.entries(declaration.variables)) environment.registerVariable(name, type);
  return { declaration, environment };
}

export interface CelIssue {
  /** 'compile' for a parse or type error, as upstream's ErrorType. */
  type: 'compile';
  message: string;
}

export type CompileResult =
  | { ok: true; program: Program; outputType: CelTypeName }
  | { ok: false; errors: CelIssue[] };

export interface EvalOptions {
  /** The cost budget of this evaluation (default PER_CALL_COST_LIMIT). */
  costLimit?: number;
}

export type EvalResult =
  | { ok: true; value: unknown; cost: number }
  | { ok: false; error: string; cost: number };

export interface Program {
  readonly expression: string;
  readonly outputType: CelTypeName;
  /** Evaluates against plain JSON values (numbers that are integers are CEL ints). Never throws. */
  eval(activation: Readonly<Record<string, unknown>>, opts?: EvalOptions): EvalResult;
}

/** The first line of the library's message: the rest is a source excerpt with a caret. */
function firstLine(message: string): string {
  return message.split('\n')[0]!.trim();
}

/** Parses and type-checks `expression` against `env`; the errors read as the library reports them. */
export function compile(expression: string, env: CelEnv): CompileResult {
  let parsed: ReturnType<Environment['parse']>;
  try {
    parsed = env.environment.parse(expression);
  } catch (err) {
    return { ok: false, errors: [{ type: 'compile', message: `ERROR: ${describe(err)}` }] };
  }
  const checked = parsed.check();
  if (!checked.valid) {
    return { ok: false, errors: [{ type: 'compile', message: `ERROR: ${describe(checked.error)}` }] };
  }
  const outputType = String(checked.type);
  const program: Program = {
    expression,
    outputType,
    eval(activation, opts = {}) {
      const budget = new CostBudget(opts.costLimit ?? PER_CALL_COST_LIMIT);
      const context: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(activation)) context[k] = toCel(v, budget);
      try {
        const value = parsed(context);
        if (value instanceof Promise) throw new Error('asynchronous functions are not supported');
        return { ok: true, value: fromCel(value), cost: budget.spent };
      } catch (err) {
        if (err instanceof CostLimitExceeded) {
          return { ok: false, error: 'operation cancelled: actual cost limit exceeded', cost: budget.spent };
        }
        return { ok: false, error: describe(err), cost: budget.spent };
      }
    },
  };
  return { ok: true, program, outputType };
}

function describe(err: unknown): string {
  return err instanceof Error ? firstLine(err.message) : String(err);
}

class CostLimitExceeded extends Error {}

class CostBudget {
  spent = 0;
  readonly limit: number;
  constructor(limit: number) {
    this.limit = limit;
  }
  charge(n: number): void {
    this.spent += n;
    if (this.spent > this.limit) throw new CostLimitExceeded();
  }
}

/**
 * JSON to CEL values: integral numbers become ints (bigint), as the API's
 * int64 fields are ints to Kubernetes' CEL; lists are wrapped so that each
 * iteration (which reads the length) charges the budget.
 */
export function toCel(value: unknown, budget?: CostBudget): unknown {
  if (typeof value === 'number') return Number.isInteger(value) ? BigInt(value) : value;
  if (Array.isArray(value)) {
    const items = value.map((v) => toCel(v, budget));
    if (!budget) return items;
    return new Proxy(items, {
      get(target, key, receiver) {
        if (key === 'length') budget.charge(target.length);
        return Reflect.get(target, key, receiver);
      },
    });
  }
  if (value !== null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = toCel(v, budget);
    return out;
  }
  return value;
}

/** CEL values back to JSON: ints to numbers (when safe), Maps to objects, everything else as it is. */
export function fromCel(value: unknown): unknown {
  if (typeof value === 'bigint') {
    return value <= BigInt(Number.MAX_SAFE_INTEGER) && value >= BigInt(Number.MIN_SAFE_INTEGER)
      ? Number(value)
      : value.toString();
  }
  if (Array.isArray(value)) return value.map(fromCel);
  if (value instanceof Map) return Object.fromEntries([...value].map(([k, v]) => [String(k), fromCel(v)]));
  if (value !== null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, fromCel(v)]));
  }
  return value;
}
