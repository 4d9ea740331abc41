// Proxying an HTTP/1.1 upgrade (SPDY/3.1 or WebSocket) to a backend and then
// piping bytes both ways, as upstream's UpgradeAwareHandler
// (k8s.io/apimachinery pkg/util/proxy/upgradeaware.go) does for exec, attach
// and port-forward: the API server to the kubelet, the kubelet to the
// runtime's streaming server. Neither hop needs to understand the streaming
// protocol: the backend's answer (101 Switching Protocols, or an error) goes
// back to the client as it is, and from then on the connection is the two
// ends' business.

import type { IncomingMessage } from 'node:http';
import { connect as netConnect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { type ConnectionOptions, connect as tlsConnect } from 'node:tls';

export interface UpgradeProxyOptions {
  /** The backend: http:// or https:// URL with the path and query to request there. */
  target: URL;
  /** TLS settings for an https:// target (client certificate, CA). */
  tls?: ConnectionOptions;
  /** Request headers not passed on (lower-case); Host is always rewritten. */
  dropHeaders?: string[];
  /** Called with the error when the backend cannot be reached; the caller answers the client. */
  onDialError(err: Error): void;
}

/**
 * Sends the client's upgrade request (its method and headers, the target's
 * path) to the backend, then joins the two connections. `head` is what the
 * client sent after its headers, which node hands over with the upgrade.
 */
export function proxyUpgrade(
  req: IncomingMessage,
  client: Duplex,
  head: Buffer,
  opts: UpgradeProxyOptions,
): void {
  const { target } = opts;
  const secure = target.protocol === 'https:';
  const port = Number(target.port) || (secure ? 443 : 80);
  const host = target.hostname.replace(/^\[|\]$/g, '');
  let connected = false;
  const onConnect = () => {
    connected = true;
    const drop = new Set(['host', ...(opts.dropHeaders ?? [])]);
    const lines = [
      `${req.method ?? 'GET'} ${target.pathname}${target.search} HTTP/1.1`,
      `Host: ${target.host}`,
    ];
    for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
      const name = req.rawHeaders[i]!;
      if (!drop.has(name.toLowerCase())) lines.push(`${name}: ${req.rawHeaders[i + 1]}`);
    }
    backend.write(`${lines.join('\r\n')}\r\n\r\n`);
    if (head.length > 0) backend.write(head);
    backend.pipe(client);
    client.pipe(backend);
  };
  const backend: Socket = secure
    ? tlsConnect({ ...opts.tls, host, port, servername: isIP(host) ? '' : host }, onConnect)
    : netConnect({ host, port }, onConnect);
  backend.setNoDelay(true);
  if ('setNoDelay' in client && typeof client.setNoDelay === 'function') client.setNoDelay(true);
  backend.on('error', (err) => {
    if (!connected) opts.onDialError(err);
    else client.destroy();
  });
  client.on('error', () => backend.destroy());
  // Either side closing ends the session: a half-open stream would leave
  // kubectl (or the runtime) waiting forever.
  backend.on('close', () => client.destroy());
  client.on('close', () => backend.destroy());
}

const isIP = (host: string) => /^[\d.]+$/.test(host) || host.includes(':');

/** Answers an upgrade request that will not be proxied with a plain HTTP response, e.g. a Status. */
export function writeUpgradeResponse(
  client: Duplex,
  code: number,
  body: string,
  contentType = 'application/json',
): void {
  if (client.destroyed) return;
  const reason = STATUS_TEXT[code] ?? 'Error';
  client.end(
    `HTTP/1.1 ${code} ${reason}\r\nContent-Type: ${contentType}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
      `Cache-Control: no-cache, private\r\nConnection: close\r\n\r\n${body}`,
  );
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
};

export interface DialedUpgrade {
  socket: Socket;
  statusCode: number;
  /** Response headers, names lower-case. */
  headers: Record<string, string>;
  /** The raw response head, through its blank line. */
  head: Buffer;
  /** What the backend sent after the head: the body of an error, or the first bytes of the stream. */
  rest: Buffer;
}

/**
 * Sends an upgrade request of our own (not a client's) and reads the
 * response head, for a caller that speaks the protocol itself: the API
 * server's WebSocket-to-SPDY translation.
 */
export function dialUpgrade(
  target: URL,
  opts: { method?: string; headers: Record<string, string | string[]>; tls?: ConnectionOptions },
): Promise<DialedUpgrade> {
  return new Promise((resolve, reject) => {
    const secure = target.protocol === 'https:';
    const port = Number(target.port) || (secure ? 443 : 80);
    const host = target.hostname.replace(/^\[|\]$/g, '');
    const onConnect = () => {
      const lines = [
        `${opts.method ?? 'POST'} ${target.pathname}${target.search} HTTP/1.1`,
        `Host: ${target.host}`,
      ];
      for (const [name, value] of Object.entries(opts.headers)) {
        for (const v of Array.isArray(value) ? value : [value]) lines.push(`${name}: ${v}`);
      }
      socket.write(`${lines.join('\r\n')}\r\n\r\n`);
    };
    const socket: Socket = secure
      ? tlsConnect({ ...opts.tls, host, port, servername: isIP(host) ? '' : host }, onConnect)
      : netConnect({ host, port }, onConnect);
    socket.setNoDelay(true);
    let buf = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) {
        if (buf.length > 1024 * 1024) fail(new Error('response head too large'));
        return;
      }
      socket.off('data', onData);
      socket.off('error', fail);
      socket.off('close', closed);
      socket.pause();
      const head = buf.subarray(0, end + 4);
      const [statusLine = '', ...headerLines] = head.toString('latin1').split('\r\n');
      const headers: Record<string, string> = {};
      for (const line of headerLines) {
        const colon = line.indexOf(':');
        if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      resolve({
        socket,
        statusCode: Number(statusLine.split(' ')[1]),
        headers,
        head,
        rest: buf.subarray(end + 4),
      });
    };
    const fail = (err: Error) => {
      socket.destroy();
      reject(err);
    };
    const closed = () => fail(new Error('connection closed before a response'));
    socket.on('data', onData);
    socket.on('error', fail);
    socket.on('close', closed);
  });
}
