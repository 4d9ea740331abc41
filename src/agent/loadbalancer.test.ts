import assert from 'node:assert/strict';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { createLog } from '../util/log.ts';
import { until } from '../util/until.ts';
import { endpointServers, hostPort, type LoadBalancer, startLoadBalancer } from './loadbalancer.ts';

const log = createLog({ component: 'lb-test' }, () => {});

/** A TCP server that answers every connection with its name, and keeps it open. */
async function named(name: string): Promise<{ addr: string; server: Server; sockets: Set<Socket> }> {
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    s.write(name);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { addr: `127.0.0.1:${(server.address() as { port: number }).port}`, server, sockets };
}

/** Connects through the balancer: resolves with the name the far end sent, and the socket. */
function through(lb: LoadBalancer): Promise<{ name: string; socket: Socket; closed: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port: lb.port });
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    socket.once('data', (d) => resolve({ name: d.toString(), socket, closed }));
    socket.once('error', reject);
  });
}

const kill = async (s: { server: Server; sockets: Set<Socket> }) => {
  const closed = new Promise<void>((r) => s.server.close(() => r()));
  for (const c of s.sockets) c.destroy();
  await closed;
};

const balancers: LoadBalancer[] = [];
after(async () => {
  for (const lb of balancers) await lb.close();
});

describe('the agent load balancer (as k3s’s)', () => {
  it('sends connections to the bootstrap server, then to the next when its dial is refused', async () => {
    const a = await named('a');
    const b = await named('b');
    const lb = await startLoadBalancer({ defaultServer: a.addr, log, healthIntervalMs: 100_000 });
    balancers.push(lb);
    assert.equal((await through(lb)).name, 'a');
    lb.setServers([a.addr, b.addr]);
    const held = await through(lb);
    assert.equal(held.name, 'a');
    await kill(a);
    await held.closed; // the connection through the dead server is closed, not left hanging
    assert.equal((await through(lb)).name, 'b');
    assert.equal(lb.current(), b.addr);
    await kill(b);
  });

  it('closes every connection to a server that fails its health check, and moves on', async () => {
    const a = await named('a');
    const b = await named('b');
    const lb = await startLoadBalancer({ defaultServer: a.addr, log, healthIntervalMs: 50 });
    balancers.push(lb);
    const held = await through(lb);
    assert.equal(held.name, 'a');
    lb.setServers([a.addr, b.addr]);
    // The listener goes away but the established connection stays open, as
    // with a hung machine: only the health check can tell.
    await new Promise<void>((r) => a.server.close(() => r()));
    await held.closed;
    await until('the balancer to move to b', () => lb.current() === b.addr, { ms: 5_000 });
    assert.equal((await through(lb)).name, 'b');
    for (const s of a.sockets) s.destroy();
    await kill(b);
  });

  it('reads host:port pairs from the kubernetes Endpoints and the --server URL', () => {
    assert.deepEqual(
      endpointServers({
        subsets: [
          { addresses: [{ ip: '10.0.0.1' }, { ip: '10.0.0.2' }], ports: [{ port: 6443 }] },
          { addresses: [{ ip: 'fd00::1' }], ports: [{ port: 7443 }] },
        ],
      }),
      ['10.0.0.1:6443', '10.0.0.2:6443', '[fd00::1]:7443'],
    );
    assert.equal(hostPort('https://127.0.0.2:6443'), '127.0.0.2:6443');
    assert.equal(hostPort('https://[fd00::1]:6443/'), '[fd00::1]:6443');
  });
});
