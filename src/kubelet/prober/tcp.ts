// The TCP probe, as upstream's pkg/probe/tcp: healthy when a connection to
// the port opens within the timeout; it is closed again at once.
// https://github.com/kubernetes/kubernetes/blob/master/pkg/probe/tcp/tcp.go

import { connect } from 'node:net';
import { dialError, type ProbeOutcome } from './http.ts';

export function tcpProbe(host: string, port: number, timeoutMs: number): Promise<ProbeOutcome> {
  const address = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (outcome: ProbeOutcome) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(outcome);
    };
    const timer = setTimeout(
      () => done({ result: 'Failure', output: `dial tcp ${address}: i/o timeout` }),
      timeoutMs,
    );
    socket.once('connect', () => done({ result: 'Success', output: '' }));
    socket.once('error', (err) => done({ result: 'Failure', output: dialError(err, 'tcp', address) }));
  });
}
