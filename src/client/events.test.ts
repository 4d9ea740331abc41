import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createInProcessTransport } from '../apiserver/in-process.ts';
import { startTestServer, type TestServer } from '../apiserver/testing.ts';
import { type Clientset, createClientset } from './clientset.ts';
import { createEventRecorder } from './events.ts';

let s: TestServer;
let clients: Clientset;
before(async () => {
  s = await startTestServer();
  clients = createClientset(createInProcessTransport(s.api, { name: 'test', groups: [] }));
});
after(() => s.close());

describe('event recorder', () => {
  it('writes an Event about the object, and counts repeats instead of writing them again', async () => {
    const cm = await clients.configMaps.create('default', { metadata: { name: 'evented' } });
    let t = Date.parse('2026-01-02T03:04:05Z');
    const recorder = createEventRecorder(clients, { component: 'test-controller', now: () => new Date(t) });
    recorder.event(cm, 'Normal', 'Synced', 'synced it');
    await recorder.flush();
    t += 7000;
    recorder.event(cm, 'Normal', 'Synced', 'synced it');
    recorder.event(cm, 'Warning', 'Failed', 'it broke');
    await recorder.flush();

    const events = (await clients.events.list('default')).items.filter(
      (e) => e.involvedObject?.name === 'evented',
    );
    assert.equal(events.length, 2);
    const synced = events.find((e) => e.reason === 'Synced')!;
    assert.equal(synced.count, 2);
    assert.equal(synced.firstTimestamp, '2026-01-02T03:04:05Z');
    assert.equal(synced.lastTimestamp, '2026-01-02T03:04:12Z');
    assert.deepEqual(synced.involvedObject, {
      kind: 'ConfigMap',
      apiVersion: 'v1',
      name: 'evented',
      namespace: 'default',
      uid: cm.metadata.uid,
      resourceVersion: cm.metadata.resourceVersion,
    });
    assert.equal(synced.source?.component, 'test-controller');
    assert.match(synced.metadata.name ?? '', /^evented\.[0-9a-f]+$/);
    const failed = events.find((e) => e.reason === 'Failed')!;
    assert.equal(failed.type, 'Warning');
    assert.equal(failed.count, 1);
  });

  it('never throws: a failed write is logged and dropped', async () => {
    const logged: string[] = [];
    const recorder = createEventRecorder(clients, { component: 'x', log: (msg) => logged.push(msg) });
    // No such namespace: the create fails.
    recorder.event({ kind: 'ConfigMap', metadata: { name: 'a', namespace: 'nowhere' } }, 'Normal', 'R', 'm');
    await recorder.flush();
    assert.deepEqual(logged, ['event not recorded']);
  });
});
