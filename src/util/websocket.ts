// The server side of a WebSocket (RFC 6455), just what the API server needs
// to speak Kubernetes' streaming subprotocols (v5.channel.k8s.io, and SPDY
// tunnelled over WebSocket for port-forward) to kubectl 1.30+: the opening
// handshake, binary and text messages (fragmented or not), ping/pong and the
// closing handshake. No extensions (permessage-deflate is never offered back,
// as upstream's servers do not either).
//
// Written here rather than taken from the `ws` package: the whole protocol
// the API server needs is this file, and the server then has no dependency
// that might lag behind Node.

import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** The largest message accepted from a client (upstream's servers read at most 32 MiB). */
const MAX_MESSAGE_BYTES = 32 * 1024 * 1024;

export const isWebSocketRequest = (req: IncomingMessage): boolean =>
  (req.headers.upgrade ?? '').toLowerCase() === 'websocket' &&
  (req.headers.connection ?? '').toLowerCase().includes('upgrade');

/** The subprotocols the client offers (Sec-WebSocket-Protocol), in its order. */
export function offeredProtocols(req: IncomingMessage): string[] {
  const raw = req.headers['sec-websocket-protocol'];
  return (Array.isArray(raw) ? raw.join(',') : (raw ?? ''))
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '');
}

export interface WebSocket {
  /** The subprotocol agreed on. */
  readonly protocol: string;
  send(data: Buffer, opts?: { text?: boolean }): void;
  /** Starts the closing handshake; the connection ends when the client answers (or goes). */
  close(code?: number, reason?: string): void;
  /** Ends the connection at once. */
  destroy(): void;
  onMessage(listener: (data: Buffer, text: boolean) => void): void;
  /** Once, when the connection is gone (closed by either side, or broken). */
  onClose(listener: () => void): void;
  readonly closed: boolean;
}

/**
 * Answers a WebSocket upgrade request with 101 and `protocol`, and returns
 * the connection. `head` holds bytes the client sent after its request.
 */
export function acceptWebSocket(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  protocol: string,
): WebSocket {
  const key = String(req.headers['sec-websocket-key'] ?? '');
  const accept = createHash('sha1').update(`${key}${GUID}`).digest('base64');
  socket.write(
    'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      `Sec-WebSocket-Accept: ${accept}\r\n${protocol ? `Sec-WebSocket-Protocol: ${protocol}\r\n` : ''}\r\n`,
  );
  if ('setNoDelay' in socket && typeof socket.setNoDelay === 'function') socket.setNoDelay(true);

  const messageListeners: ((data: Buffer, text: boolean) => void)[] = [];
  const closeListeners: (() => void)[] = [];
  let closed = false;
  let closeSent = false;
  let buf: Buffer = head.length > 0 ? Buffer.from(head) : Buffer.alloc(0);
  let fragments: Buffer[] = [];
  let fragmentsText = false;
  let fragmentsSize = 0;

  const frame = (opcode: number, payload: Buffer): Buffer => {
    const len = payload.length;
    const header = len < 126 ? Buffer.alloc(2) : len < 0x10000 ? Buffer.alloc(4) : Buffer.alloc(10);
    header[0] = 0x80 | opcode;
    if (len < 126) header[1] = len;
    else if (len < 0x10000) {
      header[1] = 126;
      header.writeUInt16BE(len, 2);
    } else {
      header[1] = 127;
      header.writeBigUInt64BE(BigInt(len), 2);
    }
    return Buffer.concat([header, payload]);
  };
  const write = (opcode: number, payload: Buffer) => {
    if (!socket.destroyed && socket.writable) socket.write(frame(opcode, payload));
  };
  const finish = () => {
    if (closed) return;
    closed = true;
    socket.destroy();
    for (const l of closeListeners.splice(0)) l();
  };
  const sendClose = (code: number, reason = '') => {
    if (closeSent) return;
    closeSent = true;
    const payload = Buffer.alloc(2 + Buffer.byteLength(reason));
    payload.writeUInt16BE(code, 0);
    payload.write(reason, 2);
    write(0x8, payload);
  };

  /** Parses every complete frame in buf; false on a protocol error (the connection is then closed). */
  const parse = (): boolean => {
    for (;;) {
      if (buf.length < 2) return true;
      const b0 = buf[0]!;
      const b1 = buf[1]!;
      const fin = (b0 & 0x80) !== 0;
      const opcode = b0 & 0x0f;
      const masked = (b1 & 0x80) !== 0;
      let len = b1 & 0x7f;
      let offset = 2;
      if (len === 126) {
        if (buf.length < 4) return true;
        len = buf.readUInt16BE(2);
        offset = 4;
      } else if (len === 127) {
        if (buf.length < 10) return true;
        const big = buf.readBigUInt64BE(2);
        if (big > BigInt(MAX_MESSAGE_BYTES)) return false;
        len = Number(big);
        offset = 10;
      }
      // Clients must mask what they send (RFC 6455 5.1).
      if (!masked || len > MAX_MESSAGE_BYTES) return false;
      if (buf.length < offset + 4 + len) return true;
      const mask = buf.subarray(offset, offset + 4);
      const payload = Buffer.from(buf.subarray(offset + 4, offset + 4 + len));
      for (let i = 0; i < payload.length; i++) payload[i]! ^= mask[i & 3]!;
      buf = buf.subarray(offset + 4 + len);

      if (opcode === 0x8) {
        // The client's close: answer it (if we have not started closing) and end.
        sendClose(payload.length >= 2 ? payload.readUInt16BE(0) : 1000);
        finish();
        return true;
      }
      if (opcode === 0x9) {
        write(0xa, payload);
        continue;
      }
      if (opcode === 0xa) continue;
      if (opcode === 0x1 || opcode === 0x2) {
        if (fragments.length > 0) return false;
        fragmentsText = opcode === 0x1;
      } else if (opcode !== 0x0 || fragments.length === 0) {
        return false;
      }
      fragments.push(payload);
      fragmentsSize += payload.length;
      if (fragmentsSize > MAX_MESSAGE_BYTES) return false;
      if (!fin) continue;
      const message = fragments.length === 1 ? fragments[0]! : Buffer.concat(fragments);
      fragments = [];
      fragmentsSize = 0;
      for (const l of messageListeners) l(message, fragmentsText);
    }
  };

  const onData = (chunk: Buffer) => {
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
    if (!parse()) {
      sendClose(1002, 'protocol error');
      finish();
    }
  };
  socket.on('data', onData);
  socket.on('close', finish);
  socket.on('error', finish);
  // A client gone without a close frame (its end of the TCP connection shut):
  // the server's socket is half-open and would stay so.
  socket.on('end', finish);
  // node hands over an upgraded socket paused.
  socket.resume();
  if (buf.length > 0) queueMicrotask(() => onData(Buffer.alloc(0)));

  return {
    protocol,
    get closed() {
      return closed;
    },
    send(data, opts) {
      write(opts?.text ? 0x1 : 0x2, data);
    },
    close(code = 1000, reason = '') {
      sendClose(code, reason);
    },
    destroy: finish,
    onMessage(l) {
      messageListeners.push(l);
    },
    onClose(l) {
      if (closed) l();
      else closeListeners.push(l);
    },
  };
}
