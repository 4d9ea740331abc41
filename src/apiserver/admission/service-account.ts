// The ServiceAccount admission plugin (upstream's
// plugin/pkg/admission/serviceaccount), mutating, on pod creation:
//   - a pod without spec.serviceAccountName runs as `default`;
//   - the ServiceAccount must exist (the default one is waited for a moment,
//     since the ServiceAccount controller makes it just after its namespace);
//   - unless the pod or its ServiceAccount opts out
//     (automountServiceAccountToken: false), every container mounts a
//     projected volume kube-api-access-<random> at
//     /var/run/secrets/kubernetes.io/serviceaccount with the token (from
//     TokenRequest, through the kubelet), the cluster CA (kube-root-ca.crt)
//     and the namespace: what client-go's rest.InClusterConfig and
//     client-node's loadFromCluster read;
//   - the ServiceAccount's imagePullSecrets, when the pod names none.
// Mirror pods (kubelet's static pods) may not use a ServiceAccount at all.

import { ApiError, isApiError } from '../../api/errors.ts';
import type { KubeObject } from '../../api/meta.ts';
import type { Container, Pod, ServiceAccount, Volume } from '../../api/types/core-v1.ts';
import type { AdmissionAttributes, MutatingPlugin } from './admission.ts';

export const SERVICE_ACCOUNT_VOLUME_PREFIX = 'kube-api-access-';
export const TOKEN_MOUNT_PATH = '/var/run/secrets/kubernetes.io/serviceaccount';
const MIRROR_ANNOTATION = 'kubernetes.io/config.mirror';
/** upstream's: an hour and seven seconds, so a kubelet-requested token is told apart from a user's. */
const TOKEN_EXPIRATION_SECONDS = 3607;
const DEFAULT_LOOKUP_ATTEMPTS = 10;

export interface ServiceAccountPluginOptions {
  /** Reads a ServiceAccount; throws the store's 404 when it is missing. */
  getServiceAccount(namespace: string, name: string): Promise<KubeObject>;
  /** The random suffix of the volume's name (upstream: 5 characters). */
  randomSuffix?: () => string;
  /** Pause between lookups of the default ServiceAccount (upstream: 100-200 ms). */
  retryIntervalMs?: number;
}

const ALPHANUMS = 'bcdfghjklmnpqrstvwxz2456789';
const randomSuffix = () =>
  Array.from({ length: 5 }, () => ALPHANUMS[Math.floor(Math.random() * ALPHANUMS.length)]).join('');

const forbidden = (attrs: AdmissionAttributes, why: string) =>
  new ApiError(
    403,
    'Forbidden',
    `pods "${attrs.name || attrs.object?.metadata.name || ''}" is forbidden: ${why}`,
    {
      name: attrs.name || attrs.object?.metadata.name || '',
      kind: 'pods',
    },
  );

export function serviceAccountPlugin(opts: ServiceAccountPluginOptions): MutatingPlugin {
  const suffix = opts.randomSuffix ?? randomSuffix;
  const interval = opts.retryIntervalMs ?? 100 + Math.floor(Math.random() * 100);

  const lookup = async (namespace: string, name: string): Promise<ServiceAccount | undefined> => {
    const attempts = name === 'default' ? DEFAULT_LOOKUP_ATTEMPTS : 1;
    for (let i = 0; i < attempts; i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, interval));
      try {
        return (await opts.getServiceAccount(namespace, name)) as ServiceAccount;
      } catch (err) {
        if (!isApiError(err) || err.code !== 404) throw err;
      }
    }
    return undefined;
  };

  return {
    name: 'ServiceAccount',
    handles: (a) =>
      a.operation === 'CREATE' &&
      a.group === '' &&
      a.resource === 'pods' &&
      a.subresource === '' &&
      !!a.object,
    async admit(attrs) {
      const pod = attrs.object as Pod;
      pod.spec ??= { containers: [] };
      const spec = pod.spec;
      if (pod.metadata.annotations?.[MIRROR_ANNOTATION] !== undefined) {
        if (spec.serviceAccountName)
          throw forbidden(attrs, 'a mirror pod may not reference service accounts');
        return undefined;
      }
      spec.serviceAccountName ||= 'default';
      const name = spec.serviceAccountName;
      const sa = await lookup(attrs.namespace, name);
      if (!sa)
        throw forbidden(
          attrs,
          `error looking up service account ${attrs.namespace}/${name}: serviceaccount "${name}" not found`,
        );
      const automount = spec.automountServiceAccountToken ?? sa.automountServiceAccountToken ?? true;
      if (automount) mountToken(spec, suffix);
      if (!spec.imagePullSecrets?.length && sa.imagePullSecrets?.length)
        spec.imagePullSecrets = sa.imagePullSecrets.map((s) => ({ name: s.name }));
      return undefined;
    },
  };
}

/** upstream's mountServiceAccountToken: one volume, mounted by every container with nothing at the path already. */
function mountToken(spec: NonNullable<Pod['spec']>, suffix: () => string): void {
  spec.volumes ??= [];
  const volumes = spec.volumes;
  let volumeName = volumes.find((v) => v.name?.startsWith(SERVICE_ACCOUNT_VOLUME_PREFIX))?.name;
  const hasVolume = volumeName !== undefined;
  volumeName ??= `${SERVICE_ACCOUNT_VOLUME_PREFIX}${suffix()}`;
  let needed = false;
  const mount = (c: Container) => {
    if ((c.volumeMounts ?? []).some((m) => m.mountPath === TOKEN_MOUNT_PATH)) return;
    c.volumeMounts = [
      ...(c.volumeMounts ?? []),
      { name: volumeName, readOnly: true, mountPath: TOKEN_MOUNT_PATH },
    ];
    needed = true;
  };
  for (const c of spec.initContainers ?? []) mount(c);
  for (const c of spec.containers ?? []) mount(c);
  if (!hasVolume && needed) volumes.push(tokenVolume(volumeName));
  if (volumes.length === 0) delete spec.volumes;
}

function tokenVolume(name: string): Volume {
  return {
    name,
    projected: {
      defaultMode: 0o644,
      sources: [
        { serviceAccountToken: { expirationSeconds: TOKEN_EXPIRATION_SECONDS, path: 'token' } },
        { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
        {
          downwardAPI: {
            items: [{ path: 'namespace', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } }],
          },
        },
      ],
    },
  };
}
