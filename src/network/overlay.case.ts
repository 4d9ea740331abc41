// The one contract suite both overlay backends pass (vxlan.netns.test.ts,
// host-gw.netns.test.ts): three "hosts" (network namespaces on one bridge,
// lab.ts), each with a pod, and on each the overlay controller, the
// backend under test and the masquerade table, all against a real API
// server. Every assertion is a real connection through the kernel, or the
// kernel's own tables. Behaviour is flannel's and the Kubernetes network
// model's: every pod reaches every pod without NAT; off-cluster traffic is
// masqueraded; nothing for the cluster's ranges leaves by the default route.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type ControllerTest, startControllerTest } from '../controllers/testing.ts';
import { createOverlayLab, LAB_CLUSTER_CIDR, LAB_EXT_IP, type LabHost, type OverlayLab } from './lab.ts';
import { type Masquerade, masquerade } from './masquerade.ts';
import {
  BACKEND_DATA_ANNOTATION,
  BACKEND_TYPE_ANNOTATION,
  type OverlayBackend,
  type OverlayController,
  PUBLIC_IP_ANNOTATION,
  startOverlayController,
  VXLAN_VNI,
} from './overlay.ts';
import { createNetworkProber, PROBE_ANNOTATION, type ProbeReport } from './probe.ts';

export interface BackendUnderTest {
  backend: OverlayBackend;
  /** What the backend left in its host's namespace: empty after close(). */
  leftovers(): Promise<string>;
  /** Its kernel entries for a peer (routes, neighbours, FDB), as text; empty when none. */
  entriesFor(peer: LabHost): Promise<string>;
}

interface Running {
  host: LabHost;
  under: BackendUnderTest;
  masq: Masquerade;
  controller: OverlayController;
}

/** A Node as the node IPAM controller and the kubelet leave it: a podCIDR, an InternalIP, Ready. */
async function registerNode(t: ControllerTest, name: string, podCIDR: string, ip: string, annotations = {}) {
  await t.clients.nodes.create(undefined, { metadata: { name, annotations }, spec: { podCIDR } });
  await t.clients.nodes.patch(
    undefined,
    name,
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

export function overlayContract(name: 'vxlan' | 'host-gw', make: (host: LabHost) => BackendUnderTest): void {
  describe(`overlay contract: ${name}`, () => {
    let lab: OverlayLab;
    let t: ControllerTest;
    const running: Running[] = [];

    before(async () => {
      lab = await createOverlayLab({ hosts: 3 });
      t = await startControllerTest({});
      for (const h of lab.hosts) await registerNode(t, h.name, h.podCIDR, h.ip);
      for (const host of lab.hosts) {
        const under = make(host);
        const masq = masquerade({ exec: host.exec, clusterCIDR: LAB_CLUSTER_CIDR });
        await masq.ensure();
        const controller = startOverlayController({
          clients: t.clients,
          nodeName: host.name,
          backend: under.backend,
          podCIDR: async () => host.podCIDR,
          publicIP: host.ip,
        });
        running.push({ host, under, masq, controller });
        await controller.ready;
        await lab.setPodMTU(host, under.backend.mtu());
      }
      await t.until('every host has its two peers', () =>
        running.every((r) => r.controller.peers().length === 2),
      );
    });

    after(async () => {
      for (const r of running) {
        await r.controller.stop();
        await r.under.backend.close();
        await r.masq.remove();
      }
      await lab?.destroy();
      await t?.close();
    });

    const host = (i: number) => () => lab.hosts[i]!;
    const [h1, h2, h3] = [host(0), host(1), host(2)];
    const pod = (h: LabHost) => h.pods[0]!;

    it('publishes its backend, backend data and public IP on its own Node', async () => {
      for (const h of lab.hosts) {
        const a = (await t.clients.nodes.get(undefined, h.name)).metadata.annotations ?? {};
        assert.equal(a[BACKEND_TYPE_ANNOTATION], name);
        assert.equal(a[PUBLIC_IP_ANNOTATION], h.ip);
        const data = JSON.parse(a[BACKEND_DATA_ANNOTATION] ?? '');
        if (name === 'vxlan') {
          assert.equal(data.VNI, VXLAN_VNI);
          assert.match(data.VtepMAC, /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
        } else assert.equal(data, null);
      }
    });

    it('pod to pod across hosts, and the receiver sees the client pod’s own IP', async () => {
      for (const [from, to] of [
        [h1(), h2()],
        [h2(), h3()],
        [h3(), h1()],
      ] as const) {
        const r = await lab.connect(pod(from).netns, pod(to).ip);
        assert.equal(r.reply, `${pod(to).name} ${pod(from).ip}`, `${pod(from).name} → ${pod(to).name}`);
      }
    });

    it('a host reaches the pods of another host', async () => {
      const r = await lab.connect(h1().netns, pod(h2()).ip);
      assert.ok(r.reply?.startsWith(`${pod(h2()).name} `), JSON.stringify(r));
    });

    it('masquerades pod traffic to an off-cluster address to the node’s address', async () => {
      const r = await lab.connect(pod(h1()).netns, LAB_EXT_IP);
      assert.equal(r.reply, `ext ${h1().ip}`);
    });

    it('an unrouted cluster or service IP fails on the node, never by the default route', async () => {
      for (const ip of ['10.98.200.5', '10.97.0.9']) {
        const r = await lab.connect(pod(h1()).netns, ip);
        assert.equal(r.error, 'EHOSTUNREACH', `${ip}: ${JSON.stringify(r)}`);
      }
    });

    it('probes its peers over the overlay and publishes NetworkUnavailable and the report', async () => {
      const r1 = running[0]!;
      const prober = createNetworkProber({
        clients: t.clients,
        nodeName: h1().name,
        backend: r1.under.backend,
        peers: r1.controller.peers,
        nodeOf: r1.controller.node,
        exec: h1().exec,
      });
      const report = await prober.probe();
      assert.deepEqual(Object.keys(report.peers).sort(), [h2().name, h3().name]);
      assert.ok(
        Object.values(report.peers).every((p) => p.reachable),
        JSON.stringify(report),
      );
      const node = await t.clients.nodes.get(undefined, h1().name);
      const cond = node.status?.conditions?.find((c) => c.type === 'NetworkUnavailable');
      assert.equal(cond?.status, 'False');
      assert.equal(cond?.reason, 'OverlayPeersReachable');
      assert.ok(
        node.status?.conditions?.some((c) => c.type === 'Ready'),
        'the kubelet’s conditions stay',
      );
      const published = JSON.parse(node.metadata.annotations?.[PROBE_ANNOTATION] ?? '{}') as ProbeReport;
      assert.equal(published.mtu, r1.under.backend.mtu());
      assert.equal(published.backend, name);

      // A Ready peer that published an address nothing answers at.
      const ghost = {
        name: 'node-ghost',
        podCIDR: '10.98.9.0/24',
        ip: `${h1().ip.replace(/\.\d+$/, '.99')}`,
      };
      const ghostData = name === 'vxlan' ? { VNI: VXLAN_VNI, VtepMAC: '0a:00:00:00:00:99' } : null;
      await registerNode(t, ghost.name, ghost.podCIDR, ghost.ip, {
        [BACKEND_TYPE_ANNOTATION]: name,
        [BACKEND_DATA_ANNOTATION]: JSON.stringify(ghostData),
        [PUBLIC_IP_ANNOTATION]: ghost.ip,
      });
      await t.until('the ghost is a peer', () => r1.controller.peers().some((p) => p.name === ghost.name));
      const down = await prober.probe();
      assert.equal(down.peers[ghost.name]?.reachable, false);
      const after = await t.clients.nodes.get(undefined, h1().name);
      const c2 = after.status?.conditions?.find((c) => c.type === 'NetworkUnavailable');
      assert.equal(c2?.status, 'True');
      assert.equal(c2?.reason, 'OverlayPeersUnreachable');
      assert.match(c2?.message ?? '', /node-ghost/);
      assert.doesNotMatch(c2?.message ?? '', /node-2|node-3/);
      await t.clients.nodes.delete(undefined, ghost.name);
      await t.until('the ghost is gone', () => !r1.controller.peers().some((p) => p.name === ghost.name));
    });

    it('removes a peer’s entries when its Node goes', async () => {
      const r1 = running[0]!;
      assert.notEqual(await r1.under.entriesFor(h3()), '', 'entries for node-3 before');
      await t.clients.nodes.delete(undefined, h3().name);
      await t.until(
        'node-3 is no peer of node-1',
        () => !r1.controller.peers().some((p) => p.name === h3().name),
      );
      assert.equal(await r1.under.entriesFor(h3()), '');
      const r = await lab.connect(pod(h1()).netns, pod(h3()).ip);
      assert.equal(r.error, 'EHOSTUNREACH', 'node-3’s pods now hit the safety route');
      const still = await lab.connect(pod(h1()).netns, pod(h2()).ip);
      assert.equal(still.reply, `${pod(h2()).name} ${pod(h1()).ip}`);
    });

    it('close() removes everything the backend added', async () => {
      const r1 = running[0]!;
      await r1.controller.stop();
      await r1.under.backend.close();
      assert.equal(await r1.under.leftovers(), '');
    });
  });
}
