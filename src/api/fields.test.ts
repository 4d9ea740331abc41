import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  escapeValue,
  everythingFields,
  FieldSelectorParseError,
  fieldSelectorFromSet,
  parseFieldSelector,
  unescapeValue,
} from './fields.ts';

function parseError(input: string): string {
  try {
    parseFieldSelector(input);
  } catch (err) {
    assert.ok(err instanceof FieldSelectorParseError, String(err));
    return err.message;
  }
  assert.fail(`${JSON.stringify(input)} parsed`);
}

describe('parseFieldSelector', () => {
  it('parses to a canonical, sorted string', () => {
    const cases: [string, string][] = [
      ['', ''],
      ['x=a', 'x=a'],
      ['x=a,y=b,z=c', 'x=a,y=b,z=c'],
      ['z=c,x=a,y=b', 'x=a,y=b,z=c'],
      ['x!=a,y=b', 'x!=a,y=b'],
      ['x==a', 'x=a'],
      ['x=', 'x='],
      ['x=a,', 'x=a'],
      [',x=a', 'x=a'],
      ['x=a,,y=b', 'x=a,y=b'],
      [
        'metadata.name=foo,metadata.namespace!=kube-system',
        'metadata.name=foo,metadata.namespace!=kube-system',
      ],
      ['x=a\\,b', 'x=a\\,b'],
      ['x=a\\=b', 'x=a\\=b'],
      ['x=a\\\\b', 'x=a\\\\b'],
      ['x=!a', 'x=!a'],
      ['x=a b', 'x=a b'],
      ['x==!', 'x=!'],
    ];
    for (const [input, want] of cases) {
      assert.equal(parseFieldSelector(input).toString(), want, JSON.stringify(input));
    }
  });

  it('unescapes values into requirements', () => {
    const sel = parseFieldSelector('b!=x\\,y,a=1\\=2\\\\3');
    assert.deepEqual(
      sel.requirements.map((r) => ({ ...r })),
      [
        { field: 'a', op: '=', value: '1=2\\3' },
        { field: 'b', op: '!=', value: 'x,y' },
      ],
    );
  });

  it('splits each term at its first operator', () => {
    assert.deepEqual({ ...parseFieldSelector('a!=b').requirements[0] }, { field: 'a', op: '!=', value: 'b' });
    assert.deepEqual({ ...parseFieldSelector('a==b').requirements[0] }, { field: 'a', op: '=', value: 'b' });
    assert.deepEqual({ ...parseFieldSelector('a=!b').requirements[0] }, { field: 'a', op: '=', value: '!b' });
    assert.deepEqual(
      { ...parseFieldSelector('a!b=c').requirements[0] },
      { field: 'a!b', op: '=', value: 'c' },
    );
    // An empty field name is accepted by the parser; callers reject it as unsupported.
    assert.deepEqual({ ...parseFieldSelector('=a').requirements[0] }, { field: '', op: '=', value: 'a' });
  });

  it('rejects bad syntax', () => {
    assert.equal(parseError('x'), "invalid selector: 'x'; can't understand 'x'");
    assert.equal(parseError('x=a,y'), "invalid selector: 'x=a,y'; can't understand 'y'");
    assert.equal(parseError('x!a'), "invalid selector: 'x!a'; can't understand 'x!a'");
    assert.equal(parseError('x=a=b'), 'invalid field selector: unescaped character in value: =');
    assert.equal(parseError('x!==a'), 'invalid field selector: unescaped character in value: =');
    assert.equal(parseError('x==!='), 'invalid field selector: unescaped character in value: =');
    assert.equal(parseError('x=a\\b'), 'invalid field selector: invalid escape sequence: \\b');
    assert.equal(parseError('x=a\\!'), 'invalid field selector: invalid escape sequence: \\!');
    assert.equal(parseError('x=a\\'), 'invalid field selector: invalid escape sequence: \\');
  });

  it('matches field values; a missing field reads as empty', () => {
    const fields = { 'metadata.name': 'web', 'status.phase': 'Running' };
    const cases: [string, boolean][] = [
      ['', true],
      ['metadata.name=web', true],
      ['metadata.name==web', true],
      ['metadata.name=db', false],
      ['metadata.name!=db', true],
      ['metadata.name!=web', false],
      ['metadata.name=web,status.phase=Running', true],
      ['metadata.name=web,status.phase!=Running', false],
      ['spec.nodeName=', true],
      ['spec.nodeName!=', false],
      ['spec.nodeName!=node1', true],
    ];
    for (const [sel, want] of cases) assert.equal(parseFieldSelector(sel).matches(fields), want, sel);
    assert.equal(parseFieldSelector('a=x\\,y').matches({ a: 'x,y' }), true);
    assert.equal(parseFieldSelector('toString=').matches({}), true);
  });

  it('lists unsupported fields once each', () => {
    const sel = parseFieldSelector('a=1,b=2,b!=3,c=4');
    assert.deepEqual(sel.unsupportedFields(new Set(['a', 'c'])), ['b']);
    assert.deepEqual(sel.unsupportedFields(new Set(['a', 'b', 'c'])), []);
    assert.deepEqual(parseFieldSelector('').unsupportedFields(new Set()), []);
  });

  it('reports exact matches, empty and transforms', () => {
    const sel = parseFieldSelector('spec.host=n1,metadata.name!=x');
    assert.equal(sel.requiresExactMatch('spec.host'), 'n1');
    assert.equal(sel.requiresExactMatch('metadata.name'), undefined);
    assert.equal(sel.empty(), false);
    assert.equal(parseFieldSelector('').empty(), true);
    assert.equal(everythingFields().matches({}), true);
    const moved = sel.transform((f, v) => [f === 'spec.host' ? 'spec.nodeName' : f, v]);
    assert.equal(moved.toString(), 'metadata.name!=x,spec.nodeName=n1');
    assert.equal(
      sel.transform((f, v) => (f === 'spec.host' ? undefined : [f, v])).toString(),
      'metadata.name!=x',
    );
  });

  it('builds from a set', () => {
    const sel = fieldSelectorFromSet({ 'metadata.name': 'a,b' });
    assert.equal(sel.toString(), 'metadata.name=a\\,b');
    assert.equal(sel.matches({ 'metadata.name': 'a,b' }), true);
    assert.equal(parseFieldSelector(sel.toString()).matches({ 'metadata.name': 'a,b' }), true);
  });
});

describe('escapeValue / unescapeValue', () => {
  it('round-trips special characters', () => {
    for (const v of ['', 'plain', 'a,b', 'a=b', 'a\\b', '\\,=', 'x!y', ',,==\\\\']) {
      assert.equal(unescapeValue(escapeValue(v)), v);
    }
    assert.equal(escapeValue('a,b=c\\d'), 'a\\,b\\=c\\\\d');
  });
});
