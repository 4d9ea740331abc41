import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { applyMergePatch, createMergePatch } from './merge-patch.ts';

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

describe('applyMergePatch', () => {
  // RFC 7386 appendix A, one row each.
  const rfcCases: [unknown, unknown, unknown][] = [
    [{ a: 'b' }, { a: 'c' }, { a: 'c' }],
    [{ a: 'b' }, { b: 'c' }, { a: 'b', b: 'c' }],
    [{ a: 'b' }, { a: null }, {}],
    [{ a: 'b', b: 'c' }, { a: null }, { b: 'c' }],
    [{ a: ['b'] }, { a: 'c' }, { a: 'c' }],
    [{ a: 'c' }, { a: ['b'] }, { a: ['b'] }],
    [{ a: { b: 'c' } }, { a: { b: 'd', c: null } }, { a: { b: 'd' } }],
    [{ a: [{ b: 'c' }] }, { a: [1] }, { a: [1] }],
    [
      ['a', 'b'],
      ['c', 'd'],
      ['c', 'd'],
    ],
    [{ a: 'b' }, ['c'], ['c']],
    [{ a: 'foo' }, null, null],
    [{ a: 'foo' }, 'bar', 'bar'],
    [{ e: null }, { a: 1 }, { e: null, a: 1 }],
    [[1, 2], { a: 'b', c: null }, { a: 'b' }],
    [{}, { a: { bb: { ccc: null } } }, { a: { bb: {} } }],
  ];
  for (const [i, [doc, patch, expected]] of rfcCases.entries()) {
    it(`RFC 7386 example ${i + 1}`, () => {
      assert.deepEqual(applyMergePatch(deepFreeze(doc), deepFreeze(patch)), expected);
    });
  }

  it('merges Kubernetes metadata and replaces lists', () => {
    const pod = deepFreeze({
      metadata: { labels: { app: 'web', tier: 'front' }, finalizers: ['a'] },
      spec: { containers: [{ name: 'a', image: 'nginx' }] },
    });
    const out = applyMergePatch(pod, {
      metadata: { labels: { tier: null, env: 'prod' }, finalizers: ['b'] },
      spec: { containers: [{ name: 'a', image: 'nginx:2' }] },
    });
    assert.deepEqual(out, {
      metadata: { labels: { app: 'web', env: 'prod' }, finalizers: ['b'] },
      spec: { containers: [{ name: 'a', image: 'nginx:2' }] },
    });
  });

  it('never aliases its inputs', () => {
    const doc = deepFreeze({ keep: { deep: [1] } });
    const patch = deepFreeze({ added: { deep: [2] } });
    const out = applyMergePatch(doc, patch) as any;
    out.keep.deep.push(3);
    out.added.deep.push(3);
    assert.deepEqual(doc, { keep: { deep: [1] } });
    assert.deepEqual(patch, { added: { deep: [2] } });
  });
});

describe('createMergePatch', () => {
  const pairs: [unknown, unknown][] = [
    [{}, {}],
    [{ a: 1 }, { a: 1 }],
    [{ a: 1, b: 2 }, { a: 1 }],
    [{ a: 1 }, { a: 2, c: [1, 2] }],
    [{ a: { b: 1, c: 2 } }, { a: { b: 1, c: 3, d: { e: 4 } } }],
    [{ a: { b: 1 } }, { a: 'x' }],
    [{ a: [1, 2] }, { a: [2, 1] }],
    [
      { metadata: { labels: { app: 'web' }, annotations: { x: 'y' } } },
      { metadata: { labels: { app: 'api' } } },
    ],
  ];
  for (const [i, [original, modified]] of pairs.entries()) {
    it(`round-trips pair ${i + 1}`, () => {
      const patch = createMergePatch(deepFreeze(original), deepFreeze(modified));
      assert.deepEqual(applyMergePatch(original, patch), modified);
    });
  }

  it('produces a minimal patch', () => {
    assert.deepEqual(createMergePatch({ a: { b: 1, c: 2 }, d: 1 }, { a: { b: 1, c: 3 }, d: 1 }), {
      a: { c: 3 },
    });
    assert.deepEqual(createMergePatch({ a: 1 }, { a: 1 }), {});
    assert.deepEqual(createMergePatch({ a: 1, b: 2 }, { b: 2 }), { a: null });
  });

  it('replaces a non-object document wholesale', () => {
    assert.deepEqual(createMergePatch([1], { a: 1 }), { a: 1 });
    assert.deepEqual(createMergePatch({ a: 1 }, [1]), [1]);
  });
});
