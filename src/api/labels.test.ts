import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  everything,
  newRequirement,
  nothing,
  parseSelector,
  SelectorParseError,
  selectorFromLabelSelector,
  selectorFromSet,
  validatedSelectorFromSet,
} from './labels.ts';

describe('parseSelector', () => {
  it('parses valid selectors to their canonical string', () => {
    const cases: [string, string][] = [
      ['', ''],
      ['x=a,y=b,z=c', 'x=a,y=b,z=c'],
      ['z=c,y=b,x=a', 'x=a,y=b,z=c'],
      ['x!=a,y=b', 'x!=a,y=b'],
      ['x==a', 'x==a'],
      ['x=', 'x='],
      ['x= ', 'x='],
      ['x=,z= ', 'x=,z='],
      ['x= ,z= ', 'x=,z='],
      ['!x', '!x'],
      ['x', 'x'],
      ['x>1', 'x>1'],
      ['x>1,z<5', 'x>1,z<5'],
      ['x<0', 'x<0'],
      ['  x  =  a  ', 'x=a'],
      ['\tx\n=\ra', 'x=a'],
      ['x in (a,b)', 'x in (a,b)'],
      ['x in (b,a)', 'x in (a,b)'],
      ['x in (b, a, b)', 'x in (a,b)'],
      ['x notin (a)', 'x notin (a)'],
      ['x in ()', 'x in ()'],
      ['x in (,a)', 'x in (,a)'],
      ['x in (a,)', 'x in (,a)'],
      ['x in (a,,b)', 'x in (,a,b)'],
      ['x in (in,notin)', 'x in (in,notin)'],
      ['in=notin', 'in=notin'],
      ['x in (foo,,baz),y,z notin ()', 'x in (,baz,foo),y,z notin ()'],
      ['!tier,example.com/app=web', 'example.com/app=web,!tier'],
      ['a.b-c_d=E.F-g_1', 'a.b-c_d=E.F-g_1'],
      ['w,x=a,!y,z notin (b)', 'w,x=a,!y,z notin (b)'],
    ];
    for (const [input, want] of cases) {
      assert.equal(parseSelector(input).toString(), want, `input ${JSON.stringify(input)}`);
    }
  });

  it('rejects bad syntax with upstream messages', () => {
    const cases: [string, string | RegExp][] = [
      ['x=a||y=b', /^unable to parse requirement: .*Invalid value: "a\|\|y"/],
      ['x==a==b', "found '==', expected: ',' or 'end of string'"],
      ['!x=a', "found '=', expected: ',' or 'end of string'"],
      ['x<a', /^unable to parse requirement: values\[0\]: Invalid value: "a": for 'Gt', 'Lt' operators/],
      ['x>1.5', /the value must be an integer/],
      ['x in (a,b', "unable to parse requirement: found '', expected: ',' or ')'"],
      ['x in a', "unable to parse requirement: found 'a' expected: '('"],
      ['x in (a b)', "unable to parse requirement: found 'b', expected: ',' or ')'"],
      ['x in (=)', "unable to parse requirement: found '=', expected: ',', ')' or identifier"],
      ['a=(', "unable to parse requirement: found '(', expected: identifier"],
      ['a=)', "unable to parse requirement: found ')', expected: identifier"],
      ['x notin', "unable to parse requirement: found '' expected: '('"],
      ['x y', "unable to parse requirement: found 'y', expected: in, notin, =, ==, !=, gt, lt"],
      [',x', "found ',', expected: !, identifier, or 'end of string'"],
      ['x,', "found '', expected: identifier after ','"],
      ['x,,y', "found ',', expected: identifier after ','"],
      ['=a', "found '=', expected: !, identifier, or 'end of string'"],
      ['!', "unable to parse requirement: found '', expected: identifier"],
      ['x=a)', "found ')', expected: ',' or 'end of string'"],
      ['(x)', "found '(', expected: !, identifier, or 'end of string'"],
    ];
    for (const [input, want] of cases) {
      assert.throws(
        () => parseSelector(input),
        (err: unknown) => {
          assert.ok(err instanceof SelectorParseError, `${input}: ${String(err)}`);
          if (typeof want === 'string') assert.equal(err.message, want, input);
          else assert.match(err.message, want, input);
          return true;
        },
      );
    }
  });

  it('validates keys and values', () => {
    assert.throws(
      () => parseSelector('a_=b'),
      (err: Error) =>
        err.message ===
        'unable to parse requirement: <nil>: Invalid value: "a_": name part must consist of alphanumeric characters, ' +
          "'-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or " +
          "'123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
    );
    assert.throws(
      () => parseSelector('a=b_'),
      /: unable to parse requirement: values\[0\]\[a\]: Invalid value: "b_": a valid label/,
    );
    assert.throws(() => parseSelector(`a=${'v'.repeat(64)}`), /must be no more than 63 characters/);
    assert.throws(() => parseSelector(`${'k'.repeat(64)}=v`), /name part must be no more than 63 characters/);
    assert.throws(() => parseSelector('Bad_Prefix/x=v'), /prefix part a lowercase RFC 1123 subdomain/);
    assert.throws(() => parseSelector('a/b/c'), /a qualified name must consist/);
    assert.throws(() => parseSelector('x in (a,b_)'), /values\[1\]\[x\]: Invalid value: "b_"/);
    assert.doesNotThrow(() => parseSelector(`${'p'.repeat(253)}/${'n'.repeat(63)}=${'v'.repeat(63)}`));
  });

  it('matches labels like upstream', () => {
    const cases: [string, Record<string, string>, boolean][] = [
      ['', { x: 'y' }, true],
      ['x=y', { x: 'y' }, true],
      ['x==y', { x: 'y' }, true],
      ['x=y', { x: 'z' }, false],
      ['x=y', {}, false],
      ['x=', { x: '' }, true],
      ['x=', {}, false],
      ['x!=y', { x: 'z' }, true],
      ['x!=y', {}, true],
      ['x!=y', { x: 'y' }, false],
      ['x', { x: '' }, true],
      ['x', { y: 'x' }, false],
      ['!x', { y: 'x' }, true],
      ['!x', { x: '' }, false],
      ['x in (a,b)', { x: 'b' }, true],
      ['x in (a,b)', { x: 'c' }, false],
      ['x in (a,b)', {}, false],
      ['x in ()', { x: '' }, true],
      ['x notin (a,b)', { x: 'c' }, true],
      ['x notin (a,b)', {}, true],
      ['x notin (a,b)', { x: 'a' }, false],
      ['x>1', { x: '2' }, true],
      ['x>1', { x: '1' }, false],
      ['x>1', { x: 'abc' }, false],
      ['x>1', {}, false],
      ['x<10', { x: '-5' }, true],
      ['x<10', { x: '10' }, false],
      ['x>1', { x: '99999999999999999999' }, false],
      ['x=a,y=b', { x: 'a', y: 'b', z: 'c' }, true],
      ['x=a,y=b', { x: 'a' }, false],
    ];
    for (const [sel, labels, want] of cases) {
      assert.equal(parseSelector(sel).matches(labels), want, `${sel} vs ${JSON.stringify(labels)}`);
    }
    assert.equal(parseSelector('x').matches(undefined), false);
    assert.equal(parseSelector('!x').matches(null), true);
    // Inherited properties are not labels.
    assert.equal(parseSelector('toString').matches({}), false);
  });

  it('exposes requirements sorted by key', () => {
    const sel = parseSelector('b in (y,x),a,!c');
    assert.deepEqual(
      sel.requirements.map((r) => [r.key, r.operator, [...r.values]]),
      [
        ['a', 'exists', []],
        ['b', 'in', ['x', 'y']],
        ['c', '!', []],
      ],
    );
    assert.equal(sel.empty(), false);
    assert.equal(parseSelector('').empty(), true);
    assert.equal(parseSelector('   ').empty(), true);
  });

  it('reports exact matches', () => {
    const sel = parseSelector('a=1,b in (2),c in (3,4),d!=5,e');
    assert.equal(sel.requiresExactMatch('a'), '1');
    assert.equal(sel.requiresExactMatch('b'), '2');
    assert.equal(sel.requiresExactMatch('c'), undefined);
    assert.equal(sel.requiresExactMatch('d'), undefined);
    assert.equal(sel.requiresExactMatch('e'), undefined);
    assert.equal(sel.requiresExactMatch('f'), undefined);
  });

  it('round-trips its string form', () => {
    for (const s of ['x in (a,b),!y,z=c', 'a>3,b<4,c!=d', 'x in (,a)']) {
      const once = parseSelector(s).toString();
      assert.equal(parseSelector(once).toString(), once);
    }
  });
});

describe('newRequirement and add', () => {
  it('validates operator arity', () => {
    assert.throws(
      () => newRequirement('x', 'in', []),
      /for 'in', 'notin' operators, values set can't be empty/,
    );
    assert.throws(
      () => newRequirement('x', '=', ['a', 'b']),
      /exact-match compatibility requires one single value/,
    );
    assert.throws(
      () => newRequirement('x', 'exists', ['a']),
      /values set must be empty for exists and does not exist/,
    );
    assert.throws(() => newRequirement('x', 'gt', ['1', '2']), /exactly one value is required/);
    assert.throws(
      () => newRequirement('x', 'bogus' as never, []),
      /operator: Unsupported value: "bogus": supported values: "in", "notin", "=", "==", "!=", "gt", "lt", "exists", "!"/,
    );
    assert.throws(
      () => newRequirement('x_', '=', ['a_']),
      /: \[key: Invalid value: "x_".*, values\[0\]\[x_\]: Invalid value: "a_"/,
    );
  });

  it('keeps given value order but prints sorted', () => {
    const r = newRequirement('x', 'in', ['b', 'a']);
    assert.deepEqual([...r.values], ['b', 'a']);
    assert.equal(everything().add(r).toString(), 'x in (a,b)');
  });

  it('adds requirements and re-sorts', () => {
    const sel = parseSelector('b=1').add(newRequirement('a', 'exists'));
    assert.equal(sel.toString(), 'a,b=1');
    assert.equal(nothing().add(newRequirement('a', 'exists')).matches({ a: '' }), false);
  });
});

describe('selectorFromSet', () => {
  it('matches exactly the set, sorted', () => {
    const sel = selectorFromSet({ b: '2', a: '1' });
    assert.equal(sel.toString(), 'a=1,b=2');
    assert.equal(sel.matches({ a: '1', b: '2', c: '3' }), true);
    assert.equal(sel.matches({ a: '1' }), false);
    assert.equal(selectorFromSet({}).empty(), true);
    assert.equal(selectorFromSet(undefined).matches({}), true);
  });

  it('does not validate unless asked to', () => {
    assert.equal(selectorFromSet({ 'bad key': 'v' }).matches({ 'bad key': 'v' }), true);
    assert.throws(() => validatedSelectorFromSet({ 'bad key': 'v' }), SelectorParseError);
    assert.equal(validatedSelectorFromSet({ a: 'b' }).toString(), 'a=b');
  });
});

describe('selectorFromLabelSelector', () => {
  it('treats a missing selector as nothing and an empty one as everything', () => {
    for (const ls of [null, undefined]) {
      const sel = selectorFromLabelSelector(ls);
      assert.equal(sel.matches({}), false);
      assert.equal(sel.empty(), false);
      assert.equal(sel.toString(), '');
    }
    for (const ls of [{}, { matchLabels: {} }, { matchLabels: {}, matchExpressions: [] }]) {
      const sel = selectorFromLabelSelector(ls);
      assert.equal(sel.matches({ any: 'thing' }), true);
      assert.equal(sel.empty(), true);
    }
  });

  it('combines matchLabels and matchExpressions', () => {
    const sel = selectorFromLabelSelector({
      matchLabels: { app: 'web' },
      matchExpressions: [
        { key: 'tier', operator: 'In', values: ['front', 'back'] },
        { key: 'env', operator: 'NotIn', values: ['dev'] },
        { key: 'owner', operator: 'Exists' },
        { key: 'legacy', operator: 'DoesNotExist' },
      ],
    });
    assert.equal(sel.toString(), 'app=web,env notin (dev),!legacy,owner,tier in (back,front)');
    assert.equal(sel.matches({ app: 'web', tier: 'front', owner: 'me' }), true);
    assert.equal(sel.matches({ app: 'web', tier: 'front', owner: 'me', env: 'dev' }), false);
    assert.equal(sel.matches({ app: 'web', tier: 'front', owner: 'me', legacy: 'x' }), false);
    assert.equal(sel.matches({ app: 'web', tier: 'middle', owner: 'me' }), false);
  });

  it('rejects invalid expressions', () => {
    assert.throws(
      () => selectorFromLabelSelector({ matchExpressions: [{ key: 'a', operator: 'Gt', values: ['1'] }] }),
      /: "Gt" is not a valid label selector operator$/,
    );
    assert.throws(
      () => selectorFromLabelSelector({ matchExpressions: [{ key: 'a', operator: 'In', values: [] }] }),
      /values set can't be empty/,
    );
    assert.throws(
      () => selectorFromLabelSelector({ matchExpressions: [{ key: 'a', operator: 'In' }] }),
      SelectorParseError,
    );
    assert.throws(
      () =>
        selectorFromLabelSelector({ matchExpressions: [{ key: 'a', operator: 'Exists', values: ['x'] }] }),
      /values set must be empty/,
    );
    assert.throws(() => selectorFromLabelSelector({ matchLabels: { a: 'b c' } }), /Invalid value: "b c"/);
  });
});
