// The Node IPAM controller with upstream's range allocator
// (pkg/controller/nodeipam/ipam/range_allocator.go and cidrset): every node
// gets one podCIDR carved from the cluster CIDR (--cluster-cidr, split into
// blocks of --node-cidr-mask-size), written to spec.podCIDR and spec.podCIDRs.
//
// - A podCIDR is set once and never changed: a node that already has one
//   (given by its kubelet, or by us before a restart) only marks it as used.
// - Before any node is synced, the podCIDRs of every existing node are marked
//   as used, so a restarted controller never hands out a block twice.
// - When a node is deleted its block is released and may go to a new node.
// - When the range is exhausted the node gets a CIDRNotAvailable event and is
//   retried; releasing a block retries the nodes still waiting for one.
//
// IPv4 only for now; dual-stack (two CIDRs in --cluster-cidr) is not done.

import type { Node } from '../api/types/core-v1.ts';
import type { ControllerFactory } from './context.ts';
import { queueController } from './controller.ts';

/** An IPv4 CIDR split into equal blocks (upstream's cidrset.CidrSet). */
export interface CidrSet {
  /** How many blocks the range holds. */
  readonly size: number;
  /** The next free block, marked used, or undefined when every block is taken. */
  allocateNext(): string | undefined;
  /** Marks `cidr` used; false if it is not one of this set's blocks. */
  occupy(cidr: string): boolean;
  release(cidr: string): void;
  /** Blocks in use. */
  readonly used: number;
}

function parseIPv4(ip: string): number | undefined {
  const parts = ip.split('.');
  if (parts.length !== 4) return undefined;
  let n = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return undefined;
    n = n * 256 + Number(p);
  }
  return n;
}

const formatIPv4 = (n: number) => [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join('.');

/** base address and prefix length of an IPv4 CIDR, the address masked to the prefix. */
export function parseCIDR(cidr: string): { base: number; prefix: number } | undefined {
  const [ip, bits, extra] = cidr.trim().split('/');
  if (ip === undefined || bits === undefined || extra !== undefined || !/^\d{1,2}$/.test(bits))
    return undefined;
  const addr = parseIPv4(ip);
  const prefix = Number(bits);
  if (addr === undefined || prefix > 32) return undefined;
  const blockSize = 2 ** (32 - prefix);
  return { base: addr - (addr % blockSize), prefix };
}

export function newCidrSet(clusterCIDR: string, nodeMaskSize: number): CidrSet {
  const cluster = parseCIDR(clusterCIDR);
  if (!cluster) throw new Error(`cluster CIDR ${clusterCIDR} is not an IPv4 CIDR`);
  if (nodeMaskSize < cluster.prefix || nodeMaskSize > 32) {
    throw new Error(`node CIDR mask size ${nodeMaskSize} does not fit in cluster CIDR ${clusterCIDR}`);
  }
  // Upstream refuses more than 2^16 blocks; so do we (a bitmap per block).
  if (nodeMaskSize - cluster.prefix > 16) {
    throw new Error(`node CIDR mask size ${nodeMaskSize} makes too many blocks of ${clusterCIDR}`);
  }
  const size = 2 ** (nodeMaskSize - cluster.prefix);
  const blockSize = 2 ** (32 - nodeMaskSize);
  const taken = new Uint8Array(size);
  let used = 0;
  // As upstream, allocation goes round the range from after the last block
  // handed out, so a just-released block is not reused at once.
  let nextCandidate = 0;

  const indexOf = (cidr: string): number | undefined => {
    const c = parseCIDR(cidr);
    if (!c || c.prefix !== nodeMaskSize) return undefined;
    const offset = c.base - cluster.base;
    if (offset < 0 || offset >= size * blockSize) return undefined;
    return offset / blockSize;
  };

  return {
    size,
    get used() {
      return used;
    },
    allocateNext() {
      for (let i = 0; i < size; i++) {
        const candidate = (nextCandidate + i) % size;
        if (taken[candidate]) continue;
        taken[candidate] = 1;
        used++;
        nextCandidate = (candidate + 1) % size;
        return `${formatIPv4(cluster.base + candidate * blockSize)}/${nodeMaskSize}`;
      }
      return undefined;
    },
    occupy(cidr) {
      const i = indexOf(cidr);
      if (i === undefined) return false;
      if (!taken[i]) used++;
      taken[i] = 1;
      return true;
    },
    release(cidr) {
      const i = indexOf(cidr);
      if (i === undefined || !taken[i]) return;
      taken[i] = 0;
      used--;
    },
  };
}

const podCIDRsOf = (node: Node): string[] =>
  node.spec?.podCIDRs?.length ? node.spec.podCIDRs : node.spec?.podCIDR ? [node.spec.podCIDR] : [];

export const nodeIpamController: ControllerFactory = (ctx) => {
  const nodes = ctx.informers.informer('nodes');
  const recorder = ctx.recorder('cidrAllocator');
  const log = ctx.log.with({ controller: 'nodeipam' });
  const cidrs = newCidrSet(ctx.options.clusterCIDR, ctx.options.nodeCIDRMaskSize);
  // node name → the block it holds, so a deleted node's block can be released
  // after it has left the cache.
  const allocated = new Map<string, string>();

  const occupyExisting = (node: Node) => {
    const name = node.metadata.name ?? '';
    // Dual-stack nodes list one CIDR per family; ours is the IPv4 one.
    const cidr = podCIDRsOf(node).find((c) => parseCIDR(c));
    const mine = allocated.get(name);
    if (!cidr || mine === cidr) return;
    // Someone else set the node's podCIDR before our write landed: theirs
    // stands, and the block we had picked goes back.
    if (mine) cidrs.release(mine);
    allocated.delete(name);
    if (cidrs.occupy(cidr)) allocated.set(name, cidr);
    else log.warn('node podCIDR is outside the cluster CIDR', { node: name, podCIDR: cidr });
  };

  const c = queueController(ctx, {
    name: 'nodeipam',
    // One worker: allocation must see every earlier allocation.
    workers: 1,
    async sync(name) {
      const node = nodes.indexer.get(name);
      if (!node) {
        const cidr = allocated.get(name);
        if (cidr) {
          cidrs.release(cidr);
          allocated.delete(name);
          log('released podCIDR of deleted node', { node: name, podCIDR: cidr });
          // Nodes that found the range full may now get this block.
          for (const n of nodes.indexer.list())
            if (podCIDRsOf(n).length === 0) c.queue.add(n.metadata.name ?? '');
        }
        return;
      }
      if (podCIDRsOf(node).length > 0) {
        occupyExisting(node);
        return;
      }
      // An allocation made for this node whose write the cache has not shown
      // yet: write that block again rather than take a second one.
      let cidr = allocated.get(name);
      if (!cidr) {
        cidr = cidrs.allocateNext();
        if (!cidr) {
          recorder.event(node, 'Normal', 'CIDRNotAvailable', `Node ${name} status is now: CIDRNotAvailable`);
          throw new Error(`no podCIDR left in ${ctx.options.clusterCIDR} for node ${name}`);
        }
        allocated.set(name, cidr);
      }
      try {
        // spec.podCIDR(s) are write-once; the API refuses a change, so a
        // merge patch cannot overwrite a podCIDR another writer set first.
        await ctx.clients.nodes.patch(undefined, name, 'merge', {
          metadata: { resourceVersion: node.metadata.resourceVersion },
          spec: { podCIDR: cidr, podCIDRs: [cidr] },
        });
        log('allocated podCIDR', { node: name, podCIDR: cidr });
      } catch (err) {
        // Released if the node is gone (NotFound); kept for the retry if our
        // cache was behind (Conflict): the next sync sees the truth.
        if (!nodes.indexer.get(name)) {
          cidrs.release(cidr);
          allocated.delete(name);
        }
        throw err;
      }
    },
    onRun() {
      // Runs before the first sync: every block already given out is known
      // before anything new is handed out (upstream occupies them when the
      // allocator is built).
      for (const node of nodes.indexer.list()) occupyExisting(node);
    },
  });

  nodes.on({
    add: (node) => c.queue.add(node.metadata.name ?? ''),
    update: (_old, node) => c.queue.add(node.metadata.name ?? ''),
    delete: (node) => c.queue.add(node.metadata.name ?? ''),
  });
  return c;
};
