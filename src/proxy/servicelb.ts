// Skiff's load balancer for Services of type LoadBalancer, after k3s's
// servicelb (k3s-io/k3s pkg/cloudprovider/servicelb.go): there is no cloud,
// so every node is the load balancer. This controller writes the nodes'
// addresses into status.loadBalancer.ingress (ExternalIP when a node has one,
// else InternalIP, as k3s); each node's proxy then opens the Service port on
// those addresses (the proxy handles load balancer IPs like external IPs),
// so `<any node IP>:<port>` reaches the Service. k3s runs a DaemonSet of
// klipper-lb pods to forward the port; Skiff's proxy does it in the kernel.
//
// A Service with spec.loadBalancerClass belongs to another implementation
// and is left alone (upstream's contract for loadBalancerClass). A Service
// that stops being a LoadBalancer has the ingress it was given removed, as
// upstream's service controller does.

import type { Node, Service } from '../api/types/core-v1.ts';
import type { ControllerFactory } from '../controllers/context.ts';
import { queueController } from '../controllers/controller.ts';

export const serviceLBController: ControllerFactory = (ctx) => {
  const services = ctx.informers.informer('services');
  const nodes = ctx.informers.informer('nodes');

  /** The addresses of the Ready nodes, one per node, sorted. */
  const nodeIngress = (): { ip: string; ipMode: string }[] => {
    const ips = new Set<string>();
    for (const node of nodes.indexer.list() as Node[]) {
      const ready = node.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
      if (!ready || node.metadata.deletionTimestamp) continue;
      const addrs = node.status?.addresses ?? [];
      const ip =
        addrs.find((a) => a.type === 'ExternalIP')?.address ??
        addrs.find((a) => a.type === 'InternalIP')?.address;
      if (ip && /^\d+\.\d+\.\d+\.\d+$/.test(ip)) ips.add(ip);
    }
    return [...ips].sort().map((ip) => ({ ip, ipMode: 'VIP' }));
  };

  const c = queueController(ctx, {
    name: 'servicelb',
    workers: 1,
    async sync(key) {
      const svc = services.indexer.get(key) as Service | undefined;
      if (!svc || svc.spec?.loadBalancerClass) return;
      const have = svc.status?.loadBalancer?.ingress ?? [];
      const want = svc.spec?.type === 'LoadBalancer' ? nodeIngress() : [];
      if (
        JSON.stringify(have.map((i) => [i.ip, i.ipMode])) ===
        JSON.stringify(want.map((i) => [i.ip, i.ipMode]))
      )
        return;
      // A merge patch replaces the list whole; null removes it.
      await ctx.clients.services.patch(
        svc.metadata.namespace ?? '',
        svc.metadata.name ?? '',
        'merge',
        { status: { loadBalancer: { ingress: want.length ? want : null } } },
        { subresource: 'status' },
      );
    },
  });

  const enqueue = (s: Service) => c.queue.add(`${s.metadata.namespace}/${s.metadata.name}`);
  services.on({
    add: enqueue,
    update: (old, s) => {
      if (old.spec?.type === 'LoadBalancer' || s.spec?.type === 'LoadBalancer') enqueue(s);
    },
  });
  // A node joining, leaving or changing its addresses moves every LoadBalancer's ingress.
  const allLoadBalancers = () => {
    for (const s of services.indexer.list() as Service[]) if (s.spec?.type === 'LoadBalancer') enqueue(s);
  };
  nodes.on({
    add: allLoadBalancers,
    update: (old, n) => {
      const sig = (x: Node) =>
        JSON.stringify([x.status?.addresses, x.status?.conditions?.find((c) => c.type === 'Ready')?.status]);
      if (sig(old) !== sig(n)) allLoadBalancers();
    },
    delete: allLoadBalancers,
  });
  return c;
};
