// Node passwords go with their Node, as k3s's do: when a Node is deleted, the
// Secret kube-system/<node>.node-password.skiff that holds its join password
// (src/server/node-token.ts) is deleted too, so a reinstalled machine can join
// again under its old name once its old Node is gone.

import { isApiError } from '../api/errors.ts';
import type { ControllerFactory } from './context.ts';
import { queueController } from './controller.ts';

const NAMESPACE = 'kube-system';
const secretName = (node: string) => `${node}.node-password.skiff`;

export const nodePasswordController: ControllerFactory = (ctx) => {
  const nodes = ctx.informers.informer('nodes');
  const c = queueController(ctx, {
    name: 'nodepassword',
    workers: 1,
    async sync(node) {
      // A Node of that name exists again (re-registered): its password stays.
      if (nodes.indexer.get(node)) return;
      try {
        await ctx.clients.secrets.delete(NAMESPACE, secretName(node));
        ctx.log('deleted node password', { node });
      } catch (err) {
        if (!isApiError(err, 'NotFound')) throw err;
      }
    },
  });
  nodes.on({ delete: (node) => c.queue.add(node.metadata.name ?? '') });
  return c;
};
