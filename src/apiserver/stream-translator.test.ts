// The API server's WebSocket translations against stand-ins: a WebSocket
// client (Node's own, as a browser or client-go would open one) on one
// side, and on the other a stand-in kubelet that speaks the server side of
// SPDY/3 framing as spdystream does (zlib header blocks, SYN_REPLY, FIN).
// The real thing (kubectl 1.32/1.33 against containerd) is in
// test/e2e/streaming.test.ts.

import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { connect as netConnect } from 'node:net';
import type { Duplex } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { constants, createInflate } from 'node:zlib';
import { translateRemoteCommand, translationFor, tunnelPortForward } from './stream-translator.ts';

/** The server side of a SPDY session, enough to play a runtime's exec. */
function standInSpdyServer(socket: Duplex, onStreams: (s: SpdyServerSide) => void, expect: number) {
  const inflate = createInflate();
  let inflated: Buffer[] = [];
  inflate.on('data', (c: Buffer) => inflated.push(c));
  const byType = new Map<string, number>();
  const dataListeners = new Map<number, (d: Buffer, fin: boolean) => void>();
  // Data can come before the test has asked for it (headers inflate asynchronously).
  const early = new Map<number, [Buffer, boolean][]>();
  let buf = Buffer.alloc(0);
  let chain = Promise.resolve();
  const frameHead = (first: number, flags: number, length: number) => {
    const h = Buffer.alloc(8);
    h.writeUInt32BE(first >>> 0, 0);
    h.writeUInt32BE(((flags << 24) | length) >>> 0, 4);
    return h;
  };
  const side: SpdyServerSide = {
    headers: new Map(),
    write(type, data, fin = false) {
      const id = byType.get(type)!;
      socket.write(Buffer.concat([frameHead(id, fin ? 1 : 0, data.length), data]));
    },
    onData(type, l) {
      const id = byType.get(type)!;
      dataListeners.set(id, l);
      for (const [d, fin] of early.get(id) ?? []) l(d, fin);
      early.delete(id);
    },
  };
  socket.on('data', (chunk: Buffer) => {
    buf = Buffer.concat([buf, chunk]);
    while (buf.length >= 8) {
      const length = buf.readUInt32BE(4) & 0xffffff;
      if (buf.length < 8 + length) break;
      const frame = buf.subarray(0, 8 + length);
      buf = buf.subarray(8 + length);
      const first = frame.readUInt32BE(0);
      const flags = frame[4]!;
      if (first & 0x80000000) {
        const type = first & 0xffff;
        if (type !== 1) continue;
        const id = frame.readUInt32BE(8);
        const block = frame.subarray(18);
        // Header blocks share one zlib context: inflate them in order.
        chain = chain.then(
          () =>
            new Promise<void>((resolve) => {
              inflate.write(block);
              inflate.flush(constants.Z_SYNC_FLUSH, () => {
                const raw = Buffer.concat(inflated);
                inflated = [];
                const headers: Record<string, string> = {};
                let at = 4;
                for (let i = 0; i < raw.readUInt32BE(0); i++) {
                  const nl = raw.readUInt32BE(at);
                  const name = raw.subarray(at + 4, at + 4 + nl).toString();
                  at += 4 + nl;
                  const vl = raw.readUInt32BE(at);
                  headers[name] = raw.subarray(at + 4, at + 4 + vl).toString();
                  at += 4 + vl;
                }
                byType.set(headers.streamtype!, id);
                side.headers.set(id, headers);
                // SYN_REPLY with an empty header block.
                const reply = Buffer.alloc(4);
                reply.writeUInt32BE(id, 0);
                socket.write(Buffer.concat([frameHead(0x80030002, 0, 4), reply]));
                if (byType.size === expect) onStreams(side);
                resolve();
              });
            }),
        );
      } else {
        const l = dataListeners.get(first);
        const data = Buffer.from(frame.subarray(8));
        if (l) l(data, (flags & 1) !== 0);
        else early.set(first, [...(early.get(first) ?? []), [data, (flags & 1) !== 0]]);
      }
    }
  });
}

interface SpdyServerSide {
  headers: Map<number, Record<string, string>>;
  write(streamtype: string, data: Buffer, fin?: boolean): void;
  onData(streamtype: string, listener: (data: Buffer, fin: boolean) => void): void;
}

let kubelet: Server;
let apiserver: Server;
let kubeletURL: string;
let apiURL: string;
const kubeletRequests: IncomingMessage[] = [];
const sockets = new Set<Duplex>();

before(async () => {
  kubelet = createServer((_req, res) => res.end());
  kubelet.on('upgrade', (req: IncomingMessage, socket: Duplex) => {
    sockets.add(socket);
    kubeletRequests.push(req);
    if (req.url?.startsWith('/exec/missing')) {
      socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 26\r\n\r\ncontainer not found ("c")\n');
      return;
    }
    if (req.url?.startsWith('/portForward')) {
      socket.write(
        'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: portforward.k8s.io\r\n\r\n',
      );
      socket.pipe(socket);
      return;
    }
    socket.write(
      'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\n',
    );
    // The "process": upper-cases stdin to stdout until stdin ends, then says bye on stderr and exits 3.
    standInSpdyServer(
      socket,
      (s) => {
        s.onData('stdin', (data, fin) => {
          if (data.length > 0) s.write('stdout', Buffer.from(data.toString().toUpperCase()));
          if (!fin) return;
          s.write('stderr', Buffer.from('bye'), true);
          s.write('stdout', Buffer.alloc(0), true);
          const status = {
            metadata: {},
            status: 'Failure',
            message: 'command terminated with non-zero exit code: exit status 3',
            reason: 'NonZeroExitCode',
            details: { causes: [{ reason: 'ExitCode', message: '3' }] },
          };
          s.write('error', Buffer.from(JSON.stringify(status)), true);
        });
      },
      4,
    );
  });
  await new Promise<void>((r) => kubelet.listen(0, '127.0.0.1', r));
  kubeletURL = `http://127.0.0.1:${(kubelet.address() as { port: number }).port}`;

  // The API server's side, reduced to the translation.
  apiserver = createServer((_req, res) => res.end());
  apiserver.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    sockets.add(socket);
    const url = new URL(req.url ?? '/', 'http://x');
    const sub = url.pathname.split('/')[1] ?? '';
    const translation = translationFor(req, sub);
    if (translation === 'tunnel') {
      void tunnelPortForward(req, socket, head, new URL(`${kubeletURL}/portForward/ns/pod`));
    } else if (translation === 'v5') {
      void translateRemoteCommand(
        req,
        socket,
        head,
        new URL(`${kubeletURL}/exec/${url.searchParams.get('to')}`),
        {
          stdin: true,
          stdout: true,
          stderr: true,
          tty: false,
        },
      );
    } else {
      socket.destroy();
    }
  });
  await new Promise<void>((r) => apiserver.listen(0, '127.0.0.1', r));
  apiURL = `ws://127.0.0.1:${(apiserver.address() as { port: number }).port}`;
});

after(async () => {
  // Upgraded connections are no longer the servers' to close (and the stand-in never ends its side).
  for (const socket of sockets) socket.destroy();
  for (const s of [kubelet, apiserver]) {
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }
});

/** Opens a WebSocket and collects its messages until the server closes it. */
function session(path: string, protocol: string) {
  const ws = new WebSocket(`${apiURL}${path}`, [protocol]);
  ws.binaryType = 'arraybuffer';
  const messages: Buffer[] = [];
  ws.addEventListener('message', (e) => messages.push(Buffer.from(e.data as ArrayBuffer)));
  const opened = new Promise<void>((resolve, reject) => {
    ws.addEventListener('open', () => resolve());
    ws.addEventListener('error', () => reject(new Error('websocket error')));
  });
  const closed = new Promise<number>((resolve) => ws.addEventListener('close', (e) => resolve(e.code)));
  return { ws, messages, opened, closed };
}

const onChannel = (messages: Buffer[], n: number) =>
  Buffer.concat(messages.filter((m) => m[0] === n).map((m) => m.subarray(1))).toString();

describe('exec over v5.channel.k8s.io, translated to SPDY', () => {
  it('carries stdin, the close signal, stdout, stderr and the exit Status', async () => {
    const s = session('/exec?to=ok', 'v5.channel.k8s.io');
    await s.opened;
    assert.equal(s.ws.protocol, 'v5.channel.k8s.io');
    s.ws.send(Buffer.from([0, ...Buffer.from('hello ')]));
    s.ws.send(Buffer.from([0, ...Buffer.from('world')]));
    // v5's close signal for stdin (channel 255, payload: the channel closed).
    s.ws.send(Buffer.from([255, 0]));
    assert.equal(await s.closed, 1000);
    // The first message is the empty one on stdout that says the session is up.
    assert.deepEqual([...s.messages[0]!], [1]);
    assert.equal(onChannel(s.messages, 1), 'HELLO WORLD');
    assert.equal(onChannel(s.messages, 2), 'bye');
    const status = JSON.parse(onChannel(s.messages, 3));
    assert.equal(status.reason, 'NonZeroExitCode');
    assert.equal(status.details.causes[0].message, '3');
    // The kubelet was asked for SPDY with the v4 protocol, and got one stream per channel.
    const req = kubeletRequests.at(-1)!;
    assert.equal(req.headers.upgrade, 'SPDY/3.1');
    assert.equal(req.headers['x-stream-protocol-version'], 'v4.channel.k8s.io');
  });

  it('reports a refused upgrade as a Status on the error channel', async () => {
    const s = session('/exec?to=missing', 'v5.channel.k8s.io');
    await s.opened;
    await s.closed;
    const status = JSON.parse(onChannel(s.messages, 3));
    assert.equal(status.status, 'Failure');
    assert.match(status.message, /unable to upgrade connection: container not found \("c"\)/);
  });
});

describe('port-forward tunnelled over WebSocket', () => {
  // Browsers' WebSocket refuses a '/' in a subprotocol; kubectl's (gorilla) does not: speak it by hand.
  it('negotiates SPDY/3.1+portforward.k8s.io and copies bytes both ways', async () => {
    const socket = netConnect({ host: '127.0.0.1', port: Number(new URL(apiURL).port) });
    socket.write(
      'GET /portforward HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
        'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n' +
        'Sec-WebSocket-Protocol: SPDY/3.1+portforward.k8s.io\r\n\r\n',
    );
    let buf = Buffer.alloc(0);
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
    });
    const until = async (check: () => boolean) => {
      const deadline = Date.now() + 10_000;
      while (!check()) {
        if (Date.now() > deadline) throw new Error(`got ${buf.toString()}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    };
    await until(() => buf.includes('\r\n\r\n'));
    const end = buf.indexOf('\r\n\r\n') + 4;
    const head = buf.subarray(0, end).toString();
    assert.match(head, /^HTTP\/1.1 101/);
    assert.match(head, /Sec-WebSocket-Protocol: SPDY\/3.1\+portforward.k8s.io/i);
    assert.match(head, /Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=/);
    assert.equal(kubeletRequests.at(-1)!.headers['x-stream-protocol-version'], 'portforward.k8s.io');
    buf = buf.subarray(end);
    // One masked binary frame from the client...
    const payload = Buffer.from('spdy frames, as they are');
    const mask = Buffer.from([1, 2, 3, 4]);
    const masked = Buffer.from(payload.map((b, i) => b ^ mask[i & 3]!));
    socket.write(Buffer.concat([Buffer.from([0x82, 0x80 | payload.length]), mask, masked]));
    // ...comes back (the stand-in kubelet echoes) as an unmasked binary frame.
    await until(() => buf.length >= 2 + payload.length);
    assert.equal(buf[0], 0x82);
    assert.equal(buf.subarray(2, 2 + payload.length).toString(), 'spdy frames, as they are');
    socket.destroy();
  });
});
