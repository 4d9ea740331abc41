// The scheduler on a worker thread, for bench/scheduler's worker variant:
// startScheduler as `skiff server` runs it, its clientset over the port
// transport. Answers { kind: 'status' } with what the benchmark waits on.

import { parentPort } from 'node:worker_threads';
import { createClientset } from '../../src/client/clientset.ts';
import { startScheduler } from '../../src/scheduler/index.ts';
import { createLog } from '../../src/util/log.ts';
import { type Port, portTransport } from './port-transport.ts';

const port = parentPort as unknown as Port;
const running = await startScheduler({
  clients: createClientset(portTransport(parentPort!)),
  log: createLog({}, () => {}),
});
port.on('message', (m: { kind: string }) => {
  if (m.kind === 'status') {
    port.postMessage({
      kind: 'status',
      nodeCount: running.scheduler.cache.nodeCount,
      stats: { ...running.scheduler.stats },
    });
  } else if (m.kind === 'stop') {
    void running.stop().then(() => port.postMessage({ kind: 'stopped' }));
  }
});
port.postMessage({ kind: 'started' });
