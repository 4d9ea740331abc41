import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  compareStrings,
  elementKey,
  FieldSet,
  goJSON,
  keyElement,
  type Path,
  parseElementKey,
  pathString,
} from './fieldpath.ts';

const f = (field: string) => ({ field });

describe('FieldsV1', () => {
  it('writes members as {} and members with children with "."', () => {
    const set = FieldSet.of(
      [f('data'), f('a')],
      [f('metadata'), f('labels')],
      [f('metadata'), f('labels'), f('app')],
    );
    assert.deepEqual(set.toFieldsV1(), {
      'f:data': { 'f:a': {} },
      'f:metadata': { 'f:labels': { '.': {}, 'f:app': {} } },
    });
  });

  it('orders keys like upstream: fields by name, then keys, values, indices', () => {
    const set = FieldSet.of(
      [f('list'), { value: 'b' }],
      [f('list'), { index: 0 }],
      [f('list'), keyElement([['name', 'x']])],
      [f('list'), { value: 2 }],
      [f('list'), f('z')],
      [f('a')],
    );
    const json = set.toFieldsV1();
    assert.deepEqual(Object.keys(json), ['f:a', 'f:list']);
    assert.deepEqual(Object.keys(json['f:list'] as object), ['f:z', 'k:{"name":"x"}', 'v:2', 'v:"b"', 'i:0']);
  });

  it('round-trips through JSON', () => {
    const json = {
      'f:metadata': { 'f:labels': { '.': {}, 'f:app': {} } },
      'f:spec': {
        'f:containers': {
          'k:{"name":"c"}': {
            '.': {},
            'f:image': {},
            'f:ports': { 'k:{"containerPort":80,"protocol":"TCP"}': { '.': {}, 'f:containerPort': {} } },
          },
        },
        'f:finalizers': { 'v:"a"': {} },
      },
    };
    const set = FieldSet.fromFieldsV1(json);
    assert.equal(set.has([f('metadata'), f('labels')]), true);
    assert.equal(set.has([f('metadata')]), false);
    assert.equal(set.has([f('spec'), f('containers'), keyElement([['name', 'c']])]), true);
    assert.deepEqual(JSON.parse(JSON.stringify(set.toFieldsV1())), json);
  });

  it('writes key values as Go does: sorted fields, HTML characters escaped', () => {
    assert.equal(
      elementKey(
        keyElement([
          ['protocol', 'TCP'],
          ['containerPort', 80],
        ]),
      ),
      'k:{"containerPort":80,"protocol":"TCP"}',
    );
    assert.equal(goJSON({ b: '<&>', a: [1, true, null] }), '{"a":[1,true,null],"b":"\\u003c\\u0026\\u003e"}');
    assert.deepEqual(parseElementKey('k:{"protocol":"TCP","containerPort":80}'), {
      key: [
        ['containerPort', 80],
        ['protocol', 'TCP'],
      ],
    });
  });

  it('rejects malformed input', () => {
    assert.throws(() => FieldSet.fromFieldsV1({ 'x:y': {} }));
    assert.throws(() => FieldSet.fromFieldsV1({ 'f:a': 1 }));
    assert.throws(() => FieldSet.fromFieldsV1([]));
  });
});

describe('FieldSet operations', () => {
  const p = (...names: string[]): Path => names.map(f);

  it('difference keeps children of a removed parent; recursive difference does not', () => {
    const a = FieldSet.of(p('x'), p('x', 'y'), p('z'));
    const b = FieldSet.of(p('x'));
    assert.deepEqual(a.difference(b).paths(), [p('x', 'y'), p('z')]);
    assert.deepEqual(a.recursiveDifference(b).paths(), [p('z')]);
  });

  it('union, intersection and equality', () => {
    const a = FieldSet.of(p('a', 'b'), p('c'));
    const b = FieldSet.of(p('a', 'b'), p('d'));
    assert.deepEqual(a.union(b).paths(), [p('a', 'b'), p('c'), p('d')]);
    assert.deepEqual(a.intersection(b).paths(), [p('a', 'b')]);
    assert.equal(a.intersection(FieldSet.of(p('a'))).isEmpty(), true);
    assert.equal(a.equals(FieldSet.of(p('c'), p('a', 'b'))), true);
    assert.equal(a.equals(b), false);
  });

  it('never tracks the empty path', () => {
    const s = FieldSet.of([]);
    assert.equal(s.isEmpty(), true);
  });
});

describe('pathString', () => {
  it('prints paths as upstream conflict messages do', () => {
    assert.equal(
      pathString([f('spec'), f('containers'), keyElement([['name', 'c']]), f('image')]),
      '.spec.containers[name="c"].image',
    );
    assert.equal(
      pathString([
        f('ports'),
        keyElement([
          ['port', 80],
          ['protocol', 'TCP'],
        ]),
      ]),
      '.ports[port=80,protocol="TCP"]',
    );
    assert.equal(pathString([f('finalizers'), { value: 'x' }]), '.finalizers[="x"]');
    assert.equal(pathString([f('args'), { index: 2 }]), '.args[2]');
  });
});

describe('compareStrings', () => {
  it('orders by code point, as Go compares UTF-8 bytes', () => {
    const sorted = ['', 'a', 'ab', 'b', 'z\u00e9', '\uff61', '\u{1f600}', '\u{1f600}a'];
    assert.deepEqual([...sorted].reverse().sort(compareStrings), sorted);
    // UTF-16 order puts the surrogate pair of U+1F600 before U+FF61.
    assert.ok(compareStrings('\u{1f600}', '\uff61') > 0);
    assert.ok(compareStrings('x\uff61', 'x\u{1f600}') < 0);
    assert.equal(compareStrings('abc', 'abc'), 0);
  });
});
