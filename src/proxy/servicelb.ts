// Skiff's load balancer for Services of type LoadBalancer, after k3s's
// servicelb (k3s-io/k3s pkg/cloudprovider/servicelb.go): there is no cloud,
// so every node is the load balancer. This controller writes the nodes'
// addresses into status.loadBalancer.ingress (ExternalIP when a node has one,
// else InternalIP, as k3s); each node's proxy then opens the Service port on
// those addresses (the proxy handles load balancer IPs like external IPs),
// so `<any node IP>:<port>` reaches the Service. k3s runs a DaemonSet of
// klipper-lb pods to forward the port; Skiff's proxy does it in the kernel.
//
// Every node being the load balancer, two LoadBalancer Services cannot have
// the same port: the older one (by creation, then namespace/name) keeps it,
// and the newer stays Pending, with no ingress and a Warning event, until
// the port is free. (k3s's klipper-lb pods for it stay Pending, for want of
// the host port.) Without this, both would claim <node IP>:<port>.
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

  const recorder = ctx.recorder('service-lb-controller');
  const ours = (s: Service) => s.spec?.type === 'LoadBalancer' && !s.spec.loadBalancerClass;
  const ports = (s: Service) => (s.spec?.ports ?? []).map((p) => `${p.protocol ?? 'TCP'}/${p.port}`);
  const order = (s: Service) =>
    `${s.metadata.creationTimestamp ?? ''} ${s.metadata.namespace ?? ''}/${s.metadata.name ?? ''}`;
  /** The older LoadBalancer Service holding one of svc's ports, and which port. */
  const portHolder = (svc: Service): [Service, string] | undefined => {
    const mine = new Set(ports(svc));
    let holder: [Service, string] | undefined;
    for (const other of services.indexer.list() as Service[]) {
      if (other === svc || !ours(other) || other.metadata.uid === svc.metadata.uid) continue;
      if (order(other) >= order(svc)) continue;
      const shared = ports(other).find((p) => mine.has(p));
      if (shared && (!holder || order(other) < order(holder[0]))) holder = [other, shared];
    }
    return holder;
  };

  const c = queueController(ctx, {
    name: 'servicelb',
    workers: 1,
    async sync(key) {
      const svc = services.indexer.get(key) as Service | undefined;
      if (!svc || svc.spec?.loadBalancerClass) return;
      const have = svc.status?.loadBalancer?.ingress ?? [];
      const holder = ours(svc) ? portHolder(svc) : undefined;
      const want = ours(svc) && !holder ? nodeIngress() : [];
      if (holder)
        recorder.event(
          svc,
          'Warning',
          'PortInUse',
          `port ${holder[1]} is the load balancer port of Service ${holder[0].metadata.namespace}/${holder[0].metadata.name} on every node; this Service stays pending until it is free`,
        );
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
  // A node joining, leaving or changing its addresses moves every LoadBalancer's
  // ingress; a LoadBalancer Service coming, going or changing its ports may free
  // or take a port another one waits for.
  const allLoadBalancers = () => {
    for (const s of services.indexer.list() as Service[]) if (s.spec?.type === 'LoadBalancer') enqueue(s);
  };
  services.on({
    add: (s) => (ours(s) ? allLoadBalancers() : undefined),
    update: (old, s) => {
      if (old.spec?.type === 'LoadBalancer' || s.spec?.type === 'LoadBalancer') {
        enqueue(s);
        if (JSON.stringify(ports(old)) !== JSON.stringify(ports(s)) || ours(old) !== ours(s))
          allLoadBalancers();
      }
    },
    delete: (s) => (ours(s) ? allLoadBalancers() : undefined),
  });
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
