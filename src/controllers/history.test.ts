import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { selectorFromSet } from '../api/labels.ts';
import type { ControllerRevision, DaemonSet } from '../api/types/apps-v1.ts';
import { createInformer, type Informer } from '../client/informer.ts';
import {
  CONTROLLER_REVISION_DATA_HASH_LABEL,
  computeHash,
  controllerRevisionName,
  equalRevision,
  type History,
  hashControllerRevision,
  newControllerRevision,
  newHistory,
  nextRevision,
  revisionsToTruncate,
  sortControllerRevisions,
  templatePatch,
} from './history.ts';
import { type ControllerTest, startControllerTest } from './testing.ts';

const template = (image: string) => ({
  metadata: { labels: { app: 'web' } },
  spec: { containers: [{ name: 'c', image }] },
});

const rev = (name: string, revision: number, created = '2026-01-01T00:00:00Z'): ControllerRevision => ({
  metadata: { name, creationTimestamp: created },
  revision,
});

describe('history: hashing and ordering', () => {
  it('hashes templates stably, whatever the key order, and only with safe characters', () => {
    const a = computeHash({ spec: { containers: [{ image: 'x', name: 'c' }] }, metadata: {} });
    const b = computeHash({ metadata: {}, spec: { containers: [{ name: 'c', image: 'x' }] } });
    assert.equal(a, b);
    assert.match(a, /^[bcdfghjklmnpqrstvwxz2456789]+$/);
    assert.notEqual(computeHash(template('nginx:1')), computeHash(template('nginx:2')));
    // A collision is escaped by bumping status.collisionCount.
    assert.notEqual(computeHash(template('nginx:1')), computeHash(template('nginx:1'), 1));
    assert.notEqual(computeHash(template('nginx:1'), 1), computeHash(template('nginx:1'), 2));
  });

  it('names revisions <parent>-<hash of data>, labelled with the hash and owned by the parent', () => {
    const parent = { metadata: { name: 'db', namespace: 'default', uid: 'u1' } };
    const cr = newControllerRevision({
      parent,
      parentApiVersion: 'apps/v1',
      parentKind: 'StatefulSet',
      templateLabels: { app: 'db' },
      data: templatePatch(template('pg:16')),
      revision: 3,
    });
    const hash = hashControllerRevision(cr);
    assert.equal(cr.metadata.name, `db-${hash}`);
    assert.equal(cr.metadata.labels?.[CONTROLLER_REVISION_DATA_HASH_LABEL], hash);
    assert.equal(cr.metadata.labels?.app, 'db');
    assert.equal(cr.revision, 3);
    assert.deepEqual(cr.metadata.ownerReferences, [
      {
        apiVersion: 'apps/v1',
        kind: 'StatefulSet',
        name: 'db',
        uid: 'u1',
        controller: true,
        blockOwnerDeletion: true,
      },
    ]);
    // The data is the patch kubectl applies to roll back: the whole template, replaced.
    assert.deepEqual(cr.data, { spec: { template: { ...template('pg:16'), $patch: 'replace' } } });
    assert.equal(controllerRevisionName('x'.repeat(300), 'h').length, 225);
  });

  it('compares revisions by data and sorts by revision, then creation time, then name', () => {
    const a = { ...rev('a', 1), data: templatePatch(template('1')) };
    const b = { ...rev('b', 2), data: templatePatch(template('1')) };
    const c = { ...rev('c', 2), data: templatePatch(template('2')) };
    assert.ok(equalRevision(a, b));
    assert.ok(!equalRevision(a, c));
    const sorted = sortControllerRevisions([
      rev('z', 2),
      rev('b', 1, '2026-01-02T00:00:00Z'),
      rev('a', 1, '2026-01-02T00:00:00Z'),
      rev('c', 1),
    ]);
    assert.deepEqual(
      sorted.map((r) => r.metadata.name),
      ['c', 'a', 'b', 'z'],
    );
    assert.equal(nextRevision(sorted), 3);
    assert.equal(nextRevision([]), 1);
  });

  it('truncates the oldest non-live revisions beyond the limit', () => {
    const revs = [rev('r1', 1), rev('r2', 2), rev('r3', 3), rev('r4', 4)];
    const live = (r: ControllerRevision) => r.metadata.name === 'r1';
    const names = (rs: ControllerRevision[]) => rs.map((r) => r.metadata.name);
    // StatefulSet: keep `limit` revisions besides the live ones.
    assert.deepEqual(names(revisionsToTruncate(revs, { isLive: live, limit: 2 })), ['r2']);
    // DaemonSet: live ones count towards the limit too.
    assert.deepEqual(
      names(revisionsToTruncate(revs, { isLive: live, limit: 2, liveCountTowardsLimit: true })),
      ['r2', 'r3'],
    );
    assert.deepEqual(names(revisionsToTruncate(revs, { isLive: live, limit: 10 })), []);
    assert.deepEqual(names(revisionsToTruncate(revs, { isLive: live, limit: 0 })), ['r2', 'r3', 'r4']);
  });
});

describe('history: through the API server', () => {
  let t: ControllerTest;
  let revisions: Informer<ControllerRevision>;
  let history: History;
  let parent: DaemonSet;

  before(async () => {
    t = await startControllerTest({});
    revisions = createInformer(t.clients.controllerRevisions, {
      indexers: { namespace: (o) => [o.metadata.namespace ?? ''] },
    });
    await revisions.start();
    history = newHistory(t.clients.controllerRevisions, revisions.indexer);
    parent = await t.clients.daemonSets.create('default', {
      metadata: { name: 'agent' },
      spec: {
        selector: { matchLabels: { app: 'agent' } },
        template: {
          metadata: { labels: { app: 'agent' } },
          spec: { containers: [{ name: 'a', image: 'a:1' }] },
        },
      },
    });
  });
  after(async () => {
    revisions.stop();
    await t.close();
  });

  const make = (image: string, revision: number) =>
    newControllerRevision({
      parent,
      parentApiVersion: 'apps/v1',
      parentKind: 'DaemonSet',
      templateLabels: { app: 'agent' },
      data: templatePatch({ spec: { containers: [{ name: 'a', image }] } }),
      revision,
      collisionCount: 0,
    });

  it('creates a revision once; creating the same data again returns the existing one', async () => {
    const first = await history.create(parent, make('a:1', 1), 0);
    assert.equal(first.collisionCount, 0);
    assert.equal(first.revision.revision, 1);
    const again = await history.create(parent, make('a:1', 1), 0);
    assert.equal(again.revision.metadata.uid, first.revision.metadata.uid);
    await t.until(
      'the informer to see it',
      () => history.list(parent, selectorFromSet({ app: 'agent' })).length,
    );
    assert.deepEqual(
      history.list(parent, selectorFromSet({ app: 'agent' })).map((r) => r.metadata.name),
      [first.revision.metadata.name],
    );
    assert.equal(history.list(parent, selectorFromSet({ app: 'other' })).length, 0);
  });

  it('escapes a name collision by bumping the collision count', async () => {
    const wanted = make('a:2', 2);
    // Another revision already holds the name with different data.
    await t.clients.controllerRevisions.create('default', {
      metadata: { name: wanted.metadata.name, labels: { app: 'agent' } },
      data: { something: 'else' },
      revision: 9,
    });
    const made = await history.create(parent, wanted, 0);
    assert.equal(made.collisionCount, 1);
    assert.equal(
      made.revision.metadata.name,
      controllerRevisionName('agent', hashControllerRevision(wanted, 1)),
    );
    assert.deepEqual(made.revision.data, wanted.data);
  });

  it('renumbers, claims orphans, and deletes revisions', async () => {
    const made = (await history.create(parent, make('a:3', 3), 0)).revision;
    const renumbered = await history.update(made, 7);
    assert.equal(renumbered.revision, 7);
    assert.equal((await t.clients.controllerRevisions.get('default', made.metadata.name ?? '')).revision, 7);

    // The orphan made in the collision test is adopted.
    await t.until('the informer to see every revision', () => revisions.indexer.list().length === 4);
    const claimed = await history.claim({
      parent,
      parentApiVersion: 'apps/v1',
      parentKind: 'DaemonSet',
      selector: selectorFromSet({ app: 'agent' }),
      recheckParent: () => t.clients.daemonSets.get('default', 'agent'),
    });
    assert.equal(claimed.length, 4);
    assert.ok(claimed.every((r) => r.metadata.ownerReferences?.[0]?.uid === parent.metadata.uid));

    await history.delete(renumbered);
    await history.delete(renumbered); // already gone: not an error
    await t.until('the informer to see the deletion', () => revisions.indexer.list().length === 3);
  });
});
