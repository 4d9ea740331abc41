import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { deepCopy, jsonCopy } from './meta.ts';

describe('deepCopy', () => {
  it('copies JSON data all the way down, so the copy can be mutated freely', () => {
    const pod = JSON.parse(
      '{"metadata":{"name":"a","labels":{"app":"x"}},"spec":{"containers":[{"name":"c","args":["1",null,2]}]}}',
    );
    const copy = deepCopy(pod);
    assert.deepEqual(copy, pod);
    copy.metadata.labels.app = 'y';
    copy.spec.containers[0].args.push('3');
    assert.equal(pod.metadata.labels.app, 'x');
    assert.deepEqual(pod.spec.containers[0].args, ['1', null, 2]);
  });

  it('keeps keys whose value is undefined, as structuredClone does', () => {
    const copy = deepCopy({ a: undefined, b: [undefined] });
    assert.ok(Object.hasOwn(copy, 'a'));
    assert.equal(copy.b.length, 1);
  });

  it('keeps a "__proto__" key of parsed JSON as data, never as the prototype', () => {
    const parsed = JSON.parse('{"__proto__":{"polluted":true},"x":1}');
    const copy = deepCopy(parsed);
    assert.equal(Object.getPrototypeOf(copy), Object.prototype);
    assert.equal((copy as { polluted?: boolean }).polluted, undefined);
    assert.equal(JSON.stringify(copy), JSON.stringify(parsed));
  });

  it('copies values that are not plain data (Date, Map) as structuredClone does', () => {
    const when = new Date('2026-12-07T00:00:00Z');
    const copy = deepCopy({ when, index: new Map([['k', { v: 1 }]]) });
    assert.ok(copy.when instanceof Date && copy.when !== when);
    assert.equal(copy.when.getTime(), when.getTime());
    assert.deepEqual(copy.index.get('k'), { v: 1 });
  });
});

describe('jsonCopy', () => {
  it('gives what a JSON round trip gives, without the text', () => {
    const when = new Date('2026-12-07T12:00:00Z');
    const v = {
      a: 1,
      gone: undefined,
      list: [1, undefined, 'x', { deep: [null, { z: undefined, y: 2 }] }],
      when,
      nan: Number.NaN,
      nested: { f: () => 1, keep: true },
    };
    const copy = jsonCopy(v);
    assert.equal(JSON.stringify(copy), JSON.stringify(v));
    assert.deepEqual(copy, JSON.parse(JSON.stringify(v)));
    assert.ok(!Object.hasOwn(copy, 'gone'));
    assert.notEqual(copy.list, v.list);
    // JSON.parse makes "__proto__" an own key; so does the copy.
    const own = JSON.parse('{"__proto__":{"own":"key"}}');
    const ownCopy = jsonCopy(own);
    assert.ok(Object.hasOwn(ownCopy, '__proto__'));
    assert.equal(Object.getPrototypeOf(ownCopy), Object.prototype);
  });
});
