// kubectl 1.30+ opens exec, attach and port-forward sessions over WebSocket;
// kubelets and container runtimes (containerd 1.6 here) speak SPDY/3.1. As
// upstream's API server (k8s.io/apiserver pkg/util/proxy: translatinghandler,
// streamtranslator.go, streamtunnel.go), Skiff's translates:
//
// - exec/attach with v5.channel.k8s.io: WebSocket messages carry a channel
//   byte (0 stdin, 1 stdout, 2 stderr, 3 error, 4 resize, 255 close-a-channel);
//   towards the kubelet each channel becomes a SPDY stream of the v4
//   remotecommand protocol (streamtype stdin/stdout/stderr/error/resize).
//   The error stream's Status (Success, or NonZeroExitCode with the exit
//   code) goes back on channel 3, then the server closes the WebSocket.
//   v5's point is the close signal: kubectl's stdin EOF half-closes the SPDY
//   stdin stream, so `kubectl exec -i -- cat` ends.
//
// - port-forward with SPDY/3.1+portforward.k8s.io: kubectl tunnels SPDY
//   itself through WebSocket binary messages; the API server upgrades to the
//   kubelet with SPDY and copies bytes between the two, unchanged.
//
// Clients offering only older WebSocket subprotocols (v4.channel.k8s.io ...)
// are proxied to the kubelet as they are: the runtime serves those itself.

import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { ConnectionOptions } from 'node:tls';
import { ApiError } from '../api/errors.ts';
import { type SpdyStream, spdyClientSession } from '../util/spdy.ts';
import { dialUpgrade } from '../util/upgrade-proxy.ts';
import { acceptWebSocket, isWebSocketRequest, offeredProtocols, type WebSocket } from '../util/websocket.ts';

export const STREAM_PROTOCOL_V5 = 'v5.channel.k8s.io';
const STREAM_PROTOCOL_V4 = 'v4.channel.k8s.io';
export const PORT_FORWARD_TUNNEL_PREFIX = 'SPDY/3.1+';

const STDIN = 0;
const STDOUT = 1;
const STDERR = 2;
const ERROR = 3;
const RESIZE = 4;
const CLOSE = 255;

/** How long the server waits for the client to close after the final Status (upstream finishTimeout). */
const FINISH_TIMEOUT_MS = 15 * 60 * 1000;

/** Which translation, if any, an upgrade request to a pod's exec/attach/portforward wants. */
export function translationFor(req: IncomingMessage, subresource: string): 'v5' | 'tunnel' | undefined {
  if (!isWebSocketRequest(req)) return undefined;
  const offered = offeredProtocols(req);
  if (subresource === 'portforward') {
    return offered.some((p) => p.startsWith(PORT_FORWARD_TUNNEL_PREFIX) && p.endsWith('.k8s.io'))
      ? 'tunnel'
      : undefined;
  }
  return offered.includes(STREAM_PROTOCOL_V5) ? 'v5' : undefined;
}

export interface StreamOptions {
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  tty: boolean;
}

/** A Status as JSON, for the error channel. */
const statusJSON = (err: ApiError) => Buffer.from(JSON.stringify(err.status));

/**
 * Serves a v5 WebSocket exec/attach session from the client by running a v4
 * SPDY session against `target` (the kubelet), as StreamTranslatorHandler.
 */
export async function translateRemoteCommand(
  req: IncomingMessage,
  client: Duplex,
  head: Buffer,
  target: URL,
  opts: StreamOptions & { tls?: ConnectionOptions },
): Promise<void> {
  // The WebSocket is accepted first; anything that goes wrong after is
  // reported to the client as a Status on the error channel.
  const ws = acceptWebSocket(req, client, head, STREAM_PROTOCOL_V5);
  const channel = (n: number, data: Buffer = Buffer.alloc(0)) =>
    ws.send(Buffer.concat([Buffer.from([n]), data]));
  // An empty message on the lowest writable channel tells the client the session is up.
  channel(opts.stdout ? STDOUT : opts.stderr ? STDERR : ERROR);
  // kubectl writes stdin as soon as the WebSocket is up, before the SPDY
  // streams exist: hold its messages until they do.
  let deliver: ((message: Buffer) => void) | undefined;
  const early: Buffer[] = [];
  ws.onMessage((message) => (deliver ? deliver(message) : early.push(message)));

  let finished = false;
  const finish = (status: Buffer) => {
    if (finished) return;
    finished = true;
    channel(ERROR, status);
    ws.close(1000);
    const timer = setTimeout(() => ws.destroy(), FINISH_TIMEOUT_MS);
    timer.unref();
    ws.onClose(() => clearTimeout(timer));
  };

  let backend: Awaited<ReturnType<typeof dialUpgrade>>;
  try {
    backend = await dialUpgrade(target, {
      headers: {
        Connection: 'Upgrade',
        Upgrade: 'SPDY/3.1',
        'X-Stream-Protocol-Version': STREAM_PROTOCOL_V4,
      },
      ...(opts.tls ? { tls: opts.tls } : {}),
    });
  } catch (err) {
    finish(
      statusJSON(
        new ApiError(
          500,
          'InternalError',
          `Internal error occurred: error dialing backend: ${(err as Error).message}`,
        ),
      ),
    );
    return;
  }
  if (backend.statusCode !== 101) {
    // The kubelet refused (container not found, ...): its message, as the SPDY client reports it.
    const body = await readRest(backend.socket, backend.rest);
    finish(
      statusJSON(
        new ApiError(
          500,
          'InternalError',
          `Internal error occurred: unable to upgrade connection: ${body.trim()}`,
        ),
      ),
    );
    return;
  }
  const session = spdyClientSession(backend.socket, backend.rest);
  ws.onClose(() => session.close());

  // Streams in client-go's order: error first, then the ones asked for.
  const error = await session.openStream({ streamtype: 'error' });
  error.end();
  const stdin = opts.stdin ? await session.openStream({ streamtype: 'stdin' }) : undefined;
  const stdout = opts.stdout ? await session.openStream({ streamtype: 'stdout' }) : undefined;
  stdout?.onData((data) => channel(STDOUT, data));
  // With a TTY, stderr is part of the terminal's output.
  const stderr = opts.stderr && !opts.tty ? await session.openStream({ streamtype: 'stderr' }) : undefined;
  stderr?.onData((data) => channel(STDERR, data));
  const resize = opts.tty ? await session.openStream({ streamtype: 'resize' }) : undefined;
  const outputs = [stdout, stderr].filter((s): s is SpdyStream => s !== undefined);
  deliver = (message) => {
    if (message.length === 0) return;
    const payload = message.subarray(1);
    switch (message[0]) {
      case STDIN:
        stdin?.write(payload);
        break;
      case RESIZE:
        resize?.write(payload);
        break;
      case CLOSE:
        // v5's close signal: the client has no more stdin.
        if (payload[0] === STDIN) stdin?.end();
        break;
    }
  };
  for (const m of early.splice(0)) deliver(m);

  const errorData: Buffer[] = [];
  error.onData((d) => errorData.push(d));

  // Done once the runtime has reported on the error stream and finished the
  // output streams (what it wrote before the Status must arrive first).
  const ended = (s: SpdyStream) => new Promise<void>((r) => s.onEnd(r));
  await Promise.all([ended(error), ...outputs.map(ended)]);
  const status = Buffer.concat(errorData);
  if (status.length > 0) finish(status);
  else if (ws.closed) session.close();
  else finish(Buffer.from(JSON.stringify({ metadata: {}, status: 'Success' })));
  session.close();
}

/**
 * Serves a port-forward whose SPDY comes tunnelled in WebSocket binary
 * messages: SPDY upgrade to the kubelet, then bytes copied both ways
 * (upstream TunnelingHandler). A refused upgrade goes back as it came.
 */
export async function tunnelPortForward(
  req: IncomingMessage,
  client: Duplex,
  head: Buffer,
  target: URL,
  tls?: ConnectionOptions,
): Promise<void> {
  const spdyProtocols = offeredProtocols(req)
    .filter((p) => p.startsWith(PORT_FORWARD_TUNNEL_PREFIX))
    .map((p) => p.slice(PORT_FORWARD_TUNNEL_PREFIX.length));
  const backend = await dialUpgrade(target, {
    headers: { Connection: 'Upgrade', Upgrade: 'SPDY/3.1', 'X-Stream-Protocol-Version': spdyProtocols },
    ...(tls ? { tls } : {}),
  });
  if (backend.statusCode !== 101) {
    client.write(backend.head);
    client.write(backend.rest);
    backend.socket.pipe(client);
    return;
  }
  const chosen = backend.headers['x-stream-protocol-version'];
  const ws: WebSocket = acceptWebSocket(
    req,
    client,
    head,
    chosen ? `${PORT_FORWARD_TUNNEL_PREFIX}${chosen}` : '',
  );
  if (backend.rest.length > 0) ws.send(backend.rest);
  backend.socket.on('data', (d: Buffer) => ws.send(d));
  backend.socket.on('close', () => {
    ws.close(1000);
    setTimeout(() => ws.destroy(), 1000).unref();
  });
  backend.socket.on('error', () => ws.destroy());
  backend.socket.resume();
  ws.onMessage((m) => backend.socket.write(m));
  ws.onClose(() => backend.socket.destroy());
}

/** The body of a refused upgrade (up to 4 KiB, or what arrives within a second). */
function readRest(socket: Duplex, rest: Buffer): Promise<string> {
  return new Promise((resolve) => {
    let body = rest.toString('utf8');
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(body);
    };
    const timer = setTimeout(done, 1000);
    socket.on('data', (d: Buffer) => {
      body += d.toString('utf8');
      if (body.length > 4096) done();
    });
    socket.on('end', done);
    socket.on('close', done);
    socket.resume();
  });
}
