// Forwarding names outside the cluster's zone to the node's upstream
// resolvers, as CoreDNS's `forward . /etc/resolv.conf`: the client's query
// goes out as it came (EDNS0 OPT and all), over the protocol the client used
// (CoreDNS forwards over the client's protocol unless told otherwise), and
// the upstream's answer comes back byte for byte with the client's id.
//
// UDP queries share one socket per upstream and are told apart by a fresh
// random id, so forwarding costs no socket per query; an answer is taken
// only from the upstream's address with an id that is outstanding. An
// upstream that does not answer within the timeout is given up for the next
// one (in resolv.conf order); when none answers, the caller answers SERVFAIL.

import { createSocket, type Socket } from 'node:dgram';
import { connect } from 'node:net';

export interface Upstream {
  host: string;
  port: number;
}

export interface ForwarderOptions {
  upstreams: Upstream[];
  /** How long one upstream has to answer (default 2 s, CoreDNS's forward read timeout). */
  timeoutMs?: number;
}

export interface Forwarder {
  /** The upstream's response to `query`, with the query's id; throws when no upstream answered. */
  forward(query: Buffer, protocol: 'udp' | 'tcp'): Promise<Buffer>;
  close(): void;
}

export class ForwardError extends Error {}

export function createForwarder(opts: ForwarderOptions): Forwarder {
  const timeoutMs = opts.timeoutMs ?? 2000;
  const sockets = new Map<string, UdpUpstream>();

  const udp = (u: Upstream) => {
    const key = `${u.host}:${u.port}`;
    let s = sockets.get(key);
    if (!s) {
      s = udpUpstream(u);
      sockets.set(key, s);
    }
    return s;
  };

  return {
    async forward(query, protocol) {
      if (opts.upstreams.length === 0) throw new ForwardError('no upstream resolvers');
      const errors: string[] = [];
      for (const u of opts.upstreams) {
        try {
          const answer =
            protocol === 'udp'
              ? await udp(u).exchange(query, timeoutMs)
              : await tcpExchange(u, query, timeoutMs);
          return answer;
        } catch (err) {
          errors.push(`${u.host}:${u.port}: ${(err as Error).message}`);
        }
      }
      throw new ForwardError(errors.join('; '));
    },
    close() {
      for (const s of sockets.values()) s.close();
      sockets.clear();
    },
  };
}

interface UdpUpstream {
  exchange(query: Buffer, timeoutMs: number): Promise<Buffer>;
  close(): void;
}

function udpUpstream(u: Upstream): UdpUpstream {
  const family = u.host.includes(':') ? 'udp6' : 'udp4';
  const pending = new Map<
    number,
    { resolve(b: Buffer): void; reject(e: Error): void; timer: NodeJS.Timeout }
  >();
  let socket: Socket | undefined;
  const open = () => {
    if (socket) return socket;
    const s = createSocket(family);
    s.on('message', (msg, rinfo) => {
      if (msg.length < 12 || rinfo.port !== u.port || rinfo.address !== u.host) return;
      const p = pending.get(msg.readUInt16BE(0));
      if (!p) return;
      pending.delete(msg.readUInt16BE(0));
      clearTimeout(p.timer);
      p.resolve(msg);
    });
    s.on('error', (err) => {
      for (const p of pending.values()) {
        clearTimeout(p.timer);
        p.reject(err);
      }
      pending.clear();
      s.close();
      socket = undefined;
    });
    s.unref();
    socket = s;
    return s;
  };
  return {
    exchange(query, timeoutMs) {
      const s = open();
      if (pending.size >= 60_000) return Promise.reject(new ForwardError('too many queries in flight'));
      let id: number;
      do id = Math.floor(Math.random() * 0x10000);
      while (pending.has(id));
      const out = Buffer.from(query);
      const clientId = query.readUInt16BE(0);
      out.writeUInt16BE(id, 0);
      return new Promise<Buffer>((resolve, reject) => {
        const timer = setTimeout(() => {
          pending.delete(id);
          reject(new ForwardError(`no answer in ${timeoutMs} ms`));
        }, timeoutMs);
        pending.set(id, {
          resolve: (b) => {
            const answer = Buffer.from(b);
            answer.writeUInt16BE(clientId, 0);
            resolve(answer);
          },
          reject,
          timer,
        });
        s.send(out, u.port, u.host, (err) => {
          if (!err) return;
          clearTimeout(timer);
          pending.delete(id);
          reject(err);
        });
      });
    },
    close() {
      for (const p of pending.values()) {
        clearTimeout(p.timer);
        p.reject(new ForwardError('forwarder closed'));
      }
      pending.clear();
      socket?.close();
      socket = undefined;
    },
  };
}

/** One query over a fresh TCP connection (RFC 1035 §4.2.2: a two-byte length before each message). */
function tcpExchange(u: Upstream, query: Buffer, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host: u.host, port: u.port });
    let buf = Buffer.alloc(0);
    const done = (err?: Error, answer?: Buffer) => {
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(answer!);
    };
    const timer = setTimeout(() => done(new ForwardError(`no answer in ${timeoutMs} ms`)), timeoutMs);
    sock.on('connect', () => {
      const len = Buffer.alloc(2);
      len.writeUInt16BE(query.length);
      sock.write(Buffer.concat([len, query]));
    });
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        done(undefined, buf.subarray(2, 2 + buf.readUInt16BE(0)));
      }
    });
    sock.on('error', (err) => done(err));
    sock.on('end', () => done(new ForwardError('connection closed before an answer')));
  });
}
