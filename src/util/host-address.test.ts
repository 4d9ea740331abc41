import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, it } from 'node:test';
import { defaultRouteInterface, hostAddress } from './host-address.ts';

const dir = mkdtempSync(join(tmpdir(), 'skiff-route-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const HEADER = 'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n';

it("finds the default route's interface, skipping unreachable routes and other destinations", () => {
  const routes = join(dir, 'route');
  writeFileSync(
    routes,
    `${HEADER}*\t00002A0A\t00000000\t0201\t0\t0\t0\t0000FFFF\t0\t0\t0\nbr0\t0000A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\neth7\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n`,
  );
  assert.equal(defaultRouteInterface(routes), 'eth7');
  writeFileSync(routes, HEADER);
  assert.equal(defaultRouteInterface(routes), undefined);
  assert.equal(defaultRouteInterface(join(dir, 'missing')), undefined);
});

it('the host address is a global IPv4 address, never loopback', () => {
  const a = hostAddress();
  if (a === undefined) return; // a machine with no network at all
  assert.match(a, /^\d+\.\d+\.\d+\.\d+$/);
  assert.ok(!a.startsWith('127.'));
});
