// The one contract suite every Runtime implementation passes: cri/ against a
// real containerd (cri/cri.test.ts) and hollow/ with no containers at all.
// It checks what kubelet relies on from CRI, in the spirit of upstream's
// critest (kubernetes-sigs/cri-tools pkg/validate): sandbox and container
// state machines, filters, NotFound for unknown ids, idempotent removal,
// image status, and, for runtimes that run real processes, what those
// processes do (exit codes and reasons, logs, exec, signals, OOM).
//
// Usage, from an implementation's test file:
//   runtimeContract('cri', { runsProcesses: true }, async () => ({ runtime, podCIDR, ... }));

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import {
  type ContainerConfig,
  type ContainerStatus,
  type PodSandboxConfig,
  type Runtime,
  RuntimeError,
} from './runtime.ts';

export interface RuntimeUnderTest {
  runtime: Runtime;
  /** The podCIDR sandboxes get their IPs from. */
  podCIDR: string;
  /** An image the runtime has, with busybox's applets (sh, sleep, echo, head, tail...). */
  busyboxImage: string;
  /** An image the runtime has not and cannot get; pulling it must fail promptly. */
  absentImage: string;
  /** Releases what setup made (the suite itself removes the sandboxes it created). */
  teardown(): Promise<void>;
}

/** Label on everything the suite creates, so cleanup finds it all. */
const RUN_LABEL = 'skiff.test/contract-run';

/** Is the IPv4 address `ip` inside `cidr`? */
export function ipInCIDR(ip: string, cidr: string): boolean {
  const toInt = (a: string) => a.split('.').reduce((n, o) => n * 256 + Number(o), 0);
  const [base, bits] = cidr.split('/');
  const size = 2 ** (32 - Number(bits));
  const start = toInt(base!) - (toInt(base!) % size);
  const n = toInt(ip);
  return /^\d+\.\d+\.\d+\.\d+$/.test(ip) && n >= start && n < start + size;
}

async function rejectsWith(p: Promise<unknown>, code: string, what: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof RuntimeError, `${what}: expected a RuntimeError, got ${String(err)}`);
    assert.equal(err.code, code, `${what}: ${err.message}`);
    return true;
  });
}

export interface ContractOptions {
  /**
   * True when containers are real processes, so the suite also checks what
   * they do: output and logs, exit codes, exec, signals, memory limits. A
   * hollow runtime runs no process; for it those checks are not part of its
   * contract, so they are not registered (rather than skipped).
   */
  runsProcesses: boolean;
}

export function runtimeContract(
  name: string,
  options: ContractOptions,
  setup: () => Promise<RuntimeUnderTest>,
): void {
  describe(`Runtime contract: ${name}`, () => {
    let u: RuntimeUnderTest;
    let rt: Runtime;
    let logRoot: string;
    const runId = randomUUID().slice(0, 8);

    before(async () => {
      u = await setup();
      rt = u.runtime;
      logRoot = await mkdtemp(join(tmpdir(), 'skiff-runtime-logs-'));
    });

    after(async () => {
      if (!rt) return;
      // Removing a sandbox removes its containers (CRI RemovePodSandbox).
      for (const s of await rt.listPodSandbox({ labelSelector: { [RUN_LABEL]: runId } }).catch(() => [])) {
        await rt.stopPodSandbox(s.id).catch(() => undefined);
        await rt.removePodSandbox(s.id).catch(() => undefined);
      }
      await rm(logRoot, { recursive: true, force: true });
      await u.teardown();
    });

    // As kubelet builds them: the pod's log directory exists before the
    // sandbox runs, container logs go to `<name>/<restartCount>.log` in it.
    const sandboxConfig = async (
      pod: string,
      extra: Partial<PodSandboxConfig> = {},
    ): Promise<PodSandboxConfig> => {
      const uid = randomUUID();
      const logDirectory = join(logRoot, `contract_${pod}_${uid}`);
      await mkdir(logDirectory, { recursive: true });
      return {
        metadata: { name: pod, uid, namespace: 'contract', attempt: 0 },
        hostname: pod,
        logDirectory,
        labels: { [RUN_LABEL]: runId, 'io.kubernetes.pod.name': pod },
        annotations: { 'skiff.test/note': `sandbox ${pod}` },
        // kubelet's defaults for a v1 pod: one network and IPC namespace per
        // pod, a PID namespace per container (CRI's own default is POD).
        linux: { securityContext: { namespaceOptions: { network: 'POD', pid: 'CONTAINER', ipc: 'POD' } } },
        ...extra,
      };
    };

    const containerConfig = async (
      sandbox: PodSandboxConfig,
      container: string,
      extra: Partial<ContainerConfig> = {},
    ): Promise<ContainerConfig> => {
      await mkdir(join(sandbox.logDirectory!, container), { recursive: true });
      return {
        metadata: { name: container, attempt: 0 },
        image: { image: u.busyboxImage },
        command: ['sleep', '3600'],
        logPath: `${container}/0.log`,
        labels: { [RUN_LABEL]: runId, 'io.kubernetes.container.name': container },
        annotations: { 'skiff.test/note': `container ${container}` },
        linux: { securityContext: { namespaceOptions: { network: 'POD', pid: 'CONTAINER', ipc: 'POD' } } },
        ...extra,
      };
    };

    const runSandbox = async (pod: string, extra?: Partial<PodSandboxConfig>) => {
      const config = await sandboxConfig(pod, extra);
      const id = await rt.runPodSandbox(config);
      return { id, config };
    };

    const startContainer = async (
      sandbox: { id: string; config: PodSandboxConfig },
      container: string,
      extra?: Partial<ContainerConfig>,
    ) => {
      const id = await rt.createContainer(
        sandbox.id,
        await containerConfig(sandbox.config, container, extra),
        sandbox.config,
      );
      await rt.startContainer(id);
      return id;
    };

    const waitExited = async (containerId: string, timeoutMs = 60_000): Promise<ContainerStatus> => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const s = await rt.containerStatus(containerId);
        if (s.state === 'CONTAINER_EXITED') return s;
        if (Date.now() > deadline)
          assert.fail(`container ${containerId} still ${s.state} after ${timeoutMs} ms`);
        await delay(100);
      }
    };

    it('reports its version as CRI v1', async () => {
      const v = await rt.version();
      assert.equal(v.runtimeApiVersion, 'v1');
      assert.ok(v.runtimeName.length > 0, 'runtimeName');
      assert.ok(v.runtimeVersion.length > 0, 'runtimeVersion');
    });

    it('runs, stops and removes a pod sandbox with an IP from the podCIDR', async () => {
      const { id, config } = await runSandbox('lifecycle');
      const status = await rt.podSandboxStatus(id);
      assert.equal(status.id, id);
      assert.equal(status.state, 'SANDBOX_READY');
      assert.deepEqual(status.metadata, config.metadata);
      assert.equal(status.labels[RUN_LABEL], runId);
      assert.equal(status.annotations['skiff.test/note'], 'sandbox lifecycle');
      assert.ok(status.createdAt > 0n, 'createdAt');
      const ip = status.network?.ip ?? '';
      assert.ok(ipInCIDR(ip, u.podCIDR), `pod IP ${ip} in ${u.podCIDR}`);

      // A second sandbox gets a different address from the same range.
      const other = await runSandbox('lifecycle-2');
      const otherIP = (await rt.podSandboxStatus(other.id)).network?.ip ?? '';
      assert.ok(ipInCIDR(otherIP, u.podCIDR), `pod IP ${otherIP} in ${u.podCIDR}`);
      assert.notEqual(otherIP, ip);
      await rt.stopPodSandbox(other.id);
      await rt.removePodSandbox(other.id);

      await rt.stopPodSandbox(id);
      assert.equal((await rt.podSandboxStatus(id)).state, 'SANDBOX_NOTREADY');
      // StopPodSandbox and RemovePodSandbox are idempotent (api.proto), kubelet calls them more than once.
      await rt.stopPodSandbox(id);
      await rt.removePodSandbox(id);
      await rt.removePodSandbox(id);
      await rejectsWith(rt.podSandboxStatus(id), 'NotFound', 'status of a removed sandbox');
      const listed = await rt.listPodSandbox({ labelSelector: { [RUN_LABEL]: runId } });
      assert.ok(!listed.some((s) => s.id === id), 'a removed sandbox is not listed');
    });

    it('filters sandboxes by state and labels', async () => {
      const ready = await runSandbox('filter-ready', { labels: { [RUN_LABEL]: runId, role: 'ready' } });
      const stopped = await runSandbox('filter-stopped', { labels: { [RUN_LABEL]: runId, role: 'stopped' } });
      await rt.stopPodSandbox(stopped.id);

      const ids = (xs: { id: string }[]) => xs.map((x) => x.id).sort();
      const mine = await rt.listPodSandbox({ labelSelector: { [RUN_LABEL]: runId } });
      assert.ok(ids(mine).includes(ready.id) && ids(mine).includes(stopped.id), 'both listed');
      const readyOnes = await rt.listPodSandbox({
        state: 'SANDBOX_READY',
        labelSelector: { [RUN_LABEL]: runId },
      });
      assert.ok(
        ids(readyOnes).includes(ready.id) && !ids(readyOnes).includes(stopped.id),
        'state filter READY',
      );
      const notReady = await rt.listPodSandbox({
        state: 'SANDBOX_NOTREADY',
        labelSelector: { [RUN_LABEL]: runId },
      });
      assert.ok(
        ids(notReady).includes(stopped.id) && !ids(notReady).includes(ready.id),
        'state filter NOTREADY',
      );
      // Label selectors AND their requirements.
      assert.deepEqual(
        ids(await rt.listPodSandbox({ labelSelector: { [RUN_LABEL]: runId, role: 'ready' } })),
        [ready.id],
      );
      assert.deepEqual(
        await rt.listPodSandbox({ labelSelector: { [RUN_LABEL]: runId, role: 'nobody' } }),
        [],
      );
      const listedReady = mine.find((s) => s.id === ready.id)!;
      assert.equal(listedReady.metadata.name, 'filter-ready');
      assert.equal(listedReady.state, 'SANDBOX_READY');
    });

    it('creates, starts, stops and removes a container, and filters containers', async () => {
      const sandbox = await runSandbox('containers');
      const config = await containerConfig(sandbox.config, 'app', {
        labels: { [RUN_LABEL]: runId, tier: 'app' },
      });
      const id = await rt.createContainer(sandbox.id, config, sandbox.config);
      let s = await rt.containerStatus(id);
      assert.equal(s.state, 'CONTAINER_CREATED');
      assert.equal(s.id, id);
      assert.deepEqual(s.metadata, { name: 'app', attempt: 0 });
      assert.equal(s.labels.tier, 'app');
      assert.equal(s.annotations['skiff.test/note'], 'container app');
      assert.match(s.imageRef, /^sha256:[0-9a-f]{64}$|@sha256:/);
      assert.equal(s.logPath, join(sandbox.config.logDirectory!, 'app/0.log'));

      await rt.startContainer(id);
      s = await rt.containerStatus(id);
      assert.equal(s.state, 'CONTAINER_RUNNING');
      assert.ok(s.startedAt > 0n, 'startedAt');

      const sidecar = await startContainer(sandbox, 'sidecar', {
        labels: { [RUN_LABEL]: runId, tier: 'sidecar' },
      });
      const ids = (xs: { id: string }[]) => xs.map((x) => x.id).sort();
      assert.deepEqual(ids(await rt.listContainers({ podSandboxId: sandbox.id })), [id, sidecar].sort());
      assert.deepEqual(
        ids(await rt.listContainers({ labelSelector: { [RUN_LABEL]: runId, tier: 'sidecar' } })),
        [sidecar],
      );
      const listed = (await rt.listContainers({ podSandboxId: sandbox.id })).find((c) => c.id === id)!;
      assert.equal(listed.podSandboxId, sandbox.id);
      assert.equal(listed.state, 'CONTAINER_RUNNING');
      assert.equal(listed.metadata.name, 'app');

      await rt.stopContainer(sidecar, 0);
      s = await rt.containerStatus(sidecar);
      assert.equal(s.state, 'CONTAINER_EXITED');
      assert.ok(s.finishedAt >= s.startedAt && s.finishedAt > 0n, 'finishedAt');
      assert.deepEqual(
        ids(await rt.listContainers({ podSandboxId: sandbox.id, state: 'CONTAINER_RUNNING' })),
        [id],
      );
      assert.deepEqual(
        ids(await rt.listContainers({ podSandboxId: sandbox.id, state: 'CONTAINER_EXITED' })),
        [sidecar],
      );
      // StopContainer on a stopped container and RemoveContainer on a removed one succeed (api.proto).
      await rt.stopContainer(sidecar, 0);
      await rt.removeContainer(sidecar);
      await rt.removeContainer(sidecar);
      await rejectsWith(rt.containerStatus(sidecar), 'NotFound', 'status of a removed container');

      // Removing the sandbox takes its running containers with it.
      await rt.stopPodSandbox(sandbox.id);
      await rt.removePodSandbox(sandbox.id);
      await rejectsWith(rt.containerStatus(id), 'NotFound', 'status of a container of a removed sandbox');
    });

    it('reports the usage of running containers (ListContainerStats), growing over time', async () => {
      const sandbox = await runSandbox('stats');
      const id = await startContainer(sandbox, 'busy', {
        labels: { [RUN_LABEL]: runId, tier: 'stats' },
        // A short spin, then sleep: some CPU time to count, for real processes.
        command: ['sh', '-c', 'i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; sleep 3600'],
      });
      const sample = async () => {
        const stats = await rt.listContainerStats({ podSandboxId: sandbox.id });
        assert.deepEqual(
          stats.map((s) => s.attributes.id),
          [id],
        );
        return stats[0]!;
      };
      const first = await sample();
      assert.equal(first.attributes.metadata.name, 'busy');
      assert.equal(first.attributes.labels.tier, 'stats');
      assert.ok(first.cpu && first.cpu.timestamp > 0, 'a CPU sample with a timestamp');
      assert.ok(first.memory?.workingSetBytes !== undefined, 'a working set');
      // The cumulative counter never goes back, and moves once time has passed.
      let later = first;
      const deadline = Date.now() + 30_000;
      while ((later.cpu?.usageCoreNanoSeconds ?? 0) <= (first.cpu.usageCoreNanoSeconds ?? 0)) {
        if (Date.now() > deadline) assert.fail('the CPU counter did not move in 30 s');
        await delay(200);
        later = await sample();
      }
      assert.ok(later.cpu!.timestamp >= first.cpu.timestamp);
      // Filters: by id, and a label nothing has.
      assert.deepEqual(
        (await rt.listContainerStats({ id })).map((s) => s.attributes.id),
        [id],
      );
      assert.deepEqual(
        await rt.listContainerStats({ labelSelector: { [RUN_LABEL]: runId, tier: 'none' } }),
        [],
      );
    });

    it('answers unknown ids with NotFound', async () => {
      const unknown = 'f'.repeat(64);
      await rejectsWith(rt.containerStatus(unknown), 'NotFound', 'ContainerStatus');
      await rejectsWith(rt.startContainer(unknown), 'NotFound', 'StartContainer');
      await rejectsWith(rt.podSandboxStatus(unknown), 'NotFound', 'PodSandboxStatus');
      await rejectsWith(rt.execSync(unknown, ['true'], 5), 'NotFound', 'ExecSync');
      const sandbox = await sandboxConfig('orphan');
      await rejectsWith(
        rt.createContainer(unknown, await containerConfig(sandbox, 'c'), sandbox),
        'NotFound',
        'CreateContainer in an unknown sandbox',
      );
      // Removal is idempotent, so removing what never existed is no error either.
      await rt.removeContainer(unknown);
      await rt.removePodSandbox(unknown);
    });

    it('reports present images and fails cleanly on an image it cannot pull', async () => {
      const busybox = await rt.imageStatus({ image: u.busyboxImage });
      assert.ok(busybox, `${u.busyboxImage} is present`);
      assert.match(busybox.id, /^sha256:[0-9a-f]{64}$/);
      assert.ok(busybox.size > 0n, 'size');
      const all = await rt.listImages();
      const listed = all.find((i) => i.id === busybox.id);
      assert.ok(listed, 'listed by ListImages');
      assert.deepEqual(listed.repoTags.sort(), busybox.repoTags.sort());

      assert.equal(await rt.imageStatus({ image: u.absentImage }), undefined, 'absent image has no status');
      const started = Date.now();
      await assert.rejects(rt.pullImage({ image: u.absentImage }), (err: unknown) => {
        assert.ok(err instanceof RuntimeError, `a RuntimeError, got ${String(err)}`);
        assert.ok(err.message.includes(u.absentImage), `the error names the image: ${err.message}`);
        return true;
      });
      assert.ok(Date.now() - started < 60_000, 'the failed pull returned promptly');
      assert.equal(
        await rt.imageStatus({ image: u.absentImage }),
        undefined,
        'still absent after the failed pull',
      );
    });

    if (!options.runsProcesses) return;
    describe('processes', () => {
      it('runs command and args with env and workingDir; exit code, reason and log file', async () => {
        const sandbox = await runSandbox('exit-codes');
        const failing = await startContainer(sandbox, 'failing', {
          command: ['sh', '-c'],
          args: ['echo "$GREETING from $(pwd)"; echo to-stderr >&2; exit 3'],
          envs: [{ key: 'GREETING', value: 'hello' }],
          workingDir: '/tmp',
        });
        const done = await startContainer(sandbox, 'done', { command: ['true'] });

        const failed = await waitExited(failing);
        assert.equal(failed.exitCode, 3);
        assert.equal(failed.reason, 'Error');
        const ok = await waitExited(done);
        assert.equal(ok.exitCode, 0);
        assert.equal(ok.reason, 'Completed');

        // CRI's log format (kubelet pkg/kubelet/kuberuntime/logs): "<RFC3339Nano> <stream> <F|P> <line>".
        const log = await readFile(failed.logPath, 'utf8');
        assert.match(log, /^\S+Z stdout F hello from \/tmp$/m);
        assert.match(log, /^\S+Z stderr F to-stderr$/m);
      });

      it('runs commands with execSync in a running container', async () => {
        const sandbox = await runSandbox('exec', { hostname: 'exec-host' });
        const id = await startContainer(sandbox, 'main');
        const r = await rt.execSync(id, ['sh', '-c', 'echo out; echo err >&2; exit 7'], 10);
        assert.equal(r.stdout.toString(), 'out\n');
        assert.equal(r.stderr.toString(), 'err\n');
        assert.equal(r.exitCode, 7);
        const host = await rt.execSync(id, ['hostname'], 10);
        assert.equal(host.stdout.toString().trim(), 'exec-host');
        assert.equal(host.exitCode, 0);
      });

      it('stops with SIGTERM first, and SIGKILL once the timeout has passed', async () => {
        const sandbox = await runSandbox('signals');
        // Traps SIGTERM and leaves with its own code, well within the timeout.
        const polite = await startContainer(sandbox, 'polite', {
          command: [
            'sh',
            '-c',
            'trap "echo got TERM; exit 42" TERM; echo ready; while true; do sleep 0.2; done',
          ],
        });
        // Ignores SIGTERM (and its child inherits that), so only SIGKILL ends it.
        const stubborn = await startContainer(sandbox, 'stubborn', {
          command: ['sh', '-c', 'trap "" TERM; sleep 3600'],
        });
        const logOf = async (id: string) =>
          readFile((await rt.containerStatus(id)).logPath, 'utf8').catch(() => '');
        for (let i = 0; i < 100 && !(await logOf(polite)).includes('ready'); i++) await delay(100);

        let started = Date.now();
        await rt.stopContainer(polite, 30);
        assert.ok(
          Date.now() - started < 20_000,
          'a container that honours SIGTERM stops well before the timeout',
        );
        const p = await rt.containerStatus(polite);
        assert.equal(p.state, 'CONTAINER_EXITED');
        assert.equal(p.exitCode, 42);
        assert.match(await logOf(polite), /stdout F got TERM$/m);

        started = Date.now();
        await rt.stopContainer(stubborn, 2);
        const waited = Date.now() - started;
        const s = await rt.containerStatus(stubborn);
        assert.equal(s.state, 'CONTAINER_EXITED');
        assert.equal(s.exitCode, 137, 'killed by SIGKILL (128 + 9)');
        assert.ok(waited >= 1_900, `waited out the 2 s timeout before SIGKILL (${waited} ms)`);
      });

      it('reports OOMKilled for a container over its memory limit', async () => {
        const sandbox = await runSandbox('oom');
        // tail keeps its whole input until it sees the end; /dev/zero has no newlines.
        const id = await startContainer(sandbox, 'hog', {
          command: ['sh', '-c', 'head -c 200m /dev/zero | tail'],
          linux: {
            resources: { memoryLimitInBytes: 32 * 1024 * 1024 },
            securityContext: { namespaceOptions: { pid: 'CONTAINER' } },
          },
        });
        const s = await waitExited(id);
        assert.equal(s.reason, 'OOMKilled');
        assert.notEqual(s.exitCode, 0);
      });
    });
  });
}
