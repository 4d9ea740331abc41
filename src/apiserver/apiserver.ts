// The API server's request handling: authenticated requests in, Kubernetes
// REST semantics out. Transport-free: server.ts feeds it HTTPS requests, and
// the in-process client transport calls the same handle() method.
//
// Flow (ARCHITECTURE.md): authn (done by the caller) → routing (RequestInfo)
// → admission → registry strategy (defaults, validation) → storage. The
// admission chain (admission/) runs inside rest.ts's write path at
// upstream's points: mutating plugins after defaulting, validating ones
// after the strategy's validation; namespace lifecycle and service IP
// allocation stay here.

import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import {
  ApiError,
  badRequest,
  conflict,
  forbidden,
  methodNotAllowed,
  methodNotRouted,
  notFound,
  successStatus,
} from '../api/errors.ts';
import { apply as applyFields, update as trackUpdate } from '../api/managedfields/index.ts';
import { isObject, type KubeObject, rfc3339 } from '../api/meta.ts';
import {
  applyJsonPatch,
  applyMergePatch,
  applyStrategicMergePatch,
  kubernetesPatchSchema,
  PatchError,
} from '../api/patch/index.ts';
import { groupVersion, type Registry, type ResourceType } from '../api/registry.ts';
import { isReview } from '../api/resources/auth.ts';
import { builtinTypeModel, type TypeModel } from '../api/schema/index.ts';
import { kindMessage, openAPIV2Document, openAPIV3Document, openAPIV3Index } from '../api/schema/openapi.ts';
import {
  OPENAPI_V2_PROTOBUF_CONTENT_TYPE,
  openAPIV2ProtobufFor,
  prefersOpenAPIV2Protobuf,
} from '../api/schema/openapi-v2-proto.ts';
import { checkTypes, TypeMismatch } from '../api/schema/type-check.ts';
import { unknownFields } from '../api/schema/unknown-fields.ts';
import type { Store } from '../storage/store.ts';
import { writeUpgradeResponse } from '../util/upgrade-proxy.ts';
import {
  type AdmissionAttributes,
  type AdmissionChain,
  type AdmissionResponse,
  runAdmission,
  runMutating,
  runValidating,
} from './admission/admission.ts';
import { defaultAdmission } from './admission/chain.ts';
import { type Auditor, type AuditRecord, captureResponse } from './audit/audit.ts';
import { impersonate } from './authn/impersonation.ts';
import { answerTokenReview, type TokenReviewer } from './authn/token-review.ts';
import type { UserInfo } from './authn/user.ts';
import { requestAttributes } from './authz/attributes.ts';
import { type Authorizer, forbiddenFor } from './authz/authorizer.ts';
import { alwaysAllow, answerReview, type RuleResolver } from './authz/reviews.ts';
import {
  aggregatedContentType,
  aggregatedDiscovery,
  aggregatedVersion,
  apiGroup,
  apiGroupList,
  apiResourceList,
  apiVersions,
} from './discovery.ts';
import {
  ephemeralContainersResetFields,
  ephemeralContainersStrategy,
  isEphemeralContainers,
} from './ephemeral.ts';
import { evictPod } from './eviction.ts';
import { checkAcceptable, includeObject, isDryRun, listQuery } from './handlers/query.ts';
import {
  type ApiRequest,
  type ApiResponse,
  decodeBody,
  indentJSON,
  mediaType,
  readBody,
  toStatus,
  writeJSON,
  writeStatus,
} from './http.ts';
import {
  createKubeletProxy,
  type KubeletClientConfig,
  type KubeletProxy,
  STREAMING_SUBRESOURCES,
} from './kubelet-proxy.ts';
import { createResourceProxy, proxyPath, type ResourceProxy } from './proxy.ts';
import { isLongRunning, requestTimeoutMs, serveWithin } from './request-deadline.ts';
import { isPrettyPrint, isRoutedMethod, isTrue, parseRequestInfo, type RequestInfo } from './request-info.ts';
import { type AdmissionHooks, type DeleteOptions, ResourceStorage, type WriteOptions } from './rest.ts';
import { ServiceAllocator } from './service-allocator.ts';
import { toTable, wantsTable } from './tables.ts';
import { answerTokenRequest, type TokenIssuer } from './token-request.ts';
import { watchEventLine } from './watch-cache.ts';
import { validateDeleteOptions, validateWriteOptions } from './write-options.ts';

export type { UserInfo };

export type Logger = (msg: string, fields?: Record<string, unknown>) => void;

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
}

/** What a request carries through the write path: who sent it, and the warnings for its response. */
interface RequestContext {
  user: UserInfo;
  warnings: string[];
  /** Where admission plugins' audit annotations go, when the request is audited. */
  audit?: AuditRecord | undefined;
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

const OBJECT_TYPES = ['application/json', 'application/yaml', 'application/vnd.kubernetes.protobuf'];
const PATCH_TYPES = [
  'application/json-patch+json',
  'application/merge-patch+json',
  'application/strategic-merge-patch+json',
  'application/apply-patch+yaml',
];

export class ApiServer {
  readonly registry: Registry;
  readonly store: Store;
  readonly log: Logger;
  readonly allocator: ServiceAllocator;
  readonly #storages = new Map<string, ResourceStorage>();
  readonly #now: () => Date;
  readonly #version: VersionInfo;
  readonly #advertise: string;
  readonly #bookmarkIntervalMs: number;
  #watches = new Set<() => void>();
  #openapi = new Map<string, { body: string; hash: string }>();
  /** pods/log, exec, attach, portforward and nodes/proxy: to the node's kubelet. */
  readonly kubelet: KubeletProxy;
  readonly #authorizer: Authorizer;
  readonly #ruleResolver: RuleResolver;
  /** pods/proxy and services/proxy: to a pod. */
  readonly #proxy: ResourceProxy;
  readonly #tokens: ApiServerOptions['tokens'];
  readonly #auditor: Auditor | undefined;
  /** Each audited request's record, for the stages that see only the request (its object). */
  readonly #audits = new WeakMap<ApiRequest, AuditRecord>();
  readonly #admission: AdmissionChain;
  /** Per response (the gated one a request is served through): its user and warnings. */
  readonly #requests = new WeakMap<ApiResponse, RequestContext>();

  constructor(opts: ApiServerOptions) {
    this.registry = opts.registry;
    this.store = opts.store;
    this.log = opts.log ?? (() => {});
    this.#now = opts.now ?? (() => new Date());
    this.#advertise = opts.advertiseAddress ?? '127.0.0.1:6443';
    this.#version = opts.version ?? defaultVersion();
    this.#bookmarkIntervalMs = opts.bookmarkIntervalMs ?? 15_000;
    this.#proxy = createResourceProxy({
      getPod: (ns, name) => this.storage('', 'v1', 'pods')!.get(ns, name),
      getService: (ns, name) => this.storage('', 'v1', 'services')!.get(ns, name),
      getEndpoints: (ns, name) => this.storage('', 'v1', 'endpoints')!.get(ns, name),
      ...(opts.proxyAllowAddress ? { allowAddress: opts.proxyAllowAddress } : {}),
    });
    this.#tokens = opts.tokens;
    this.#auditor = opts.audit;
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
    this.registry.onChange(() => {
      this.#openapi.clear();
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

  // OpenAPI documents are built once per registry change and served with a
  // content hash, so clients can cache them (kubectl keys its cache by hash).
  #openapiDoc(key: string, build: () => unknown): { body: string; hash: string } | undefined {
    let doc = this.#openapi.get(key);
    if (!doc) {
      const value = build();
      if (value === undefined) return undefined;
      const body = JSON.stringify(value);
      doc = { body, hash: createHash('sha512').update(body).digest('hex').slice(0, 128).toUpperCase() };
      this.#openapi.set(key, doc);
    }
    return doc;
  }

  #openapiOptions() {
    return {
      model: this.model,
      registry: this.registry,
      patchSchema: kubernetesPatchSchema,
      version: this.#version.gitVersion,
    };
  }

  /** 400 for a body whose JSON types do not fit the kind (upstream: Go decoding errors). */
  #checkTypes(rt: ResourceType, obj: unknown): void {
    const message = kindMessage(this.model, rt);
    if (!message || rt.custom) return;
    try {
      checkTypes(this.model, message, obj, rt.kind);
    } catch (err) {
      if (err instanceof TypeMismatch) {
        throw badRequest(
          `${rt.kind} in version "${rt.version}" cannot be handled as a ${rt.kind}: ${err.message}`,
        );
      }
      throw err;
    }
  }

  /**
   * fieldValidation (Strict, Warn, Ignore; Warn by default as upstream):
   * unknown fields are removed from built-in kinds in every mode, reported
   * as Warning headers with Warn, and refused with 400 under Strict.
   */
  #checkFields(rt: ResourceType, obj: unknown, query: URLSearchParams, res: ApiResponse): void {
    const mode = query.get('fieldValidation') ?? 'Warn';
    if (!['Strict', 'Warn', 'Ignore'].includes(mode)) {
      throw badRequest(
        `fieldValidation: Unsupported value: "${mode}": supported values: "Ignore", "Strict", "Warn"`,
      );
    }
    const message = kindMessage(this.model, rt);
    if (!message || rt.custom) return;
    const unknown = unknownFields(this.model, message, obj, true);
    if (unknown.length === 0 || mode === 'Ignore') return;
    if (mode === 'Strict') {
      throw badRequest(`strict decoding error: ${unknown.map((f) => `unknown field "${f}"`).join(', ')}`);
    }
    for (const f of unknown) this.#warn(res, `unknown field "${f}"`);
  }

  /**
   * Adds a `Warning: 299 - "<text>"` header to the response (kubectl prints
   * each), once per distinct text as upstream's warning recorder does.
   */
  #warn(res: ApiResponse, text: string): void {
    let ctx = this.#requests.get(res);
    if (!ctx) {
      ctx = { user: { name: '', groups: [] }, warnings: [] };
      this.#requests.set(res, ctx);
    }
    if (ctx.warnings.includes(text)) return;
    ctx.warnings.push(text);
    // Header values must be printable ASCII: escape everything else.
    const printable = (t: string) =>
      t.replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
    res.setHeader(
      'Warning',
      ctx.warnings.map((w) => `299 - ${JSON.stringify(printable(w))}`),
    );
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
        namespaceCheck: (ns) => this.#checkNamespace(ns),
        log: this.log,
      });
      this.#storages.set(key, s);
    }
    return s;
  }

  /** Starts the watch caches of the kinds admission reads (namespaces, services). */
  async start(): Promise<void> {
    await this.storage('', 'v1', 'namespaces')!.cache.start();
    await this.storage('', 'v1', 'services')!.cache.start();
  }

  #stopped = false;

  stop(): void {
    this.#stopped = true;
    for (const stop of this.#watches) stop();
    for (const s of this.#storages.values()) s.cache.stop();
  }

  // Namespace lifecycle admission: no new objects in a namespace that does
  // not exist or is being deleted.
  async #checkNamespace(namespace: string): Promise<void> {
    const namespaces = this.storage('', 'v1', 'namespaces')!;
    let ns = namespaces.cache.get(namespaces.key(undefined, namespace));
    if (!ns) {
      // The cache may lag a namespace created a moment ago.
      try {
        ns = await namespaces.get(undefined, namespace);
      } catch {
        throw notFound({ group: '', resource: 'namespaces' }, namespace);
      }
    }
    if (
      ns.metadata.deletionTimestamp ||
      (ns.status as { phase?: string } | undefined)?.phase === 'Terminating'
    ) {
      throw forbidden(
        `unable to create new content in namespace ${namespace} because it is being terminated`,
      );
    }
  }

  /**
   * exec, attach and port-forward (SPDY or WebSocket upgrades) for an
   * authenticated user: authorized as any request is, then handed to the
   * node's kubelet. A WebSocket upgrade is a GET, so it must also be allowed
   * to create the subresource, as upstream's
   * AuthorizePodWebsocketUpgradeCreatePermission (default since 1.31): a
   * user who may only read pods/exec cannot run commands through it.
   */
  async upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, user: UserInfo): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://skiff');
    const info = parseRequestInfo(req.method ?? 'GET', url.pathname, url.searchParams);
    try {
      user = impersonate(req.headers, user, this.#authorizer);
      this.#authorize(info, user, url.searchParams);
      if (info.verb === 'get' && STREAMING_SUBRESOURCES.has(info.subresource))
        this.#authorize({ ...info, verb: 'create' }, user, url.searchParams);
    } catch (err) {
      const status = toStatus(err);
      return writeUpgradeResponse(socket, status.code, JSON.stringify(status));
    }
    return this.kubelet.upgrade(req, socket, head);
  }

  /** Serves one request for an authenticated user. Never throws. */
  async handle(req: ApiRequest, res: ApiResponse, user: UserInfo): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://skiff');
    const info = parseRequestInfo(req.method ?? 'GET', url.pathname, url.searchParams);
    const started = performance.now();
    const pretty = isPrettyPrint(url.searchParams, req.headers['user-agent']);
    if (pretty) indentJSON(res);
    const audit = this.#auditor?.begin(info, user, {
      uri: req.url ?? '/',
      sourceIP: (req as { socket?: { remoteAddress?: string } }).socket?.remoteAddress,
      userAgent: req.headers['user-agent'],
    });
    if (audit) {
      this.#audits.set(req, audit);
      if (audit.level === 'RequestResponse') captureResponse(res, audit);
    }
    try {
      if (this.#stopped) throw new ApiError(503, 'ServiceUnavailable', 'the API server is shutting down');
      user = impersonate(req.headers, user, this.#authorizer);
      audit?.impersonated(user);
      this.#authorize(info, user, url.searchParams, audit);
      if (audit && isLongRunning(info)) audit.started(200);
      const route = (r: ApiResponse) => {
        this.#requests.set(r, { user, warnings: [], audit });
        return this.#route(req, r, info, url.searchParams, user);
      };
      const timeoutMs = isLongRunning(info) ? undefined : requestTimeoutMs(url.searchParams);
      if (timeoutMs === undefined) await route(res);
      else
        await serveWithin(res, timeoutMs, (gated) => {
          if (pretty) indentJSON(gated);
          return route(gated);
        });
    } catch (err) {
      const status = toStatus(err);
      if (status.code >= 500)
        this.log('request failed', {
          path: url.pathname,
          verb: info.verb,
          error: String(err),
          stack: (err as Error).stack,
        });
      writeStatus(res, status);
      audit?.complete(status.code, status);
    } finally {
      audit?.complete(res.statusCode);
      if (info.verb !== 'watch') {
        this.log('request', {
          verb: info.verb,
          path: url.pathname,
          user: user.name,
          code: res.statusCode,
          ms: Math.round((performance.now() - started) * 10) / 10,
        });
      }
    }
  }

  async #route(
    req: ApiRequest,
    res: ApiResponse,
    info: RequestInfo,
    query: URLSearchParams,
    user: UserInfo,
  ): Promise<void> {
    const path = info.path.replace(/\/+$/, '') || '/';
    const accept = req.headers.accept;
    if (!info.isResourceRequest) {
      if (!isRoutedMethod(info, req.method ?? 'GET')) throw methodNotRouted();
      return this.#nonResource(res, path, info, accept);
    }
    const rt = this.registry.get(info.group, info.version, info.resource);
    if (!rt) throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
    if (rt.namespaced && info.namespace === undefined && info.name !== '' && info.resource !== 'namespaces') {
      throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
    }
    if (!rt.namespaced && info.namespace !== undefined) {
      throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
    }
    if (!isRoutedMethod(info, req.method ?? 'GET')) throw methodNotRouted();
    // A kind that serves only some verbs has no route for the others.
    if (rt.verbs && !info.subresource && !rt.verbs.includes(info.verb)) throw methodNotRouted();
    if (isReview(rt)) return this.#review(req, res, info, rt, user);
    const storage = this.storage(info.group, info.version, info.resource)!;
    // A proxied response is the backend's: no content negotiation for it.
    if (!/^proxy(\/|$)/.test(info.subresource)) checkAcceptable(accept);

    if (info.subresource) return this.#subresource(req, res, info, query, rt, storage);

    const ns = rt.namespaced ? info.namespace : undefined;
    switch (info.verb) {
      case 'get': {
        const obj = await storage.get(ns, info.name, query.get('resourceVersion') ?? undefined);
        return this.#respondObject(res, 200, rt, obj, accept, query);
      }
      case 'list': {
        const list = await storage.list(ns, listQuery(query));
        if (wantsTable(accept)) {
          return writeJSON(
            res,
            200,
            toTable(rt, list.items, list.metadata, { include: includeObject(query), now: this.#now() }),
          );
        }
        return writeJSON(res, 200, list);
      }
      case 'watch':
        return this.#watch(req, res, rt, storage, ns, info.name, query, accept);
      case 'create': {
        validateWriteOptions('CreateOptions', query);
        const body = await this.#readObject(req, rt);
        if (rt.group === '' && rt.plural === 'bindings') {
          const pods = this.storage('', 'v1', 'pods')!;
          return this.#bindPod(res, pods, ns, body.metadata.name ?? '', body, query, '');
        }
        this.#checkFields(rt, body, query, res);
        let encoded: string | undefined;
        const created = await this.#create(storage, rt, ns, body, {
          ...this.#writeOptions(req, res, query, rt, undefined),
          encoded: (json) => {
            encoded = json;
          },
          // #readObject decoded the body for this request alone.
          owned: true,
        });
        return this.#respondObject(res, 201, rt, created, accept, query, encoded);
      }
      case 'update': {
        validateWriteOptions('UpdateOptions', query);
        const body = await this.#readObject(req, rt);
        this.#checkFields(rt, body, query, res);
        const result = await this.#update(
          storage,
          ns,
          info.name,
          body,
          this.#writeOptions(req, res, query, rt, undefined),
        );
        return this.#respondObject(res, result.created ? 201 : 200, rt, result.object, accept, query);
      }
      case 'patch': {
        const result = await this.#patch(req, res, storage, rt, ns, info.name, query, undefined);
        return this.#respondObject(res, result.created ? 201 : 200, rt, result.object, accept, query);
      }
      case 'delete': {
        const opts = await this.#deleteOptions(req, res, query, rt);
        const result = await this.#delete(storage, ns, info.name, opts);
        if (result.deleted && !returnsObjectOnDelete(rt)) {
          return writeJSON(
            res,
            200,
            successStatus({
              name: info.name,
              group: rt.group,
              kind: rt.plural,
              uid: result.object.metadata.uid ?? '',
            }),
          );
        }
        return this.#respondObject(res, result.deleted ? 200 : 202, rt, result.object, accept, query);
      }
      case 'deletecollection': {
        const opts = await this.#deleteOptions(req, res, query, rt);
        const list = await storage.deleteCollection(ns, listQuery(query), opts);
        return writeJSON(res, 200, list);
      }
      default:
        throw methodNotAllowed(req.method ?? '', rt.kind);
    }
  }

  async #nonResource(
    res: ApiResponse,
    path: string,
    info: RequestInfo,
    accept: string | undefined,
  ): Promise<void> {
    if (path === '/version') return writeJSON(res, 200, this.#version);
    if (['/healthz', '/livez', '/readyz'].includes(path)) {
      res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end('ok');
      return;
    }
    if (path === '/openapi/v2') {
      const doc = this.#openapiDoc('v2', () => openAPIV2Document(this.#openapiOptions()))!;
      // client-go (kubectl apply, diff, explain) asks for the gnostic
      // protobuf form and cannot read JSON.
      if (prefersOpenAPIV2Protobuf(accept)) {
        const pb = openAPIV2ProtobufFor(doc);
        res.writeHead(200, {
          'Content-Type': OPENAPI_V2_PROTOBUF_CONTENT_TYPE,
          ETag: `"${pb.hash}"`,
          Vary: 'Accept',
        });
        res.end(pb.body);
        return;
      }
      res.writeHead(200, { 'Content-Type': 'application/json', ETag: `"${doc.hash}"`, Vary: 'Accept' });
      res.end(doc.body);
      return;
    }
    if (path === '/openapi/v3') {
      const index = openAPIV3Index(this.registry, (gv) => {
        const [prefix, ...rest] = gv.split('/');
        const [group, version] = prefix === 'api' ? ['', rest[0] ?? ''] : [rest[0] ?? '', rest[1] ?? ''];
        return (
          this.#openapiDoc(gv, () => openAPIV3Document(this.#openapiOptions(), group, version))?.hash ?? ''
        );
      });
      return writeJSON(res, 200, index);
    }
    if (path.startsWith('/openapi/v3/')) {
      const gv = path.slice('/openapi/v3/'.length);
      const [prefix, ...rest] = gv.split('/');
      const [group, version] =
        prefix === 'api' && rest.length === 1
          ? ['', rest[0]!]
          : prefix === 'apis' && rest.length === 2
            ? [rest[0]!, rest[1]!]
            : ['', ''];
      const doc = version
        ? this.#openapiDoc(gv, () => openAPIV3Document(this.#openapiOptions(), group, version))
        : undefined;
      if (!doc) throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
      res.writeHead(200, {
        'Content-Type': 'application/json',
        ETag: `"${doc.hash}"`,
        'Cache-Control': 'public, immutable',
      });
      res.end(doc.body);
      return;
    }
    if (path === '/api' || path === '/apis') {
      const agg = aggregatedVersion(accept);
      if (agg) {
        return writeJSON(
          res,
          200,
          aggregatedDiscovery(this.registry, path === '/api', agg),
          aggregatedContentType(agg),
        );
      }
      return writeJSON(
        res,
        200,
        path === '/api' ? apiVersions(this.#advertise) : apiGroupList(this.registry),
      );
    }
    if (info.prefix === 'api' && info.version === 'v1' && path === '/api/v1') {
      return writeJSON(res, 200, apiResourceList(this.registry, '', 'v1'));
    }
    if (info.prefix === 'apis' && info.group) {
      const group = this.registry.groups().find((g) => g.group === info.group);
      if (group && !info.version) return writeJSON(res, 200, apiGroup(group));
      if (group?.versions.includes(info.version)) {
        return writeJSON(res, 200, apiResourceList(this.registry, info.group, info.version));
      }
    }
    if (path === '/') {
      return writeJSON(res, 200, {
        paths: [
          '/api',
          '/api/v1',
          '/apis',
          ...this.registry
            .groups()
            .flatMap((g) => g.versions.map((v) => `/apis/${g.group}/${v}`))
            .filter((p) => !p.startsWith('/apis//')),
          '/healthz',
          '/livez',
          '/readyz',
          '/version',
        ],
      });
    }
    throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
  }

  async #readObject(req: ApiRequest, rt: ResourceType): Promise<KubeObject> {
    const body = decodeBody(await readBody(req), req.headers['content-type'], OBJECT_TYPES);
    const obj = checkObject(body, rt);
    this.#checkTypes(rt, obj);
    this.#audits.get(req)?.requestObject(obj);
    return obj;
  }

  async #create(
    storage: ResourceStorage,
    rt: ResourceType,
    ns: string | undefined,
    body: KubeObject,
    opts: WriteOptions,
  ): Promise<KubeObject> {
    if (rt.group === '' && rt.plural === 'services') {
      const release = this.allocator.allocate(body, undefined);
      try {
        return await storage.create(ns, body, opts);
      } finally {
        release();
      }
    }
    return storage.create(ns, body, opts);
  }

  async #update(
    storage: ResourceStorage,
    ns: string | undefined,
    name: string,
    body: KubeObject,
    opts: WriteOptions,
  ) {
    const subresource = opts.subresource;
    if (storage.rt.group === '' && storage.rt.plural === 'services' && !subresource) {
      const current = await storage.get(ns, name).catch(() => undefined);
      const release = this.allocator.allocate(body, current);
      try {
        return await storage.update(ns, name, body, opts);
      } finally {
        release();
      }
    }
    return storage.update(ns, name, body, opts);
  }

  async #delete(storage: ResourceStorage, ns: string | undefined, name: string, opts: DeleteOptions) {
    if (storage.rt.group === '' && storage.rt.plural === 'namespaces')
      return this.#deleteNamespace(storage, name, opts);
    return storage.delete(ns, name, opts);
  }

  // As upstream's namespace REST Delete (pkg/registry/core/namespace/storage):
  // the first DELETE only marks the namespace (deletionTimestamp, phase
  // Terminating), even without spec.finalizers, so its content is always
  // removed first. The namespace controller empties it and removes the
  // "kubernetes" finalizer through /finalize, which completes the deletion;
  // a DELETE of a marked namespace whose spec.finalizers are empty deletes it.
  async #deleteNamespace(storage: ResourceStorage, name: string, opts: DeleteOptions) {
    if (['default', 'kube-system', 'kube-public'].includes(name)) {
      throw forbidden(`namespaces "${name}" is forbidden: this namespace may not be deleted`);
    }
    const current = await storage.get(undefined, name);
    const specFinalizers = ((current.spec ?? {}) as { finalizers?: string[] }).finalizers ?? [];
    if (current.metadata.deletionTimestamp) {
      if (specFinalizers.length === 0) return storage.delete(undefined, name, opts);
      return { object: current, deleted: false };
    }
    if (opts.admission) {
      await opts.admission.admit('DELETE', undefined, current);
      await opts.admission.validate('DELETE', undefined, current);
    }
    const uid = opts.preconditions?.uid;
    if (uid && uid !== current.metadata.uid) {
      throw conflict(
        { group: '', resource: 'namespaces' },
        name,
        `Precondition failed: UID in precondition: ${uid}, UID in object meta: ${current.metadata.uid}`,
      );
    }
    const rv = opts.preconditions?.resourceVersion;
    const result = await storage.guaranteedUpdate(
      undefined,
      name,
      (ns) => {
        ns.status = { ...(ns.status as object), phase: 'Terminating' };
        // The propagation policy becomes the orphan / foregroundDeletion
        // finalizer the garbage collector acts on, as for other objects.
        const finalizers = new Set(ns.metadata.finalizers ?? []);
        const policy = opts.propagationPolicy ?? (opts.orphanDependents ? 'Orphan' : undefined);
        if (policy === 'Orphan') {
          finalizers.add('orphan');
          finalizers.delete('foregroundDeletion');
        } else if (policy === 'Foreground') {
          finalizers.add('foregroundDeletion');
          finalizers.delete('orphan');
        }
        if (finalizers.size > 0) ns.metadata.finalizers = [...finalizers];
        else delete ns.metadata.finalizers;
        return ns;
      },
      {
        subresource: 'status',
        markDeleted: true,
        ...(opts.dryRun ? { dryRun: true } : {}),
        ...(rv ? { resourceVersion: rv } : {}),
      },
    );
    return { object: result.object, deleted: false };
  }

  async #patch(
    req: ApiRequest,
    res: ApiResponse,
    storage: ResourceStorage,
    rt: ResourceType,
    ns: string | undefined,
    name: string,
    query: URLSearchParams,
    subresource: string | undefined,
  ) {
    const type = mediaType(req.headers['content-type']);
    if (!PATCH_TYPES.includes(type)) {
      throw new ApiError(
        415,
        'UnsupportedMediaType',
        `the body of the request was in an unknown format - accepted media types include: ${PATCH_TYPES.join(', ')}`,
      );
    }
    validateWriteOptions('PatchOptions', query, type);
    const raw = await readBody(req);
    const patch = decodeBody(raw, type.endsWith('yaml') ? 'application/yaml' : 'application/json', [
      'application/json',
      'application/yaml',
    ]);
    const opts = this.#writeOptions(req, res, query, rt, subresource);
    if (type === 'application/apply-patch+yaml') {
      // Server-side apply: the field manager merges the applied
      // configuration into the live object, removes what this manager
      // stopped applying, and refuses to take fields other managers own
      // (409) unless force=true.
      const manager = query.get('fieldManager');
      if (!manager) {
        throw badRequest('PATCH, application/apply-patch+yaml: fieldManager is required for apply requests');
      }
      const force = isTrue(query.get('force'));
      const applied = checkObject(patch, rt);
      this.#checkTypes(rt, applied);
      this.#checkFields(rt, applied, query, res);
      if (applied.metadata.name && applied.metadata.name !== name) {
        throw badRequest(
          `the name of the object (${applied.metadata.name}) does not match the name on the URL (${name})`,
        );
      }
      const named = { ...applied, metadata: { ...applied.metadata, name } };
      const applyTo = (live: KubeObject | undefined): KubeObject =>
        applyFields({
          live,
          applied: named,
          manager,
          force,
          apiVersion: groupVersion(rt),
          now: rfc3339(new Date()),
          ...this.#fieldScope(rt, subresource),
        }).object as KubeObject;
      const { trackFields: _untracked, ...applyOpts } = opts;
      const exists = await storage.get(ns, name).then(
        () => true,
        (err) => {
          if (err instanceof ApiError && err.code === 404) return false;
          throw err;
        },
      );
      if (!exists && !subresource) {
        const object = await this.#create(storage, rt, ns, applyTo(undefined), applyOpts);
        return { object, created: true };
      }
      return this.#withServiceIPs(rt, subresource, (allocate) =>
        storage.guaranteedUpdate(ns, name, (current) => allocate(applyTo(current), current), applyOpts),
      );
    }
    const precondition =
      isObject(patch) && isObject(patch.metadata)
        ? (patch.metadata.resourceVersion as string | undefined)
        : undefined;
    return this.#withServiceIPs(rt, subresource, (allocate) =>
      storage.guaranteedUpdate(
        ns,
        name,
        (current) => {
          let next: unknown;
          try {
            if (type === 'application/json-patch+json') next = applyJsonPatch(current, patch);
            else if (type === 'application/merge-patch+json') next = applyMergePatch(current, patch);
            else next = strategic(current, patch, rt);
          } catch (err) {
            if (err instanceof PatchError) {
              throw new ApiError(422, 'Invalid', err.message);
            }
            if (err instanceof ApiError) throw err;
            throw badRequest(String((err as Error).message));
          }
          if (!isObject(next) || !isObject(next.metadata)) throw badRequest('the patch removed metadata');
          this.#checkTypes(rt, next);
          this.#checkFields(rt, next, query, res);
          return allocate(next as KubeObject, current);
        },
        { ...opts, ...(precondition ? { resourceVersion: precondition } : {}) },
      ),
    );
  }

  /**
   * Runs a write with ClusterIP/NodePort allocation for Services: each
   * attempt of a retried update allocates against the current object, and
   * every reservation is released once the write is done.
   */
  async #withServiceIPs<T>(
    rt: ResourceType,
    subresource: string | undefined,
    write: (allocate: (next: KubeObject, current: KubeObject | undefined) => KubeObject) => Promise<T>,
  ): Promise<T> {
    if (!(rt.group === '' && rt.plural === 'services') || subresource) return write((next) => next);
    const releases: Array<() => void> = [];
    try {
      return await write((next, current) => {
        releases.push(this.allocator.allocate(next, current));
        return next;
      });
    } finally {
      for (const release of releases) release();
    }
  }

  /**
   * Which message a kind's fields are typed by, and which fields a write
   * through this endpoint does not own: status for the main resource of a
   * kind with a status subresource, everything but status through /status,
   * everything but spec.ephemeralContainers through pods/ephemeralcontainers.
   */
  #fieldScope(rt: ResourceType, subresource: string | undefined) {
    const rootMessage = kindMessage(this.model, rt);
    const resetFields = subresource === 'status' ? [['spec']] : rt.status && !subresource ? [['status']] : [];
    return {
      ...(rootMessage ? { rootMessage } : {}),
      model: this.model,
      patchSchema: kubernetesPatchSchema,
      resetFields: isEphemeralContainers(rt, subresource)
        ? ephemeralContainersResetFields(this.model)
        : (rt.updateStrategies?.[subresource ?? '']?.resetFields ?? resetFields),
      ...(subresource ? { subresource } : {}),
    };
  }

  /**
   * dryRun plus field-ownership tracking for a create, update or patch. The
   * manager is the fieldManager parameter or, as upstream, the client's
   * User-Agent up to its first '/'.
   */
  #writeOptions(
    req: ApiRequest,
    res: ApiResponse,
    query: URLSearchParams,
    rt: ResourceType,
    subresource: string | undefined,
  ): WriteOptions {
    const manager =
      query.get('fieldManager') ?? (req.headers['user-agent'] ?? 'unknown').split('/')[0]!.slice(0, 128);
    if (manager.length > 128) throw badRequest('fieldManager: Too long: may not be more than 128 bytes');
    const scope = this.#fieldScope(rt, subresource);
    const dryRun = isDryRun(query);
    return {
      dryRun,
      admission: this.#admissionHooks(res, rt, subresource, dryRun),
      ...(subresource ? { subresource } : {}),
      ...(isEphemeralContainers(rt, subresource) ? { strategy: ephemeralContainersStrategy } : {}),
      ...(subresource && rt.updateStrategies?.[subresource]
        ? { strategy: rt.updateStrategies[subresource] }
        : {}),
      user: this.#userOf(res),
      trackFields: (live, next) => {
        const managedFields = trackUpdate({
          live,
          updated: next,
          manager,
          apiVersion: groupVersion(rt),
          now: rfc3339(new Date()),
          ...scope,
        });
        if (managedFields.length > 0) next.metadata.managedFields = managedFields;
        else delete next.metadata.managedFields;
      },
    };
  }

  async #deleteOptions(
    req: ApiRequest,
    res: ApiResponse,
    query: URLSearchParams,
    rt: ResourceType,
  ): Promise<DeleteOptions> {
    const opts: DeleteOptions = {};
    const raw = await readBody(req);
    if (raw.length > 0 && raw.toString().trim() !== '') {
      const body = decodeBody(raw, req.headers['content-type'] ?? 'application/json', OBJECT_TYPES);
      if (isObject(body)) Object.assign(opts, body);
    }
    const grace = query.get('gracePeriodSeconds');
    if (grace !== null) opts.gracePeriodSeconds = Number(grace);
    const policy = query.get('propagationPolicy');
    if (policy) opts.propagationPolicy = policy as DeleteOptions['propagationPolicy'];
    if (query.get('orphanDependents') !== null) opts.orphanDependents = isTrue(query.get('orphanDependents'));
    const bodyDryRun = (opts as { dryRun?: unknown }).dryRun;
    const dryRun = [...query.getAll('dryRun'), ...(Array.isArray(bodyDryRun) ? bodyDryRun : [])];
    validateDeleteOptions({ ...opts, dryRun });
    opts.dryRun = dryRun.length > 0;
    if (opts.gracePeriodSeconds !== undefined && !Number.isFinite(opts.gracePeriodSeconds)) {
      throw badRequest(`invalid gracePeriodSeconds: ${grace}`);
    }
    // Negative values will be treated as the value `1s` on the delete path (rest.BeforeDelete).
    if (opts.gracePeriodSeconds !== undefined && opts.gracePeriodSeconds < 0) opts.gracePeriodSeconds = 1;
    // Only what the client sent may be in the body; the chain is ours.
    delete opts.admission;
    opts.admission = this.#admissionHooks(res, rt, undefined, opts.dryRun);
    return opts;
  }

  /**
   * The admission chain for a write through `rt` (and a subresource), as
   * rest.ts calls it: the attributes come from the objects written, the
   * user from the request, and warnings go onto the response.
   */
  #admissionHooks(
    res: ApiResponse,
    rt: ResourceType,
    subresource: string | undefined,
    dryRun: boolean,
  ): AdmissionHooks {
    const attrs = (
      operation: AdmissionAttributes['operation'],
      object: KubeObject | undefined,
      old: KubeObject | undefined,
    ): AdmissionAttributes => ({
      operation,
      group: rt.group,
      version: rt.version,
      kind: rt.kind,
      resource: rt.plural,
      subresource: subresource ?? '',
      namespace: rt.namespaced ? ((object ?? old)?.metadata.namespace ?? '') : '',
      name: (object ?? old)?.metadata.name ?? '',
      ...(object ? { object } : {}),
      ...(old ? { oldObject: old } : {}),
      user: this.#userOf(res),
      dryRun,
      addAuditAnnotation: (key, value) => this.#requests.get(res)?.audit?.annotate(key, value),
    });
    return {
      admit: async (op, object, old) =>
        this.#respondAdmission(res, await runMutating(attrs(op, object, old), this.#admission.mutating)),
      validate: async (op, object, old) =>
        this.#respondAdmission(res, await runValidating(attrs(op, object, old), this.#admission.validating)),
    };
  }

  /** Both phases at once, for subresources whose object is not what is stored (Binding, Eviction, Scale). */
  async #admitObject(
    res: ApiResponse,
    attrs: Omit<AdmissionAttributes, 'user' | 'namespace' | 'name'> & { namespace?: string; name: string },
  ): Promise<void> {
    const full: AdmissionAttributes = {
      namespace: '',
      ...attrs,
      user: this.#userOf(res),
      addAuditAnnotation: (key, value) => this.#requests.get(res)?.audit?.annotate(key, value),
    };
    this.#respondAdmission(
      res,
      await runAdmission(full, this.#admission.mutating, this.#admission.validating),
    );
  }

  #userOf(res: ApiResponse): UserInfo {
    return this.#requests.get(res)?.user ?? { name: 'system:anonymous', groups: ['system:unauthenticated'] };
  }

  #respondAdmission(res: ApiResponse, r: AdmissionResponse): void {
    for (const w of r.warnings ?? []) this.#warn(res, w);
  }

  /** Authorization, after authentication and before anything else (upstream's WithAuthorization): 403 unless allowed. */
  #authorize(info: RequestInfo, user: UserInfo, query: URLSearchParams, audit?: AuditRecord): void {
    const attrs = requestAttributes(info, user, query);
    const r = this.#authorizer.authorize(attrs);
    audit?.authorized(r.decision === 'allow' ? 'allow' : 'forbid', r.reason);
    if (r.decision !== 'allow') throw forbiddenFor(attrs, r.reason);
  }

  /** A POST of a review kind: answered from the authorizer, never stored. */
  async #review(req: ApiRequest, res: ApiResponse, info: RequestInfo, rt: ResourceType, user: UserInfo) {
    if (info.verb !== 'create' || info.name !== '') throw methodNotAllowed(req.method ?? '', rt.kind);
    const body = await this.#readObject(req, rt);
    if (rt.plural === 'tokenreviews') {
      if (!this.#tokens)
        throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
      const { review, audiences } = this.#tokens;
      return writeJSON(res, 201, await answerTokenReview(body as Record<string, unknown>, review, audiences));
    }
    const answer = answerReview(rt.plural, body as unknown as Record<string, unknown>, {
      user,
      namespace: info.namespace ?? '',
      authorizer: this.#authorizer,
      resolver: this.#ruleResolver,
    });
    return writeJSON(res, 201, answer);
  }

  async #subresource(
    req: ApiRequest,
    res: ApiResponse,
    info: RequestInfo,
    query: URLSearchParams,
    rt: ResourceType,
    storage: ResourceStorage,
  ): Promise<void> {
    const ns = rt.namespaced ? info.namespace : undefined;
    const accept = req.headers.accept;
    const sub = info.subresource;
    // Both answer and take the whole object; what a write may change is the subresource's (rest.ts, ephemeral.ts).
    if ((sub === 'status' && rt.status) || isEphemeralContainers(rt, sub) || rt.updateStrategies?.[sub]) {
      if (info.verb === 'get')
        return this.#respondObject(res, 200, rt, await storage.get(ns, info.name), accept, query);
      if (info.verb === 'update') {
        validateWriteOptions('UpdateOptions', query);
        const body = await this.#readObject(req, rt);
        const r = await this.#update(
          storage,
          ns,
          info.name,
          body,
          this.#writeOptions(req, res, query, rt, sub),
        );
        return this.#respondObject(res, 200, rt, r.object, accept, query);
      }
      if (info.verb === 'patch') {
        const r = await this.#patch(req, res, storage, rt, ns, info.name, query, sub);
        return this.#respondObject(res, 200, rt, r.object, accept, query);
      }
    }
    if (sub === 'scale' && rt.scale) return this.#scale(req, res, info, query, rt, storage);
    if (sub === 'finalize' && rt.kind === 'Namespace' && info.verb === 'update') {
      const body = await this.#readObject(req, rt);
      const finalizers = ((body.spec ?? {}) as { finalizers?: string[] }).finalizers ?? [];
      const r = await storage.guaranteedUpdate(
        undefined,
        info.name,
        (ns) => {
          ns.spec = { ...(ns.spec as object), finalizers };
          return ns;
        },
        {
          dryRun: isDryRun(query),
          subresource: 'finalize',
          admission: this.#admissionHooks(res, rt, 'finalize', isDryRun(query)),
        },
      );
      return this.#respondObject(res, 200, rt, r.object, accept, query);
    }
    if (sub === 'binding' && rt.kind === 'Pod' && info.verb === 'create') {
      validateWriteOptions('CreateOptions', query);
      const body = await this.#readObject(req, { ...rt, kind: 'Binding', group: '', version: 'v1' });
      return this.#bindPod(res, storage, ns, info.name, body, query, 'binding');
    }
    if (
      sub === 'token' &&
      rt.kind === 'ServiceAccount' &&
      rt.group === '' &&
      info.verb === 'create' &&
      this.#tokens
    ) {
      validateWriteOptions('CreateOptions', query);
      const body = await this.#readObject(req, {
        ...rt,
        kind: 'TokenRequest',
        group: 'authentication.k8s.io',
        version: 'v1',
      });
      await this.#admitObject(res, {
        operation: 'CREATE',
        group: 'authentication.k8s.io',
        version: 'v1',
        kind: 'TokenRequest',
        resource: 'serviceaccounts',
        subresource: 'token',
        namespace: ns ?? '',
        name: info.name,
        object: body,
        dryRun: isDryRun(query),
      });
      const answer = await answerTokenRequest(
        {
          ...this.#tokens,
          get: (resource, namespace, name) =>
            this.storage('', 'v1', resource)!.get(resource === 'nodes' ? undefined : namespace, name),
          now: this.#now,
        },
        ns ?? '',
        info.name,
        body,
      );
      return writeJSON(res, 201, answer);
    }
    if (sub === 'eviction' && rt.kind === 'Pod' && info.verb === 'create') {
      validateWriteOptions('CreateOptions', query);
      const body = decodeBody(await readBody(req), req.headers['content-type'], OBJECT_TYPES);
      await this.#admitObject(res, {
        operation: 'CREATE',
        group: 'policy',
        version: 'v1',
        kind: 'Eviction',
        resource: 'pods',
        subresource: 'eviction',
        namespace: ns ?? '',
        name: info.name,
        ...(isObject(body) && isObject(body.metadata) ? { object: body as KubeObject } : {}),
        dryRun: isDryRun(query),
      });
      await evictPod(
        { pods: storage, pdbs: this.storage('policy', 'v1', 'poddisruptionbudgets')!, now: this.#now },
        ns ?? '',
        info.name,
        body,
        isDryRun(query),
      );
      return writeJSON(res, 201, successStatus());
    }
    if (rt.kind === 'Pod' && sub === 'log' && info.verb === 'get') {
      return this.kubelet.podLog(res, ns ?? '', info.name, query);
    }
    // Streams arrive as upgrades (server.ts hands those to this.kubelet.upgrade).
    if (rt.kind === 'Pod' && STREAMING_SUBRESOURCES.has(sub)) throw badRequest('Upgrade request required');
    if ((rt.kind === 'Pod' || rt.kind === 'Service') && rt.group === '' && /^proxy(\/|$)/.test(sub)) {
      const { base, path } = proxyPath(req.url ?? '', rt.plural, info.name);
      const serve = rt.kind === 'Pod' ? this.#proxy.pod : this.#proxy.service;
      return serve(req, res, ns ?? '', info.name, base, path, query);
    }
    if (rt.kind === 'Node' && rt.group === '' && /^proxy(\/|$)/.test(sub)) {
      return this.kubelet.nodeProxy(req, res, info.name, sub.replace(/^proxy\/?/, ''), query);
    }
    throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
  }

  /** Binds a pod to the Binding's target node (pods/binding, and the bindings resource). */
  async #bindPod(
    res: ApiResponse,
    storage: ResourceStorage,
    ns: string | undefined,
    podName: string,
    body: KubeObject,
    query: URLSearchParams,
    subresource: 'binding' | '',
  ): Promise<void> {
    const target = (body as { target?: { name?: string; kind?: string } }).target;
    if (!target?.name)
      throw new ApiError(422, 'Invalid', 'Binding "" is invalid: target.name: Required value');
    // Admitted as a Binding: pods/binding, or the bindings resource.
    await this.#admitObject(res, {
      operation: 'CREATE',
      group: '',
      version: 'v1',
      kind: 'Binding',
      resource: subresource === 'binding' ? 'pods' : 'bindings',
      subresource,
      namespace: ns ?? '',
      name: podName,
      object: { ...body, metadata: { ...body.metadata, namespace: ns ?? '' } },
      dryRun: isDryRun(query),
    });
    await storage.guaranteedUpdate(
      ns,
      podName,
      (pod) => {
        const spec = (pod.spec ?? {}) as { nodeName?: string };
        if (spec.nodeName) {
          throw new ApiError(
            409,
            'Conflict',
            `Operation cannot be fulfilled on pods/binding "${podName}": pod ${podName} is already assigned to node "${spec.nodeName}"`,
          );
        }
        if (pod.metadata.deletionTimestamp) {
          throw new ApiError(
            409,
            'Conflict',
            `Operation cannot be fulfilled on pods/binding "${podName}": pod ${podName} is being deleted, cannot be assigned to a host`,
          );
        }
        pod.spec = { ...spec, nodeName: target.name };
        const status = (pod.status ?? {}) as { conditions?: Array<{ type: string }> };
        pod.status = {
          ...status,
          conditions: [
            ...(status.conditions ?? []).filter((c) => c.type !== 'PodScheduled'),
            {
              type: 'PodScheduled',
              status: 'True',
              lastProbeTime: null,
              lastTransitionTime: new Date().toISOString().slice(0, 19) + 'Z',
            },
          ],
        };
        return pod;
      },
      // Binding writes spec.nodeName and the PodScheduled condition together.
      { dryRun: isDryRun(query), subresource: 'binding' },
    );
    return writeJSON(res, 201, successStatus());
  }

  async #scale(
    req: ApiRequest,
    res: ApiResponse,
    info: RequestInfo,
    query: URLSearchParams,
    rt: ResourceType,
    storage: ResourceStorage,
  ): Promise<void> {
    const ns = rt.namespaced ? info.namespace : undefined;
    const toScale = (obj: KubeObject) => scaleOf(obj, rt);
    if (info.verb === 'get') return writeJSON(res, 200, toScale(await storage.get(ns, info.name)));
    let body: unknown;
    if (info.verb === 'update')
      body = decodeBody(await readBody(req), req.headers['content-type'], OBJECT_TYPES);
    const patchType = mediaType(req.headers['content-type']);
    const patchBody =
      info.verb === 'patch'
        ? decodeBody(
            await readBody(req),
            patchType.endsWith('yaml') ? 'application/yaml' : 'application/json',
            ['application/json', 'application/yaml'],
          )
        : undefined;
    if (info.verb !== 'update' && info.verb !== 'patch') throw methodNotAllowed(req.method ?? '', 'Scale');
    const result = await storage.guaranteedUpdate(
      ns,
      info.name,
      async (current) => {
        const scale = toScale(current);
        let next: unknown = body;
        if (info.verb === 'patch') {
          next =
            patchType === 'application/json-patch+json'
              ? applyJsonPatch(scale, patchBody)
              : patchType === 'application/merge-patch+json'
                ? applyMergePatch(scale, patchBody)
                : applyStrategicMergePatch(scale, patchBody, kubernetesPatchSchema);
        }
        const replicas = (next as { spec?: { replicas?: unknown } } | undefined)?.spec?.replicas;
        if (typeof replicas !== 'number' || !Number.isInteger(replicas) || replicas < 0) {
          throw new ApiError(
            422,
            'Invalid',
            `Scale.autoscaling "${info.name}" is invalid: spec.replicas: Invalid value: ${JSON.stringify(replicas)}: must be greater than or equal to 0`,
            {
              name: info.name,
              group: 'autoscaling',
              kind: 'Scale',
              causes: [
                {
                  reason: 'FieldValueInvalid',
                  message: 'must be greater than or equal to 0',
                  field: 'spec.replicas',
                },
              ],
            },
          );
        }
        const rv = (next as { metadata?: { resourceVersion?: string } }).metadata?.resourceVersion;
        if (info.verb === 'update' && rv && rv !== current.metadata.resourceVersion) {
          throw new ApiError(
            409,
            'Conflict',
            `Operation cannot be fulfilled on ${rt.plural}.${rt.group} "${info.name}": the object has been modified; please apply your changes to the latest version and try again`,
          );
        }
        // Admitted as an autoscaling/v1 Scale, the object this endpoint takes.
        await this.#admitObject(res, {
          operation: 'UPDATE',
          group: 'autoscaling',
          version: 'v1',
          kind: 'Scale',
          resource: rt.plural,
          subresource: 'scale',
          namespace: ns ?? '',
          name: info.name,
          object: { ...scale, spec: { replicas } } as KubeObject,
          oldObject: scale as KubeObject,
          dryRun: isDryRun(query),
        });
        const spec = { ...(current.spec as object), replicas };
        return { ...current, spec };
      },
      { dryRun: isDryRun(query) },
    );
    return writeJSON(res, 200, toScale(result.object));
  }

  async #respondObject(
    res: ApiResponse,
    code: number,
    rt: ResourceType,
    obj: KubeObject,
    accept: string | undefined,
    query: URLSearchParams,
    encoded?: string,
  ): Promise<void> {
    if (wantsTable(accept)) {
      return writeJSON(
        res,
        code,
        toTable(
          rt,
          [obj],
          { resourceVersion: obj.metadata.resourceVersion ?? '' },
          { include: includeObject(query), now: this.#now() },
        ),
      );
    }
    writeJSON(res, code, obj, undefined, encoded);
  }

  async #watch(
    req: ApiRequest,
    res: ApiResponse,
    rt: ResourceType,
    storage: ResourceStorage,
    ns: string | undefined,
    name: string,
    query: URLSearchParams,
    accept: string | undefined,
  ): Promise<void> {
    const q = listQuery(query);
    if (name) q.fieldSelector = [q.fieldSelector, `metadata.name=${name}`].filter(Boolean).join(',');
    const table = wantsTable(accept);
    const include = includeObject(query);
    const bookmarks = isTrue(query.get('allowWatchBookmarks'));
    const timeoutSeconds =
      Number(query.get('timeoutSeconds') ?? 0) || 1800 + Math.floor(Math.random() * 1800);
    let headersSent = false;
    let ended = false;
    let first = true;
    const writeLine = (event: unknown) => writeText(`${JSON.stringify(event)}\n`);
    const sendHeaders = () => {
      if (headersSent) return;
      res.writeHead(200, {
        'Content-Type': 'application/json',
        'Cache-Control': 'no-cache, private',
        'Transfer-Encoding': 'chunked',
      });
      headersSent = true;
    };
    const writeText = (line: string) => {
      if (ended) return;
      sendHeaders();
      res.write(line);
    };
    const encode = (type: string, object: KubeObject): unknown => {
      if (!table) return { type, object };
      const t = toTable(
        rt,
        [object],
        { resourceVersion: object.metadata.resourceVersion ?? '' },
        {
          include,
          noHeaders: !first,
          now: this.#now(),
        },
      );
      first = false;
      return { type, object: t };
    };
    let watch: { stop: () => void; revision: () => number } | undefined;
    const end = () => {
      if (ended) return;
      ended = true;
      watch?.stop();
      clearTimeout(timer);
      clearInterval(bookmarkTimer);
      this.#watches.delete(end);
      if (!headersSent) {
        res.writeHead(200, { 'Content-Type': 'application/json' });
      }
      res.end();
    };
    this.#watches.add(end);
    const timer = setTimeout(end, timeoutSeconds * 1000);
    const bookmarkTimer = bookmarks
      ? setInterval(() => {
          if (!watch) return;
          writeLine({
            type: 'BOOKMARK',
            object: {
              kind: rt.kind,
              apiVersion: groupVersion(rt),
              metadata: { resourceVersion: String(watch.revision()) },
            },
          });
        }, this.#bookmarkIntervalMs)
      : undefined;
    req.on('close', end);
    res.on('close', end);
    try {
      watch = await storage.watch(
        ns,
        q,
        (events) => {
          for (const e of events) {
            if (table) writeLine(encode(e.type, e.object));
            else if (res.writeEvent) {
              if (ended) return;
              sendHeaders();
              res.writeEvent(e.type, e.object);
            } else writeText(watchEventLine(e.type, e.object));
          }
        },
        (reason) => {
          writeLine({ type: 'ERROR', object: new ApiError(410, 'Expired', reason).status });
          end();
        },
      );
    } catch (err) {
      clearTimeout(timer);
      clearInterval(bookmarkTimer);
      this.#watches.delete(end);
      ended = true;
      // Errors before the stream starts are plain Status responses; kubectl
      // and client-go read a 410 here as "relist".
      if (!headersSent) {
        writeStatus(res, toStatus(err));
        return;
      }
      writeLine({ type: 'ERROR', object: toStatus(err) });
      res.end();
      return;
    }
    if (ended) watch.stop();
    // Headers go out at once, so a client sees the watch established even
    // before the first event.
    if (!headersSent && !ended) {
      res.writeHead(200, {
        'Content-Type': 'application/json',
        'Cache-Control': 'no-cache, private',
        'Transfer-Encoding': 'chunked',
      });
      headersSent = true;
      res.flushHeaders();
    }
  }
}

function strategic(current: KubeObject, patch: unknown, _rt: ResourceType): KubeObject {
  try {
    return applyStrategicMergePatch(current, patch, kubernetesPatchSchema) as KubeObject;
  } catch (err) {
    if (err instanceof PatchError) throw new ApiError(422, 'Invalid', err.message);
    throw err;
  }
}

/** Validates the envelope of a body: an object of the right apiVersion and kind. */
function checkObject(body: unknown, rt: ResourceType): KubeObject {
  if (!isObject(body)) throw badRequest('the body of the request must be a JSON or YAML object');
  const obj = body as KubeObject;
  const gv = groupVersion(rt);
  if (obj.apiVersion !== undefined && obj.apiVersion !== gv) {
    throw badRequest(
      `the API version in the data (${String(obj.apiVersion)}) does not match the expected API version (${gv})`,
    );
  }
  if (obj.kind !== undefined && obj.kind !== rt.kind) {
    throw badRequest(
      `the kind in the data (${String(obj.kind)}) does not match the expected kind (${rt.kind})`,
    );
  }
  if (obj.metadata === undefined || obj.metadata === null) obj.metadata = {};
  if (!isObject(obj.metadata)) throw badRequest('metadata must be an object');
  // The body was decoded for this request alone: no copy needed.
  return obj;
}

// Upstream returns the deleted object (not a Status) for kinds whose delete
// strategy says so; kubectl accepts both.
function returnsObjectOnDelete(rt: ResourceType): boolean {
  return rt.group === '' && (rt.plural === 'pods' || rt.plural === 'namespaces');
}

function scaleOf(obj: KubeObject, rt: ResourceType) {
  const spec = (obj.spec ?? {}) as { replicas?: number; selector?: unknown };
  const status = (obj.status ?? {}) as { replicas?: number; selector?: string };
  let selector = '';
  const sel = spec.selector as { matchLabels?: Record<string, string> } | Record<string, string> | undefined;
  if (sel && typeof sel === 'object') {
    const labels =
      rt.kind === 'ReplicationController'
        ? (sel as Record<string, string>)
        : ((sel as { matchLabels?: Record<string, string> }).matchLabels ?? {});
    selector = Object.entries(labels)
      .map(([k, v]) => `${k}=${v}`)
      .join(',');
  }
  return {
    kind: 'Scale',
    apiVersion: 'autoscaling/v1',
    metadata: {
      name: obj.metadata.name,
      namespace: obj.metadata.namespace,
      uid: obj.metadata.uid,
      resourceVersion: obj.metadata.resourceVersion,
      creationTimestamp: obj.metadata.creationTimestamp,
    },
    spec: { replicas: spec.replicas ?? 0 },
    status: { replicas: status.replicas ?? 0, ...(selector ? { selector } : {}) },
  };
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
