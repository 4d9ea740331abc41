// A prototype for bench/scheduler: the client's Transport carried over a
// worker thread's message port, so the scheduler can run on its own thread
// and core while the API server keeps the main event loop. The main thread
// serves each request with the in-process transport (serveTransport); the
// worker's clientset talks through portTransport. Watch events cross as
// structured clones, one message each.
//
// It exists to measure the proposal in bench/results/scheduler-profile.md;
// a production version would live beside src/apiserver/in-process.ts.

import type { MessagePort } from 'node:worker_threads';
import type { Status } from '../../src/api/errors.ts';
import { isApiError } from '../../src/api/errors.ts';
import { errorFromResponse } from '../../src/client/http-transport.ts';
import type {
  Transport,
  TransportRequest,
  TransportResponse,
  WatchEvent,
  WatchHandle,
} from '../../src/client/transport.ts';

type WatchRequest = Parameters<Transport['watch']>[0];

/** What crosses the port. */
export type PortMessage =
  | { kind: 'request'; id: number; req: TransportRequest }
  | { kind: 'watch'; id: number; req: WatchRequest }
  | { kind: 'stopWatch'; id: number }
  | { kind: 'response'; id: number; res?: TransportResponse; error?: WireError }
  | { kind: 'event'; id: number; event: WatchEvent }
  | { kind: 'closed'; id: number; error?: WireError };

interface WireError {
  code?: number;
  status?: Status;
  message: string;
}

/** The kind of port both a Worker and a worker's parentPort are. */
export interface Port {
  postMessage(message: unknown): void;
  on(event: 'message', listener: (message: PortMessage) => void): unknown;
}

const toWire = (err: unknown): WireError =>
  isApiError(err)
    ? { code: err.status.code, status: err.status, message: err.message }
    : { message: String(err) };

const fromWire = (e: WireError): Error =>
  e.code !== undefined ? errorFromResponse(e.code, e.status) : new Error(e.message);

/** Main thread: answers the port's requests and watches with `transport`. */
export function serveTransport(port: Port, transport: Transport): void {
  const watches = new Map<number, WatchHandle>();
  port.on('message', (m) => {
    switch (m.kind) {
      case 'request':
        transport.request(m.req).then(
          (res) => port.postMessage({ kind: 'response', id: m.id, res }),
          (err) => port.postMessage({ kind: 'response', id: m.id, error: toWire(err) }),
        );
        return;
      case 'watch':
        watches.set(
          m.id,
          transport.watch(
            m.req,
            (event) => port.postMessage({ kind: 'event', id: m.id, event }),
            (err) => {
              watches.delete(m.id);
              port.postMessage({ kind: 'closed', id: m.id, ...(err ? { error: toWire(err) } : {}) });
            },
          ),
        );
        return;
      case 'stopWatch':
        watches.get(m.id)?.stop();
        watches.delete(m.id);
        return;
    }
  });
}

/** Worker thread: a Transport whose requests the main thread serves. */
export function portTransport(port: MessagePort | Port): Transport {
  let nextId = 0;
  const pending = new Map<number, { resolve: (r: TransportResponse) => void; reject: (e: Error) => void }>();
  const watches = new Map<number, { onEvent: (e: WatchEvent) => void; onClose: (err?: Error) => void }>();
  (port as Port).on('message', (m) => {
    switch (m.kind) {
      case 'response': {
        const p = pending.get(m.id);
        pending.delete(m.id);
        if (m.error) p?.reject(fromWire(m.error));
        else p?.resolve(m.res!);
        return;
      }
      case 'event':
        watches.get(m.id)?.onEvent(m.event);
        return;
      case 'closed': {
        const w = watches.get(m.id);
        watches.delete(m.id);
        w?.onClose(m.error ? fromWire(m.error) : undefined);
        return;
      }
    }
  });
  return {
    request(req) {
      const id = nextId++;
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject });
        port.postMessage({ kind: 'request', id, req } satisfies PortMessage);
      });
    },
    watch(req, onEvent, onClose) {
      const id = nextId++;
      watches.set(id, { onEvent, onClose });
      port.postMessage({ kind: 'watch', id, req } satisfies PortMessage);
      return {
        stop() {
          if (!watches.delete(id)) return;
          port.postMessage({ kind: 'stopWatch', id } satisfies PortMessage);
          setImmediate(() => onClose());
        },
      };
    },
  };
}
