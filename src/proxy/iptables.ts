// The iptables backend, for hosts without nft: upstream's classic chain
// layout (pkg/proxy/iptables/proxier.go), written with iptables-restore.
//
// nat table:
//   KUBE-SERVICES      one rule per cluster IP / external IP / LB IP port,
//                      then `--dst-type LOCAL -j KUBE-NODEPORTS`
//   KUBE-NODEPORTS     one rule per node port
//   KUBE-SVC-H         all endpoints: `-m statistic --probability 1/(n-i)`
//   KUBE-SVL-H         this node's endpoints (Local traffic policies)
//   KUBE-EXT-H         node ports, external and LB IPs: masquerade or
//                      short-circuit, then KUBE-SVC/KUBE-SVL
//   KUBE-SEP-H         one endpoint: hairpin masquerade, affinity, DNAT
//   KUBE-MARK-MASQ, KUBE-POSTROUTING  mark, then masquerade on the way out
// filter table:
//   KUBE-SERVICES           REJECT ports with no endpoints; the rest of the
//                           service CIDR
//   KUBE-EXTERNAL-SERVICES  REJECT/DROP node ports and external IPs without
//                           (local) endpoints
//   KUBE-FIREWALL           drop martians to 127/8 (route_localnet)
//
// Unlike nftables, a lookup walks KUBE-SERVICES rule by rule, and every sync
// rewrites it whole. Incremental syncs (upstream's minimal sync) restore
// with --noflush and only the per-port chains that changed.

import {
  applyNodeSysctls,
  deleteServiceCIDRRoute,
  type Exec,
  hostExec,
  type ProxyBackend,
  routeServiceCIDR,
} from './backend.ts';
import {
  externalEndpoints,
  hasExternal,
  internalEndpoints,
  type ProxyConfig,
  type ProxyEndpoint,
  type ServicePort,
  shortHash,
} from './model.ts';

export interface IptablesOptions extends ProxyConfig {
  exec?: Exec;
}

const MARK = '0x4000';

/** One service port's rules: its own chains, and its lines in the shared chains. */
export interface PortRules {
  /** Chains only this port uses (nat table), by name, with their `-A` lines. */
  chains: Map<string, string[]>;
  natServices: string[];
  natNodePorts: string[];
  filterServices: string[];
  filterExternal: string[];
}

const hashOf = (s: string) => shortHash(s, 16);

export function portRules(sp: ServicePort, cfg: ProxyConfig): PortRules {
  const base = hashOf(`${sp.key}/${sp.protocol}`);
  const p = sp.protocol.toLowerCase();
  const match = `-p ${p} -m ${p}`;
  // A TCP reset where TCP: the node's own connections to a service IP leave
  // from 127.0.0.1 (see routeServiceCIDR), and an ICMP error for a
  // connection never confirmed in conntrack is not "related" to it.
  const reject = p === 'tcp' ? 'REJECT --reject-with tcp-reset' : 'REJECT';
  const comment = `-m comment --comment "${sp.key}"`;
  const svc = `KUBE-SVC-${base}`;
  const svl = `KUBE-SVL-${base}`;
  const ext = `KUBE-EXT-${base}`;
  const out: PortRules = {
    chains: new Map(),
    natServices: [],
    natNodePorts: [],
    filterServices: [],
    filterExternal: [],
  };
  const sepOf = (ep: ProxyEndpoint) => `KUBE-SEP-${hashOf(`${sp.key}/${sp.protocol}/${ep.ip}:${ep.port}`)}`;
  const addSep = (ep: ProxyEndpoint) => {
    const sep = sepOf(ep);
    if (out.chains.has(sep)) return sep;
    const affinity = sp.affinitySeconds !== undefined ? `-m recent --name ${sep} --set ` : '';
    out.chains.set(sep, [
      `-A ${sep} -s ${ep.ip}/32 ${comment} -j KUBE-MARK-MASQ`,
      `-A ${sep} ${comment} -p ${p} ${affinity}-m ${p} -j DNAT --to-destination ${ep.ip}:${ep.port}`,
    ]);
    return sep;
  };
  const dispatch = (chain: string, eps: ProxyEndpoint[], first: string[] = []) => {
    const rules = [...first];
    const seps = eps.map(addSep);
    if (sp.affinitySeconds !== undefined) {
      for (const sep of seps)
        rules.push(
          `-A ${chain} ${comment} -m recent --name ${sep} --rcheck --seconds ${sp.affinitySeconds} --reap -j ${sep}`,
        );
    }
    // Each rule takes its share of what the earlier ones left: 1/n, 1/(n-1), ..., 1.
    seps.forEach((sep, i) => {
      const left = seps.length - i;
      rules.push(
        left > 1
          ? `-A ${chain} ${comment} -m statistic --mode random --probability ${(1 / left).toFixed(10)} -j ${sep}`
          : `-A ${chain} ${comment} -j ${sep}`,
      );
    });
    out.chains.set(chain, rules);
  };

  const all = sp.endpoints;
  const internal = internalEndpoints(sp);
  const external = externalEndpoints(sp);
  const internalChain = sp.internalPolicyLocal ? svl : svc;
  const clusterIPMatch = `-d ${sp.clusterIP}/32 ${match} --dport ${sp.port}`;
  if (internal.length > 0) {
    out.natServices.push(`-A KUBE-SERVICES ${comment} ${clusterIPMatch} -j ${internalChain}`);
  } else {
    out.filterServices.push(
      `-A KUBE-SERVICES ${comment} ${clusterIPMatch} -j ${all.length === 0 ? reject : 'DROP'}`,
    );
  }
  // The chain the cluster IP uses gets the off-cluster masquerade rule first.
  const masqFirst = [
    `-A ${internalChain} ${comment} ${clusterIPMatch} ! -s ${cfg.clusterCIDR} -j KUBE-MARK-MASQ`,
  ];
  if (sp.internalPolicyLocal) {
    if (internal.length > 0) dispatch(svl, internal, masqFirst);
    if (all.length > 0 && hasExternal(sp)) dispatch(svc, all);
  } else {
    if (all.length > 0) dispatch(svc, all, masqFirst);
    if (sp.externalPolicyLocal && external.length > 0) dispatch(svl, external);
  }

  if (!hasExternal(sp)) return out;
  const externalAddrs = [...sp.externalIPs, ...sp.loadBalancerIPs];
  if (all.length === 0) {
    for (const ip of externalAddrs)
      out.filterExternal.push(
        `-A KUBE-EXTERNAL-SERVICES ${comment} -d ${ip}/32 ${match} --dport ${sp.port} -j ${reject}`,
      );
    if (sp.nodePort !== undefined)
      out.filterExternal.push(
        `-A KUBE-EXTERNAL-SERVICES ${comment} -m addrtype --dst-type LOCAL ${match} --dport ${sp.nodePort} -j ${reject}`,
      );
    return out;
  }
  const localMissing = sp.externalPolicyLocal && external.length === 0;
  out.chains.set(
    ext,
    sp.externalPolicyLocal
      ? [
          `-A ${ext} ${comment} -s ${cfg.clusterCIDR} -j ${svc}`,
          `-A ${ext} ${comment} -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ`,
          `-A ${ext} ${comment} -m addrtype --src-type LOCAL -j ${svc}`,
          ...(localMissing ? [] : [`-A ${ext} ${comment} -j ${svl}`]),
        ]
      : [`-A ${ext} ${comment} -j KUBE-MARK-MASQ`, `-A ${ext} ${comment} -j ${svc}`],
  );
  for (const ip of externalAddrs) {
    out.natServices.push(`-A KUBE-SERVICES ${comment} -d ${ip}/32 ${match} --dport ${sp.port} -j ${ext}`);
    if (localMissing)
      out.filterExternal.push(
        `-A KUBE-EXTERNAL-SERVICES ${comment} -d ${ip}/32 ${match} --dport ${sp.port} -j DROP`,
      );
  }
  if (sp.nodePort !== undefined) {
    out.natNodePorts.push(`-A KUBE-NODEPORTS ${comment} ${match} --dport ${sp.nodePort} -j ${ext}`);
    if (localMissing)
      out.filterExternal.push(
        `-A KUBE-EXTERNAL-SERVICES ${comment} -m addrtype --dst-type LOCAL ${match} --dport ${sp.nodePort} -j DROP`,
      );
  }
  return out;
}

/** The chains every sync rewrites whole, and their fixed rules. */
function sharedChains(cfg: ProxyConfig, rules: Iterable<PortRules>): { nat: string[]; filter: string[] } {
  const natServices: string[] = [];
  const natNodePorts: string[] = [];
  const filterServices: string[] = [];
  const filterExternal: string[] = [];
  for (const r of rules) {
    natServices.push(...r.natServices);
    natNodePorts.push(...r.natNodePorts);
    filterServices.push(...r.filterServices);
    filterExternal.push(...r.filterExternal);
  }
  return {
    nat: [
      ':KUBE-SERVICES - [0:0]',
      ':KUBE-NODEPORTS - [0:0]',
      ':KUBE-MARK-MASQ - [0:0]',
      ':KUBE-POSTROUTING - [0:0]',
      ...natServices,
      // Node ports on every local address, 127.0.0.1 included (route_localnet).
      '-A KUBE-SERVICES -m comment --comment "node ports" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS',
      ...natNodePorts,
      `-A KUBE-MARK-MASQ -j MARK --or-mark ${MARK}`,
      `-A KUBE-POSTROUTING -m mark ! --mark ${MARK}/${MARK} -j RETURN`,
      `-A KUBE-POSTROUTING -j MARK --xor-mark ${MARK}`,
      '-A KUBE-POSTROUTING -j MASQUERADE --random-fully',
    ],
    filter: [
      ':KUBE-SERVICES - [0:0]',
      ':KUBE-EXTERNAL-SERVICES - [0:0]',
      ':KUBE-FIREWALL - [0:0]',
      ...filterServices,
      // Runs after DNAT: whatever still goes to the service CIDR matched no
      // Service port (or is an endpoint in the service range, as cluster DNS).
      '-A KUBE-SERVICES -m conntrack --ctstate DNAT -j RETURN',
      `-A KUBE-SERVICES -m comment --comment "unallocated service IPs" -d ${cfg.serviceCIDR} -p tcp -j REJECT --reject-with tcp-reset`,
      `-A KUBE-SERVICES -m comment --comment "unallocated service IPs" -d ${cfg.serviceCIDR} -j REJECT`,
      ...filterExternal,
      '-A KUBE-FIREWALL -m comment --comment "block incoming localnet connections" ! -i lo -d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP',
    ],
  };
}

/** The jumps from the built-in chains into ours: [table, chain, rule spec]. */
export const JUMPS: [string, string, string[]][] = [
  ['nat', 'PREROUTING', ['-m', 'comment', '--comment', 'skiff service portals', '-j', 'KUBE-SERVICES']],
  ['nat', 'OUTPUT', ['-m', 'comment', '--comment', 'skiff service portals', '-j', 'KUBE-SERVICES']],
  ['nat', 'POSTROUTING', ['-m', 'comment', '--comment', 'skiff postrouting rules', '-j', 'KUBE-POSTROUTING']],
  ['filter', 'INPUT', ['-m', 'conntrack', '--ctstate', 'NEW', '-j', 'KUBE-EXTERNAL-SERVICES']],
  ['filter', 'INPUT', ['-j', 'KUBE-FIREWALL']],
  ['filter', 'FORWARD', ['-m', 'conntrack', '--ctstate', 'NEW', '-j', 'KUBE-SERVICES']],
  ['filter', 'FORWARD', ['-m', 'conntrack', '--ctstate', 'NEW', '-j', 'KUBE-EXTERNAL-SERVICES']],
  ['filter', 'OUTPUT', ['-m', 'conntrack', '--ctstate', 'NEW', '-j', 'KUBE-SERVICES']],
];

/** Per-port chain prefixes (all in the nat table). */
const PORT_CHAIN = /^KUBE-(SVC|SVL|EXT|SEP)-/;

/**
 * The restore input. Full: every chain declared (so flushed) and written,
 * `stale` chains deleted. Partial: the shared chains whole, plus only the
 * per-port chains of `changedChains`; `deleted` chains flushed and removed.
 */
export function restoreInput(
  cfg: ProxyConfig,
  all: Iterable<PortRules>,
  portChains: Map<string, string[]>,
  deleted: Iterable<string>,
): string {
  const shared = sharedChains(cfg, all);
  const del = [...deleted];
  const nat = [
    '*nat',
    ...shared.nat.filter((l) => l.startsWith(':')),
    ...[...portChains.keys(), ...del].map((c) => `:${c} - [0:0]`),
    ...shared.nat.filter((l) => !l.startsWith(':')),
    ...[...portChains.values()].flat(),
    ...del.map((c) => `-X ${c}`),
    'COMMIT',
  ];
  return `${[...nat, '*filter', ...shared.filter, 'COMMIT'].join('\n')}\n`;
}

export function iptablesBackend(opts: IptablesOptions): ProxyBackend {
  const exec = opts.exec ?? hostExec();
  const cfg: ProxyConfig = { clusterCIDR: opts.clusterCIDR, serviceCIDR: opts.serviceCIDR };
  let applied: Map<string, PortRules> | undefined;
  let prepared = false;
  let routed = false;

  const restore = (input: string) => exec('iptables-restore', ['-w', '--noflush'], input);
  const ensureJumps = async () => {
    for (const [table, chain, spec] of JUMPS) {
      const exists = await exec('iptables', ['-w', '-t', table, '-C', chain, ...spec]).then(
        () => true,
        () => false,
      );
      if (!exists) await exec('iptables', ['-w', '-t', table, '-I', chain, '1', ...spec]);
    }
  };
  const existingPortChains = async () => {
    const saved = await exec('iptables-save', ['-t', 'nat']);
    return saved
      .split('\n')
      .filter((l) => l.startsWith(':'))
      .map((l) => l.slice(1).split(' ')[0]!)
      .filter((c) => PORT_CHAIN.test(c));
  };

  return {
    mode: 'iptables',
    async sync(ports, changed) {
      if (!prepared) {
        await applyNodeSysctls(exec);
        prepared = true;
      }
      if (!changed || !applied) {
        const rules = new Map<string, PortRules>();
        const chains = new Map<string, string[]>();
        for (const [key, sp] of ports) {
          const r = portRules(sp, cfg);
          rules.set(key, r);
          for (const [c, lines] of r.chains) chains.set(c, lines);
        }
        applied = undefined;
        const stale = (await existingPortChains()).filter((c) => !chains.has(c));
        await restore(restoreInput(cfg, rules.values(), chains, stale));
        await ensureJumps();
        if (!routed) await routeServiceCIDR(exec, cfg.serviceCIDR);
        routed = true;
        applied = rules;
        return;
      }
      const next = new Map(applied);
      const portChains = new Map<string, string[]>();
      const removed = new Set<string>();
      for (const key of changed) {
        const before = applied.get(key);
        const sp = ports.get(key);
        const after = sp ? portRules(sp, cfg) : undefined;
        for (const c of before?.chains.keys() ?? []) if (!after?.chains.has(c)) removed.add(c);
        for (const [c, lines] of after?.chains ?? []) {
          // Unchanged chains are left alone (upstream's minimal sync).
          const old = before?.chains.get(c);
          if (!old || old.join('\n') !== lines.join('\n')) portChains.set(c, lines);
        }
        if (after) next.set(key, after);
        else next.delete(key);
      }
      for (const c of portChains.keys()) removed.delete(c);
      try {
        await restore(restoreInput(cfg, next.values(), portChains, removed));
      } catch (err) {
        applied = undefined;
        throw err;
      }
      applied = next;
    },
    async cleanup() {
      applied = undefined;
      routed = false;
      await deleteServiceCIDRRoute(exec, cfg.serviceCIDR);
      for (const [table, chain, spec] of JUMPS) {
        while (
          await exec('iptables', ['-w', '-t', table, '-D', chain, ...spec]).then(
            () => true,
            () => false,
          )
        );
      }
      const ours = await existingPortChains().catch(() => [] as string[]);
      const natChains = ['KUBE-SERVICES', 'KUBE-NODEPORTS', 'KUBE-MARK-MASQ', 'KUBE-POSTROUTING', ...ours];
      const filterChains = ['KUBE-SERVICES', 'KUBE-EXTERNAL-SERVICES', 'KUBE-FIREWALL'];
      const savedNat = await exec('iptables-save', ['-t', 'nat']).catch(() => '');
      const savedFilter = await exec('iptables-save', ['-t', 'filter']).catch(() => '');
      const present = (saved: string, c: string) => saved.includes(`:${c} `);
      const drop = (saved: string, chains: string[]) => {
        const have = chains.filter((c) => present(saved, c));
        return [...have.map((c) => `:${c} - [0:0]`), ...have.map((c) => `-X ${c}`)];
      };
      await restore(
        `${['*nat', ...drop(savedNat, natChains), 'COMMIT', '*filter', ...drop(savedFilter, filterChains), 'COMMIT'].join('\n')}\n`,
      );
    },
  };
}
