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
//                                  pick an endpoint and DNAT
//   cluster-H-...                  all endpoints (only when internal traffic
//                                  is Local but external traffic is Cluster)
//   local-H-...                    this node's endpoints (Local external policy)
//   external-H-...                 node ports, external IPs, load balancer IPs
//                                  of a Local external policy (Cluster policy
//                                  needs none: see portProgram)
//   endpoint-E-.../ip/port         session affinity only: remember, then DNAT
// The maps and sets:
//   service-ips             daddr . proto . port -> goto service/external chain
//   service-nodeports       proto . port (to any local address) -> goto external chain
//   no-endpoint-services    daddr . proto . port -> reject (no endpoints) or drop
//                           (Local policy without local endpoints)
//   no-endpoint-nodeports   proto . port -> reject or drop
//   cluster-ips             rejects other ports of a cluster IP; the rest of the
//                           service CIDR is rejected too (nothing serves it)
//   hairpin-endpoints       endpoint . endpoint: a pod that reached itself
//                           through a Service is masqueraded
//   external-masquerade     daddr . proto . port, and
//   nodeport-masquerade     proto . port: external destinations of
//                           Cluster-policy Services, masqueraded before the maps
//   endpoints-tcp/udp/sctp  slot -> endpoint address . port, for balancing
//                           (see portProgram's dispatch)

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
  /** Told about each address and port that several Services want, whenever that changes. */
  warn?: (message: string, fields: Record<string, unknown>) => void;
}

/** One service port's share of the table. */
export interface PortProgram {
  chains: { name: string; rules: string[] }[];
  affinitySets: { name: string; timeout: number }[];
  /** The chains that own a block of slots in the `endpoints-<proto>` maps. */
  slotOwners: string[];
  /** `map` is a map or set name, `element` its element text. */
  elements: { map: string; element: string }[];
}

/**
 * Each chain that balances (service, cluster, local) owns a block of this
 * many slots in the `endpoints-<proto>` map: slot base+i is its i-th endpoint.
 * Chains with more endpoints use the first SLOT_BLOCK.
 */
export const SLOT_BLOCK = 4096;

/** Hands out slot blocks; a block is reused once its chain is gone. */
export interface SlotAllocator {
  base(owner: string): number;
  release(owner: string): void;
}

export function createSlotAllocator(): SlotAllocator {
  const bases = new Map<string, number>();
  const free: number[] = [];
  let next = 1;
  return {
    base(owner) {
      let b = bases.get(owner);
      if (b === undefined) {
        b = free.pop() ?? SLOT_BLOCK * next++;
        bases.set(owner, b);
      }
      return b;
    },
    release(owner) {
      const b = bases.get(owner);
      if (b === undefined) return;
      bases.delete(owner);
      free.push(b);
    },
  };
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
export function portProgram(sp: ServicePort, cfg: ProxyConfig, slots: SlotAllocator): PortProgram {
  const p = proto(sp);
  const suffix = chainSuffix(sp);
  const program: PortProgram = { chains: [], affinitySets: [], slotOwners: [], elements: [] };
  const endpointChains = new Map<string, string>();

  // Hairpin: a pod reaching itself through its own Service must see the
  // reply come from the Service, so the node masquerades it. One set of
  // `endpoint . endpoint` pairs, checked after DNAT (see baseCommands),
  // instead of a rule per endpoint.
  for (const ep of new Map(sp.endpoints.map((e) => [e.ip, e])).values())
    program.elements.push({ map: 'hairpin-endpoints', element: `${ep.ip} . ${ep.ip}` });

  // Endpoint chains exist only for session affinity, which needs a
  // per-endpoint set of recent clients. Without affinity the service chain
  // DNATs directly: fewer chains, which keeps both the kernel's commit and
  // nft's cache (it lists every chain) small at 10,000 Services.
  const endpointChainOf = (ep: ProxyEndpoint): string => {
    const k = `${ep.ip}:${ep.port}`;
    let name = endpointChains.get(k);
    if (name) return name;
    name = endpointChain(sp, ep);
    endpointChains.set(k, name);
    const set = affinitySet(sp, ep);
    program.affinitySets.push({ name: set, timeout: sp.affinitySeconds! });
    program.chains.push({
      name,
      rules: [`update @${set} { ip saddr }`, `meta l4proto ${p} dnat to ${ep.ip}:${ep.port}`],
    });
    return name;
  };
  /**
   * Random balancing. Without affinity, one rule: `dnat to numgen random mod
   * N offset BASE map @endpoints-<proto>`, where slots BASE..BASE+N-1 of
   * that one map hold the chain's endpoints. An endpoint replaced by
   * another is then two map elements and no rule at all: rules that DNAT or
   * jump make the kernel re-validate every chain of the table at commit,
   * which at 10,000 Services is most of an update's cost. (Upstream's
   * `numgen ... vmap { }` also makes an anonymous set per rule, and the
   * kernel names each new one by scanning the table's sets: quadratic in a
   * full sync. A named map per Service is no better: nft reads every set
   * into its cache on each run.)
   * With affinity, rule i takes 1/(n-i) of what the rules before it left
   * (the iptables statistic chain's arithmetic), towards endpoint chains.
   */
  const dispatch = (chain: string, all: ProxyEndpoint[]): string[] => {
    if (sp.affinitySeconds === undefined) {
      const eps = all.slice(0, SLOT_BLOCK);
      const base = slots.base(chain);
      program.slotOwners.push(chain);
      for (const [i, ep] of eps.entries())
        program.elements.push({ map: `endpoints-${p}`, element: `${base + i} : ${ep.ip} . ${ep.port}` });
      return [
        `meta l4proto ${p} dnat ip to numgen random mod ${eps.length} offset ${base} map @endpoints-${p}`,
      ];
    }
    const eps = all;
    // A client seen within the timeout goes back to the endpoint it had.
    const rules = eps.map((ep) => `ip saddr @${affinitySet(sp, ep)} goto ${endpointChainOf(ep)}`);
    eps.forEach((ep, i) => {
      const left = eps.length - i;
      const target = `goto ${endpointChainOf(ep)}`;
      rules.push(left > 1 ? `numgen random mod ${left} == 0 ${target}` : target);
    });
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
        ...dispatch(serviceChain, internal),
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
      program.chains.push({ name: clusterTarget, rules: dispatch(clusterTarget, all) });
    }
    let localTarget: string | undefined;
    if (sp.externalPolicyLocal && external.length > 0) {
      if (sp.internalPolicyLocal) localTarget = serviceChain;
      else {
        localTarget = `local-${suffix}`;
        program.chains.push({ name: localTarget, rules: dispatch(localTarget, external) });
      }
    }
    if (!sp.externalPolicyLocal) {
      // Cluster policy: every external packet is masqueraded, then balanced
      // as the cluster IP's. No external chain for that (upstream has one):
      // the services chain marks whatever is in the *-masquerade sets and
      // the maps go straight to the balancing chain. nft reads every chain
      // of the ruleset into its cache on each `add element` (~2 ms per
      // 1,000 chains here), so a chain per node port was ~6 ms of each
      // incremental sync at 10,000 Services.
      for (const ip of externalAddrs) {
        const key = `${ip} . ${p} . ${sp.port}`;
        program.elements.push({ map: 'external-masquerade', element: key });
        program.elements.push({ map: 'service-ips', element: `${key} : goto ${clusterTarget}` });
      }
      if (sp.nodePort !== undefined) {
        const key = `${p} . ${sp.nodePort}`;
        program.elements.push({ map: 'nodeport-masquerade', element: key });
        program.elements.push({ map: 'service-nodeports', element: `${key} : goto ${clusterTarget}` });
      }
      return program;
    }
    const externalChain = `external-${suffix}`;
    const rules = [
      // Pods and the node itself are not "external": they may use any
      // endpoint (upstream's short-circuit), the node masqueraded.
      `ip saddr ${cfg.clusterCIDR} goto ${clusterTarget}`,
      'fib saddr type local jump mark-for-masquerade',
      `fib saddr type local goto ${clusterTarget}`,
      // External clients keep their source IP and reach local endpoints
      // only; with none, nothing here DNATs and the filter chains drop.
      ...(localTarget ? [`goto ${localTarget}`] : []),
    ];
    program.chains.push({ name: externalChain, rules });
    for (const ip of externalAddrs) {
      program.elements.push({
        map: 'service-ips',
        element: `${ip} . ${p} . ${sp.port} : goto ${externalChain}`,
      });
      if (!localTarget)
        program.elements.push({ map: 'no-endpoint-services', element: `${ip} . ${p} . ${sp.port} : drop` });
    }
    if (sp.nodePort !== undefined) {
      program.elements.push({
        map: 'service-nodeports',
        element: `${p} . ${sp.nodePort} : goto ${externalChain}`,
      });
      if (!localTarget)
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
    `add set ${t} hairpin-endpoints { type ipv4_addr . ipv4_addr ; }`,
    // External destinations and node ports of Cluster-policy Services: masqueraded (see portProgram).
    `add set ${t} external-masquerade { type ipv4_addr . inet_proto . inet_service ; }`,
    `add set ${t} nodeport-masquerade { type inet_proto . inet_service ; }`,
    // One endpoints map per protocol: nft refuses a rule matching tcp that
    // maps to a map declared with the protocol-neutral `th dport`.
    ...['tcp', 'udp', 'sctp'].map(
      (p) => `add map ${t} endpoints-${p} { typeof numgen random mod 1 : ip daddr . ${p} dport ; }`,
    ),
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
      'ip daddr . meta l4proto . th dport @external-masquerade jump mark-for-masquerade',
      'ip daddr . meta l4proto . th dport vmap @service-ips',
      // Node ports answer on every local address, 127.0.0.1 included (see
      // applyNodeSysctls' route_localnet).
      'fib daddr type local meta l4proto . th dport @nodeport-masquerade jump mark-for-masquerade',
      'fib daddr type local meta l4proto . th dport vmap @service-nodeports',
    ]),
    ...chain('service-endpoints-check', ['ip daddr . meta l4proto . th dport vmap @no-endpoint-services']),
    ...chain('nodeport-endpoints-check', [
      'fib daddr type local meta l4proto . th dport vmap @no-endpoint-nodeports',
    ]),
    // Runs after DNAT, so whatever still goes to the service CIDR matched no Service port.
    ...chain('cluster-ips-check', [
      // A Service's endpoint may itself sit in the service range (cluster
      // DNS answers on its own cluster IP, src/dns/node.ts): whatever a
      // Service DNATed is fine.
      'ct status dnat return',
      'ip daddr @cluster-ips goto reject-chain',
      `ip daddr ${cfg.serviceCIDR} goto reject-chain`,
    ]),
    // DNAT at upstream's dstnat priority (-100): prerouting for traffic from
    // pods and other hosts, output for the node's own.
    ...chain('nat-prerouting', ['jump services'], 'type nat hook prerouting priority -100'),
    ...chain('nat-output', ['jump services'], 'type nat hook output priority -100'),
    ...chain(
      'nat-postrouting',
      // A DNATed packet going back to its own source is a pod reaching itself.
      ['ct status dnat ip saddr . ip daddr @hairpin-endpoints jump mark-for-masquerade', 'jump masquerading'],
      'type nat hook postrouting priority 100',
    ),
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

/**
 * Sets whose elements several ports share (a cluster IP with many ports, an
 * endpoint behind many Services): counted, so an element leaves only with
 * its last user.
 */
const SHARED_SETS = new Set(['cluster-ips', 'hairpin-endpoints']);
/**
 * Maps whose key two ports may both want: two Services given the same
 * external IP and port, or a load balancer address another has as an
 * external IP. A map holds one value per key, and adding a second fails the
 * whole transaction, every Service of the node with it. So the first port
 * to want a key holds it and the others wait in line; when the holder goes,
 * the next one's element goes in (kube-proxy's iptables rules let the first
 * match win the same way).
 */
const KEYED_MAPS = new Set([
  'service-ips',
  'no-endpoint-services',
  'service-nodeports',
  'no-endpoint-nodeports',
]);
/** Shared sets' counts by element; keyed maps' claimants (elements, holder first) by key. */
export type ElementRefs = Map<string, number | string[]>;
type Element = { map: string; element: string };
const refKey = (e: Element) => `${e.map}|${e.element}`;
const mapKey = (e: Element) => `${e.map}|${e.element.split(' : ')[0]}`;
const claimants = (refs: ElementRefs, k: string): string[] => {
  const v = refs.get(k);
  return Array.isArray(v) ? v : [];
};

/** `add element` commands, one per map, for many elements at once (one lookup of the map each). */
function elementCommands(
  t: string,
  verb: 'add' | 'delete',
  elements: { map: string; element: string }[],
): string[] {
  const byMap = new Map<string, string[]>();
  for (const e of elements) {
    const list = byMap.get(e.map) ?? [];
    // A map element is deleted by its key alone.
    list.push(verb === 'delete' ? e.element.split(' : ')[0]! : e.element);
    byMap.set(e.map, list);
  }
  return [...byMap].map(([map, list]) => `${verb} element ${t} ${map} { ${list.join(', ')} }`);
}

const addSet = (t: string, s: { name: string; timeout: number }) =>
  `add set ${t} ${s.name} { type ipv4_addr ; flags dynamic,timeout ; timeout ${s.timeout}s ; }`;

/** Chains, sets and rules of one port (its elements are added separately, batched). */
function addCommands(t: string, prog: PortProgram): string[] {
  const out: string[] = [];
  for (const s of prog.affinitySets) out.push(addSet(t, s));
  for (const c of prog.chains) out.push(`add chain ${t} ${c.name}`);
  for (const c of prog.chains) for (const r of c.rules) out.push(`add rule ${t} ${c.name} ${r}`);
  return out;
}

/** Counts a port's shared elements in; answers the ones new to the table (keyed maps aside: see claim). */
function countIn(elements: Element[], refs: ElementRefs) {
  return elements.filter((e) => {
    if (!SHARED_SETS.has(e.map)) return true;
    const n = Number(refs.get(refKey(e)) ?? 0);
    refs.set(refKey(e), n + 1);
    return n === 0;
  });
}

/** Counts a port's shared elements out; answers the ones to delete from the table. */
function countOut(elements: Element[], refs: ElementRefs) {
  return elements.filter((e) => {
    if (!SHARED_SETS.has(e.map)) return true;
    const n = Number(refs.get(refKey(e)) ?? 1) - 1;
    if (n > 0) refs.set(refKey(e), n);
    else refs.delete(refKey(e));
    return n <= 0;
  });
}

/**
 * Applies each changed port's keyed-map elements going and coming to the
 * claimants in `refs`, and answers what the table must lose and gain: a
 * key's element changes only when its holder does. A port that keeps a key
 * with another value (a new verdict) keeps its place in line.
 */
function claim(
  changes: { going: Element[]; coming: Element[] }[],
  refs: ElementRefs,
): { del: Element[]; add: Element[] } {
  const touched = new Map<string, { map: string; before: string | undefined }>();
  const touch = (e: Element) => {
    const k = mapKey(e);
    if (!touched.has(k)) touched.set(k, { map: e.map, before: claimants(refs, k)[0] });
    return k;
  };
  for (const { going, coming } of changes) {
    const replaced = new Map(going.map((e) => [mapKey(e), e.element]));
    for (const e of coming) {
      const k = touch(e);
      const list = claimants(refs, k);
      const old = replaced.get(k);
      const at = old === undefined ? -1 : list.indexOf(old);
      if (at >= 0) list[at] = e.element;
      refs.set(k, at >= 0 ? list : [...list, e.element]);
      replaced.delete(k);
    }
    for (const e of going) {
      const k = touch(e);
      if (!replaced.has(k)) continue; // replaced in place above
      const list = claimants(refs, k).filter((x) => x !== e.element);
      if (list.length) refs.set(k, list);
      else refs.delete(k);
    }
  }
  const del: Element[] = [];
  const add: Element[] = [];
  for (const [k, { map, before }] of touched) {
    const after = claimants(refs, k)[0];
    if (before === after) continue;
    if (before !== undefined) del.push({ map, element: before });
    if (after !== undefined) add.push({ map, element: after });
  }
  return { del, add };
}

const keyed = (e: Element) => KEYED_MAPS.has(e.map);

/** The keys more than one port wants, with who holds each (for a warning). */
export function contestedKeys(refs: ElementRefs): { key: string; holder: string; waiting: string[] }[] {
  const out: { key: string; holder: string; waiting: string[] }[] = [];
  for (const [k, v] of refs)
    if (Array.isArray(v) && v.length > 1) out.push({ key: k, holder: v[0]!, waiting: v.slice(1) });
  return out;
}

/** The whole table, replacing whatever is there, in one transaction. `refs` is filled in. */
export function fullSyncScript(
  table: string,
  cfg: ProxyConfig,
  programs: Iterable<PortProgram>,
  refs: ElementRefs = new Map(),
): string {
  const t = `ip ${table}`;
  const lines = [`add table ${t}`, `delete table ${t}`, `add table ${t}`, ...baseCommands(table, cfg)];
  const elements: Element[] = [];
  const wanted: Element[] = [];
  for (const prog of programs) {
    lines.push(...addCommands(t, prog));
    elements.push(
      ...countIn(
        prog.elements.filter((e) => !keyed(e)),
        refs,
      ),
    );
    wanted.push(...prog.elements.filter(keyed));
  }
  elements.push(...claim([{ going: [], coming: wanted }], refs).add);
  lines.push(...elementCommands(t, 'add', elements));
  return `${lines.join('\n')}\n`;
}

/**
 * The transaction that turns `before` into `after` for the changed ports,
 * touching only what differs: map elements that changed, chains whose rules
 * changed. An endpoint replaced by another is then its `endpoints-<proto>` slot and
 * hairpin pair, and nothing else. `refs` (the shared sets' counts) is updated.
 */
export function partialSyncScript(
  table: string,
  changes: { before: PortProgram | undefined; after: PortProgram | undefined }[],
  refs: ElementRefs,
): string {
  const t = `ip ${table}`;
  const delElements: Element[] = [];
  const addElements: Element[] = [];
  const keyedChanges: { going: Element[]; coming: Element[] }[] = [];
  const flushChains: string[] = [];
  const delChains: string[] = [];
  const delSetsAndMaps: string[] = [];
  const addSetsAndMaps: string[] = [];
  const addChains: string[] = [];
  const addRules: string[] = [];
  for (const { before, after } of changes) {
    const oldElements = new Set((before?.elements ?? []).map(refKey));
    const newElements = new Set((after?.elements ?? []).map(refKey));
    const going = (before?.elements ?? []).filter((e) => !newElements.has(refKey(e)));
    const coming = (after?.elements ?? []).filter((e) => !oldElements.has(refKey(e)));
    delElements.push(
      ...countOut(
        going.filter((e) => !keyed(e)),
        refs,
      ),
    );
    addElements.push(
      ...countIn(
        coming.filter((e) => !keyed(e)),
        refs,
      ),
    );
    keyedChanges.push({ going: going.filter(keyed), coming: coming.filter(keyed) });

    const oldChains = new Map((before?.chains ?? []).map((c) => [c.name, c.rules.join('\n')]));
    const newChains = new Set((after?.chains ?? []).map((c) => c.name));
    for (const [name] of oldChains) {
      if (!newChains.has(name)) {
        flushChains.push(`flush chain ${t} ${name}`);
        delChains.push(`delete chain ${t} ${name}`);
      }
    }
    for (const c of after?.chains ?? []) {
      const old = oldChains.get(c.name);
      if (old === c.rules.join('\n')) continue;
      if (old === undefined) addChains.push(`add chain ${t} ${c.name}`);
      else flushChains.push(`flush chain ${t} ${c.name}`);
      for (const r of c.rules) addRules.push(`add rule ${t} ${c.name} ${r}`);
    }

    const oldSets = new Set((before?.affinitySets ?? []).map((x) => x.name));
    const newSets = new Set((after?.affinitySets ?? []).map((x) => x.name));
    for (const name of oldSets) if (!newSets.has(name)) delSetsAndMaps.push(`delete set ${t} ${name}`);
    for (const x of after?.affinitySets ?? []) if (!oldSets.has(x.name)) addSetsAndMaps.push(addSet(t, x));
  }
  const claimed = claim(keyedChanges, refs);
  delElements.push(...claimed.del);
  addElements.push(...claimed.add);
  // Order matters within the transaction: nothing may be deleted while
  // something still refers to it, nor referred to before it exists.
  const lines = [
    ...elementCommands(t, 'delete', delElements),
    ...flushChains,
    ...delChains,
    ...delSetsAndMaps,
    ...addSetsAndMaps,
    ...addChains,
    ...addRules,
    ...elementCommands(t, 'add', addElements),
  ];
  return lines.length ? `${lines.join('\n')}\n` : '';
}

export function nftablesBackend(opts: NftablesOptions): ProxyBackend {
  const table = opts.table ?? DEFAULT_TABLE;
  const exec = opts.exec ?? hostExec();
  const cfg: ProxyConfig = { clusterCIDR: opts.clusterCIDR, serviceCIDR: opts.serviceCIDR };
  /** What the table holds now, per port key; undefined until a full sync succeeded. */
  let applied: Map<string, PortProgram> | undefined;
  let refs: ElementRefs = new Map();
  let contested = '';
  /** Warns once per change in which keys are contested, and by whom. */
  const warnContested = () => {
    const now = contestedKeys(refs);
    const sig = JSON.stringify(now);
    if (sig === contested) return;
    contested = sig;
    for (const c of now)
      opts.warn?.('several Services want one address and port; the first keeps it', {
        key: c.key.split('|')[1],
        holder: c.holder.split(' : ')[1],
        waiting: c.waiting.map((w) => w.split(' : ')[1]),
      });
  };
  let slots = createSlotAllocator();
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
        slots = createSlotAllocator();
        for (const [key, sp] of ports) programs.set(key, portProgram(sp, cfg, slots));
        applied = undefined;
        const nextRefs: ElementRefs = new Map();
        await nft(fullSyncScript(table, cfg, programs.values(), nextRefs));
        if (!routed) await routeServiceCIDR(exec, cfg.serviceCIDR);
        routed = true;
        applied = programs;
        refs = nextRefs;
        warnContested();
        return;
      }
      const changes: { key: string; before: PortProgram | undefined; after: PortProgram | undefined }[] = [];
      for (const key of changed) {
        const sp = ports.get(key);
        changes.push({ key, before: applied.get(key), after: sp ? portProgram(sp, cfg, slots) : undefined });
      }
      // Blocks of chains that are gone go back to the allocator (after the
      // new programs took theirs, so no block is reused within one transaction).
      for (const c of changes) {
        const kept = new Set(c.after?.slotOwners);
        for (const owner of c.before?.slotOwners ?? []) if (!kept.has(owner)) slots.release(owner);
      }
      const nextRefs = new Map(refs);
      const script = partialSyncScript(table, changes, nextRefs);
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
      refs = nextRefs;
      warnContested();
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
