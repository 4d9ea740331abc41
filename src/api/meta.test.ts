import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { deepCopy } from './meta.ts';

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
