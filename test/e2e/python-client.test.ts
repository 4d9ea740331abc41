// The official Python client (Debian's python3-kubernetes, run with the
// system /usr/bin/python3) against a real `skiff server`: watch from a list's
// resourceVersion, pagination, the four patch kinds, Conflict and NotFound
// Statuses, a bind through the bindings resource, pretty output and
// upstream's Deployment defaults. The client calls are in python/client.py;
// each scenario prints what it saw, asserted here.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { ok, type Skiff, startSkiff } from './harness.ts';

const PYTHON = '/usr/bin/python3';
const SCRIPT = new URL('./python/client.py', import.meta.url).pathname;
const NS = 'python-client';

let skiff: Skiff;

before(async () => {
  skiff = await startSkiff();
  await ok(skiff, ['create', 'namespace', NS]);
});
after(async () => {
  if (skiff) await skiff.kubectl(['delete', 'namespace', NS, '--wait=false']);
  await skiff?.stop();
});

/** Runs one scenario of python/client.py and returns the JSON it printed. */
function scenario(name: string): Promise<any> {
  return new Promise((resolve, reject) => {
    execFile(
      PYTHON,
      [SCRIPT, name, skiff.kubeconfig, NS, skiff.dataDir],
      { timeout: 90_000, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err) return reject(new Error(`python scenario ${name} failed: ${err.message}\n${stderr}`));
        resolve(JSON.parse(stdout));
      },
    );
  });
}

describe('the official Python client', () => {
  it('watches from a list resourceVersion: the changes after the list, in order, and nothing before', async () => {
    const r = await scenario('watch');
    assert.deepEqual(r.listed, ['before']);
    assert.deepEqual(r.events, [
      ['ADDED', 'after', '1'],
      ['MODIFIED', 'after', '2'],
      ['DELETED', 'after', '2'],
    ]);
  });

  it('pages with limit and _continue: every object once, remaining_item_count without selectors', async () => {
    const r = await scenario('paginate');
    for (const pages of [r.unselected, r.selected] as Array<Array<Record<string, any>>>) {
      const names = pages.flatMap((p) => p.names as string[]);
      assert.equal(new Set(names).size, names.length, `no object twice: ${names}`);
      assert.ok(pages.length >= 3, 'seven objects are more than two pages of three');
      for (const p of pages.slice(0, -1)) {
        assert.equal(p.names.length, 3);
        assert.ok(p.continue, 'a continue token on every page but the last');
      }
      assert.equal(pages.at(-1)!.continue, null);
      // Every page is a snapshot at the first page's resourceVersion.
      assert.deepEqual(new Set(pages.map((p) => p.resourceVersion)).size, 1);
      for (let i = 0; i < 7; i++) assert.ok(names.includes(`page-${i}`), `page-${i} listed`);
    }
    assert.deepEqual(
      r.selected.map((p: { names: string[] }) => p.names),
      [['page-0', 'page-1', 'page-2'], ['page-3', 'page-4', 'page-5'], ['page-6']],
    );
    // Upstream counts what is left only when no selector filters the list.
    assert.deepEqual(
      r.selected.map((p: { remaining: unknown }) => p.remaining),
      [null, null, null],
    );
    const total = r.unselected.flatMap((p: { names: string[] }) => p.names).length;
    assert.deepEqual(
      r.unselected.map((p: { remaining: unknown }) => p.remaining),
      r.unselected.map((_: unknown, i: number, all: unknown[]) =>
        i === all.length - 1 ? null : total - 3 * (i + 1),
      ),
    );
  });

  it('applies JSON, merge and strategic merge patches, and server-side apply with its conflicts', async () => {
    const r = await scenario('patches');
    assert.deepEqual(r.jsonPatch, { replicas: 3 });
    assert.equal(r.failedTest.status, 422);
    assert.equal(r.failedTest.body.kind, 'Status');
    assert.equal(r.failedTest.body.reason, 'Invalid');
    // Strategic merge: containers merge by name; the new one first, as upstream.
    assert.deepEqual(r.strategicAdd, [
      ['sidecar', 'redis'],
      ['main', 'busybox'],
    ]);
    assert.deepEqual(r.strategicUpdate, [
      ['sidecar', 'redis'],
      ['main', 'busybox:1.36'],
    ]);
    // Merge patch: a list is replaced whole.
    assert.deepEqual(r.merge, { labels: { patched: 'merge' }, containers: [['main', 'busybox:1.37']] });
    assert.deepEqual(r.applyCreate, {
      data: { owned: 'first', other: 'x' },
      managers: [['py-first', 'Apply']],
    });
    assert.equal(r.applyConflict.status, 409);
    assert.equal(r.applyConflict.body.reason, 'Conflict');
    assert.deepEqual(
      r.applyConflict.body.details.causes.map((c: { reason: string; field: string }) => [c.reason, c.field]),
      [['FieldManagerConflict', '.data.owned']],
    );
    assert.deepEqual(r.applyForce, {
      data: { owned: 'second', other: 'x' },
      managers: [
        ['py-first', 'Apply'],
        ['py-second', 'Apply'],
      ],
    });
  });

  it('gets 409 Conflict for an update with a stale resourceVersion', async () => {
    const r = await scenario('conflict');
    assert.notEqual(r.staleResourceVersion, r.updatedResourceVersion);
    assert.equal(r.error.status, 409);
    assert.equal(r.error.body.kind, 'Status');
    assert.equal(r.error.body.status, 'Failure');
    assert.equal(r.error.body.reason, 'Conflict');
    assert.equal(r.error.body.code, 409);
    assert.deepEqual(r.error.body.details, { name: 'contended', group: '', kind: 'configmaps' });
    assert.match(r.error.body.message, /the object has been modified/);
    assert.deepEqual(r.final, { v: '1' }, 'the stale update changed nothing');
  });

  it('gets 404 NotFound with the name and kind of a missing object', async () => {
    const r = await scenario('not-found');
    assert.equal(r.configmap.status, 404);
    assert.deepEqual(r.configmap.body, {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'configmaps "missing" not found',
      reason: 'NotFound',
      details: { name: 'missing', group: '', kind: 'configmaps' },
      code: 404,
    });
    assert.equal(r.deployment.status, 404);
    assert.equal(r.deployment.body.message, 'deployments.apps "missing" not found');
    assert.deepEqual(r.deployment.body.details, { name: 'missing', group: 'apps', kind: 'deployments' });
  });

  it('binds a pod through the bindings resource, as a Python scheduler does', async () => {
    const r = await scenario('bind');
    assert.equal(r.status, 201);
    assert.equal(r.answer.kind, 'Status');
    assert.equal(r.answer.status, 'Success');
    assert.equal(r.nodeName, 'py-node');
    assert.ok(r.scheduled.includes('PodScheduled'), `conditions: ${r.scheduled}`);
  });

  it("indents the answer for pretty='true'", async () => {
    const r = await scenario('pretty');
    const object = JSON.parse(r.compact);
    assert.equal(r.compact, JSON.stringify(object));
    assert.equal(r.pretty, JSON.stringify(object, null, 2));
  });

  it("returns a minimal Deployment with upstream's defaults", async () => {
    const r = await scenario('deployment-defaults');
    // pkg/apis/apps/v1/defaults.go (SetDefaults_Deployment) and
    // pkg/apis/core/v1/defaults.go (pod spec and container defaults).
    const expected = {
      replicas: 1,
      progressDeadlineSeconds: 600,
      revisionHistoryLimit: 10,
      selector: { matchLabels: { app: 'defaulted' } },
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: '25%', maxUnavailable: '25%' } },
      template: {
        metadata: { labels: { app: 'defaulted' } },
        spec: {
          containers: [
            {
              name: 'main',
              image: 'busybox',
              imagePullPolicy: 'Always', // no tag: latest
              resources: {},
              terminationMessagePath: '/dev/termination-log',
              terminationMessagePolicy: 'File',
            },
          ],
          restartPolicy: 'Always',
          dnsPolicy: 'ClusterFirst',
          terminationGracePeriodSeconds: 30,
          schedulerName: 'default-scheduler',
          securityContext: {},
        },
      },
    };
    assert.deepEqual(r.created, expected);
    assert.deepEqual(r.read, expected);
  });
});
