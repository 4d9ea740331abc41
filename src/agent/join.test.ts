import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { JoinError, joinCluster } from './join.ts';

const dataDir = mkdtempSync(join(tmpdir(), 'skiff-join-'));
after(() => rmSync(dataDir, { recursive: true, force: true }));

/** A port nothing listens on: bound, then closed. */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as { port: number };
  await new Promise((r) => srv.close(r));
  return port;
}

const token = `K10${'ab'.repeat(32)}::node:secret`;

describe('joinCluster', () => {
  it('calls a server it cannot reach unreachable, so the agent waits for it', async () => {
    const server = `https://127.0.0.1:${await closedPort()}`;
    const err = await joinCluster({ server, token, nodeName: 'n1', dataDir }).catch((e) => e);
    assert.ok(err instanceof JoinError, String(err));
    assert.equal(err.unreachable, true);
    assert.match(err.message, /^cannot reach https:\/\/127\.0\.0\.1:\d+: .*ECONNREFUSED/);
  });

  it('does not call a malformed server or token unreachable: nothing to wait for', async () => {
    const bad = await joinCluster({ server: 'http://x:6443', token, nodeName: 'n1', dataDir }).catch(
      (e) => e,
    );
    assert.ok(bad instanceof JoinError);
    assert.equal(bad.unreachable, false);
    const badToken = await joinCluster({
      server: 'https://127.0.0.1:1',
      token: 'nope',
      nodeName: 'n1',
      dataDir,
    }).catch((e) => e);
    assert.ok(badToken instanceof JoinError);
    assert.equal(badToken.unreachable, false);
  });
});
