// Kubernetes' lists library (k8s.io/apiserver pkg/cel/library/lists.go):
// isSorted, sum, min, max, indexOf and lastIndexOf on lists of comparable
// values (ints, uints, doubles, strings, bools; a list of one type).

import type { Environment } from '@marcbachmann/cel-js';

type Comparable = bigint | number | string | boolean;

function compare(a: Comparable, b: Comparable): number {
  if (
    typeof a !== typeof b &&
    !(typeof a === 'bigint' && typeof b === 'number') &&
    !(typeof a === 'number' && typeof b === 'bigint')
  )
    throw new Error(`no such overload: comparing ${typeof a} with ${typeof b}`);
  return a < b ? -1 : a > b ? 1 : 0;
}

function extreme(list: readonly Comparable[], fn: string, sign: 1 | -1): Comparable {
  if (list.length === 0) throw new Error(`${fn} called on empty list`);
  let best = list[0]!;
  for (const v of list.slice(1)) if (compare(v, best) * sign > 0) best = v;
  return best;
}

function equal(a: unknown, b: unknown): boolean {
  if (typeof a === 'bigint' || typeof b === 'bigint' || typeof a !== 'object') return a === b;
  return (
    JSON.stringify(a, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v)) ===
    JSON.stringify(b, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v))
  );
}

export function registerLists(env: Environment): void {
  env.registerFunction('list<A>.isSorted(): bool', (list: Comparable[]) => {
    for (let i = 1; i < list.length; i++) if (compare(list[i - 1]!, list[i]!) > 0) return false;
    return true;
  });
  env.registerFunction('list<A>.sum(): A', (list: (bigint | number)[]) => {
    if (list.length === 0) return 0n;
    let total: bigint | number = typeof list[0] === 'bigint' ? 0n : 0;
    for (const v of list) total = (total as number) + (v as number);
    if (typeof total === 'bigint' && (total > 2n ** 63n - 1n || total < -(2n ** 63n)))
      throw new Error('integer overflow');
    return total;
  });
  env.registerFunction('list<A>.min(): A', (list: Comparable[]) => extreme(list, 'min', -1));
  env.registerFunction('list<A>.max(): A', (list: Comparable[]) => extreme(list, 'max', 1));
  env.registerFunction('list<A>.indexOf(A): int', (list: unknown[], x: unknown) =>
    BigInt(list.findIndex((v) => equal(v, x))),
  );
  env.registerFunction('list<A>.lastIndexOf(A): int', (list: unknown[], x: unknown) => {
    for (let i = list.length - 1; i >= 0; i--) if (equal(list[i], x)) return BigInt(i);
    return -1n;
  });
}
