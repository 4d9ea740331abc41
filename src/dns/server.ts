// The cluster DNS server: answers the cluster zone (zone.ts) from memory and
// forwards everything else (forward.ts), over UDP and TCP (RFC 1035 §4.2,
// RFC 7766).
//
// UDP answers fit the client's size: 512 bytes, or what its EDNS0 OPT record
// offers (capped at 4096); a bigger answer is truncated with TC set, and the
// client asks again over TCP, where a message may be up to 65,535 bytes
// behind its two-byte length.
//
// Answers from the zone are cached encoded, keyed by the question as asked
// (so 0x20 mixed case is echoed back exactly), and dropped as a whole
// whenever a Service, EndpointSlice or Namespace changes: the cache hit path
// is a map lookup and a copy with the client's id.

import { createSocket, type Socket } from 'node:dgram';
import { createServer, type Server } from 'node:net';
import type { Log } from '../util/log.ts';
import type { Forwarder } from './forward.ts';
import {
  CLASS_IN,
  canonicalName,
  DnsFormatError,
  decodeMessage,
  type Edns,
  encodeMessage,
  type Message,
  MIN_UDP_SIZE,
  newMessage,
  OPCODE_QUERY,
  RCODE,
  type ResourceRecord,
  TYPE,
  truncatedCopy,
} from './message.ts';
import type { ClusterZone } from './zone.ts';

/** The UDP payload size advertised in our OPT records (the 2020 DNS flag day's default). */
export const ADVERTISED_UDP_SIZE = 1232;
const MAX_UDP_SIZE = 4096;
const CACHE_ENTRIES = 10_000;

export type Protocol = 'udp' | 'tcp';

export interface DnsHandler {
  /** The response to one query (undefined: nothing to send back). */
  handle(query: Buffer, protocol: Protocol): Promise<Buffer | undefined>;
}

export interface DnsHandlerOptions {
  zone: ClusterZone;
  /** Where names outside the zone go; without one they are REFUSED. */
  forwarder?: Forwarder;
  log?: Log;
}

export function createDnsHandler(opts: DnsHandlerOptions): DnsHandler {
  const { zone, forwarder } = opts;
  const cache = new Map<string, { generation: number; response: Buffer }>();

  const reply = (query: Message, fields: Partial<Message>): Message =>
    newMessage({
      id: query.id,
      response: true,
      opcode: query.opcode,
      recursionDesired: query.recursionDesired,
      recursionAvailable: true,
      questions: query.questions.slice(0, 1),
      ...(query.edns ? { edns: ourEdns(query.edns) } : {}),
      ...fields,
    });

  /** Answers of the zone for an ExternalName's target outside it, asked upstream (CoreDNS resolves them too). */
  async function chase(target: string, qtype: number): Promise<ResourceRecord[]> {
    if (!forwarder) return [];
    const q = encodeMessage(
      newMessage({
        id: Math.floor(Math.random() * 0x10000),
        recursionDesired: true,
        questions: [{ name: target, type: qtype, class: CLASS_IN }],
      }),
    );
    try {
      return decodeMessage(await forwarder.forward(q, 'udp')).answers;
    } catch {
      return []; // the CNAME alone still tells the client where to look
    }
  }

  async function handle(raw: Buffer, protocol: Protocol): Promise<Buffer | undefined> {
    let query: Message;
    try {
      query = decodeMessage(raw);
    } catch (err) {
      if (!(err instanceof DnsFormatError) || raw.length < 12) return undefined;
      // FORMERR with the id and opcode the client sent, nothing else (RFC 1035 §4.1.1).
      const header = Buffer.alloc(12);
      raw.copy(header, 0, 0, 4);
      header.writeUInt16BE(0x8000 | (raw.readUInt16BE(2) & 0x7800) | RCODE.FORMERR, 2);
      return header;
    }
    if (query.response) return undefined;
    const maxSize =
      protocol === 'tcp'
        ? 65_535
        : Math.min(MAX_UDP_SIZE, Math.max(MIN_UDP_SIZE, query.edns?.udpPayloadSize ?? MIN_UDP_SIZE));
    const send = (m: Message) => encodeMessage(m, maxSize);
    if (query.opcode !== OPCODE_QUERY) return send(reply(query, { rcode: RCODE.NOTIMP }));
    if (query.questions.length !== 1) return send(reply(query, { rcode: RCODE.FORMERR }));
    if (query.edns && query.edns.version > 0) return send(reply(query, { rcode: RCODE.BADVERS }));
    const q = query.questions[0]!;

    const key = `${maxSize}|${query.edns ? (query.edns.dnssecOk ? 'do' : 'e') : ''}|${query.recursionDesired ? 1 : 0}|${q.class}|${q.type}|${q.name}`;
    const hit = cache.get(key);
    if (hit && hit.generation === zone.generation) {
      const out = Buffer.from(hit.response);
      out.writeUInt16BE(query.id, 0);
      return out;
    }

    const found = q.class === CLASS_IN ? zone.lookup(q) : undefined;
    if (!found) return forward(query, raw, protocol, maxSize);

    const answers = [...found.answers];
    let chased = false;
    const last = answers.at(-1);
    if (
      last?.type === TYPE.CNAME &&
      'target' in last &&
      (q.type === TYPE.A || q.type === TYPE.AAAA) &&
      !isWithin(last.target, zone.domain)
    ) {
      answers.push(...(await chase(last.target, q.type)));
      chased = true;
    }
    const response = send(
      reply(query, {
        authoritative: true,
        rcode: found.rcode,
        answers,
        authority: found.authority,
        additional: found.additional,
      }),
    );
    if (!chased) {
      if (cache.size >= CACHE_ENTRIES) cache.clear();
      cache.set(key, { generation: zone.generation, response });
    }
    return response;
  }

  async function forward(query: Message, raw: Buffer, protocol: Protocol, maxSize: number) {
    if (!forwarder) return encodeMessage(reply(query, { rcode: RCODE.REFUSED }), maxSize);
    try {
      const answer = await forwarder.forward(raw, protocol);
      return answer.length > maxSize ? truncatedCopy(answer) : answer;
    } catch (err) {
      opts.log?.debug('forwarding failed', { name: query.questions[0]?.name, error: String(err) });
      return encodeMessage(reply(query, { rcode: RCODE.SERVFAIL }), maxSize);
    }
  }

  return { handle };
}

const ourEdns = (theirs: Edns): Edns => ({
  udpPayloadSize: ADVERTISED_UDP_SIZE,
  version: 0,
  dnssecOk: theirs.dnssecOk,
  options: Buffer.alloc(0),
});

const isWithin = (name: string, domain: string) => {
  const n = canonicalName(name);
  return n === domain || n.endsWith(`.${domain}`);
};

export interface DnsListener {
  readonly address: string;
  readonly port: number;
  close(): Promise<void>;
}

/**
 * Serves a handler on one address, UDP and TCP on the same port (port 0:
 * an ephemeral port free for both).
 */
export async function listenDns(
  handler: DnsHandler,
  opts: { address: string; port: number; log?: Log },
): Promise<DnsListener> {
  for (let attempt = 0; ; attempt++) {
    const udp = createSocket({ type: opts.address.includes(':') ? 'udp6' : 'udp4' });
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(opts.port, opts.address, () => {
        udp.off('error', reject);
        resolve();
      });
    });
    const port = udp.address().port;
    try {
      const tcp = await listenTcp(handler, opts.address, port);
      serveUdp(udp, handler, opts.log);
      return {
        address: opts.address,
        port,
        async close() {
          udp.close();
          await new Promise<void>((r) => tcp.close(() => r()));
        },
      };
    } catch (err) {
      udp.close();
      // An ephemeral UDP port may be taken for TCP: pick another.
      if (opts.port !== 0 || attempt >= 10) throw err;
    }
  }
}

function serveUdp(udp: Socket, handler: DnsHandler, log?: Log): void {
  udp.on('message', (msg, rinfo) => {
    handler.handle(msg, 'udp').then(
      (out) => {
        if (out) udp.send(out, rinfo.port, rinfo.address);
      },
      (err) => log?.error('dns query failed', { error: String(err) }),
    );
  });
  udp.on('error', (err) => log?.error('dns udp socket error', { error: String(err) }));
}

/** How long an idle TCP connection is kept (RFC 7766 §6.2.3 suggests seconds). */
const TCP_IDLE_MS = 10_000;

function listenTcp(handler: DnsHandler, address: string, port: number): Promise<Server> {
  // Half-open: a client may send its query and close its side at once (RFC 7766 §6.2.1
  // lets it); the answer still goes back, then the connection is closed.
  const server = createServer({ allowHalfOpen: true }, (sock) => {
    let buf = Buffer.alloc(0);
    // Answers go back in order, one query at a time per connection.
    let chain = Promise.resolve();
    sock.setTimeout(TCP_IDLE_MS, () => sock.destroy());
    sock.on('error', () => sock.destroy());
    sock.on('end', () => {
      chain = chain.then(() => {
        sock.end();
      });
    });
    sock.on('data', (d) => {
      buf = buf.length ? Buffer.concat([buf, d]) : d;
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const msg = buf.subarray(2, 2 + buf.readUInt16BE(0));
        buf = buf.subarray(2 + msg.length);
        chain = chain.then(async () => {
          const out = await handler.handle(Buffer.from(msg), 'tcp').catch(() => undefined);
          if (!out || sock.destroyed) return;
          const len = Buffer.alloc(2);
          len.writeUInt16BE(out.length);
          sock.write(Buffer.concat([len, out]));
        });
      }
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, address, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}
