// A harness for controller tests: a real API server (memory store) and the
// given controllers talking to it through the in-process transport, as they
// do inside `skiff server`. Tests act through `clients`, like a user would,
// and wait for the controllers to converge with `until`.

import { createInProcessTransport } from '../apiserver/in-process.ts';
import { startTestServer, type TestServer, type TestServerOptions } from '../apiserver/testing.ts';
import { type Clientset, createClientset } from '../client/clientset.ts';
import type { Clock } from '../client/workqueue.ts';
import { createLog } from '../util/log.ts';
import { until } from '../util/until.ts';
import type { ControllerFactory, ControllerOptions } from './context.ts';
import { type ControllerManager, startControllerManager } from './manager.ts';

export interface ControllerTest {
  server: TestServer;
  clients: Clientset;
  manager: ControllerManager;
  /** Polls `check` until it returns a truthy value (returned), or fails after `ms`. */
  until<T>(what: string, check: () => T | Promise<T>, ms?: number): Promise<NonNullable<T>>;
  close(): Promise<void>;
}

export interface ControllerTestOptions {
  options?: Partial<ControllerOptions>;
  now?: () => Date;
  clock?: Clock;
  /** The API server's options (an authorizer, for controllers that ask SubjectAccessReviews). */
  server?: TestServerOptions;
}

export async function startControllerTest(
  controllers: Record<string, ControllerFactory>,
  opts: ControllerTestOptions = {},
): Promise<ControllerTest> {
  const server = await startTestServer(undefined, opts.server);
  const clients = createClientset(
    createInProcessTransport(server.api, { name: 'system:kube-controller-manager', groups: [] }),
  );
  const lines: string[] = [];
  const log = createLog({ component: 'controller-manager' }, (l) => {
    lines.push(l);
    if (process.env.SKIFF_TEST_LOG) process.stderr.write(l);
  });
  const manager = await startControllerManager({
    clients,
    log,
    controllers,
    ...(opts.options ? { options: opts.options } : {}),
    ...(opts.now ? { now: opts.now } : {}),
    ...(opts.clock ? { clock: opts.clock } : {}),
  });
  return {
    server,
    clients,
    manager,
    until(what, check, ms = 10_000) {
      return until(what, check, {
        ms,
        context: () => `controller log (last 20 lines):\n${lines.slice(-20).join('')}`,
      });
    },
    async close() {
      await manager.stop();
      await server.close();
    },
  };
}
