// The nftables backend (the default): one table, `skiff`, in the ip family,
// laid out as upstream's nftables kube-proxy (pkg/proxy/nftables/proxier.go
// and its README): lookups go through maps keyed by
// `address . protocol . port`, so a packet's path does not grow with the
// number of Services, and each service port owns a few chains of its own, so
// one Service changing is a handful of map elements and chains in one
// atomic `nft -f` transaction.
//
// Per service port (H = a hash of its name, then the readable name):
//   service-H-ns/name/proto/port   cluster IP traffic: masquerade it when it
//                                  comes from outside the cluster CIDR, then
//                                  pick an endpoint (session affinity first,
//                                  else `numgen random mod N`)
//   cluster-H-...                  all endpoints (only when internal traffic
//                                  is Local but external traffic is Cluster)
//   local-H-...                    this node's endpoints (Local external policy)
//   external-H-...                 node ports, external IPs, load balancer IPs
//   endpoint-E-.../ip/port         hairpin masquerade, affinity, DNAT
// The maps:
//   service-ips             daddr . proto . port -> goto service/external chain
//   service-nodeports       proto . port (to any local address) -> goto external chain
//   no-endpoint-services    daddr . proto . port -> reject (no endpoints) or drop
//                           (Local policy without local endpoints)
//   no-endpoint-nodeports   proto . port -> reject or drop
//   cluster-ips (set)       rejects other ports of a cluster IP; the rest of the
//                           service CIDR is rejected too (nothing serves it)

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

export const DEFAULT_TABLE = 'skiff';
/** The packet mark bit that asks the postrouting chain to masquerade (upstream's 0x4000). */
export const MASQUERADE_MARK = '0x4000';

export interface NftablesOptions extends ProxyConfig {
  /** The table (ip family); default `skiff`. */
  table?: string;
  exec?: Exec;
}

/** One service port's share of the table. */
export interface PortProgram {
  chains: { name: string; rules: string[] }[];
  affinitySets: { name: string; timeout: number }[];
  /** `map` is a map or set name, `element` its element text. */
  elements: { map: string; element: string }[];
}

const proto = (sp: ServicePort) => sp.protocol.toLowerCase();

function chainSuffix(sp: ServicePort): string {
  const [ns, name] = sp.service.split('/');
  return `${shortHash(`${sp.key}/${sp.protocol}`, 8)}-${ns}/${name}/${proto(sp)}/${sp.portName}`;
}

const endpointChain = (sp: ServicePort, ep: ProxyEndpoint) =>
  `endpoint-${shortHash(`${sp.key}/${sp.protocol}/${ep.ip}:${ep.port}`, 8)}-${chainSuffix(sp).slice(9)}__${ep.ip}/${ep.port}`;
const affinitySet = (sp: ServicePort, ep: ProxyEndpoint) =>
  `affinity-${shortHash(`${sp.key}/${sp.protocol}/${ep.ip}:${ep.port}/${sp.affinitySeconds}`, 16)}`;

/** The rules, chains, sets and map elements of one service port. */
export function portProgram(sp: ServicePort, cfg: ProxyConfig): PortProgram {
  const p = proto(sp);
  const suffix = chainSuffix(sp);
  const program: PortProgram = { chains: [], affinitySets: [], elements: [] };
  const endpointChains = new Map<string, string>();

  // Endpoint chains first: the dispatch rules below refer to them.
  const endpointChainOf = (ep: ProxyEndpoint): string => {
    const k = `${ep.ip}:${ep.port}`;
    let name = endpointChains.get(k);
    if (name) return name;
    name = endpointChain(sp, ep);
    endpointChains.set(k, name);
    const rules = [
      // Hairpin: a pod reaching itself through its own Service must see the
      // reply come from the Service, so the node has to be in the path.
      `ip saddr ${ep.ip} jump mark-for-masquerade`,
    ];
    if (sp.affinitySeconds !== undefined) {
      const set = affinitySet(sp, ep);
      program.affinitySets.push({ name: set, timeout: sp.affinitySeconds });
      rules.push(`update @${set} { ip saddr }`);
    }
    rules.push(`meta l4proto ${p} dnat to ${ep.ip}:${ep.port}`);
    program.chains.push({ name, rules });
    return name;
  };
  const dispatch = (eps: ProxyEndpoint[]): string[] => {
    const names = eps.map(endpointChainOf);
    const rules: string[] = [];
    if (sp.affinitySeconds !== undefined) {
      // A client seen within the timeout goes back to the endpoint it had.
      for (const [i, ep] of eps.entries()) rules.push(`ip saddr @${affinitySet(sp, ep)} goto ${names[i]}`);
    }
    rules.push(
      `numgen random mod ${names.length} vmap { ${names.map((n, i) => `${i} : goto ${n}`).join(', ')} }`,
    );
    return rules;
  };

  const all = sp.endpoints;
  const internal = internalEndpoints(sp);
  const external = externalEndpoints(sp);
  const serviceChain = `service-${suffix}`;
  if (internal.length > 0) {
    program.chains.push({
      name: serviceChain,
      rules: [
        // Off-cluster clients of a cluster IP (the node itself, say) are
        // masqueraded so replies come back through this node (upstream's
        // --cluster-cidr masquerading).
        `ip daddr ${sp.clusterIP} ${p} dport ${sp.port} ip saddr != ${cfg.clusterCIDR} jump mark-for-masquerade`,
        ...dispatch(internal),
      ],
    });
  }
  const clusterIPKey = `${sp.clusterIP} . ${p} . ${sp.port}`;
  program.elements.push({ map: 'cluster-ips', element: sp.clusterIP });
  if (internal.length > 0) {
    program.elements.push({ map: 'service-ips', element: `${clusterIPKey} : goto ${serviceChain}` });
  } else {
    // No endpoints at all: reject, so clients fail at once instead of
    // hanging. Endpoints but none local for a Local policy: drop, as upstream.
    const verdict = all.length === 0 ? 'goto reject-chain' : 'drop';
    program.elements.push({ map: 'no-endpoint-services', element: `${clusterIPKey} : ${verdict}` });
  }

  if (hasExternal(sp)) {
    const externalAddrs = [...sp.externalIPs, ...sp.loadBalancerIPs];
    if (all.length === 0) {
      for (const ip of externalAddrs)
        program.elements.push({
          map: 'no-endpoint-services',
          element: `${ip} . ${p} . ${sp.port} : goto reject-chain`,
        });
      if (sp.nodePort !== undefined)
        program.elements.push({
          map: 'no-endpoint-nodeports',
          element: `${p} . ${sp.nodePort} : goto reject-chain`,
        });
      return program;
    }
    // Where "cluster-wide" and "local" traffic of an external destination goes.
    let clusterTarget = serviceChain;
    if (sp.internalPolicyLocal) {
      clusterTarget = `cluster-${suffix}`;
      program.chains.push({ name: clusterTarget, rules: dispatch(all) });
    }
    let localTarget: string | undefined;
    if (sp.externalPolicyLocal && external.length > 0) {
      if (sp.internalPolicyLocal) localTarget = serviceChain;
      else {
        localTarget = `local-${suffix}`;
        program.chains.push({ name: localTarget, rules: dispatch(external) });
      }
    }
    const externalChain = `external-${suffix}`;
    const rules = sp.externalPolicyLocal
      ? [
          // Pods and the node itself are not "external": they may use any
          // endpoint (upstream's short-circuit), the node masqueraded.
          `ip saddr ${cfg.clusterCIDR} goto ${clusterTarget}`,
          'fib saddr type local jump mark-for-masquerade',
          `fib saddr type local goto ${clusterTarget}`,
          // External clients keep their source IP and reach local endpoints
          // only; with none, nothing here DNATs and the filter chains drop.
          ...(localTarget ? [`goto ${localTarget}`] : []),
        ]
      : ['jump mark-for-masquerade', `goto ${clusterTarget}`];
    program.chains.push({ name: externalChain, rules });
    for (const ip of externalAddrs) {
      program.elements.push({
        map: 'service-ips',
        element: `${ip} . ${p} . ${sp.port} : goto ${externalChain}`,
      });
      if (sp.externalPolicyLocal && !localTarget)
        program.elements.push({ map: 'no-endpoint-services', element: `${ip} . ${p} . ${sp.port} : drop` });
    }
    if (sp.nodePort !== undefined) {
      program.elements.push({
        map: 'service-nodeports',
        element: `${p} . ${sp.nodePort} : goto ${externalChain}`,
      });
      if (sp.externalPolicyLocal && !localTarget)
        program.elements.push({ map: 'no-endpoint-nodeports', element: `${p} . ${sp.nodePort} : drop` });
    }
  }
  return program;
}

/** The table's fixed skeleton: maps, helper chains and the base chains hooked into netfilter. */
export function baseCommands(table: string, cfg: ProxyConfig): string[] {
  const t = `ip ${table}`;
  const chain = (name: string, rules: string[], hook?: string) => [
    `add chain ${t} ${name}${hook ? ` { ${hook} ; policy accept ; }` : ''}`,
    ...rules.map((r) => `add rule ${t} ${name} ${r}`),
  ];
  return [
    `add map ${t} service-ips { type ipv4_addr . inet_proto . inet_service : verdict ; }`,
    `add map ${t} service-nodeports { type inet_proto . inet_service : verdict ; }`,
    `add map ${t} no-endpoint-services { type ipv4_addr . inet_proto . inet_service : verdict ; }`,
    `add map ${t} no-endpoint-nodeports { type inet_proto . inet_service : verdict ; }`,
    `add set ${t} cluster-ips { type ipv4_addr ; }`,
    ...chain('mark-for-masquerade', [`meta mark set meta mark or ${MASQUERADE_MARK}`]),
    ...chain('masquerading', [
      `meta mark & ${MASQUERADE_MARK} == 0 return`,
      // Cleared, so a packet re-entering the stack (hairpin) is judged afresh.
      `meta mark set meta mark xor ${MASQUERADE_MARK}`,
      'masquerade fully-random',
    ]),
    // A TCP reset where TCP: the node's own connections to a service IP leave
    // from 127.0.0.1 (see routeServiceCIDR), and an ICMP error for a
    // connection never confirmed in conntrack is not "related" to it.
    ...chain('reject-chain', ['meta l4proto tcp reject with tcp reset', 'reject']),
    ...chain('services', [
      'ip daddr . meta l4proto . th dport vmap @service-ips',
      // Node ports answer on every local address, 127.0.0.1 included (see
      // applyNodeSysctls' route_localnet).
      'fib daddr type local meta l4proto . th dport vmap @service-nodeports',
    ]),
    ...chain('service-endpoints-check', ['ip daddr . meta l4proto . th dport vmap @no-endpoint-services']),
    ...chain('nodeport-endpoints-check', [
      'fib daddr type local meta l4proto . th dport vmap @no-endpoint-nodeports',
    ]),
    // Runs after DNAT, so whatever still goes to the service CIDR matched no Service port.
    ...chain('cluster-ips-check', [
      'ip daddr @cluster-ips goto reject-chain',
      `ip daddr ${cfg.serviceCIDR} goto reject-chain`,
    ]),
    // DNAT at upstream's dstnat priority (-100): prerouting for traffic from
    // pods and other hosts, output for the node's own.
    ...chain('nat-prerouting', ['jump services'], 'type nat hook prerouting priority -100'),
    ...chain('nat-output', ['jump services'], 'type nat hook output priority -100'),
    ...chain('nat-postrouting', ['jump masquerading'], 'type nat hook postrouting priority 100'),
    // Rejects from input, forward and output (reject is not allowed in
    // prerouting on older kernels), just before the filter priority.
    ...chain(
      'filter-input',
      [
        'ct state new jump nodeport-endpoints-check',
        'ct state new jump service-endpoints-check',
        // route_localnet lets packets to 127/8 arrive from other hosts: only
        // ones we DNATed may (upstream's KUBE-FIREWALL martian rule).
        'iifname != "lo" ip daddr 127.0.0.0/8 ip saddr != 127.0.0.0/8 ct state != { established, related } ct status & dnat == 0 drop',
      ],
      'type filter hook input priority -10',
    ),
    ...chain(
      'filter-forward',
      ['ct state new jump service-endpoints-check', 'ct state new jump cluster-ips-check'],
      'type filter hook forward priority -10',
    ),
    ...chain(
      'filter-output',
      ['ct state new jump service-endpoints-check', 'ct state new jump cluster-ips-check'],
      'type filter hook output priority -10',
    ),
  ];
}

/** Commands that add one port's program to a table that does not have it. */
function addCommands(
  t: string,
  prog: PortProgram,
  existingChains: ReadonlySet<string> = new Set(),
): string[] {
  const out: string[] = [];
  for (const s of prog.affinitySets)
    out.push(`add set ${t} ${s.name} { type ipv4_addr ; flags dynamic,timeout ; timeout ${s.timeout}s ; }`);
  for (const c of prog.chains) if (!existingChains.has(c.name)) out.push(`add chain ${t} ${c.name}`);
  for (const c of prog.chains) for (const r of c.rules) out.push(`add rule ${t} ${c.name} ${r}`);
  for (const e of prog.elements) out.push(`add element ${t} ${e.map} { ${e.element} }`);
  return out;
}

/** The whole table, replacing whatever is there, in one transaction. */
export function fullSyncScript(table: string, cfg: ProxyConfig, programs: Iterable<PortProgram>): string {
  const t = `ip ${table}`;
  const lines = [`add table ${t}`, `delete table ${t}`, `add table ${t}`, ...baseCommands(table, cfg)];
  for (const prog of programs) lines.push(...addCommands(t, prog));
  return `${lines.join('\n')}\n`;
}

/**
 * The transaction that turns `before` into `after` for the changed ports
 * only: their old map elements out, their chains flushed (and deleted when
 * gone), the new chains, rules and elements in. `clusterIPRefs` counts, per
 * cluster IP, the ports in the table that use it (several ports share one),
 * so the cluster-ips set keeps an address while any port still has it.
 */
export function partialSyncScript(
  table: string,
  changes: { before: PortProgram | undefined; after: PortProgram | undefined }[],
  clusterIPRefs: Map<string, number>,
): string {
  const t = `ip ${table}`;
  const delElements: string[] = [];
  const flush: string[] = [];
  const delChains: string[] = [];
  const delSets: string[] = [];
  const adds: string[] = [];
  for (const { before, after } of changes) {
    const afterChains = new Set(after?.chains.map((c) => c.name));
    const afterSets = new Set(after?.affinitySets.map((s) => s.name));
    const beforeChains = new Set(before?.chains.map((c) => c.name));
    const beforeSets = new Set(before?.affinitySets.map((s) => s.name));
    for (const e of before?.elements ?? []) {
      if (e.map === 'cluster-ips') {
        const n = (clusterIPRefs.get(e.element) ?? 1) - 1;
        if (n > 0) clusterIPRefs.set(e.element, n);
        else {
          clusterIPRefs.delete(e.element);
          delElements.push(`delete element ${t} cluster-ips { ${e.element} }`);
        }
        continue;
      }
      // Only the key: a map element is deleted by its key.
      delElements.push(`delete element ${t} ${e.map} { ${e.element.split(' : ')[0]} }`);
    }
    for (const c of before?.chains ?? []) {
      flush.push(`flush chain ${t} ${c.name}`);
      if (!afterChains.has(c.name)) delChains.push(`delete chain ${t} ${c.name}`);
    }
    for (const s of before?.affinitySets ?? [])
      if (!afterSets.has(s.name)) delSets.push(`delete set ${t} ${s.name}`);
    if (after) {
      const prog: PortProgram = {
        ...after,
        affinitySets: after.affinitySets.filter((s) => !beforeSets.has(s.name)),
        elements: after.elements.filter((e) => {
          if (e.map !== 'cluster-ips') return true;
          const n = clusterIPRefs.get(e.element) ?? 0;
          clusterIPRefs.set(e.element, n + 1);
          return n === 0;
        }),
      };
      adds.push(...addCommands(t, prog, beforeChains));
    }
  }
  // Order matters within the transaction: nothing may be deleted while
  // something still refers to it.
  const lines = [...delElements, ...flush, ...delChains, ...delSets, ...adds];
  return lines.length ? `${lines.join('\n')}\n` : '';
}

export function nftablesBackend(opts: NftablesOptions): ProxyBackend {
  const table = opts.table ?? DEFAULT_TABLE;
  const exec = opts.exec ?? hostExec();
  const cfg: ProxyConfig = { clusterCIDR: opts.clusterCIDR, serviceCIDR: opts.serviceCIDR };
  /** What the table holds now, per port key; undefined until a full sync succeeded. */
  let applied: Map<string, PortProgram> | undefined;
  let clusterIPRefs = new Map<string, number>();
  let prepared = false;
  let routed = false;

  const nft = (script: string) => exec('nft', ['-f', '-'], script);

  return {
    mode: 'nftables',
    async sync(ports, changed) {
      if (!prepared) {
        await applyNodeSysctls(exec);
        prepared = true;
      }
      if (!changed || !applied) {
        const programs = new Map<string, PortProgram>();
        const refs = new Map<string, number>();
        for (const [key, sp] of ports) {
          programs.set(key, portProgram(sp, cfg));
          refs.set(sp.clusterIP, (refs.get(sp.clusterIP) ?? 0) + 1);
        }
        applied = undefined;
        await nft(fullSyncScript(table, cfg, programs.values()));
        if (!routed) await routeServiceCIDR(exec, cfg.serviceCIDR);
        routed = true;
        applied = programs;
        clusterIPRefs = refs;
        return;
      }
      const changes: { key: string; before: PortProgram | undefined; after: PortProgram | undefined }[] = [];
      for (const key of changed) {
        const sp = ports.get(key);
        changes.push({ key, before: applied.get(key), after: sp ? portProgram(sp, cfg) : undefined });
      }
      const refs = new Map(clusterIPRefs);
      const script = partialSyncScript(table, changes, refs);
      if (!script) return;
      try {
        await nft(script);
      } catch (err) {
        // The table is not what we think any more: the next sync is a full one.
        applied = undefined;
        throw err;
      }
      for (const c of changes) {
        if (c.after) applied.set(c.key, c.after);
        else applied.delete(c.key);
      }
      clusterIPRefs = refs;
    },
    async cleanup() {
      await nft(`add table ip ${table}\ndelete table ip ${table}\n`);
      await deleteServiceCIDRRoute(exec, cfg.serviceCIDR);
      applied = undefined;
      routed = false;
    },
  };
}

/** The table name for a cluster: `skiff` for the default Service range, else one per range (several clusters on one machine, as tests run them). */
export function tableForServiceCIDR(serviceCIDR: string): string {
  if (serviceCIDR === '10.43.0.0/16') return DEFAULT_TABLE;
  return `${DEFAULT_TABLE}-${serviceCIDR.replace(/[./]/g, '-')}`;
}
