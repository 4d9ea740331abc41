// Ephemeral containers on the kubelet (hollow runtime): one added through
// pods/ephemeralcontainers starts in the running pod's sandbox without
// touching the pod's other containers, joins its target's PID namespace,
// shows in status.ephemeralContainerStatuses, and is never started again
// once it exits.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { EphemeralContainer, Pod } from '../api/types/core-v1.ts';
import { KUBERNETES_POD_NAME_LABEL } from './labels.ts';
import type { ContainerConfig } from './runtime/runtime.ts';
import { type KubeletTest, startKubeletTest } from './testing.ts';

let t: KubeletTest;
const created: Array<{ sandboxId: string; config: ContainerConfig }> = [];
before(async () => {
  t = await startKubeletTest();
  const original = t.runtime.createContainer.bind(t.runtime);
  t.runtime.createContainer = async (sandboxId: string, config: ContainerConfig) => {
    created.push({ sandboxId, config });
    return original(sandboxId, config);
  };
});
after(() => t.close());

/** The configs the runtime got for one container of one pod (by the pod's name label). */
const configOf = (pod: string, name: string) =>
  created.filter(
    (c) => c.config.metadata.name === name && c.config.labels?.[KUBERNETES_POD_NAME_LABEL] === pod,
  );

async function runningPod(name: string, spec: Partial<NonNullable<Pod['spec']>> = {}): Promise<Pod> {
  await t.pod(name, {
    containers: [{ name: 'app', image: 'busybox', command: ['sleep', 'infinity'] }],
    ...spec,
  });
  return t.until(`${name} running`, async () => {
    const p = await t.getPod(name);
    return p?.status?.containerStatuses?.[0]?.state?.running ? p : undefined;
  });
}

const addEphemeral = (pod: string, container: EphemeralContainer) =>
  t.clients.pods.patch(
    'default',
    pod,
    'strategic',
    { spec: { ephemeralContainers: [{ terminationMessagePolicy: 'File', ...container }] } },
    { subresource: 'ephemeralcontainers' },
  );

const ephemeralStatus = (name: string, container: string) => async () => {
  const p = await t.getPod(name);
  return p?.status?.ephemeralContainerStatuses?.find((s) => s.name === container);
};

describe('kubelet: ephemeral containers', () => {
  it('starts one in the running pod, in its target PID namespace, leaving the other containers alone', async () => {
    const pod = await runningPod('debugged');
    const app = pod.status?.containerStatuses?.[0];
    const appConfig = configOf('debugged', 'app').at(-1)!;
    await addEphemeral('debugged', {
      name: 'dbg',
      image: 'busybox',
      command: ['sh', '-c', 'sleep 3600'],
      stdin: true,
      tty: true,
      targetContainerName: 'app',
    });
    const status = await t.until('dbg running', async () => {
      const s = await ephemeralStatus('debugged', 'dbg')();
      return s?.state?.running ? s : undefined;
    });
    assert.equal(status.ready, false);
    assert.equal(status.started, undefined);
    assert.equal(status.restartCount, 0);
    assert.equal(status.image, 'docker.io/library/busybox:latest');
    assert.match(status.imageID ?? '', /^sha256:/);
    assert.match(status.containerID ?? '', /^hollow:\/\/[0-9a-f]{64}$/);

    const [dbg, ...more] = configOf('debugged', 'dbg');
    assert.equal(more.length, 0);
    assert.equal(dbg?.sandboxId, appConfig.sandboxId, 'in the pod sandbox');
    assert.deepEqual(dbg?.config.linux?.securityContext?.namespaceOptions, {
      network: 'POD',
      pid: 'TARGET',
      ipc: 'POD',
      targetId: app?.containerID?.replace('hollow://', ''),
    });
    assert.equal(dbg?.config.stdin, true);
    assert.equal(dbg?.config.tty, true);
    assert.equal(dbg?.config.logPath, 'dbg/0.log');

    // The app container is the same one, never restarted; the pod stays
    // Running and Ready (an ephemeral container is not part of readiness).
    const after = (await t.getPod('debugged'))!;
    const appNow = after.status?.containerStatuses?.[0];
    assert.equal(appNow?.containerID, app?.containerID);
    assert.equal(appNow?.restartCount, 0);
    assert.equal(configOf('debugged', 'app').length, 1);
    assert.equal(after.status?.phase, 'Running');
    assert.equal(after.status?.conditions?.find((c) => c.type === 'Ready')?.status, 'True');
    assert.equal((await t.runtime.listPodSandbox()).filter((s) => s.state === 'SANDBOX_READY').length, 1);
  });

  it('never starts one again once it exited, whatever the pod restartPolicy', async () => {
    await runningPod('oneshot');
    await addEphemeral('oneshot', { name: 'quit', image: 'busybox', command: ['sh', '-c', 'exit 3'] });
    const done = await t.until('quit terminated', async () => {
      const s = await ephemeralStatus('oneshot', 'quit')();
      return s?.state?.terminated ? s : undefined;
    });
    assert.equal(done.state?.terminated?.exitCode, 3);
    assert.equal(done.state?.terminated?.reason, 'Error');
    // Well past any restart backoff, and through a kubelet restart, it stays exited.
    await t.advance(60_000, 5_000);
    await t.restartKubelet();
    await t.advance(20_000, 5_000);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(configOf('oneshot', 'quit').length, 1);
    const s = await ephemeralStatus('oneshot', 'quit')();
    assert.equal(s?.restartCount, 0);
    assert.equal(s?.state?.terminated?.exitCode, 3);
    const pod = await t.getPod('oneshot');
    assert.equal(pod?.status?.phase, 'Running');
  });

  it('without a target, or in a pod that shares its PID namespace, keeps the pod namespaces', async () => {
    await runningPod('plain');
    await addEphemeral('plain', { name: 'look', image: 'busybox', command: ['sleep', 'infinity'] });
    await t.until('look running', async () => (await ephemeralStatus('plain', 'look')())?.state?.running);
    assert.equal(
      configOf('plain', 'look')[0]?.config.linux?.securityContext?.namespaceOptions?.pid,
      'CONTAINER',
    );

    await runningPod('shared', { shareProcessNamespace: true });
    await addEphemeral('shared', {
      name: 'peek',
      image: 'busybox',
      command: ['sleep', 'infinity'],
      targetContainerName: 'app',
    });
    await t.until('peek running', async () => (await ephemeralStatus('shared', 'peek')())?.state?.running);
    const ns = configOf('shared', 'peek')[0]?.config.linux?.securityContext?.namespaceOptions;
    assert.equal(ns?.pid, 'POD');
    assert.equal(ns?.targetId, undefined);
  });

  it('are not started again in a new sandbox when the pod sandbox is recreated', async () => {
    const pod = await runningPod('resandboxed');
    await addEphemeral('resandboxed', { name: 'dbg', image: 'busybox', command: ['sleep', 'infinity'] });
    await t.until('dbg running', async () => (await ephemeralStatus('resandboxed', 'dbg')())?.state?.running);
    const [sandbox] = await t.runtime.listPodSandbox({
      labelSelector: { 'io.kubernetes.pod.uid': pod.metadata.uid ?? '' },
    });
    await t.runtime.stopPodSandbox(sandbox!.id);
    // The app container comes back in the new sandbox; the ephemeral one stays exited.
    await t.until('app running in a new sandbox', async () => {
      const p = await t.getPod('resandboxed');
      const app = p?.status?.containerStatuses?.[0];
      return app?.state?.running && (app.restartCount ?? 0) >= 1 ? p : undefined;
    });
    const dbg = await t.until('dbg terminated', async () => {
      const s = await ephemeralStatus('resandboxed', 'dbg')();
      return s?.state?.terminated ? s : undefined;
    });
    assert.equal(dbg.restartCount, 0);
    assert.equal(configOf('resandboxed', 'dbg').length, 1);
  });

  it('are stopped with the pod when it is deleted', async () => {
    await runningPod('gone');
    await addEphemeral('gone', { name: 'dbg', image: 'busybox', command: ['sleep', 'infinity'] });
    await t.until('dbg running', async () => (await ephemeralStatus('gone', 'dbg')())?.state?.running);
    const pod = (await t.getPod('gone'))!;
    await t.clients.pods.delete('default', 'gone', { gracePeriodSeconds: 1 });
    await t.until('the pod gone', async () => ((await t.getPod('gone')) ? undefined : true));
    await t.advance(3000);
    await t.until('its containers removed', async () => {
      const left = await t.runtime.listContainers({
        labelSelector: { 'io.kubernetes.pod.uid': pod.metadata.uid ?? '' },
      });
      return left.length === 0 ? true : undefined;
    });
  });
});
