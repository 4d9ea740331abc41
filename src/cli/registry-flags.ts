// The registry flags `skiff server` and `skiff agent` share, with k3s's
// names: --private-registry (registries.yaml) and
// --disable-default-registry-endpoint; and Skiff's own
// --disable-offline-mirror. src/agent/registries.ts says what they do.

import {
  defaultRegistriesFile,
  loadRegistries,
  type NodeRegistryOptions,
  RegistriesError,
} from '../agent/registries.ts';

export const REGISTRY_FLAGS = {
  'private-registry': { type: 'string' },
  'disable-default-registry-endpoint': { type: 'boolean', default: false },
  'disable-offline-mirror': { type: 'boolean', default: false },
} as const;

export const REGISTRY_FLAGS_USAGE = `  --private-registry FILE     registries.yaml, k3s's format: mirrors (endpoint) and
                              configs (auth, tls) per registry host (default
                              ${defaultRegistriesFile()}, if present)
  --disable-default-registry-endpoint  a registry with mirrors is never asked
                              directly, only through its mirrors
  --disable-offline-mirror    the public registries (docker.io, registry.k8s.io,
                              ...) no longer go to the node's offline mirror of
                              its airgap images first, and may be reached`;

export interface RegistryFlagValues {
  'private-registry'?: string | undefined;
  'disable-default-registry-endpoint'?: boolean | undefined;
  'disable-offline-mirror'?: boolean | undefined;
}

/**
 * The node's registry options from its flags: the registries.yaml loaded
 * and checked now, so a broken file stops the command at once with the file
 * and key named. Throws RegistriesError.
 */
export function registryOptions(values: RegistryFlagValues): NodeRegistryOptions {
  const file = values['private-registry'];
  const registries = loadRegistries(file ?? defaultRegistriesFile(), { required: file !== undefined });
  return {
    registries,
    ...(values['disable-default-registry-endpoint'] ? { disableDefaultEndpoint: true } : {}),
    ...(values['disable-offline-mirror'] ? { offlineMirror: false } : {}),
  };
}

export { RegistriesError };
