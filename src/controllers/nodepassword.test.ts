import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { isApiError } from '../api/errors.ts';
import { nodePasswordController } from './nodepassword.ts';
import { type ControllerTest, startControllerTest } from './testing.ts';

let t: ControllerTest;
before(async () => {
  t = await startControllerTest({ nodepassword: nodePasswordController });
});
after(() => t.close());

const secret = (node: string) => ({
  metadata: { name: `${node}.node-password.skiff`, namespace: 'kube-system' },
  type: 'skiff.io/node-password',
  data: { hash: Buffer.from('scrypt$x$y').toString('base64') },
});
const exists = (node: string) =>
  t.clients.secrets.get('kube-system', `${node}.node-password.skiff`).then(
    () => true,
    (err) => {
      if (isApiError(err, 'NotFound')) return false;
      throw err;
    },
  );

describe('nodepassword controller', () => {
  it("deletes a node's password Secret with the Node, and leaves other nodes' alone", async () => {
    for (const n of ['gone', 'stays']) {
      await t.clients.nodes.create(undefined, { metadata: { name: n } });
      await t.clients.secrets.create('kube-system', secret(n));
    }
    await t.clients.nodes.delete(undefined, 'gone');
    await t.until('the password of the deleted node removed', async () => !(await exists('gone')));
    assert.equal(await exists('stays'), true);
  });
});
