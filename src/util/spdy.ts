// The client side of SPDY/3.1 framing, as far as Kubernetes' streaming uses
// it (moby/spdystream under k8s.io/apimachinery's httpstream/spdy): many
// streams over one upgraded connection, each opened by the client with a
// SYN_STREAM whose headers say what it carries (streamtype: stdin, stdout,
// ...), and half-closed with FIN. The API server needs it to translate a
// kubectl WebSocket session (v5.channel.k8s.io) into the SPDY the kubelet's
// runtime speaks, as upstream's StreamTranslatorProxy does.
//
// Frames (draft-mbelshe-httpbis-spdy-00, SPDY/3):
//   control: 1 | version(15) = 3 | type(16) | flags(8) | length(24) | data
//   data:    0 | stream-id(31)   | flags(8) | length(24) | data
// Header blocks are zlib streams, one compression context per direction.
// Ours is sent without the SPDY dictionary, which a zlib stream may do (the
// FDICT bit is unset, and spdystream's reader accepts it); the server's
// header blocks are never read (the client only needs its stream ids).
// spdystream does not enforce SPDY/3.1 flow control, so neither do we.

import type { Duplex } from 'node:stream';
import { constants, createDeflate } from 'node:zlib';

const VERSION = 3;
const SYN_STREAM = 1;
const SYN_REPLY = 2;
const RST_STREAM = 3;
const PING = 6;
const GOAWAY = 7;
const FLAG_FIN = 0x01;
/** RST_STREAM status REFUSED_STREAM, for streams the server tries to open. */
const REFUSED_STREAM = 3;
/** The largest data frame written; anything longer is split. */
const MAX_DATA_FRAME = 32 * 1024;

export interface SpdyStream {
  readonly id: number;
  write(data: Buffer): void;
  /** Half-closes our side (a FIN data frame). */
  end(): void;
  onData(listener: (data: Buffer) => void): void;
  /** Once, when the server has finished its side (FIN or RST_STREAM) or the connection is gone. */
  onEnd(listener: () => void): void;
  readonly ended: boolean;
}

export interface SpdySession {
  /** Opens a stream with these headers (names lower-case, as SPDY/3 requires). */
  openStream(headers: Record<string, string>): Promise<SpdyStream>;
  close(): void;
  onClose(listener: () => void): void;
}

interface StreamState {
  stream: SpdyStream;
  dataListeners: ((data: Buffer) => void)[];
  endListeners: (() => void)[];
  ended: boolean;
}

/** A SPDY client session over an already upgraded connection; `initial` is what followed the 101 response. */
export function spdyClientSession(socket: Duplex, initial: Buffer = Buffer.alloc(0)): SpdySession {
  const streams = new Map<number, StreamState>();
  const closeListeners: (() => void)[] = [];
  let nextId = 1;
  let closed = false;
  let buf: Buffer = Buffer.from(initial);

  // One deflate context for every header block we send, flushed after each.
  const deflate = createDeflate();
  let compressed: Buffer[] = [];
  deflate.on('data', (c: Buffer) => compressed.push(c));
  let headerChain: Promise<unknown> = Promise.resolve();
  const compress = (block: Buffer) =>
    new Promise<Buffer>((resolve) => {
      deflate.write(block);
      deflate.flush(constants.Z_SYNC_FLUSH, () => {
        const out = Buffer.concat(compressed);
        compressed = [];
        resolve(out);
      });
    });

  const control = (type: number, flags: number, data: Buffer): Buffer => {
    const h = Buffer.alloc(8);
    h.writeUInt16BE(0x8000 | VERSION, 0);
    h.writeUInt16BE(type, 2);
    h.writeUInt32BE((flags << 24) | data.length, 4);
    return Buffer.concat([h, data]);
  };
  const dataFrame = (id: number, flags: number, data: Buffer): Buffer => {
    const h = Buffer.alloc(8);
    h.writeUInt32BE(id & 0x7fffffff, 0);
    h.writeUInt32BE((flags << 24) | data.length, 4);
    return Buffer.concat([h, data]);
  };
  const send = (frame: Buffer) => {
    if (!closed && socket.writable) socket.write(frame);
  };

  const endStream = (s: StreamState) => {
    if (s.ended) return;
    s.ended = true;
    for (const l of s.endListeners.splice(0)) l();
  };
  const shutdown = () => {
    if (closed) return;
    closed = true;
    socket.destroy();
    deflate.close();
    for (const s of streams.values()) endStream(s);
    for (const l of closeListeners.splice(0)) l();
  };

  const handleFrame = (frame: Buffer) => {
    const first = frame.readUInt32BE(0);
    const flags = frame[4]!;
    const data = frame.subarray(8);
    if ((first & 0x80000000) === 0) {
      const s = streams.get(first & 0x7fffffff);
      if (!s) return;
      if (data.length > 0) for (const l of s.dataListeners) l(data);
      if (flags & FLAG_FIN) endStream(s);
      return;
    }
    const type = first & 0xffff;
    if (type === SYN_REPLY) {
      const s = streams.get(data.readUInt32BE(0) & 0x7fffffff);
      if (s && flags & FLAG_FIN) endStream(s);
    } else if (type === RST_STREAM) {
      const s = streams.get(data.readUInt32BE(0) & 0x7fffffff);
      if (s) endStream(s);
    } else if (type === PING) {
      // Pings are answered with the same frame.
      send(frame);
    } else if (type === GOAWAY) {
      shutdown();
    } else if (type === SYN_STREAM) {
      const rst = Buffer.alloc(8);
      rst.writeUInt32BE(data.readUInt32BE(0) & 0x7fffffff, 0);
      rst.writeUInt32BE(REFUSED_STREAM, 4);
      send(control(RST_STREAM, 0, rst));
    }
    // SETTINGS, HEADERS and WINDOW_UPDATE change nothing here.
  };

  const onData = (chunk: Buffer) => {
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
    while (buf.length >= 8) {
      const length = buf.readUInt32BE(4) & 0xffffff;
      if (buf.length < 8 + length) break;
      const frame = buf.subarray(0, 8 + length);
      buf = buf.subarray(8 + length);
      handleFrame(frame);
    }
  };
  socket.on('data', onData);
  socket.on('close', shutdown);
  socket.on('end', shutdown);
  socket.on('error', shutdown);
  socket.resume();
  if (buf.length > 0) queueMicrotask(() => onData(Buffer.alloc(0)));

  return {
    async openStream(headers) {
      const id = nextId;
      nextId += 2;
      const state: StreamState = {
        dataListeners: [],
        endListeners: [],
        ended: false,
        stream: {
          id,
          get ended() {
            return state.ended;
          },
          write(data) {
            for (let at = 0; at < data.length; at += MAX_DATA_FRAME) {
              send(dataFrame(id, 0, data.subarray(at, at + MAX_DATA_FRAME)));
            }
          },
          end() {
            send(dataFrame(id, FLAG_FIN, Buffer.alloc(0)));
          },
          onData(l) {
            state.dataListeners.push(l);
          },
          onEnd(l) {
            if (state.ended) l();
            else state.endListeners.push(l);
          },
        },
      };
      streams.set(id, state);
      // The name/value block: a count, then length-prefixed names and values.
      const entries = Object.entries(headers);
      const parts: Buffer[] = [u32(entries.length)];
      for (const [name, value] of entries) {
        const n = Buffer.from(name.toLowerCase());
        const v = Buffer.from(value);
        parts.push(u32(n.length), n, u32(v.length), v);
      }
      // Header blocks must reach the wire in the order they were compressed.
      const sent = headerChain.then(async () => {
        const block = await compress(Buffer.concat(parts));
        const head = Buffer.alloc(10);
        head.writeUInt32BE(id, 0);
        head.writeUInt32BE(0, 4); // no associated stream
        head.writeUInt16BE(0, 8); // priority 0, slot 0
        send(control(SYN_STREAM, 0, Buffer.concat([head, block])));
      });
      headerChain = sent;
      await sent;
      return state.stream;
    },
    close: shutdown,
    onClose(l) {
      if (closed) l();
      else closeListeners.push(l);
    },
  };
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n, 0);
  return b;
}
