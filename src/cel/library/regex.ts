// Kubernetes' regex library (k8s.io/apiserver pkg/cel/library/regex.go):
// find and findAll. Patterns are RE2 upstream and JavaScript regular
// expressions here; the common syntax is the same.

import type { Environment } from '@marcbachmann/cel-js';

const compiled = new Map<string, RegExp>();

function regex(pattern: string): RegExp {
  let re = compiled.get(pattern);
  if (!re) {
    try {
      re = new RegExp(pattern, 'gu');
    } catch (err) {
      throw new Error(`invalid regex: ${(err as Error).message}`);
    }
    if (compiled.size > 1000) compiled.clear();
    compiled.set(pattern, re);
  }
  re.lastIndex = 0;
  return re;
}

function findAll(s: string, pattern: string, limit: bigint): string[] {
  if (limit === 0n) return [];
  const out: string[] = [];
  for (const m of s.matchAll(regex(pattern))) {
    out.push(m[0]);
    if (limit > 0n && BigInt(out.length) >= limit) break;
  }
  return out;
}

export function registerRegex(env: Environment): void {
  env.registerFunction('string.find(string): string', (s: string, p: string) => findAll(s, p, 1n)[0] ?? '');
  env.registerFunction('string.findAll(string): list<string>', (s: string, p: string) => findAll(s, p, -1n));
  env.registerFunction('string.findAll(string, int): list<string>', findAll);
}
