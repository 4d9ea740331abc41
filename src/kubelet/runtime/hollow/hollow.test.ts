import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FakeClock } from '../../../client/fake-clock.ts';
import { runtimeContract } from '../runtime.case.ts';
import { HollowRuntime, hollowBehaviour, normalizeImage } from './hollow.ts';

runtimeContract('hollow', { runsProcesses: false }, async () => ({
  runtime: new HollowRuntime({ podCIDR: () => '10.42.9.0/24', images: ['busybox'] }),
  podCIDR: '10.42.9.0/24',
  busyboxImage: 'busybox',
  absentImage: 'registry.invalid/skiff/absent:never',
  async teardown() {},
}));

describe('hollow runtime', () => {
  it('reads what a container does from its command line', () => {
    assert.deepEqual(hollowBehaviour(['sh', '-c', 'exit 3']), {
      exitAfterSeconds: 0,
      exitCode: 3,
      ignoresSIGTERM: false,
    });
    assert.deepEqual(hollowBehaviour(['sleep', '30']), {
      exitAfterSeconds: 30,
      exitCode: 0,
      ignoresSIGTERM: false,
    });
    assert.deepEqual(hollowBehaviour(['sh', '-c', 'sleep 5; exit 1']), {
      exitAfterSeconds: 5,
      exitCode: 1,
      ignoresSIGTERM: false,
    });
    assert.deepEqual(hollowBehaviour(['sleep', 'infinity']), { exitCode: 0, ignoresSIGTERM: false });
    assert.deepEqual(hollowBehaviour(['/bin/false']), {
      exitAfterSeconds: 0,
      exitCode: 1,
      ignoresSIGTERM: false,
    });
    assert.deepEqual(hollowBehaviour(['sh', '-c', "trap '' TERM; sleep infinity"]), {
      exitCode: 0,
      ignoresSIGTERM: true,
    });
    assert.deepEqual(hollowBehaviour(['nginx', '-g', 'daemon off;']), { exitCode: 0, ignoresSIGTERM: false });
  });

  it('normalizes image names as docker does', () => {
    assert.equal(normalizeImage('busybox'), 'docker.io/library/busybox:latest');
    assert.equal(normalizeImage('redis:7'), 'docker.io/library/redis:7');
    assert.equal(normalizeImage('bitnami/redis'), 'docker.io/bitnami/redis:latest');
    assert.equal(normalizeImage('localhost:5000/app'), 'localhost:5000/app:latest');
    assert.equal(normalizeImage('registry.k8s.io/pause:3.10'), 'registry.k8s.io/pause:3.10');
  });

  it('exits after a sleep, and kills a SIGTERM-ignoring container only at the stop timeout', async () => {
    const clock = new FakeClock();
    const rt = new HollowRuntime({ clock, now: () => new Date(clock.now()) });
    const sandbox = await rt.runPodSandbox({ metadata: { name: 'p', uid: 'u', namespace: 'n', attempt: 0 } });
    const sleeper = await rt.createContainer(sandbox, {
      metadata: { name: 'a', attempt: 0 },
      image: { image: 'busybox' },
      command: ['sleep', '10'],
    });
    await rt.startContainer(sleeper);
    clock.advance(9999);
    assert.equal((await rt.containerStatus(sleeper)).state, 'CONTAINER_RUNNING');
    clock.advance(1);
    const done = await rt.containerStatus(sleeper);
    assert.equal(done.state, 'CONTAINER_EXITED');
    assert.equal(done.exitCode, 0);
    assert.equal(done.reason, 'Completed');

    const stubborn = await rt.createContainer(sandbox, {
      metadata: { name: 'b', attempt: 0 },
      image: { image: 'busybox' },
      command: ['sh', '-c', "trap '' TERM; sleep infinity"],
    });
    await rt.startContainer(stubborn);
    let stopped = false;
    const stopping = rt.stopContainer(stubborn, 30).then(() => (stopped = true));
    clock.advance(29_000);
    await new Promise((r) => setImmediate(r));
    assert.equal(stopped, false);
    clock.advance(1000);
    await stopping;
    const killed = await rt.containerStatus(stubborn);
    assert.equal(killed.exitCode, 137);
    assert.equal(killed.reason, 'Error');
  });
});
