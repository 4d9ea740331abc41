// Makes sure a container's image is on the node before the container is
// created, by its imagePullPolicy, as upstream's image manager
// (pkg/kubelet/images/image_manager.go EnsureImageExists):
//   Always        pull every time (the runtime makes it cheap when unchanged);
//   IfNotPresent  pull only when the runtime does not have it;
//   Never         never pull: a missing image is ErrImageNeverPull.
// A failed pull is ErrImagePull; pulls of that image for that pod then back
// off (10 s doubling to 5 min) and report ImagePullBackOff meanwhile.
// Credentials come from the pod's imagePullSecrets (dockerconfigjson or
// dockercfg), matched by registry host.

import type { Container as ContainerSpec, Pod, Secret } from '../api/types/core-v1.ts';
import type { EventRecorder } from '../client/events.ts';
import type { Backoff } from './backoff.ts';
import type { AuthConfig, PodSandboxConfig, Runtime } from './runtime/runtime.ts';

/** Why a container could not get its image: the waiting reason the status reports. */
export class ImagePullError extends Error {
  override name = 'ImagePullError';
  readonly reason: 'ErrImagePull' | 'ImagePullBackOff' | 'ErrImageNeverPull' | 'InvalidImageName';

  constructor(reason: ImagePullError['reason'], message: string) {
    super(message);
    this.reason = reason;
  }
}

export interface ImageManagerOptions {
  runtime: Runtime;
  recorder: EventRecorder;
  backoff: Backoff;
  now: () => number;
  getSecret(namespace: string, name: string): Promise<Secret | undefined>;
}

export interface ImageManager {
  /** Returns the image reference (id) to create the container from. */
  ensureImageExists(pod: Pod, container: ContainerSpec, sandboxConfig: PodSandboxConfig): Promise<string>;
}

export function createImageManager(opts: ImageManagerOptions): ImageManager {
  const { runtime, recorder, backoff } = opts;
  return {
    async ensureImageExists(pod, container, sandboxConfig) {
      const image = container.image ?? '';
      if (!image) throw new ImagePullError('InvalidImageName', 'Failed to apply default image tag ""');
      const policy = container.imagePullPolicy ?? 'IfNotPresent';
      const present = await runtime.imageStatus({ image });
      if (present && policy !== 'Always') {
        recorder.event(pod, 'Normal', 'Pulled', `Container image "${image}" already present on machine`);
        return present.id;
      }
      if (!present && policy === 'Never') {
        const msg = `Container image "${image}" is not present with pull policy of Never`;
        recorder.event(pod, 'Warning', 'ErrImageNeverPull', msg);
        throw new ImagePullError('ErrImageNeverPull', msg);
      }
      const key = `${pod.metadata.uid}_${image}`;
      const now = opts.now();
      if (backoff.remaining(key, now) > 0) {
        recorder.event(pod, 'Normal', 'BackOff', `Back-off pulling image "${image}"`);
        throw new ImagePullError('ImagePullBackOff', `Back-off pulling image "${image}"`);
      }
      recorder.event(pod, 'Normal', 'Pulling', `Pulling image "${image}"`);
      const started = opts.now();
      try {
        const auth = await credentialsFor(pod, image, opts.getSecret);
        const ref = await runtime.pullImage({ image }, auth, sandboxConfig);
        const took = ((opts.now() - started) / 1000).toFixed(3);
        recorder.event(pod, 'Normal', 'Pulled', `Successfully pulled image "${image}" in ${took}s`);
        return ref;
      } catch (err) {
        backoff.next(key, now);
        const msg = `Failed to pull image "${image}": ${(err as Error).message}`;
        recorder.event(pod, 'Warning', 'Failed', msg);
        recorder.event(pod, 'Warning', 'Failed', 'Error: ErrImagePull');
        throw new ImagePullError('ErrImagePull', msg);
      }
    },
  };
}

/** The registry host of an image reference (docker.io for short names). */
export function registryOf(image: string): string {
  const first = image.split('/')[0] ?? '';
  if (image.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost'))
    return first;
  return 'docker.io';
}

async function credentialsFor(
  pod: Pod,
  image: string,
  getSecret: ImageManagerOptions['getSecret'],
): Promise<AuthConfig | undefined> {
  const host = registryOf(image);
  for (const ref of pod.spec?.imagePullSecrets ?? []) {
    const secret = await getSecret(pod.metadata.namespace ?? 'default', ref.name ?? '');
    const raw = secret?.data?.['.dockerconfigjson'] ?? secret?.data?.['.dockercfg'];
    if (!raw) continue;
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(Buffer.from(raw, 'base64').toString('utf8')) as Record<string, unknown>;
    } catch {
      continue;
    }
    const auths = (parsed.auths ?? parsed) as Record<string, AuthConfig>;
    for (const [server, cred] of Object.entries(auths)) {
      const serverHost = server.replace(/^https?:\/\//, '').split('/')[0];
      const matches =
        serverHost === host || (host === 'docker.io' && /(^|\.)docker\.io$/.test(serverHost ?? ''));
      if (!matches) continue;
      let { username, password } = cred;
      if (!username && cred.auth) {
        const decoded = Buffer.from(cred.auth, 'base64').toString('utf8');
        const i = decoded.indexOf(':');
        username = decoded.slice(0, i);
        password = decoded.slice(i + 1);
      }
      return {
        ...(username ? { username } : {}),
        ...(password ? { password } : {}),
        serverAddress: serverHost ?? host,
      };
    }
  }
  return undefined;
}
