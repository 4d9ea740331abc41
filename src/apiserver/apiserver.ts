// The API server: authenticated requests in, Kubernetes REST semantics out.
// Transport-free: server.ts feeds it HTTPS requests, and the in-process
// client transport calls the same handle() method.
//
// This file only wires the request pipeline (pipeline.ts, which shows the
// stages in order: authn → audit → impersonation → authz → admission → the
// registry) to the handlers (handlers/) and the REST storage of each
// resource (rest.ts). Namespace lifecycle (admission/namespace-lifecycle.ts)
// and Service IP allocation (service-allocator.ts) are given to the
// registry's write path here.

import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { type Registry, storageSegment } from '../api/registry.ts';
import { metricsResources } from '../api/resources/metrics.ts';
import { builtinTypeModel, type TypeModel } from '../api/schema/index.ts';
import { CRDController } from '../apiextensions/crd-controller.ts';
import type { ValidationRules } from '../apiextensions/custom-resource.ts';
import type { ResourceMetricsProvider } from '../metrics/metrics-server.ts';
import type { Store } from '../storage/store.ts';
import type { AdmissionChain } from './admission/admission.ts';
import { defaultAdmission } from './admission/chain.ts';
import { namespaceLifecycle } from './admission/namespace-lifecycle.ts';
import type { Auditor } from './audit/audit.ts';
import type { TokenReviewer } from './authn/token-review.ts';
import type { UserInfo } from './authn/user.ts';
import type { Authorizer } from './authz/authorizer.ts';
import { alwaysAllow, type RuleResolver } from './authz/reviews.ts';
import type { HandlerContext } from './handlers/context.ts';
import { route } from './handlers/route.ts';
import type { ApiRequest, ApiResponse } from './http.ts';
import { InflightLimit } from './inflight.ts';
import { createKubeletProxy, type KubeletClientConfig, type KubeletProxy } from './kubelet-proxy.ts';
import type { ApiServerMetrics } from './metrics.ts';
import {
  type Authenticate,
  type Logger,
  type Pipeline,
  serveAuthenticated,
  serveRequest,
  serveUpgradeRequest,
} from './pipeline.ts';
import { createResourceProxy } from './proxy.ts';
import { ResourceStorage } from './rest.ts';
import { ServiceAllocator } from './service-allocator.ts';
import type { TokenIssuer } from './token-request.ts';

export type { Logger, UserInfo };

/** Writes off the wire that run at once by default (see inflight.ts for the measurements). */
export const DEFAULT_MAX_MUTATING_INFLIGHT = 32;

export interface ApiServerOptions {
  registry: Registry;
  store: Store;
  serviceCIDR?: string;
  nodePortRange?: [number, number];
  /** host:port clients reach us at (discovery's serverAddressByClientCIDRs). */
  advertiseAddress?: string;
  version?: VersionInfo;
  log?: Logger;
  now?: () => Date;
  /** How often a watch with allowWatchBookmarks gets a BOOKMARK (default 15 s). */
  bookmarkIntervalMs?: number;
  /**
   * Writes off the wire that run at once; the rest wait their turn
   * (inflight.ts). Default 32; 0 for no limit.
   */
  maxMutatingInflight?: number;
  /** The client certificate for kubelets: pods/log, exec, attach, portforward and nodes/proxy (kubelet-proxy.ts). */
  kubeletClient?: KubeletClientConfig;
  /** Decides every request (authz/); AlwaysAllow when unset. */
  authorizer?: Authorizer;
  /** Lists a user's rules for SelfSubjectRulesReview; AlwaysAllow's when unset. */
  ruleResolver?: RuleResolver;
  /** Which pod IPs pods/proxy and services/proxy may reach (default: global unicast only, as upstream). */
  proxyAllowAddress?: (ip: string) => boolean;
  /**
   * ServiceAccount tokens: issued by serviceaccounts/<name>/token
   * (TokenRequest), and bearer tokens answered by TokenReview. Neither is
   * served when unset.
   */
  tokens?: TokenIssuer & { review: TokenReviewer };
  /**
   * The admission plugins, given this server to read from; the default is
   * upstream's default-on set that Skiff has (defaultAdmission).
   */
  admission?: (api: ApiServer) => AdmissionChain;
  /** Audit logging (--audit-policy-file, --audit-log-path); none when unset. */
  audit?: Auditor;
  /** Evaluates CRDs' x-kubernetes-validations (CEL) rules; the rules are not evaluated when unset. */
  validationRules?: ValidationRules;
  /** Prometheus metrics (metrics.ts), recorded per request and served on /metrics; neither when unset. */
  metrics?: ApiServerMetrics;
  /**
   * metrics-server's storage: metrics.k8s.io/v1beta1 is registered and
   * answered from it (handlers/resource-metrics.ts); not served when unset.
   */
  resourceMetrics?: ResourceMetricsProvider;
  /** Serve CPU profiles and heap snapshots on /debug/pprof/ (--enable-pprof; profiling.ts). */
  profiling?: boolean;
}

export interface VersionInfo {
  major: string;
  minor: string;
  gitVersion: string;
  gitCommit: string;
  gitTreeState: string;
  buildDate: string;
  goVersion: string;
  compiler: string;
  platform: string;
}

export class ApiServer {
  readonly registry: Registry;
  readonly store: Store;
  readonly log: Logger;
  readonly allocator: ServiceAllocator;
  /** pods/log, exec, attach, portforward and nodes/proxy: to the node's kubelet. */
  readonly kubelet: KubeletProxy;
  readonly #storages = new Map<string, ResourceStorage>();
  readonly #now: () => Date;
  readonly #authorizer: Authorizer;
  readonly #ruleResolver: RuleResolver;
  readonly #admission: AdmissionChain;
  /** What the handlers are given (handlers/context.ts). */
  readonly #handlers: HandlerContext;
  /** The stages every request passes (pipeline.ts). */
  readonly #pipeline: Pipeline;
  #stopped = false;
  /** Serves CustomResourceDefinitions (apiextensions/crd-controller.ts). */
  readonly crds: CRDController;

  constructor(opts: ApiServerOptions) {
    this.registry = opts.registry;
    this.store = opts.store;
    this.log = opts.log ?? (() => {});
    this.#now = opts.now ?? (() => new Date());
    const proxy = createResourceProxy({
      getPod: (ns, name) => this.storage('', 'v1', 'pods')!.get(ns, name),
      getService: (ns, name) => this.storage('', 'v1', 'services')!.get(ns, name),
      getEndpoints: (ns, name) => this.storage('', 'v1', 'endpoints')!.get(ns, name),
      ...(opts.proxyAllowAddress ? { allowAddress: opts.proxyAllowAddress } : {}),
    });
    this.#authorizer = opts.authorizer ?? alwaysAllow;
    this.#ruleResolver = opts.ruleResolver ?? alwaysAllow;
    this.kubelet = createKubeletProxy({
      getPod: (ns, name) => this.storage('', 'v1', 'pods')!.get(ns, name),
      getNode: (name) => this.storage('', 'v1', 'nodes')!.get(undefined, name),
      ...(opts.kubeletClient ? { client: opts.kubeletClient } : {}),
    });
    this.allocator = new ServiceAllocator(
      opts.serviceCIDR ?? '10.43.0.0/16',
      opts.nodePortRange ?? [30000, 32767],
      () => this.storage('', 'v1', 'services')!.cache.list(),
    );
    this.#admission = (opts.admission ?? ((api) => defaultAdmission(api)))(this);
    const api = this;
    this.#handlers = {
      registry: this.registry,
      storage: (group, version, plural) => this.storage(group, version, plural),
      allocator: this.allocator,
      kubelet: this.kubelet,
      proxy,
      get model() {
        return api.model;
      },
      now: this.#now,
      tokens: opts.tokens,
      authorizer: this.#authorizer,
      ruleResolver: this.#ruleResolver,
      bookmarkIntervalMs: opts.bookmarkIntervalMs ?? 15_000,
      watches: new Set(),
      version: opts.version ?? defaultVersion(),
      advertise: opts.advertiseAddress ?? '127.0.0.1:6443',
      openapi: new Map(),
      metrics: opts.metrics?.registry,
      resourceMetrics: opts.resourceMetrics,
      profiling: opts.profiling ?? false,
    };
    if (opts.resourceMetrics) for (const rt of metricsResources) this.registry.add(rt);
    this.#pipeline = {
      auditor: opts.audit,
      authorizer: this.#authorizer,
      admission: this.#admission,
      ...((opts.maxMutatingInflight ?? DEFAULT_MAX_MUTATING_INFLIGHT) > 0
        ? { mutatingLimit: new InflightLimit(opts.maxMutatingInflight ?? DEFAULT_MAX_MUTATING_INFLIGHT) }
        : {}),
      ...(opts.metrics ? { metrics: opts.metrics } : {}),
      serve: (scope) => route(this.#handlers, scope),
      stopping: () => this.#stopped,
      log: this.log,
    };
    this.crds = new CRDController(
      { registry: this.registry, storage: (g, v, p) => this.storage(g, v, p), log: this.log, now: this.#now },
      opts.validationRules ? { rules: opts.validationRules } : {},
    );
    this.registry.onChange(() => {
      this.#handlers.openapi.clear();
      // A kind that is no longer served stops its watch cache.
      for (const [key, storage] of this.#storages) {
        const rt = storage.rt;
        if (this.registry.get(rt.group, rt.version, rt.plural) !== rt) {
          storage.cache.stop();
          this.#storages.delete(key);
        }
      }
    });
  }

  /** What decides requests; admission's RBAC escalation check asks it too. */
  get authorizer(): Authorizer {
    return this.#authorizer;
  }

  get ruleResolver(): RuleResolver {
    return this.#ruleResolver;
  }

  get model(): TypeModel {
    return builtinTypeModel();
  }

  /** The REST storage of a resource, created (with its watch cache) on first use. */
  storage(group: string, version: string, plural: string): ResourceStorage | undefined {
    const rt = this.registry.get(group, version, plural);
    if (!rt) return undefined;
    const key = `${group}/${version}/${plural}`;
    let s = this.#storages.get(key);
    if (!s) {
      s = new ResourceStorage(rt, this.store, {
        now: this.#now,
        namespaceCheck: this.#namespaceCheck,
        log: this.log,
      });
      this.#storages.set(key, s);
    }
    return s;
  }

  // Namespace lifecycle admission, for every create of a namespaced object.
  readonly #namespaceCheck = namespaceLifecycle(() => this.storage('', 'v1', 'namespaces')!);

  /**
   * How many objects of each resource are stored, by upstream's
   * group-resource name (pods, deployments.apps), for apiserver_storage_objects.
   * Kinds served at several versions share one count.
   */
  async objectCounts(): Promise<Map<string, number>> {
    const counts = new Map<string, number>();
    const seen = new Set<string>();
    for (const rt of this.registry.all()) {
      const prefix = `/registry/${storageSegment(rt)}/`;
      if (seen.has(prefix)) continue;
      seen.add(prefix);
      counts.set(rt.group ? `${rt.plural}.${rt.group}` : rt.plural, await this.store.count(prefix));
    }
    return counts;
  }

  /** Starts the watch caches of the kinds admission reads (namespaces, services). */
  async start(): Promise<void> {
    await this.storage('', 'v1', 'namespaces')!.cache.start();
    await this.storage('', 'v1', 'services')!.cache.start();
    if (this.registry.get('apiextensions.k8s.io', 'v1', 'customresourcedefinitions')) await this.crds.start();
  }

  stop(): void {
    this.#stopped = true;
    this.crds.stop();
    for (const stop of this.#handlers.watches) stop();
    for (const s of this.#storages.values()) s.cache.stop();
  }

  /** Serves one request off the wire, authenticating it first (pipeline.ts). Never throws. */
  serve<R extends ApiRequest>(req: R, res: ApiResponse, authenticate: Authenticate<R>): Promise<void> {
    return serveRequest(this.#pipeline, req, res, authenticate);
  }

  /** Serves one request for an authenticated user. Never throws. */
  handle(req: ApiRequest, res: ApiResponse, user: UserInfo): Promise<void> {
    return serveAuthenticated(this.#pipeline, req, res, user);
  }

  /** exec, attach and port-forward off the wire: authenticated and authorized, then to the node's kubelet. */
  serveUpgrade(
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    authenticate: Authenticate<IncomingMessage>,
  ): Promise<void> {
    return serveUpgradeRequest(this.#pipeline, req, socket, head, authenticate, (...a) =>
      this.kubelet.upgrade(...a),
    );
  }
}

function defaultVersion(): VersionInfo {
  return {
    major: '1',
    minor: '32',
    gitVersion: 'v1.32.0+skiff',
    gitCommit: 'skiff',
    gitTreeState: 'clean',
    buildDate: '2026-11-21T00:00:00Z',
    goVersion: `node${process.versions.node}`,
    compiler: 'tsc',
    platform: `${process.platform}/${process.arch === 'x64' ? 'amd64' : process.arch}`,
  };
}
