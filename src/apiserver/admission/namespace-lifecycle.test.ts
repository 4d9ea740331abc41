// NamespaceLifecycle (namespace-lifecycle.ts): creates only in a namespace
// that exists and is not terminating; the cache first, the store when the
// cache has not seen it yet.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isApiError, notFound } from '../../api/errors.ts';
import type { KubeObject } from '../../api/meta.ts';
import type { ResourceStorage } from '../rest.ts';
import { namespaceLifecycle } from './namespace-lifecycle.ts';

function namespaces(cached: KubeObject[], stored: KubeObject[]): ResourceStorage {
  const byName = (list: KubeObject[], name: string) => list.find((n) => n.metadata.name === name);
  return {
    key: (_ns: string | undefined, name: string) => name,
    cache: { get: (key: string) => byName(cached, key) },
    async get(_ns: string | undefined, name: string) {
      const n = byName(stored, name);
      if (!n) throw notFound({ group: '', resource: 'namespaces' }, name);
      return n;
    },
  } as unknown as ResourceStorage;
}

describe('namespaceLifecycle', () => {
  it('allows a namespace that is in the cache, or only in the store yet', async () => {
    const check = namespaceLifecycle(() =>
      namespaces([{ metadata: { name: 'a' } }], [{ metadata: { name: 'b' } }]),
    );
    await check('a');
    await check('b');
  });

  it('is 404 for a namespace that does not exist', async () => {
    const check = namespaceLifecycle(() => namespaces([], []));
    await assert.rejects(check('gone'), (err) => isApiError(err) && err.status.code === 404);
  });

  it('is 403 for a namespace being deleted, by deletionTimestamp or phase', async () => {
    const check = namespaceLifecycle(() =>
      namespaces(
        [
          { metadata: { name: 'd', deletionTimestamp: '2026-01-01T00:00:00Z' } },
          { metadata: { name: 't' }, status: { phase: 'Terminating' } },
        ],
        [],
      ),
    );
    for (const name of ['d', 't'])
      await assert.rejects(
        check(name),
        (err) =>
          isApiError(err) &&
          err.status.code === 403 &&
          err.status.message ===
            `unable to create new content in namespace ${name} because it is being terminated`,
      );
  });
});
