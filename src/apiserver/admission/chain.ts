// The admission chain's construction: the plugins Skiff has, by upstream's
// names and in upstream's order, each given what it reads from this server.
// The plugins themselves are one file each in this folder; request.ts binds
// the chain to one request.

import type { KubeObject } from '../../api/meta.ts';
import type {
  MutatingWebhookConfiguration,
  ValidatingAdmissionPolicy,
  ValidatingAdmissionPolicyBinding,
  ValidatingWebhookConfiguration,
} from '../../api/types/admissionregistration-v1.ts';
import type {
  Endpoints,
  LimitRange,
  Namespace,
  Pod,
  ResourceQuota,
  Service,
} from '../../api/types/core-v1.ts';
import type { IngressClass } from '../../api/types/networking-v1.ts';
import type { PolicyRule } from '../../api/types/rbac-v1.ts';
import type { StorageClass } from '../../api/types/storage-v1.ts';
import type { ApiServer } from '../apiserver.ts';
import type { AdmissionChain } from './admission.ts';
import {
  certificateApprovalPlugin,
  certificateSigningPlugin,
  certificateSubjectRestrictionPlugin,
} from './certificates.ts';
import { defaultIngressClassPlugin } from './default-ingress-class.ts';
import { defaultStorageClassPlugin } from './default-storage-class.ts';
import {
  type DefaultTolerationSecondsOptions,
  defaultTolerationSecondsPlugin,
} from './default-toleration-seconds.ts';
import { limitRangerPlugins } from './limit-ranger.ts';
import { nodeRestrictionPlugin } from './node-restriction.ts';
import { podSecurityPlugin } from './pod-security.ts';
import { priorityPlugin } from './priority.ts';
import { pvcResizePlugin } from './pvc-resize.ts';
import { rbacEscalationPlugin } from './rbac-escalation.ts';
import { resourceQuotaPlugin } from './resource-quota.ts';
import { serviceAccountPlugin } from './service-account.ts';
import { storageObjectInUseProtectionPlugin } from './storage-object-in-use-protection.ts';
import {
  type PolicyDeps,
  paramSelected,
  validatingAdmissionPolicyPlugin,
} from './validating-admission-policy.ts';
import { mutatingWebhookPlugin, validatingWebhookPlugin, type WebhookDeps } from './webhook/webhook.ts';

/** The admission plugins Skiff has, by upstream's names (all on by default, as upstream). */
export const ADMISSION_PLUGINS = [
  'LimitRanger',
  'ServiceAccount',
  'Priority',
  'DefaultTolerationSeconds',
  'NodeRestriction',
  'PodSecurity',
  'DefaultStorageClass',
  'StorageObjectInUseProtection',
  'PersistentVolumeClaimResize',
  'CertificateApproval',
  'CertificateSigning',
  'CertificateSubjectRestriction',
  'DefaultIngressClass',
  'MutatingAdmissionWebhook',
  'ValidatingAdmissionPolicy',
  'ValidatingAdmissionWebhook',
  'ResourceQuota',
] as const;
export type AdmissionPluginName = (typeof ADMISSION_PLUGINS)[number];

/** Parses --disable-admission-plugins (comma-separated); throws on a name Skiff does not know. */
export function parseAdmissionPlugins(flag: string): AdmissionPluginName[] {
  const names = flag
    .split(',')
    .map((n) => n.trim())
    .filter(Boolean);
  for (const n of names) {
    if (!(ADMISSION_PLUGINS as readonly string[]).includes(n)) {
      throw new Error(
        `--disable-admission-plugins: unknown plugin ${JSON.stringify(n)} (one of ${ADMISSION_PLUGINS.join(', ')})`,
      );
    }
  }
  return names as AdmissionPluginName[];
}

/**
 * Upstream's default-on admission plugins that Skiff has, in upstream's
 * order (kube-apiserver's RecommendedPluginOrder), less the `disabled`
 * ones (--disable-admission-plugins). PodSecurity defaults every mode to
 * privileged, so nothing changes until a namespace opts in with its
 * pod-security.kubernetes.io labels.
 */
export function defaultAdmission(
  api: Pick<ApiServer, 'storage' | 'authorizer' | 'ruleResolver' | 'registry'>,
  {
    disabled = [],
    withServiceAccount = false,
    tolerationSeconds = {},
  }: {
    disabled?: readonly AdmissionPluginName[];
    /**
     * The ServiceAccount plugin: a pod then needs its ServiceAccount to
     * exist, which in a cluster the ServiceAccount controller sees to. The
     * server turns it on; the test servers, with no such controller, do not.
     */
    withServiceAccount?: boolean;
    /** --default-not-ready-toleration-seconds and --default-unreachable-toleration-seconds. */
    tolerationSeconds?: DefaultTolerationSecondsOptions;
  } = {},
): AdmissionChain {
  const namespaces = () => api.storage('', 'v1', 'namespaces')!;
  const podSecurity = podSecurityPlugin({
    async getNamespace(name) {
      const s = namespaces();
      const cached = s.cache.get(s.key(undefined, name));
      if (cached) return cached as Namespace;
      // The cache may lag a namespace created a moment ago.
      return (await s.get(undefined, name).catch(() => undefined)) as Namespace | undefined;
    },
    async listPods(namespace) {
      return (await api.storage('', 'v1', 'pods')!.list(namespace, { resourceVersion: '0' })).items as Pod[];
    },
  });
  const limitRanger = limitRangerPlugins({
    async listLimitRanges(namespace) {
      // From the watch cache, as upstream reads its lister: a write is in it
      // within moments, and a pod create costs no store round trip.
      const s = api.storage('', 'v1', 'limitranges')!;
      await s.cache.start();
      return s.cache.list(s.scopePrefix(namespace)) as LimitRange[];
    },
  });
  const quotas = () => api.storage('', 'v1', 'resourcequotas')!;
  const resourceQuota = resourceQuotaPlugin({
    async listQuotas(namespace, { fresh }) {
      const s = quotas();
      if (fresh) return (await s.list(namespace, {})).items as ResourceQuota[];
      await s.cache.start();
      return s.cache.list(s.scopePrefix(namespace)) as ResourceQuota[];
    },
    async updateQuotaStatus(quota) {
      await quotas().guaranteedUpdate(
        quota.metadata.namespace,
        quota.metadata.name!,
        (current) => ({ ...current, status: quota.status }),
        { subresource: 'status', resourceVersion: quota.metadata.resourceVersion! },
      );
    },
  });
  const priority = priorityPlugin({
    async listPriorityClasses() {
      // From the watch cache, as upstream's lister: every pod create asks.
      const s = api.storage('scheduling.k8s.io', 'v1', 'priorityclasses')!;
      await s.cache.start();
      return s.cache.list(s.scopePrefix(undefined));
    },
  });
  const defaultStorageClass = defaultStorageClassPlugin({
    async listStorageClasses() {
      // From the watch cache, as upstream's lister: every claim create asks.
      const s = api.storage('storage.k8s.io', 'v1', 'storageclasses')!;
      await s.cache.start();
      return s.cache.list(s.scopePrefix(undefined)) as StorageClass[];
    },
  });
  const defaultIngressClass = defaultIngressClassPlugin({
    async listIngressClasses() {
      // From the watch cache, as upstream's lister: every Ingress create asks.
      const s = api.storage('networking.k8s.io', 'v1', 'ingressclasses')!;
      await s.cache.start();
      return s.cache.list(s.scopePrefix(undefined)) as IngressClass[];
    },
  });
  const pvcResize = pvcResizePlugin({
    async getStorageClass(name) {
      const s = api.storage('storage.k8s.io', 'v1', 'storageclasses')!;
      await s.cache.start();
      return (s.cache.get(s.key(undefined, name)) ?? (await s.get(undefined, name).catch(() => undefined))) as
        | StorageClass
        | undefined;
    },
  });
  const pods = () => api.storage('', 'v1', 'pods')!;
  const nodeRestriction = nodeRestrictionPlugin({
    getPod: async (namespace, name) =>
      (await pods()
        .get(namespace, name)
        .catch(() => undefined)) as Pod | undefined,
  });
  const escalation = rbacEscalationPlugin({
    authorizer: api.authorizer,
    resolver: api.ruleResolver,
    async roleRules(kind, namespace, name) {
      const role =
        kind === 'ClusterRole'
          ? await api
              .storage('rbac.authorization.k8s.io', 'v1', 'clusterroles')!
              .get(undefined, name)
              .catch(() => undefined)
          : kind === 'Role'
            ? await api
                .storage('rbac.authorization.k8s.io', 'v1', 'roles')!
                .get(namespace, name)
                .catch(() => undefined)
            : undefined;
      return role ? ((role as { rules?: PolicyRule[] }).rules ?? []) : undefined;
    },
  });
  const serviceAccount = withServiceAccount
    ? serviceAccountPlugin({
        getServiceAccount: async (namespace, name) => {
          // The watch cache first (started on first use); a store read only for one made a moment ago.
          const s = api.storage('', 'v1', 'serviceaccounts')!;
          await s.cache.start();
          return s.cache.get(s.key(namespace, name)) ?? s.get(namespace, name);
        },
      })
    : undefined;
  const webhooks = webhookDeps(api);
  const on = (name: AdmissionPluginName) => !disabled.includes(name);
  return {
    mutating: [
      ...(on('LimitRanger') ? [limitRanger.mutating] : []),
      ...(serviceAccount && on('ServiceAccount') ? [serviceAccount] : []),
      ...(on('Priority') ? [priority] : []),
      ...(on('DefaultTolerationSeconds') ? [defaultTolerationSecondsPlugin(tolerationSeconds)] : []),
      ...(on('DefaultStorageClass') ? [defaultStorageClass] : []),
      ...(on('StorageObjectInUseProtection') ? [storageObjectInUseProtectionPlugin()] : []),
      ...(on('DefaultIngressClass') ? [defaultIngressClass] : []),
      ...(on('MutatingAdmissionWebhook') ? [mutatingWebhookPlugin(webhooks)] : []),
    ],
    // ResourceQuota last, so nothing refuses a write after it was charged.
    validating: [
      ...(on('LimitRanger') ? [limitRanger.validating] : []),
      ...(on('NodeRestriction') ? [nodeRestriction] : []),
      ...(on('PodSecurity') ? [podSecurity] : []),
      ...(on('PersistentVolumeClaimResize') ? [pvcResize] : []),
      ...(on('CertificateApproval') ? [certificateApprovalPlugin(api.authorizer)] : []),
      ...(on('CertificateSigning') ? [certificateSigningPlugin(api.authorizer)] : []),
      ...(on('CertificateSubjectRestriction') ? [certificateSubjectRestrictionPlugin()] : []),
      // Not a plugin upstream (the RBAC registry does it), so never off.
      escalation,
      ...(on('ValidatingAdmissionPolicy')
        ? [validatingAdmissionPolicyPlugin(policyDeps(api, webhooks))]
        : []),
      ...(on('ValidatingAdmissionWebhook') ? [validatingWebhookPlugin(webhooks)] : []),
      ...(on('ResourceQuota') ? [resourceQuota] : []),
    ],
  };
}

/** What the webhook plugins read: their configurations and namespaces from the watch caches, Services and their Endpoints. */
function webhookDeps(api: Pick<ApiServer, 'storage'>): WebhookDeps {
  const cached = async <T>(group: string, resource: string): Promise<T[]> => {
    const s = api.storage(group, 'v1', resource)!;
    await s.cache.start();
    return s.cache.list(s.scopePrefix(undefined)) as T[];
  };
  const core = (resource: string) => api.storage('', 'v1', resource)!;
  return {
    mutatingConfigurations: () =>
      cached<MutatingWebhookConfiguration>('admissionregistration.k8s.io', 'mutatingwebhookconfigurations'),
    validatingConfigurations: () =>
      cached<ValidatingWebhookConfiguration>(
        'admissionregistration.k8s.io',
        'validatingwebhookconfigurations',
      ),
    async namespaceLabels(name) {
      const s = core('namespaces');
      await s.cache.start();
      const ns = (s.cache.get(s.key(undefined, name)) ??
        (await s.get(undefined, name).catch(() => undefined))) as Namespace | undefined;
      return ns?.metadata.labels;
    },
    async resolveService(namespace, name, port) {
      // An endpoint of the Service, reached over the cluster network as
      // pods/proxy reaches pods (proxy.ts); upstream's endpoint routing.
      const svc = (await core('services')
        .get(namespace, name)
        .catch(() => undefined)) as Service | undefined;
      if (!svc) throw new Error(`service "${name}" not found`);
      const sp = (svc.spec?.ports ?? []).find((p) => p.port === port);
      if (!sp) throw new Error(`no service port ${port} found for service "${name}"`);
      const eps = (await core('endpoints')
        .get(namespace, name)
        .catch(() => undefined)) as Endpoints | undefined;
      for (const ss of eps?.subsets ?? []) {
        const ep = (ss.ports ?? []).find((p) => (p.name ?? '') === (sp.name ?? ''));
        const ip = ss.addresses?.[0]?.ip;
        if (ep?.port && ip) return { host: ip, port: ep.port };
      }
      throw new Error(`no endpoints available for service "${name}"`);
    },
  };
}

/** What ValidatingAdmissionPolicy reads: policies and bindings from the watch caches, params of any kind. */
function policyDeps(api: Pick<ApiServer, 'storage' | 'registry'>, webhooks: WebhookDeps): PolicyDeps {
  const cached = async <T>(resource: string): Promise<T[]> => {
    const s = api.storage('admissionregistration.k8s.io', 'v1', resource)!;
    await s.cache.start();
    return s.cache.list(s.scopePrefix(undefined)) as T[];
  };
  return {
    policies: () => cached<ValidatingAdmissionPolicy>('validatingadmissionpolicies'),
    bindings: () => cached<ValidatingAdmissionPolicyBinding>('validatingadmissionpolicybindings'),
    namespaceLabels: webhooks.namespaceLabels,
    async getNamespace(name) {
      const s = api.storage('', 'v1', 'namespaces')!;
      await s.cache.start();
      return (s.cache.get(s.key(undefined, name)) ?? (await s.get(undefined, name).catch(() => undefined))) as
        | KubeObject
        | undefined;
    },
    async params(apiVersion, kind, namespace, ref) {
      const [group, version] = apiVersion.includes('/') ? apiVersion.split('/', 2) : ['', apiVersion];
      const rt = api.registry.byKind(group!, kind);
      const s = rt && api.storage(group!, version!, rt.plural);
      if (!rt || !s) return undefined;
      const ns = rt.namespaced && namespace ? namespace : undefined;
      if (ref.name) {
        const o = (await s.get(ns, ref.name).catch(() => undefined)) as KubeObject | undefined;
        return { namespaced: rt.namespaced, items: o ? [o] : [] };
      }
      if (!ref.selector) return { namespaced: rt.namespaced, items: [] };
      await s.cache.start();
      const items = (s.cache.list(s.scopePrefix(ns)) as KubeObject[]).filter((o) =>
        paramSelected(ref.selector, o),
      );
      return { namespaced: rt.namespaced, items };
    },
  };
}
