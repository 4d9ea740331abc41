import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { applyJsonPatch, PatchError, parseJsonPointer } from './json-patch.ts';

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

const patchError = (pattern?: RegExp) => (err: unknown) => {
  assert.ok(err instanceof PatchError, `expected PatchError, got ${String(err)}`);
  if (pattern) assert.match(err.message, pattern);
  return true;
};

describe('applyJsonPatch', () => {
  const pod = () =>
    deepFreeze({
      metadata: { name: 'p', labels: { app: 'web', 'a/b': 'slash', 'm~n': 'tilde' } },
      spec: { containers: [{ name: 'a', image: 'nginx' }], tolerations: [] as unknown[] },
    });

  it('adds object members and array items, including "-"', () => {
    const out = applyJsonPatch(pod(), [
      { op: 'add', path: '/metadata/labels/tier', value: 'front' },
      { op: 'add', path: '/spec/containers/-', value: { name: 'c' } },
      { op: 'add', path: '/spec/containers/1', value: { name: 'b' } },
      { op: 'add', path: '/spec/containers/0', value: { name: 'first' } },
    ]) as any;
    assert.equal(out.metadata.labels.tier, 'front');
    assert.deepEqual(
      out.spec.containers.map((c: any) => c.name),
      ['first', 'a', 'b', 'c'],
    );
  });

  it('add replaces an existing member', () => {
    const out = applyJsonPatch(pod(), [{ op: 'add', path: '/metadata/name', value: 'q' }]) as any;
    assert.equal(out.metadata.name, 'q');
  });

  it('removes members and items', () => {
    const out = applyJsonPatch(pod(), [
      { op: 'remove', path: '/metadata/labels/app' },
      { op: 'remove', path: '/spec/containers/0' },
    ]) as any;
    assert.deepEqual(out.metadata.labels, { 'a/b': 'slash', 'm~n': 'tilde' });
    assert.deepEqual(out.spec.containers, []);
  });

  it('replaces members and items', () => {
    const out = applyJsonPatch(pod(), [
      { op: 'replace', path: '/spec/containers/0/image', value: 'nginx:2' },
      { op: 'replace', path: '/spec/tolerations', value: [{ key: 'k' }] },
    ]) as any;
    assert.equal(out.spec.containers[0].image, 'nginx:2');
    assert.deepEqual(out.spec.tolerations, [{ key: 'k' }]);
  });

  it('moves and copies', () => {
    const out = applyJsonPatch(pod(), [
      { op: 'copy', from: '/spec/containers/0', path: '/spec/containers/-' },
      { op: 'replace', path: '/spec/containers/1/name', value: 'b' },
      { op: 'move', from: '/metadata/labels/app', path: '/metadata/labels/application' },
    ]) as any;
    assert.deepEqual(out.spec.containers, [
      { name: 'a', image: 'nginx' },
      { name: 'b', image: 'nginx' },
    ]);
    assert.equal(out.metadata.labels.app, undefined);
    assert.equal(out.metadata.labels.application, 'web');
  });

  it('copy is deep: later edits do not show through the source', () => {
    const out = applyJsonPatch({ a: { x: 1 } }, [
      { op: 'copy', from: '/a', path: '/b' },
      { op: 'replace', path: '/b/x', value: 2 },
    ]);
    assert.deepEqual(out, { a: { x: 1 }, b: { x: 2 } });
  });

  it('moves within an array', () => {
    const out = applyJsonPatch({ a: [1, 2, 3, 4] }, [{ op: 'move', from: '/a/0', path: '/a/3' }]);
    assert.deepEqual(out, { a: [2, 3, 4, 1] });
  });

  it('decodes ~0 and ~1 escapes', () => {
    const out = applyJsonPatch(pod(), [
      { op: 'test', path: '/metadata/labels/a~1b', value: 'slash' },
      { op: 'test', path: '/metadata/labels/m~0n', value: 'tilde' },
      { op: 'add', path: '/metadata/labels/x~1y~0z', value: '1' },
    ]) as any;
    assert.equal(out.metadata.labels['x/y~z'], '1');
    assert.deepEqual(parseJsonPointer('/~01'), ['~1']);
    assert.deepEqual(parseJsonPointer(''), []);
    assert.deepEqual(parseJsonPointer('/'), ['']);
  });

  it('test compares structurally, ignoring key order', () => {
    const doc = { a: { x: 1, y: [1, { z: true }] } };
    assert.doesNotThrow(() =>
      applyJsonPatch(doc, [{ op: 'test', path: '/a', value: { y: [1, { z: true }], x: 1 } }]),
    );
    assert.doesNotThrow(() => applyJsonPatch(doc, [{ op: 'test', path: '', value: doc }]));
  });

  it('a failed test is a PatchError and nothing is applied', () => {
    const doc = pod();
    assert.throws(
      () =>
        applyJsonPatch(doc, [
          { op: 'replace', path: '/metadata/name', value: 'changed' },
          { op: 'test', path: '/metadata/labels/app', value: 'db' },
        ]),
      patchError(/test failed/),
    );
    assert.equal(doc.metadata.name, 'p');
    assert.throws(() => applyJsonPatch({ a: 1 }, [{ op: 'test', path: '/a', value: '1' }]), patchError());
  });

  it('testing a missing member against null succeeds, as upstream', () => {
    assert.doesNotThrow(() => applyJsonPatch({ a: {} }, [{ op: 'test', path: '/a/b', value: null }]));
    assert.throws(() => applyJsonPatch({ a: {} }, [{ op: 'test', path: '/a/b', value: 1 }]), patchError());
    assert.throws(() => applyJsonPatch({}, [{ op: 'test', path: '/a/b', value: null }]), patchError());
  });

  it('supports negative indices like evanphx/json-patch', () => {
    const doc = { a: [1, 2, 3] };
    assert.deepEqual(applyJsonPatch(doc, [{ op: 'remove', path: '/a/-1' }]), { a: [1, 2] });
    assert.deepEqual(applyJsonPatch(doc, [{ op: 'replace', path: '/a/-3', value: 0 }]), { a: [0, 2, 3] });
    assert.deepEqual(applyJsonPatch(doc, [{ op: 'add', path: '/a/-1', value: 4 }]), { a: [1, 2, 3, 4] });
    assert.throws(() => applyJsonPatch(doc, [{ op: 'remove', path: '/a/-4' }]), patchError(/out of range/));
  });

  it('operates on the root', () => {
    assert.deepEqual(applyJsonPatch({ a: 1 }, [{ op: 'replace', path: '', value: { b: 2 } }]), { b: 2 });
    assert.deepEqual(applyJsonPatch({ a: 1 }, [{ op: 'add', path: '', value: [1] }]), [1]);
    assert.deepEqual(applyJsonPatch([1, 2], [{ op: 'add', path: '/1', value: 9 }]), [1, 9, 2]);
    assert.throws(() => applyJsonPatch({ a: 1 }, [{ op: 'remove', path: '' }]), patchError());
    assert.throws(() => applyJsonPatch({ a: 1 }, [{ op: 'move', from: '', path: '/b' }]), patchError());
  });

  it('rejects paths that do not exist', () => {
    const doc = pod();
    const cases: unknown[] = [
      { op: 'remove', path: '/metadata/annotations' },
      { op: 'remove', path: '/metadata/labels/nope' },
      { op: 'replace', path: '/metadata/labels/nope', value: 'x' },
      { op: 'replace', path: '/spec/containers/1', value: {} },
      { op: 'add', path: '/metadata/annotations/x', value: 'y' },
      { op: 'add', path: '/spec/containers/2', value: {} },
      { op: 'remove', path: '/spec/containers/1' },
      { op: 'move', from: '/nope', path: '/x' },
      { op: 'copy', from: '/spec/containers/5', path: '/x' },
      { op: 'add', path: '/metadata/name/x', value: 1 },
      { op: 'add', path: '/spec/containers/x', value: 1 },
      { op: 'replace', path: '/spec/containers/-', value: 1 },
    ];
    for (const op of cases) assert.throws(() => applyJsonPatch(doc, [op]), patchError(), JSON.stringify(op));
  });

  it('rejects a move into its own child', () => {
    assert.throws(
      () => applyJsonPatch({ a: { b: {} } }, [{ op: 'move', from: '/a', path: '/a/b/c' }]),
      patchError(),
    );
    assert.deepEqual(applyJsonPatch({ a: 1 }, [{ op: 'move', from: '/a', path: '/a' }]), { a: 1 });
  });

  it('rejects malformed patches before applying anything', () => {
    const bad: unknown[] = [
      { op: 'add', path: '/a', value: 1 },
      { op: 'frobnicate', path: '/a' },
    ];
    assert.throws(() => applyJsonPatch({}, bad), patchError(/unknown op/));
    assert.throws(() => applyJsonPatch({}, { op: 'add' }), patchError(/array/));
    assert.throws(() => applyJsonPatch({}, null), patchError(/array/));
    assert.throws(() => applyJsonPatch({}, ['add']), patchError(/not an object/));
    assert.throws(() => applyJsonPatch({}, [{ path: '/a' }]), patchError(/unknown op/));
    assert.throws(() => applyJsonPatch({}, [{ op: 'add', value: 1 }]), patchError(/missing "path"/));
    assert.throws(
      () => applyJsonPatch({}, [{ op: 'add', path: 5, value: 1 }]),
      patchError(/non-string "path"/),
    );
    assert.throws(() => applyJsonPatch({}, [{ op: 'add', path: '/a' }]), patchError(/missing "value"/));
    assert.throws(() => applyJsonPatch({}, [{ op: 'replace', path: '/a' }]), patchError(/missing "value"/));
    assert.throws(() => applyJsonPatch({}, [{ op: 'test', path: '/a' }]), patchError(/missing "value"/));
    assert.throws(() => applyJsonPatch({ a: 1 }, [{ op: 'move', path: '/b' }]), patchError(/missing "from"/));
    assert.throws(() => applyJsonPatch({}, [{ op: 'add', path: 'a', value: 1 }]), patchError(/start with/));
    assert.throws(() => applyJsonPatch({}, [{ op: 'add', path: '/a~2', value: 1 }]), patchError(/escape/));
  });

  it('accepts null as a value', () => {
    assert.deepEqual(applyJsonPatch({ a: 1 }, [{ op: 'replace', path: '/a', value: null }]), { a: null });
  });

  it('never mutates its inputs and never aliases them', () => {
    const doc = pod();
    const value = deepFreeze({ name: 'b', env: [{ name: 'X' }] });
    const ops = deepFreeze([
      { op: 'add', path: '/spec/containers/-', value },
      { op: 'remove', path: '/metadata/labels/app' },
      { op: 'move', from: '/spec/containers/0', path: '/spec/first' },
    ]);
    const out = applyJsonPatch(doc, ops) as any;
    assert.notEqual(out.spec.containers[0], value);
    out.spec.containers[0].env.push({ name: 'Y' });
    out.metadata.name = 'mutated';
    assert.deepEqual(value, { name: 'b', env: [{ name: 'X' }] });
    assert.equal(doc.metadata.name, 'p');
  });

  it('treats __proto__ as an ordinary member', () => {
    const doc = JSON.parse('{"a":{}}');
    const out = applyJsonPatch(doc, [{ op: 'add', path: '/a/__proto__', value: { polluted: true } }]) as any;
    assert.ok(Object.hasOwn(out.a, '__proto__'));
    assert.equal(({} as any).polluted, undefined);
    assert.equal(out.a.polluted, undefined);
  });
});
