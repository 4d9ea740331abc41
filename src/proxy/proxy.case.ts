// The one contract suite both proxy backends pass (nftables.netns.test.ts,
// iptables.netns.test.ts): a real API server with the EndpointSlice and
// servicelb controllers, the proxier core watching it, and the backend
// programming a network namespace of its own (lab.ts) with real pods
// (namespaces with a server) and an external client. Every assertion is a
// real connection through the kernel. Behaviour is upstream kube-proxy's
// (test/e2e/network/service.go covers the same ground on real clusters).

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Pod, Service } from '../api/types/core-v1.ts';
import type { EndpointSlice } from '../api/types/discovery-v1.ts';
import { endpointSliceController } from '../controllers/endpointslice.ts';
import { type ControllerTest, startControllerTest } from '../controllers/testing.ts';
import { createLog } from '../util/log.ts';
import type { ProxyBackend } from './backend.ts';
import {
  type ConnectResult,
  createLab,
  LAB_CLUSTER_CIDR,
  LAB_EXTERNAL_IP,
  LAB_NODE_IP,
  type Lab,
} from './lab.ts';
import { SERVICE_NAME_LABEL } from './model.ts';
import { createProxy, type ServiceProxy } from './proxy.ts';
import { serviceLBController } from './servicelb.ts';

export interface BackendUnderTest {
  backend: ProxyBackend;
  /** What the backend left in the namespace: empty after cleanup(). */
  leftovers(): Promise<string>;
}

const NODE = 'node-a';
const OTHER_NODE = 'node-b';
const NS = 'default';

export function proxyContract(name: string, make: (lab: Lab) => BackendUnderTest): void {
  describe(`proxy contract: ${name}`, () => {
    let lab: Lab;
    let t: ControllerTest;
    let proxy: ServiceProxy;
    let under: BackendUnderTest;

    before(async () => {
      lab = await createLab(2);
      t = await startControllerTest({
        endpointslice: endpointSliceController,
        servicelb: serviceLBController,
      });
      for (const [node, ip] of [
        [NODE, LAB_NODE_IP],
        [OTHER_NODE, '192.168.78.1'],
      ] as const) {
        await t.clients.nodes.create(undefined, { metadata: { name: node } });
        await t.clients.nodes.patch(
          undefined,
          node,
          'merge',
          {
            status: {
              addresses: [{ type: 'InternalIP', address: ip }],
              conditions: [{ type: 'Ready', status: 'True' }],
            },
          },
          { subresource: 'status' },
        );
      }
      under = make(lab);
      proxy = createProxy({
        clients: t.clients,
        backend: under.backend,
        nodeName: NODE,
        minSyncIntervalMs: 10,
        log: createLog({ component: 'proxy' }, (l) => {
          if (process.env.SKIFF_TEST_LOG) process.stderr.write(l);
        }),
      });
      await proxy.start();
    });
    after(async () => {
      await proxy?.stop();
      await t?.close();
      await lab?.destroy();
    });

    /** A Running, Ready pod at a lab pod's IP (the kubelet's part, written through the API). */
    const addPod = async (
      lab: Lab,
      podName: 'pod1' | 'pod2',
      labels: Record<string, string>,
      opts: { name?: string; node?: string; ready?: boolean } = {},
    ) => {
      const ip = lab.pods.find((p) => p.name === podName)!.ip;
      const name = opts.name ?? `${podName}-${Object.values(labels).join('-')}`;
      const pod: Pod = {
        metadata: { name, labels },
        spec: {
          nodeName: opts.node ?? NODE,
          containers: [
            {
              name: 'server',
              image: 'busybox',
              ports: [
                { name: 'http', containerPort: 9090, protocol: 'TCP' },
                { name: 'dns', containerPort: 5353, protocol: 'UDP' },
              ],
            },
          ],
        },
      };
      await t.clients.pods.create(NS, pod);
      await t.clients.pods.patch(
        NS,
        name,
        'merge',
        {
          status: {
            phase: 'Running',
            podIP: ip,
            podIPs: [{ ip }],
            conditions: [{ type: 'Ready', status: opts.ready === false ? 'False' : 'True' }],
          },
        },
        { subresource: 'status' },
      );
      return name;
    };
    const createService = async (name: string, spec: Service['spec']) =>
      t.clients.services.create(NS, { metadata: { name }, spec });
    /** Waits until the proxy programmed the Service with `n` endpoints on port `portName`. */
    const programmed = async (service: string, endpoints: number, portName = '') => {
      await t.until(
        `${service} programmed with ${endpoints} endpoints`,
        () => proxy.ports.get(`${NS}/${service}:${portName}`)?.endpoints.length === endpoints,
      );
      await proxy.flushed();
      return proxy.ports.get(`${NS}/${service}:${portName}`)!;
    };
    const replies = (rs: ConnectResult[]) => rs.map((r) => r.reply ?? `error ${r.error}`);
    const servers = (rs: ConnectResult[]) =>
      new Set(rs.map((r) => r.reply?.split(' ')[0] ?? `error ${r.error}`));
    const pod = (n: 1 | 2) => lab.pods[n - 1]!;

    it('ClusterIP balances at random across ready endpoints, from a pod and from the node', async () => {
      await addPod(lab, 'pod1', { app: 'web' });
      await addPod(lab, 'pod2', { app: 'web' });
      const svc = await createService('web', {
        selector: { app: 'web' },
        ports: [{ port: 80, targetPort: 8080 }],
      });
      const sp = await programmed('web', 2);
      const ip = svc.spec!.clusterIP!;
      assert.equal(sp.clusterIP, ip);
      const fromPod = await lab.connect(pod(1).netns, 'tcp', ip, 80, 24);
      assert.deepEqual(servers(fromPod), new Set(['pod1:8080', 'pod2:8080']), replies(fromPod).join('\n'));
      // Pod to pod keeps the client's own address (no masquerade inside the cluster).
      assert.ok(
        fromPod.every((r) => r.reply!.endsWith(` ${pod(1).ip}`) || r.reply!.startsWith('pod1')),
        replies(fromPod).join('\n'),
      );
      const fromNode = await lab.connect(lab.node, 'tcp', ip, 80, 24);
      assert.deepEqual(servers(fromNode), new Set(['pod1:8080', 'pod2:8080']), replies(fromNode).join('\n'));
    });

    it('a not-ready endpoint gets no traffic', async () => {
      await addPod(lab, 'pod1', { app: 'half' });
      await addPod(lab, 'pod2', { app: 'half' }, { ready: false });
      const svc = await createService('half', {
        selector: { app: 'half' },
        ports: [{ port: 80, targetPort: 8080 }],
      });
      await programmed('half', 1);
      const rs = await lab.connect(lab.node, 'tcp', svc.spec!.clusterIP!, 80, 10);
      assert.deepEqual(servers(rs), new Set(['pod1:8080']));
    });

    it('a named targetPort reaches the port the pod names', async () => {
      await addPod(lab, 'pod2', { app: 'named' });
      const svc = await createService('named', {
        selector: { app: 'named' },
        ports: [{ name: 'web', port: 81, targetPort: 'http' }],
      });
      await programmed('named', 1, 'web');
      const rs = await lab.connect(pod(1).netns, 'tcp', svc.spec!.clusterIP!, 81);
      assert.equal(rs[0]!.reply?.split(' ')[0], 'pod2:9090', replies(rs).join());
    });

    it('UDP', async () => {
      await addPod(lab, 'pod1', { app: 'udp' });
      const svc = await createService('udp', {
        selector: { app: 'udp' },
        ports: [{ name: 'dns', protocol: 'UDP', port: 53, targetPort: 'dns' }],
      });
      await programmed('udp', 1, 'dns');
      const rs = await lab.connect(pod(2).netns, 'udp', svc.spec!.clusterIP!, 53);
      assert.equal(rs[0]!.reply, `pod1:5353 ${pod(2).ip}`);
    });

    it('a Service without endpoints rejects at once (TCP and UDP), and so do unallocated service IPs', async () => {
      const svc = await createService('empty', {
        selector: { app: 'nobody' },
        ports: [
          { name: 'tcp', port: 80 },
          { name: 'udp', port: 53, protocol: 'UDP' },
        ],
      });
      await programmed('empty', 0, 'tcp');
      await programmed('empty', 0, 'udp');
      const ip = svc.spec!.clusterIP!;
      for (const from of [lab.node, pod(1).netns]) {
        const [tcp] = await lab.connect(from, 'tcp', ip, 80, 1, 5000);
        assert.equal(tcp!.error, 'ECONNREFUSED', `tcp from ${from}: ${JSON.stringify(tcp)}`);
        assert.ok(tcp!.ms < 1000, `refused within a second, took ${tcp!.ms} ms`);
        // UDP gets ICMP port unreachable. (From the node itself the kernel
        // sends it too, but it never reaches a socket whose datagram was
        // rejected in the output hook; pods are the clients that matter.)
        if (from !== lab.node) {
          const [udp] = await lab.connect(from, 'udp', ip, 53, 1, 5000);
          assert.equal(udp!.error, 'ECONNREFUSED', `udp from ${from}: ${JSON.stringify(udp)}`);
        }
        // A port the Service does not have, and an address no Service holds.
        const [otherPort] = await lab.connect(from, 'tcp', ip, 81, 1, 5000);
        assert.ok(otherPort!.error && otherPort!.ms < 1000, `other port: ${JSON.stringify(otherPort)}`);
        const [unallocated] = await lab.connect(from, 'tcp', '10.43.255.254', 80, 1, 5000);
        assert.ok(
          unallocated!.error && unallocated!.error !== 'TIMEOUT',
          `unallocated: ${JSON.stringify(unallocated)}`,
        );
      }
    });

    it('NodePort answers on the node address and on localhost, from outside, the node and pods', async () => {
      await addPod(lab, 'pod1', { app: 'np' });
      await addPod(lab, 'pod2', { app: 'np' });
      const svc = await createService('np', {
        type: 'NodePort',
        selector: { app: 'np' },
        ports: [{ port: 80, targetPort: 8080 }],
      });
      await programmed('np', 2);
      const nodePort = svc.spec!.ports![0]!.nodePort!;
      assert.ok(nodePort >= 30000);
      const ext = await lab.connect(lab.ext, 'tcp', LAB_NODE_IP, nodePort, 12);
      assert.deepEqual(servers(ext), new Set(['pod1:8080', 'pod2:8080']), replies(ext).join('\n'));
      // Cluster policy masquerades external clients, so replies come back through the node.
      assert.ok(
        ext.every((r) => r.reply!.endsWith(' 10.99.0.1')),
        replies(ext).join('\n'),
      );
      for (const [from, addr] of [
        [lab.node, '127.0.0.1'],
        [lab.node, LAB_NODE_IP],
        [pod(1).netns, LAB_NODE_IP],
      ] as const) {
        const rs = await lab.connect(from, 'tcp', addr, nodePort, 4);
        assert.ok(
          rs.every((r) => r.reply?.includes(':8080')),
          `${from} -> ${addr}:${nodePort}: ${replies(rs)}`,
        );
      }
    });

    it('externalTrafficPolicy Local: local endpoints only, client IP kept; none local drops outside traffic only', async () => {
      await addPod(lab, 'pod1', { app: 'local' }, { node: NODE });
      await addPod(lab, 'pod2', { app: 'local' }, { node: OTHER_NODE });
      const svc = await createService('local', {
        type: 'NodePort',
        externalTrafficPolicy: 'Local',
        selector: { app: 'local' },
        ports: [{ port: 80, targetPort: 8080 }],
      });
      await programmed('local', 2);
      const nodePort = svc.spec!.ports![0]!.nodePort!;
      const ext = await lab.connect(lab.ext, 'tcp', LAB_NODE_IP, nodePort, 10);
      assert.deepEqual(new Set(replies(ext)), new Set([`pod1:8080 ${LAB_EXTERNAL_IP}`]));

      // Only a remote endpoint left: outside clients are dropped, pods still get through.
      await t.clients.pods.delete(NS, 'pod1-local');
      await programmed('local', 1);
      const [dropped] = await lab.connect(lab.ext, 'tcp', LAB_NODE_IP, nodePort, 1, 1500);
      assert.equal(dropped!.error, 'TIMEOUT', JSON.stringify(dropped));
      const fromPod = await lab.connect(pod(1).netns, 'tcp', LAB_NODE_IP, nodePort, 3);
      assert.deepEqual(servers(fromPod), new Set(['pod2:8080']), replies(fromPod).join());
    });

    it('internalTrafficPolicy Local: the cluster IP uses this node’s endpoints only', async () => {
      await addPod(lab, 'pod1', { app: 'itp' }, { node: OTHER_NODE });
      await addPod(lab, 'pod2', { app: 'itp' }, { node: NODE });
      const svc = await createService('itp', {
        internalTrafficPolicy: 'Local',
        selector: { app: 'itp' },
        ports: [{ port: 80, targetPort: 8080 }],
      });
      await programmed('itp', 2);
      const rs = await lab.connect(pod(1).netns, 'tcp', svc.spec!.clusterIP!, 80, 10);
      assert.deepEqual(servers(rs), new Set(['pod2:8080']));
    });

    it('LoadBalancer: ingress gets the node addresses, and the port answers on them', async () => {
      await addPod(lab, 'pod1', { app: 'lb' });
      await createService('lb', {
        type: 'LoadBalancer',
        selector: { app: 'lb' },
        ports: [{ port: 8000, targetPort: 8080 }],
      });
      const ingress = await t.until('load balancer ingress', async () => {
        const s = await t.clients.services.get(NS, 'lb');
        return s.status?.loadBalancer?.ingress?.length ? s.status.loadBalancer.ingress : undefined;
      });
      assert.deepEqual(
        ingress.map((i) => i.ip),
        [LAB_NODE_IP, '192.168.78.1'],
      );
      await t.until('proxy has the LB IPs', () => proxy.ports.get(`${NS}/lb:`)?.loadBalancerIPs.length === 2);
      await proxy.flushed();
      const rs = await lab.connect(lab.ext, 'tcp', LAB_NODE_IP, 8000, 3);
      assert.deepEqual(servers(rs), new Set(['pod1:8080']), replies(rs).join());
      const fromPod = await lab.connect(pod(2).netns, 'tcp', LAB_NODE_IP, 8000);
      assert.equal(fromPod[0]!.reply?.split(' ')[0], 'pod1:8080');
    });

    it('sessionAffinity ClientIP keeps a client on one endpoint', async () => {
      await addPod(lab, 'pod1', { app: 'sticky' });
      await addPod(lab, 'pod2', { app: 'sticky' });
      const svc = await createService('sticky', {
        selector: { app: 'sticky' },
        sessionAffinity: 'ClientIP',
        sessionAffinityConfig: { clientIP: { timeoutSeconds: 60 } },
        ports: [{ port: 80, targetPort: 8080 }],
      });
      await programmed('sticky', 2);
      for (const from of [lab.node, pod(1).netns]) {
        const rs = await lab.connect(from, 'tcp', svc.spec!.clusterIP!, 80, 12);
        assert.equal(servers(rs).size, 1, `${from}: ${replies(rs).join('\n')}`);
      }
    });

    it('hairpin: a pod reaches itself through its own Service', async () => {
      await addPod(lab, 'pod1', { app: 'hairpin' });
      const svc = await createService('hairpin', {
        selector: { app: 'hairpin' },
        ports: [{ port: 80, targetPort: 8080 }],
      });
      await programmed('hairpin', 1);
      const [r] = await lab.connect(pod(1).netns, 'tcp', svc.spec!.clusterIP!, 80);
      // Masqueraded to the node (the bridge address), or the reply would skip the DNAT.
      assert.equal(r!.reply, 'pod1:8080 10.99.0.1', JSON.stringify(r));
    });

    it('a Service without a selector uses the EndpointSlices someone wrote by hand', async () => {
      const svc = await createService('manual', { ports: [{ name: 'http', port: 80 }] });
      const slice: EndpointSlice = {
        metadata: { name: 'manual-1', labels: { [SERVICE_NAME_LABEL]: 'manual' } },
        addressType: 'IPv4',
        ports: [{ name: 'http', port: 9090, protocol: 'TCP' }],
        endpoints: [{ addresses: [pod(2).ip], conditions: { ready: true } }],
      };
      await t.clients.endpointSlices.create(NS, slice);
      await programmed('manual', 1, 'http');
      const [r] = await lab.connect(lab.node, 'tcp', svc.spec!.clusterIP!, 80);
      assert.equal(r!.reply?.split(' ')[0], 'pod2:9090');
    });

    it('a headless Service gets no rules', async () => {
      await addPod(lab, 'pod1', { app: 'headless' });
      await createService('headless', {
        clusterIP: 'None',
        selector: { app: 'headless' },
        ports: [{ port: 80, targetPort: 8080 }],
      });
      await t.until('its slice exists', async () => {
        const l = await t.clients.endpointSlices.list(NS, {
          labelSelector: `${SERVICE_NAME_LABEL}=headless`,
        });
        return l.items?.length;
      });
      await proxy.flushed();
      assert.equal(proxy.ports.get(`${NS}/headless:`), undefined);
    });

    it('updates are incremental: an endpoint change is a partial sync, and traffic follows it', async () => {
      await addPod(lab, 'pod1', { app: 'move' }, { name: 'move-a' });
      const svc = await createService('move', {
        selector: { app: 'move' },
        ports: [{ port: 80, targetPort: 8080 }],
      });
      await programmed('move', 1);
      const full = proxy.syncs.full;
      const partial = proxy.syncs.partial;
      await t.clients.pods.delete(NS, 'move-a');
      await addPod(lab, 'pod2', { app: 'move' }, { name: 'move-b' });
      await t.until('moved to pod2', () => proxy.ports.get(`${NS}/move:`)?.endpoints[0]?.ip === pod(2).ip);
      await proxy.flushed();
      const rs = await lab.connect(lab.node, 'tcp', svc.spec!.clusterIP!, 80, 5);
      assert.deepEqual(servers(rs), new Set(['pod2:8080']));
      assert.equal(proxy.syncs.full, full, 'no full resync');
      assert.ok(proxy.syncs.partial > partial);

      // And a deleted Service goes away: its cluster IP rejects like any unallocated one.
      await t.clients.services.delete(NS, 'move');
      await t.until('move removed', () => !proxy.ports.has(`${NS}/move:`));
      await proxy.flushed();
      const [gone] = await lab.connect(lab.node, 'tcp', svc.spec!.clusterIP!, 80, 1, 3000);
      assert.ok(gone!.error && gone!.error !== 'TIMEOUT', JSON.stringify(gone));
      assert.equal(proxy.syncs.full, full, 'still no full resync');
      assert.equal(proxy.syncs.failed, 0, 'no sync failed');
    });

    it('masquerades traffic from outside the cluster CIDR to a cluster IP', async () => {
      await addPod(lab, 'pod2', { app: 'masq' });
      const svc = await createService('masq', {
        selector: { app: 'masq' },
        ports: [{ port: 80, targetPort: 8080 }],
      });
      await programmed('masq', 1);
      // The external namespace routes the service CIDR through the node.
      const [r] = await lab.connect(lab.ext, 'tcp', svc.spec!.clusterIP!, 80);
      assert.equal(
        r!.reply,
        'pod2:8080 10.99.0.1',
        `${JSON.stringify(r)} (cluster CIDR ${LAB_CLUSTER_CIDR})`,
      );
    });

    it('cleanup removes everything the backend added', async () => {
      assert.equal(proxy.syncs.failed, 0, 'no sync failed in the whole suite');
      await proxy.stop();
      await under.backend.cleanup();
      assert.equal((await under.leftovers()).trim(), '');
      const routes = await lab.exec('ip', ['route', 'show', '10.43.0.0/16']);
      assert.equal(routes.trim(), '');
    });
  });
}
