// A minimal DNS client for tests and the benchmark: one query over UDP or
// TCP to a given server, its answer decoded.

import { createSocket, type Socket } from 'node:dgram';
import { connect } from 'node:net';
import { CLASS_IN, decodeMessage, type Edns, encodeMessage, type Message, newMessage } from './message.ts';

export interface QueryOptions {
  protocol?: 'udp' | 'tcp';
  edns?: Edns;
  timeoutMs?: number;
  id?: number;
}

export function queryMessage(name: string, type: number, opts: QueryOptions = {}): Buffer {
  return encodeMessage(
    newMessage({
      id: opts.id ?? Math.floor(Math.random() * 0x10000),
      recursionDesired: true,
      questions: [{ name, type, class: CLASS_IN }],
      ...(opts.edns ? { edns: opts.edns } : {}),
    }),
  );
}

/** Sends one raw message and returns the raw answer. */
export function exchange(
  server: { address: string; port: number },
  query: Buffer,
  opts: { protocol?: 'udp' | 'tcp'; timeoutMs?: number } = {},
): Promise<Buffer> {
  const timeoutMs = opts.timeoutMs ?? 5000;
  if (opts.protocol === 'tcp') {
    return new Promise((resolve, reject) => {
      const sock = connect({ host: server.address, port: server.port });
      let buf = Buffer.alloc(0);
      const timer = setTimeout(() => {
        sock.destroy();
        reject(new Error('DNS query over TCP timed out'));
      }, timeoutMs);
      sock.on('connect', () => {
        const len = Buffer.alloc(2);
        len.writeUInt16BE(query.length);
        sock.end(Buffer.concat([len, query]));
      });
      sock.on('data', (d) => {
        buf = Buffer.concat([buf, d]);
        if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
          clearTimeout(timer);
          sock.destroy();
          resolve(buf.subarray(2, 2 + buf.readUInt16BE(0)));
        }
      });
      sock.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }
  return new Promise((resolve, reject) => {
    const sock: Socket = createSocket(server.address.includes(':') ? 'udp6' : 'udp4');
    const timer = setTimeout(() => {
      sock.close();
      reject(new Error('DNS query over UDP timed out'));
    }, timeoutMs);
    sock.on('message', (msg) => {
      clearTimeout(timer);
      sock.close();
      resolve(msg);
    });
    sock.on('error', (err) => {
      clearTimeout(timer);
      sock.close();
      reject(err);
    });
    sock.send(query, server.port, server.address);
  });
}

export async function query(
  server: { address: string; port: number },
  name: string,
  type: number,
  opts: QueryOptions = {},
): Promise<Message> {
  return decodeMessage(await exchange(server, queryMessage(name, type, opts), opts));
}
