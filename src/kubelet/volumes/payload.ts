// The files of the volumes the kubelet writes from API objects: configMap,
// secret, downwardAPI and projected (which combines the other three and a
// service account token). Each becomes a payload, path → contents and mode,
// for the AtomicWriter. As upstream's MakePayload / CollectData:
//   - without items every key becomes a file of its name; with items only
//     those keys, at their paths;
//   - a file's mode is its item's mode, else the volume's defaultMode (0644);
//   - a missing object or key fails the volume unless it is optional.
// https://github.com/kubernetes/kubernetes/blob/master/pkg/volume/configmap/configmap.go
// https://github.com/kubernetes/kubernetes/blob/master/pkg/volume/secret/secret.go
// https://github.com/kubernetes/kubernetes/blob/master/pkg/volume/downwardapi/downwardapi.go
// https://github.com/kubernetes/kubernetes/blob/master/pkg/volume/projected/projected.go

import type {
  ConfigMap,
  DownwardAPIVolumeFile,
  KeyToPath,
  Pod,
  ProjectedVolumeSource,
  Secret,
  ServiceAccountTokenProjection,
} from '../../api/types/core-v1.ts';
import { containerResourceValue, podFieldValue } from '../container-env.ts';
import type { FileProjection } from './atomic-writer.ts';

export type Payload = Map<string, FileProjection>;

/** The volume cannot be set up (yet): the message goes into the FailedMount event. */
export class VolumeSetUpError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'VolumeSetUpError';
  }
}

export const DEFAULT_MODE = 0o644;

export interface PayloadSources {
  getConfigMap(namespace: string, name: string): Promise<ConfigMap | undefined>;
  getSecret(namespace: string, name: string): Promise<Secret | undefined>;
  /** resourceFieldRef of a container without limits reads the node's allocatable. */
  nodeAllocatable(): Record<string, string>;
  /** The token of a serviceAccountToken projection. */
  serviceAccountToken(pod: Pod, projection: ServiceAccountTokenProjection): Promise<string>;
}

/** Keys to files: all keys by name, or the items (upstream MakePayload). */
function keysPayload(
  data: Map<string, Buffer>,
  items: KeyToPath[] | undefined,
  defaultMode: number,
  optional: boolean,
  missingKey: (key: string) => string,
): Payload {
  const payload: Payload = new Map();
  if (!items?.length) {
    for (const [key, value] of data) payload.set(key, { data: value, mode: defaultMode });
    return payload;
  }
  for (const item of items) {
    const value = data.get(item.key ?? '');
    if (value === undefined) {
      if (optional) continue;
      throw new VolumeSetUpError(missingKey(item.key ?? ''));
    }
    payload.set(item.path ?? '', { data: value, mode: item.mode ?? defaultMode });
  }
  return payload;
}

export function configMapData(cm: ConfigMap | undefined): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const [k, v] of Object.entries(cm?.data ?? {})) out.set(k, Buffer.from(v, 'utf8'));
  for (const [k, v] of Object.entries(cm?.binaryData ?? {})) out.set(k, Buffer.from(v, 'base64'));
  return out;
}

export function secretData(secret: Secret | undefined): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const [k, v] of Object.entries(secret?.stringData ?? {})) out.set(k, Buffer.from(v, 'utf8'));
  for (const [k, v] of Object.entries(secret?.data ?? {})) out.set(k, Buffer.from(v, 'base64'));
  return out;
}

export async function configMapPayload(
  pod: Pod,
  source: { name?: string; items?: KeyToPath[]; optional?: boolean },
  defaultMode: number,
  sources: PayloadSources,
): Promise<Payload> {
  const name = source.name ?? '';
  const cm = await sources.getConfigMap(pod.metadata.namespace ?? '', name);
  if (!cm && !source.optional) throw new VolumeSetUpError(`configmap "${name}" not found`);
  return keysPayload(
    configMapData(cm),
    source.items,
    defaultMode,
    !!source.optional,
    (key) => `configmap references non-existent config key: ${key}`,
  );
}

export async function secretPayload(
  pod: Pod,
  source: { name?: string; items?: KeyToPath[]; optional?: boolean },
  defaultMode: number,
  sources: PayloadSources,
): Promise<Payload> {
  const name = source.name ?? '';
  const secret = await sources.getSecret(pod.metadata.namespace ?? '', name);
  if (!secret && !source.optional) throw new VolumeSetUpError(`secret "${name}" not found`);
  return keysPayload(
    secretData(secret),
    source.items,
    defaultMode,
    !!source.optional,
    (key) => `references non-existent secret key: ${key}`,
  );
}

/** Labels and annotations as upstream's FormatMap: sorted `key="value"` lines (Go %q quoting). */
export function formatMap(m: Record<string, string> | undefined): string {
  return Object.keys(m ?? {})
    .sort()
    .map((k) => `${k}=${JSON.stringify(m?.[k] ?? '')}`)
    .join('\n');
}

export function downwardAPIPayload(
  pod: Pod,
  items: DownwardAPIVolumeFile[] | undefined,
  defaultMode: number,
  sources: Pick<PayloadSources, 'nodeAllocatable'>,
): Payload {
  const payload: Payload = new Map();
  for (const item of items ?? []) {
    let value: string;
    const fieldPath = item.fieldRef?.fieldPath;
    if (fieldPath === 'metadata.labels') value = formatMap(pod.metadata.labels);
    else if (fieldPath === 'metadata.annotations') value = formatMap(pod.metadata.annotations);
    else if (fieldPath !== undefined) {
      try {
        value = podFieldValue(pod, fieldPath, { podIPs: [], hostIPs: [] });
      } catch (err) {
        throw new VolumeSetUpError((err as Error).message);
      }
    } else if (item.resourceFieldRef) {
      const ref = item.resourceFieldRef;
      const container = (pod.spec?.containers ?? []).find((c) => c.name === ref.containerName);
      if (!container) throw new VolumeSetUpError(`container ${ref.containerName} not found`);
      value = containerResourceValue(container, ref.resource ?? '', ref.divisor, sources.nodeAllocatable());
    } else continue;
    payload.set(item.path ?? '', { data: Buffer.from(value, 'utf8'), mode: item.mode ?? defaultMode });
  }
  return payload;
}

export async function projectedPayload(
  pod: Pod,
  source: ProjectedVolumeSource,
  sources: PayloadSources,
): Promise<Payload> {
  const defaultMode = source.defaultMode ?? DEFAULT_MODE;
  const payload: Payload = new Map();
  const add = (p: Payload) => {
    for (const [k, v] of p) payload.set(k, v);
  };
  for (const s of source.sources ?? []) {
    if (s.configMap) add(await configMapPayload(pod, s.configMap, defaultMode, sources));
    else if (s.secret) add(await secretPayload(pod, s.secret, defaultMode, sources));
    else if (s.downwardAPI) add(downwardAPIPayload(pod, s.downwardAPI.items, defaultMode, sources));
    else if (s.serviceAccountToken) {
      const token = await sources.serviceAccountToken(pod, s.serviceAccountToken);
      payload.set(s.serviceAccountToken.path ?? 'token', {
        data: Buffer.from(token, 'utf8'),
        mode: defaultMode,
      });
    }
  }
  return payload;
}
