// A harness for kubelet tests: a real API server (memory store), a kubelet
// on the hollow runtime talking to it over the in-process transport, and a
// fake clock that drives the lease, node status, container backoff and the
// hollow containers' sleeps and grace periods. Tests act as users and as the
// scheduler through `clients` (pods are created already bound, with
// spec.nodeName) and wait with `until`.

import type { Pod } from '../api/types/core-v1.ts';
import { createInProcessTransport } from '../apiserver/in-process.ts';
import { startTestServer, type TestServer } from '../apiserver/testing.ts';
import { type Clientset, createClientset } from '../client/clientset.ts';
import { FakeClock } from '../client/fake-clock.ts';
import { createLog } from '../util/log.ts';
import { until } from '../util/until.ts';
import { createKubelet, type Kubelet, type KubeletOptions } from './kubelet.ts';
import type { MachineInfo } from './node-status.ts';
import { HollowRuntime } from './runtime/hollow/hollow.ts';

export const TEST_NODE = 'node-a';

export const testMachine: MachineInfo = {
  cpu: 4,
  memoryBytes: 8 * 1024 ** 3,
  ephemeralStorageBytes: 100 * 1024 ** 3,
  machineID: 'test-machine',
  systemUUID: 'test-uuid',
  bootID: 'test-boot',
  kernelVersion: '6.1.0-test',
  osImage: 'Debian GNU/Linux 12 (bookworm)',
};

export interface KubeletTest {
  server: TestServer;
  /** The kubelet's own clients (system:node:node-a). */
  clients: Clientset;
  /** An admin's clients, for what the test sets up as a user would. */
  admin: Clientset;
  clock: FakeClock;
  now(): Date;
  runtime: HollowRuntime;
  kubelet: Kubelet;
  /** Stops the kubelet and starts a new one on the same runtime (a kubelet restart). */
  restartKubelet(): Promise<void>;
  stopKubelet(): Promise<void>;
  startKubelet(): Promise<void>;
  /** Moves the fake clock forward in steps, letting async work run between them. */
  advance(ms: number, stepMs?: number): Promise<void>;
  until<T>(what: string, check: () => T | Promise<T>, ms?: number): Promise<NonNullable<T>>;
  pod(name: string, spec: Partial<NonNullable<Pod['spec']>>, meta?: Partial<Pod['metadata']>): Promise<Pod>;
  getPod(name: string): Promise<Pod | undefined>;
  close(): Promise<void>;
}

export async function startKubeletTest(opts: Partial<KubeletOptions> = {}): Promise<KubeletTest> {
  const server = await startTestServer();
  await server.api
    .storage('', 'v1', 'namespaces')!
    .create(undefined, { metadata: { name: 'kube-node-lease' } });
  const clients = createClientset(
    createInProcessTransport(server.api, { name: `system:node:${TEST_NODE}`, groups: ['system:nodes'] }),
  );
  // The test's own writes (its pods) are a user's, not the node's: NodeRestriction lets a node create only mirror pods.
  const admin = createClientset(
    createInProcessTransport(server.api, { name: 'test-admin', groups: ['system:masters'] }),
  );
  const clock = new FakeClock();
  const base = Date.parse('2025-01-01T00:00:00Z');
  const now = () => new Date(base + clock.now());
  const lines: string[] = [];
  const log = createLog({ component: 'kubelet' }, (l) => {
    lines.push(l);
    if (process.env.SKIFF_TEST_LOG) process.stderr.write(l);
  });
  let kubelet: Kubelet;
  const runtime = new HollowRuntime({ podCIDR: () => kubelet?.podCIDR(), now, clock });
  const make = () =>
    createKubelet({
      clients,
      runtime,
      nodeName: TEST_NODE,
      nodeIP: '192.0.2.10',
      dataDir: '/tmp',
      machine: testMachine,
      log,
      now,
      clock,
      plegRelistPeriodMs: 50,
      housekeepingIntervalMs: 200,
      ...opts,
    });
  kubelet = make();
  await kubelet.start();

  const t: KubeletTest = {
    server,
    clients,
    admin,
    clock,
    now,
    runtime,
    get kubelet() {
      return kubelet;
    },
    async stopKubelet() {
      await kubelet.stop();
    },
    async startKubelet() {
      kubelet = make();
      await kubelet.start();
    },
    async restartKubelet() {
      await kubelet.stop();
      kubelet = make();
      await kubelet.start();
    },
    async advance(ms, stepMs = 1000) {
      for (let done = 0; done < ms; done += stepMs) {
        clock.advance(Math.min(stepMs, ms - done));
        await new Promise((r) => setTimeout(r, 5));
      }
    },
    until(what, check, ms = 10_000) {
      return until(what, check, {
        ms,
        context: () => `kubelet log (last 20 lines):\n${lines.slice(-20).join('')}`,
      });
    },
    pod(name, spec, meta = {}) {
      return admin.pods.create('default', {
        metadata: { name, ...meta },
        spec: {
          nodeName: TEST_NODE,
          ...spec,
          containers: spec.containers ?? [{ name: 'main', image: 'busybox' }],
        },
      });
    },
    async getPod(name) {
      try {
        return await clients.pods.get('default', name);
      } catch {
        return undefined;
      }
    },
    async close() {
      await kubelet.stop();
      await runtime.close();
      await server.close();
    },
  };
  return t;
}
