// The agent's client-side load balancer over the API servers, as k3s's
// (pkg/agent/loadbalancer): a TCP proxy on loopback that every component
// of the agent talks to instead of one server. It forwards each connection
// to the current server and, when a dial fails, moves on to the next; a
// server that stops answering its health check is dropped and every
// connection through it is closed, so clients reconnect (and watches resume
// from their resourceVersion) on a live server at once rather than waiting
// for a TCP timeout. TLS passes through untouched: clients verify the
// server's certificate, which names 127.0.0.1 on every server.
//
// The server list starts as the --server address (the bootstrap address
// only) and then follows the `kubernetes` Endpoints, which list every live
// server (server/apiserver-leases.ts), polled every 10 s. The --server
// address stays in the list as a fallback, as k3s keeps its default server.

import { connect, createServer, type Server, type Socket } from 'node:net';
import type { Clientset } from '../client/clientset.ts';
import type { Log } from '../util/log.ts';

export interface LoadBalancerOptions {
  /** host:port of the bootstrap server (the --server URL's). */
  defaultServer: string;
  /** Where to listen (default 127.0.0.1, port 0: any free one; k3s uses 6444). */
  listenPort?: number;
  dialTimeoutMs?: number;
  healthIntervalMs?: number;
  log: Log;
}

export interface LoadBalancer {
  /** https://127.0.0.1:<port>: the URL the agent's clients use. */
  readonly url: string;
  readonly port: number;
  /** The servers, current first. */
  servers(): string[];
  current(): string;
  /** Replaces the list (the default server is kept at its end). */
  setServers(servers: string[]): void;
  /** Follows the `kubernetes` Endpoints with these clients, every intervalMs. */
  watchEndpoints(clients: Pick<Clientset, 'endpoints'>, intervalMs?: number): void;
  close(): Promise<void>;
}

/** host:port from an https:// URL. */
export function hostPort(url: string): string {
  const u = new URL(url);
  return `${u.hostname}:${u.port || '443'}`;
}

const split = (hp: string): { host: string; port: number } => {
  const i = hp.lastIndexOf(':');
  return { host: hp.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(hp.slice(i + 1)) };
};

/** The `kubernetes` Endpoints' addresses as host:port, in order. */
export function endpointServers(ep: {
  subsets?: { addresses?: { ip: string }[]; ports?: { port: number }[] }[];
}): string[] {
  const out: string[] = [];
  for (const s of ep.subsets ?? []) {
    const port = s.ports?.[0]?.port;
    if (!port) continue;
    for (const a of s.addresses ?? []) out.push(a.ip.includes(':') ? `[${a.ip}]:${port}` : `${a.ip}:${port}`);
  }
  return out;
}

export async function startLoadBalancer(opts: LoadBalancerOptions): Promise<LoadBalancer> {
  const dialTimeout = opts.dialTimeoutMs ?? 2_000;
  const healthInterval = opts.healthIntervalMs ?? 2_000;
  let list: string[] = [opts.defaultServer];
  let current = opts.defaultServer;
  // Connections through each server, to close when it is found dead.
  const conns = new Map<string, Set<Socket>>();
  let healthTimer: NodeJS.Timeout | undefined;
  let pollTimer: NodeJS.Timeout | undefined;
  let closed = false;

  const dial = (server: string): Promise<Socket> =>
    new Promise((resolve, reject) => {
      const { host, port } = split(server);
      const s = connect({ host, port });
      const timer = setTimeout(() => s.destroy(new Error(`dial ${server}: timed out`)), dialTimeout);
      s.once('connect', () => {
        clearTimeout(timer);
        resolve(s);
      });
      s.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });

  const switchTo = (server: string, why: string) => {
    if (server === current) return;
    opts.log('load balancer: switching server', { from: current, to: server, reason: why });
    current = server;
  };

  /** The servers to try, the current one first, then the rest in list order. */
  const order = () => [current, ...list.filter((s) => s !== current)];

  const dropConnections = (server: string) => {
    const set = conns.get(server);
    if (!set) return;
    for (const s of set) s.destroy();
    conns.delete(server);
  };

  const proxy: Server = createServer((client) => {
    client.on('error', () => {});
    client.pause();
    void (async () => {
      for (const server of order()) {
        if (client.destroyed) return;
        let upstream: Socket;
        try {
          upstream = await dial(server);
        } catch (err) {
          opts.log.warn('load balancer: dial failed', { server, error: String((err as Error).message) });
          if (server === current) {
            const next = order()[1];
            if (next) switchTo(next, `dial of ${server} failed`);
          }
          continue;
        }
        switchTo(server, 'dial succeeded');
        const set = conns.get(server) ?? new Set<Socket>();
        conns.set(server, set);
        set.add(upstream);
        upstream.on('error', () => client.destroy());
        upstream.on('close', () => {
          set.delete(upstream);
          client.destroy();
        });
        client.on('close', () => upstream.destroy());
        client.pipe(upstream);
        upstream.pipe(client);
        client.resume();
        return;
      }
      opts.log.warn('load balancer: no server answered', { servers: list });
      client.destroy();
    })();
  });

  // The current server's health: a TCP dial. k3s checks /ping; a dial is
  // enough to tell a dead process or machine from a live one.
  const check = async () => {
    const server = current;
    try {
      (await dial(server)).destroy();
    } catch {
      if (closed || server !== current) return;
      const next = order().find((s) => s !== server);
      opts.log.warn('load balancer: server failed its health check', { server, next });
      if (next) switchTo(next, `health check of ${server} failed`);
      dropConnections(server);
    }
  };
  const healthLoop = () => {
    if (closed) return;
    void check().finally(() => {
      if (!closed) healthTimer = setTimeout(healthLoop, healthInterval).unref();
    });
  };
  healthTimer = setTimeout(healthLoop, healthInterval).unref();

  await new Promise<void>((resolve, reject) => {
    proxy.once('error', reject);
    proxy.listen(opts.listenPort ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (proxy.address() as { port: number }).port;
  opts.log('load balancer listening', { url: `https://127.0.0.1:${port}`, servers: list });

  const setServers = (servers: string[]) => {
    const next = [...new Set([...servers, opts.defaultServer])];
    if (next.join(',') === list.join(',')) return;
    opts.log('load balancer: servers changed', { servers: next });
    list = next;
    // Connections to a server that left the endpoints stay open: it may
    // still serve (the TTL is wall-clock); the health check closes them if
    // it is dead.
    if (!list.includes(current)) switchTo(list[0]!, 'no longer an endpoint');
  };

  return {
    url: `https://127.0.0.1:${port}`,
    port,
    servers: order,
    current: () => current,
    setServers,
    watchEndpoints(clients, intervalMs = 10_000) {
      const poll = async () => {
        try {
          const ep = await clients.endpoints.get('default', 'kubernetes');
          const servers = endpointServers(ep as Parameters<typeof endpointServers>[0]);
          if (servers.length) setServers(servers);
        } catch (err) {
          opts.log.warn('load balancer: could not read the kubernetes endpoints', {
            error: String((err as Error)?.message ?? err),
          });
        }
        if (!closed) pollTimer = setTimeout(() => void poll(), intervalMs).unref();
      };
      void poll();
    },
    async close() {
      closed = true;
      clearTimeout(healthTimer);
      clearTimeout(pollTimer);
      for (const s of conns.keys()) dropConnections(s);
      await new Promise<void>((r) => proxy.close(() => r()));
    },
  };
}
