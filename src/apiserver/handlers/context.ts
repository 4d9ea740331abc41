// What a handler is given: the server's parts it reads and writes through
// (HandlerContext, one per ApiServer), and the request it serves, as the
// pipeline (pipeline.ts) hands it on once the request is authenticated,
// audited, impersonated and authorized (RequestScope).

import type { Registry, ResourceType } from '../../api/registry.ts';
import type { TypeModel } from '../../api/schema/index.ts';
import type { ResourceMetricsProvider } from '../../metrics/metrics-server.ts';
import type { Registry as PrometheusRegistry } from '../../metrics/prometheus.ts';
import type { AdmissionRequest, RequestAdmission } from '../admission/request.ts';
import type { VersionInfo } from '../apiserver.ts';
import type { AuditRecord } from '../audit/audit.ts';
import type { TokenReviewer } from '../authn/token-review.ts';
import type { UserInfo } from '../authn/user.ts';
import type { Authorizer } from '../authz/authorizer.ts';
import type { RuleResolver } from '../authz/reviews.ts';
import type { ApiRequest, ApiResponse } from '../http.ts';
import type { KubeletProxy } from '../kubelet-proxy.ts';
import type { ResourceProxy } from '../proxy.ts';
import type { RequestInfo } from '../request-info.ts';
import type { ResourceStorage } from '../rest.ts';
import type { ServiceAllocator } from '../service-allocator.ts';
import type { TokenIssuer } from '../token-request.ts';

export interface HandlerContext {
  readonly registry: Registry;
  /** The REST storage of a resource (rest.ts): the registry strategy over the store. */
  storage(group: string, version: string, plural: string): ResourceStorage | undefined;
  /** ClusterIPs and NodePorts of Services. */
  readonly allocator: ServiceAllocator;
  /** pods/log, exec, attach, portforward and nodes/proxy: to the node's kubelet. */
  readonly kubelet: KubeletProxy;
  /** pods/proxy and services/proxy: to a pod. */
  readonly proxy: ResourceProxy;
  readonly model: TypeModel;
  readonly now: () => Date;
  /** TokenRequest and TokenReview; neither is served when unset. */
  readonly tokens: (TokenIssuer & { review: TokenReviewer }) | undefined;
  /** For the review APIs (SubjectAccessReview and the rest): the request's own authorizer. */
  readonly authorizer: Authorizer;
  readonly ruleResolver: RuleResolver;
  readonly bookmarkIntervalMs: number;
  /** How each open watch ends, for stop(). */
  readonly watches: Set<() => void>;
  readonly version: VersionInfo;
  /** host:port clients reach us at (discovery's serverAddressByClientCIDRs). */
  readonly advertise: string;
  /** OpenAPI documents by key, built once per registry change (non-resource.ts). */
  readonly openapi: Map<string, { body: string; hash: string }>;
  /** What /metrics serves (../metrics.ts); 404 when unset. */
  readonly metrics: PrometheusRegistry | undefined;
  /** /debug/pprof/profile and /debug/pprof/heap are served (profiling.ts). */
  readonly profiling: boolean;
  /** metrics.k8s.io's answers (metrics-server's storage); the group is not served when unset. */
  readonly resourceMetrics: ResourceMetricsProvider | undefined;
}

/** One request, past authorization. */
export interface RequestScope extends AdmissionRequest {
  readonly req: ApiRequest;
  /** The response the handler writes (gated by the request's deadline, request-deadline.ts). */
  readonly res: ApiResponse;
  readonly info: RequestInfo;
  readonly query: URLSearchParams;
  /** Who the request acts as, after impersonation. */
  readonly user: UserInfo;
  /** The admission chain bound to this request, for the registry's write path. */
  readonly admission: RequestAdmission;
  readonly audit: AuditRecord | undefined;
  /** A `Warning: 299` header on the response. */
  warn(text: string): void;
}

/** The handler of one verb on a resource: its kind, its REST storage, and the namespace (undefined for cluster-scoped kinds). */
export type ResourceHandler = (
  ctx: HandlerContext,
  s: RequestScope,
  rt: ResourceType,
  storage: ResourceStorage,
  ns: string | undefined,
) => Promise<void>;
