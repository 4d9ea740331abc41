// The gRPC probe, as upstream's pkg/probe/grpc: a call to the standard
// health service (grpc.health.v1.Health/Check) on the container's port,
// healthy when it answers SERVING. Plaintext, as upstream (no TLS).
// The two messages are tiny, so they are encoded by hand rather than from a
// .proto file:
//   HealthCheckRequest  { string service = 1; }
//   HealthCheckResponse { ServingStatus status = 1; }  UNKNOWN=0 SERVING=1 NOT_SERVING=2 SERVICE_UNKNOWN=3
// https://github.com/kubernetes/kubernetes/blob/master/pkg/probe/grpc/grpc.go
// https://github.com/grpc/grpc/blob/master/doc/health-checking.md

import * as grpc from '@grpc/grpc-js';
import type { ProbeOutcome } from './http.ts';

const SERVING_STATUS = ['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN'];

function encodeRequest(service: string): Buffer {
  const bytes = Buffer.from(service, 'utf8');
  if (bytes.length === 0) return Buffer.alloc(0);
  const len: number[] = [];
  for (let n = bytes.length; ; n >>>= 7) {
    if (n < 0x80) {
      len.push(n);
      break;
    }
    len.push((n & 0x7f) | 0x80);
  }
  return Buffer.concat([Buffer.from([0x0a, ...len]), bytes]);
}

/** The status field (1, varint) of a HealthCheckResponse; absent means UNKNOWN. */
function decodeStatus(buf: Buffer): number {
  let i = 0;
  let status = 0;
  while (i < buf.length) {
    const tag = buf[i++] ?? 0;
    if (tag !== 0x08) break;
    let value = 0;
    for (let shift = 0; i < buf.length; shift += 7) {
      const b = buf[i++] ?? 0;
      value |= (b & 0x7f) << shift;
      if (b < 0x80) break;
    }
    status = value;
  }
  return status;
}

export function grpcProbe(
  host: string,
  port: number,
  service: string,
  timeoutMs: number,
): Promise<ProbeOutcome> {
  const address = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  const seconds = `${timeoutMs / 1000}s`;
  return new Promise<ProbeOutcome>((resolve) => {
    client.waitForReady(Date.now() + timeoutMs, (err) => {
      if (err) {
        resolve({
          result: 'Failure',
          output: `timeout: failed to connect service "${address}" within ${seconds}: ${err.message}`,
        });
        return;
      }
      client.makeUnaryRequest(
        '/grpc.health.v1.Health/Check',
        encodeRequest,
        (b: Buffer) => b,
        service,
        new grpc.Metadata(),
        { deadline: Date.now() + timeoutMs },
        (callErr, res) => {
          if (callErr) {
            resolve({
              result: 'Failure',
              output:
                callErr.code === grpc.status.DEADLINE_EXCEEDED
                  ? `timeout: health rpc did not complete within ${seconds}`
                  : `error: health rpc probe failed: ${callErr.message}`,
            });
            return;
          }
          const status = decodeStatus(res ?? Buffer.alloc(0));
          if (status === 1) resolve({ result: 'Success', output: '' });
          else {
            resolve({
              result: 'Failure',
              output: `service unhealthy (responded with "${SERVING_STATUS[status] ?? String(status)}")`,
            });
          }
        },
      );
    });
  }).finally(() => client.close());
}
