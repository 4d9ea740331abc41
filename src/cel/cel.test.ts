// The CEL wrapper (cel.ts): declared variables are type-checked at compile
// time, JSON integers are CEL ints, and the cost limit stops runaway
// comprehensions without throwing.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { celEnv, compile } from './cel.ts';

const env = celEnv({ variables: { object: 'dyn', count: 'int', name: 'string' } });

describe('compile', () => {
  it('type-checks against the declared variables', () => {
    const ok = compile('count > 1 && name.startsWith("a")', env);
    assert.ok(ok.ok);
    assert.equal(ok.outputType, 'bool');
    const bad = compile('count + name', env);
    assert.equal(bad.ok, false);
    assert.match(!bad.ok ? bad.errors[0]!.message : '', /^ERROR: no such overload: int \+ string/);
  });

  it('refuses an undeclared variable and a syntax error', () => {
    const undeclared = compile('other == 1', env);
    assert.equal(undeclared.ok, false);
    assert.match(!undeclared.ok ? undeclared.errors[0]!.message : '', /other/);
    assert.equal(compile('1 + + ', env).ok, false);
  });
});

describe('eval', () => {
  it('reads JSON integers as ints and returns plain values', () => {
    const c = compile('object.spec.replicas + 1', env);
    assert.ok(c.ok);
    assert.deepEqual(c.program.eval({ object: { spec: { replicas: 2 } } }), { ok: true, value: 3, cost: 0 });
  });

  it('supports has(), optionals and the standard macros', () => {
    const cases: [string, unknown][] = [
      ['has(object.spec.x)', false],
      ['object.?spec.?x.orValue(7)', 7],
      ['object.spec.list.all(i, i > 0)', true],
      ['object.spec.list.exists_one(i, i == 2)', true],
      ['object.spec.list.filter(i, i > 1).map(i, i * 10)', [20, 30]],
      ['object.spec.labels.exists(k, k == "app")', true],
    ];
    const object = { spec: { list: [1, 2, 3], labels: { app: 'web' } } };
    for (const [expr, want] of cases) {
      const c = compile(expr, env);
      assert.ok(c.ok, expr);
      const r = c.program.eval({ object });
      assert.ok(r.ok, `${expr}: ${!r.ok && r.error}`);
      assert.deepEqual(r.value, want, expr);
    }
  });

  it('reports a missing key as an error, not a throw', () => {
    const c = compile('object.spec.missing == 1', env);
    assert.ok(c.ok);
    const r = c.program.eval({ object: { spec: {} } });
    assert.equal(r.ok, false);
    assert.match(!r.ok ? r.error : '', /No such key: missing/);
  });

  it('stops at the cost limit', () => {
    const c = compile('object.l.all(x, object.l.all(y, object.l.all(z, true)))', env);
    assert.ok(c.ok);
    const l = Array.from({ length: 200 }, (_, i) => i);
    const r = c.program.eval({ object: { l } }, { costLimit: 100_000 });
    assert.deepEqual(r.ok, false);
    assert.equal(!r.ok && r.error, 'operation cancelled: actual cost limit exceeded');
    // Within the budget, the same program runs.
    assert.equal(c.program.eval({ object: { l: [1, 2] } }).ok, true);
  });
});
