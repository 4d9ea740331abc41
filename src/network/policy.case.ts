// The NetworkPolicy contract (policy-nft.netns.test.ts runs it against the
// nftables table): a real API server, the node's NetworkPolicy controller
// watching it, and the table programming a network namespace of its own
// (src/proxy/lab.ts) with real pods. Every assertion is a real connection
// through the kernel, TCP or UDP. The cases follow upstream's
// test/e2e/network/netpol (default deny, allow from namespace, pod and
// namespace selectors combined, ipBlock with except, ports with endPort,
// named ports, egress, policies as a union).
//
// The lab, seen as a cluster:
//   pod1 10.99.0.11  alpha/server  app=server, ports http=9090/TCP dns=5353/UDP   (this node)
//   pod2 10.99.0.12  alpha/client  app=client                                   (this node)
//   pod3 10.99.0.13  beta/client   app=client                                   (this node)
//   10.99.1.5        beta/remote   app=remote, on another node (an address of ext)
//   198.18.42.10, 198.18.42.20     outside the cluster (addresses of ext)
// Namespaces alpha (team=alpha) and beta (team=beta). Every pod serves TCP
// 8080 and 9090 and UDP 5353. Denied traffic is dropped, so a denied
// attempt is one that times out.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Pod } from '../api/types/core-v1.ts';
import type { NetworkPolicy, NetworkPolicySpec } from '../api/types/networking-v1.ts';
import { type ControllerTest, startControllerTest } from '../controllers/testing.ts';
import { createLab, type Lab } from '../proxy/lab.ts';
import { createLog } from '../util/log.ts';
import { nodePolicyModel } from './policy.ts';
import { createNetworkPolicyController, type NetworkPolicyController } from './policy-controller.ts';
import type { PolicyTable } from './policy-nft.ts';

export interface TableUnderTest {
  table: PolicyTable;
  /** What the table left in the namespace: empty after cleanup(). */
  leftovers(): Promise<string>;
}

const NODE = 'node-a';
const REMOTE_POD_IP = '10.99.1.5';
const OUTSIDE_IN = '198.18.42.10';
const OUTSIDE_EXCEPT = '198.18.42.20';
/** Long enough for a reply on a loaded machine; a denied attempt costs this much. */
const DENIED_MS = 1500;

export function networkPolicyContract(name: string, make: (lab: Lab) => TableUnderTest): void {
  describe(`network policy contract: ${name}`, () => {
    let lab: Lab;
    let t: ControllerTest;
    let controller: NetworkPolicyController;
    let under: TableUnderTest;

    const labPod = (n: number) => lab.pods[n - 1]!;
    const server = () => labPod(1);

    before(async () => {
      lab = await createLab(3, {
        prefix: 'snp',
        externalAddresses: [REMOTE_POD_IP, OUTSIDE_IN, OUTSIDE_EXCEPT],
      });
      // Outside peers reach pods through the node: it routes.
      await lab.exec('sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1']);
      t = await startControllerTest({});
      for (const ns of ['alpha', 'beta'])
        await t.clients.namespaces.create(undefined, { metadata: { name: ns, labels: { team: ns } } });
      await addPod('alpha', 'server', labPod(1).ip, { app: 'server' });
      await addPod('alpha', 'client', labPod(2).ip, { app: 'client' });
      await addPod('beta', 'client', labPod(3).ip, { app: 'client' });
      await addPod('beta', 'remote', REMOTE_POD_IP, { app: 'remote' }, 'node-b');
      under = make(lab);
      controller = createNetworkPolicyController({
        clients: t.clients,
        nodeName: NODE,
        table: under.table,
        debounceMs: 10,
        log: createLog({ component: 'netpol' }, (l) => {
          if (process.env.SKIFF_TEST_LOG) process.stderr.write(l);
        }),
      });
      await controller.start();
    });
    after(async () => {
      await controller?.stop();
      await t?.close();
      await lab?.destroy();
    });

    /** A Running pod at a lab address (the kubelet's part, written through the API). */
    async function addPod(
      namespace: string,
      podName: string,
      ip: string,
      labels: Record<string, string>,
      node = NODE,
    ) {
      const pod: Pod = {
        metadata: { name: podName, labels },
        spec: {
          nodeName: node,
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
      await t.clients.pods.create(namespace, pod);
      await t.clients.pods.patch(
        namespace,
        podName,
        'merge',
        { status: { phase: 'Running', podIP: ip, podIPs: [{ ip }] } },
        { subresource: 'status' },
      );
    }

    /** Waits until the controller's model is what the API's objects say, and the kernel has it. */
    async function settled() {
      const [policies, pods, namespaces] = await Promise.all([
        t.clients.networkPolicies.list(undefined),
        t.clients.pods.list(undefined),
        t.clients.namespaces.list(undefined),
      ]);
      const want = JSON.stringify(
        nodePolicyModel({
          nodeName: NODE,
          policies: policies.items ?? [],
          pods: pods.items ?? [],
          namespaces: namespaces.items ?? [],
        }),
      );
      await t.until('the controller has the policies', () => JSON.stringify(controller.model) === want);
      await controller.flushed();
    }

    /** Runs `check` with the policies in place, and removes them afterwards (each case starts from none). */
    async function withPolicies(
      policies: { namespace: string; name: string; spec: NetworkPolicySpec }[],
      check: () => Promise<void>,
    ) {
      for (const p of policies) {
        const np: NetworkPolicy = { metadata: { name: p.name }, spec: p.spec };
        await t.clients.networkPolicies.create(p.namespace, np);
      }
      try {
        await settled();
        await check();
      } finally {
        for (const p of policies) await t.clients.networkPolicies.delete(p.namespace, p.name);
        await settled();
      }
    }

    type Attempt = [from: string, protocol: 'tcp' | 'udp', ip: string, port: number, source?: string];
    const describeAttempt = ([from, protocol, ip, port, source]: Attempt) =>
      `${source ?? from} -> ${ip}:${port}/${protocol}`;
    /** Each attempt gets the pod's answer (allowed) or times out (denied). */
    async function expect(allowed: Attempt[], denied: Attempt[]) {
      const results = await Promise.all([
        ...allowed.map(async (a) => {
          const [r] = await lab.connect(a[0], a[1], a[2], a[3], 1, 5000, a[4]);
          // Nothing listens on the outside addresses: a refusal there is the peer's answer, so the packet passed.
          const answered = r?.reply || (isOutside(a[2]) && r?.error === 'ECONNREFUSED');
          return answered ? undefined : `${describeAttempt(a)} should pass: ${JSON.stringify(r)}`;
        }),
        ...denied.map(async (a) => {
          const [r] = await lab.connect(a[0], a[1], a[2], a[3], 1, DENIED_MS, a[4]);
          return r?.error === 'TIMEOUT'
            ? undefined
            : `${describeAttempt(a)} should be dropped: ${JSON.stringify(r)}`;
        }),
      ]);
      const wrong = results.filter(Boolean);
      assert.deepEqual(wrong, [], wrong.join('\n'));
    }
    const isOutside = (ip: string) => ip === OUTSIDE_IN || ip === OUTSIDE_EXCEPT;
    const fromPod = (n: number, protocol: 'tcp' | 'udp', to: string, port: number): Attempt => [
      labPod(n).netns,
      protocol,
      to,
      port,
    ];
    const fromExt = (source: string, protocol: 'tcp' | 'udp', to: string, port: number): Attempt => [
      lab.ext,
      protocol,
      to,
      port,
      source,
    ];

    it('a pod no policy selects is unrestricted', async () => {
      await settled();
      assert.deepEqual(controller.model, []);
      const s = server().ip;
      await expect(
        [
          fromPod(2, 'tcp', s, 8080),
          fromPod(3, 'udp', s, 5353),
          fromExt(REMOTE_POD_IP, 'tcp', s, 9090),
          fromExt(OUTSIDE_EXCEPT, 'tcp', s, 8080),
        ],
        [],
      );
    });

    it('default deny ingress: nothing reaches the namespace’s pods, their own connections and replies still pass', async () => {
      await withPolicies(
        [{ namespace: 'alpha', name: 'deny', spec: { podSelector: {}, policyTypes: ['Ingress'] } }],
        async () => {
          const s = server().ip;
          await expect(
            [
              // Egress is not isolated: alpha's pods reach beta's, and the replies come back.
              fromPod(1, 'tcp', labPod(3).ip, 8080),
              fromPod(2, 'udp', labPod(3).ip, 5353),
              // The node itself (the kubelet's probes) is not filtered.
              [lab.node, 'tcp', s, 8080],
            ],
            [
              fromPod(2, 'tcp', s, 8080),
              fromPod(3, 'tcp', s, 8080),
              fromPod(3, 'udp', s, 5353),
              fromPod(1, 'tcp', labPod(2).ip, 8080),
              fromExt(REMOTE_POD_IP, 'tcp', s, 8080),
            ],
          );
        },
      );
      // Removing the policy restores traffic.
      await expect([fromPod(2, 'tcp', server().ip, 8080), fromPod(3, 'udp', server().ip, 5353)], []);
    });

    it('default deny, then allow from a namespace: its pods on every node get in, others do not', async () => {
      await withPolicies(
        [
          { namespace: 'alpha', name: 'deny', spec: { podSelector: {}, policyTypes: ['Ingress'] } },
          {
            namespace: 'alpha',
            name: 'from-beta',
            spec: {
              podSelector: { matchLabels: { app: 'server' } },
              ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: 'beta' } } }] }],
            },
          },
        ],
        async () => {
          const s = server().ip;
          await expect(
            [fromPod(3, 'tcp', s, 8080), fromPod(3, 'udp', s, 5353), fromExt(REMOTE_POD_IP, 'tcp', s, 9090)],
            [
              fromPod(2, 'tcp', s, 8080),
              fromExt(OUTSIDE_IN, 'tcp', s, 8080),
              fromPod(3, 'tcp', labPod(2).ip, 8080),
            ],
          );
        },
      );
    });

    it('podSelector alone means the policy’s namespace; with namespaceSelector, both must match', async () => {
      await withPolicies(
        [
          {
            namespace: 'alpha',
            name: 'clients-here',
            spec: {
              podSelector: { matchLabels: { app: 'server' } },
              ingress: [
                { from: [{ podSelector: { matchLabels: { app: 'client' } } }], ports: [{ port: 8080 }] },
              ],
            },
          },
          {
            namespace: 'alpha',
            name: 'remote-of-beta',
            spec: {
              podSelector: { matchLabels: { app: 'server' } },
              ingress: [
                {
                  from: [
                    {
                      namespaceSelector: { matchLabels: { team: 'beta' } },
                      podSelector: { matchLabels: { app: 'remote' } },
                    },
                  ],
                  ports: [{ port: 9090 }],
                },
              ],
            },
          },
        ],
        async () => {
          const s = server().ip;
          await expect(
            [fromPod(2, 'tcp', s, 8080), fromExt(REMOTE_POD_IP, 'tcp', s, 9090)],
            [
              // beta/client has app=client, but lives in beta.
              fromPod(3, 'tcp', s, 8080),
              fromPod(3, 'tcp', s, 9090),
              // Each policy allows its own peers on its own port: a union of rules, not a mix.
              fromPod(2, 'tcp', s, 9090),
              fromExt(REMOTE_POD_IP, 'tcp', s, 8080),
            ],
          );
        },
      );
    });

    it('ipBlock with except', async () => {
      await withPolicies(
        [
          {
            namespace: 'alpha',
            name: 'outside',
            spec: {
              podSelector: { matchLabels: { app: 'server' } },
              ingress: [{ from: [{ ipBlock: { cidr: '198.18.42.0/24', except: ['198.18.42.16/28'] } }] }],
            },
          },
        ],
        async () => {
          const s = server().ip;
          await expect(
            [fromExt(OUTSIDE_IN, 'tcp', s, 8080), fromExt(OUTSIDE_IN, 'udp', s, 5353)],
            [
              fromExt(OUTSIDE_EXCEPT, 'tcp', s, 8080),
              fromExt(REMOTE_POD_IP, 'tcp', s, 8080),
              fromPod(2, 'tcp', s, 8080),
            ],
          );
        },
      );
    });

    it('ports: protocol, port and endPort', async () => {
      await withPolicies(
        [
          {
            namespace: 'alpha',
            name: 'range',
            spec: {
              podSelector: { matchLabels: { app: 'server' } },
              ingress: [
                {
                  ports: [
                    { protocol: 'TCP', port: 8000, endPort: 8085 },
                    { protocol: 'UDP', port: 5353 },
                  ],
                },
              ],
            },
          },
        ],
        async () => {
          const s = server().ip;
          await expect(
            [fromPod(2, 'tcp', s, 8080), fromPod(3, 'udp', s, 5353), fromExt(OUTSIDE_IN, 'tcp', s, 8080)],
            [fromPod(2, 'tcp', s, 9090), fromPod(3, 'tcp', s, 9090)],
          );
        },
      );
    });

    it('named ports resolve to the target pod’s container ports, with their protocol', async () => {
      await withPolicies(
        [
          {
            namespace: 'alpha',
            name: 'named',
            spec: {
              podSelector: { matchLabels: { app: 'server' } },
              ingress: [
                {
                  ports: [
                    { port: 'http' },
                    { protocol: 'UDP', port: 'dns' },
                    { protocol: 'UDP', port: 'http' },
                  ],
                },
              ],
            },
          },
        ],
        async () => {
          const s = server().ip;
          await expect(
            [fromPod(2, 'tcp', s, 9090), fromPod(2, 'udp', s, 5353)],
            [fromPod(2, 'tcp', s, 8080), fromPod(3, 'tcp', s, 8080)],
          );
        },
      );
    });

    it('egress: an isolated pod reaches only what a rule allows (numeric and named ports); others are not affected', async () => {
      await withPolicies(
        [
          {
            namespace: 'alpha',
            name: 'client-egress',
            spec: {
              podSelector: { matchLabels: { app: 'client' } },
              policyTypes: ['Egress'],
              egress: [
                { to: [{ podSelector: { matchLabels: { app: 'server' } } }], ports: [{ port: 8080 }] },
                {
                  to: [{ namespaceSelector: { matchLabels: { team: 'beta' } } }],
                  ports: [{ protocol: 'UDP', port: 'dns' }],
                },
                { to: [{ ipBlock: { cidr: `${OUTSIDE_IN}/32` } }] },
              ],
            },
          },
        ],
        async () => {
          const s = server().ip;
          await expect(
            [
              fromPod(2, 'tcp', s, 8080),
              fromPod(2, 'udp', labPod(3).ip, 5353),
              fromPod(2, 'tcp', OUTSIDE_IN, 8080),
              // alpha/server is not selected: its egress is free, and alpha/client's ingress too.
              fromPod(1, 'tcp', labPod(2).ip, 8080),
              fromPod(3, 'tcp', s, 9090),
            ],
            [
              fromPod(2, 'tcp', s, 9090),
              fromPod(2, 'udp', s, 5353),
              fromPod(2, 'tcp', labPod(3).ip, 8080),
              fromPod(2, 'tcp', REMOTE_POD_IP, 8080),
              fromPod(2, 'tcp', OUTSIDE_EXCEPT, 8080),
            ],
          );
        },
      );
    });

    it('default deny egress: nothing leaves, not even to the node', async () => {
      await withPolicies(
        [{ namespace: 'beta', name: 'deny-egress', spec: { podSelector: {}, policyTypes: ['Egress'] } }],
        async () => {
          await expect(
            [fromPod(1, 'tcp', labPod(3).ip, 8080)],
            [
              fromPod(3, 'tcp', server().ip, 8080),
              fromPod(3, 'udp', server().ip, 5353),
              fromPod(3, 'tcp', OUTSIDE_IN, 8080),
              fromPod(3, 'tcp', '10.99.0.1', 22),
            ],
          );
        },
      );
      await expect([fromPod(3, 'tcp', server().ip, 8080)], []);
    });

    it('policies are a union, and follow pods as their labels change', async () => {
      await withPolicies(
        [
          {
            namespace: 'alpha',
            name: 'from-alpha-clients',
            spec: {
              podSelector: { matchLabels: { app: 'server' } },
              ingress: [{ from: [{ podSelector: { matchLabels: { app: 'client' } } }] }],
            },
          },
          {
            namespace: 'alpha',
            name: 'from-beta-clients',
            spec: {
              podSelector: { matchLabels: { app: 'server' } },
              ingress: [
                { from: [{ namespaceSelector: {}, podSelector: { matchLabels: { app: 'client' } } }] },
              ],
            },
          },
        ],
        async () => {
          const s = server().ip;
          await expect(
            [fromPod(2, 'tcp', s, 8080), fromPod(3, 'tcp', s, 8080)],
            [fromExt(REMOTE_POD_IP, 'tcp', s, 8080)],
          );
          // beta/remote becomes a client: it is let in, wherever its node.
          await t.clients.pods.patch('beta', 'remote', 'merge', { metadata: { labels: { app: 'client' } } });
          await settled();
          await expect([fromExt(REMOTE_POD_IP, 'tcp', s, 8080)], []);
          await t.clients.pods.patch('beta', 'remote', 'merge', { metadata: { labels: { app: 'remote' } } });
        },
      );
    });

    it('cleanup removes the table', async () => {
      assert.equal(controller.syncs.failed, 0, 'no sync failed in the whole suite');
      await controller.stop();
      await under.table.cleanup();
      assert.equal((await under.leftovers()).trim(), '');
    });
  });
}
