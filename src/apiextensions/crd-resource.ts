// The registry entry of apiextensions.k8s.io/v1 CustomResourceDefinitions:
// upstream's CRD strategy (apiextensions-apiserver
// pkg/registry/customresourcedefinition/strategy.go and etcd.go).

import { type KubeObject, rfc3339 } from '../api/meta.ts';
import type { ResourceType } from '../api/registry.ts';
import { crdOpenAPISchema } from './crd-schema.ts';
import { defaultCRD, validateCRD } from './crd-validation.ts';
import {
  CLEANUP_FINALIZER,
  type CustomResourceDefinition,
  type CustomResourceDefinitionCondition,
  GROUP,
} from './types.ts';

const asCRD = (obj: KubeObject) => obj as CustomResourceDefinition;

const storageVersionOf = (crd: CustomResourceDefinition): string | undefined =>
  crd.spec?.versions?.find((v) => v.storage)?.name;

/** Sets (or replaces) a condition, keeping its lastTransitionTime when the status does not change. */
export function setCondition(
  crd: CustomResourceDefinition,
  c: CustomResourceDefinitionCondition,
  now: Date,
): void {
  crd.status ??= {};
  crd.status.conditions ??= [];
  const conditions = crd.status.conditions;
  const i = conditions.findIndex((x) => x.type === c.type);
  const prev = i >= 0 ? conditions[i] : undefined;
  const next = {
    ...c,
    lastTransitionTime: prev && prev.status === c.status ? prev.lastTransitionTime : rfc3339(now),
  };
  if (i >= 0) conditions[i] = next;
  else conditions.push(next);
}

export const customResourceDefinitions: ResourceType = {
  group: GROUP,
  version: 'v1',
  kind: 'CustomResourceDefinition',
  plural: 'customresourcedefinitions',
  singular: 'customresourcedefinition',
  shortNames: ['crd', 'crds'],
  categories: ['api-extensions'],
  namespaced: false,
  status: true,
  generation: true,
  openAPISchema: crdOpenAPISchema,
  prune: () => [],
  defaults: (obj) => defaultCRD(asCRD(obj)),
  // A new CRD starts with no conditions; its storage version is stored from now on.
  prepareCreate: (obj) => {
    const crd = asCRD(obj);
    const storage = storageVersionOf(crd);
    crd.status = {
      conditions: [],
      acceptedNames: { plural: '', kind: '' },
      storedVersions: storage ? [storage] : [],
    };
  },
  // A new storage version joins status.storedVersions.
  prepareUpdate: (obj) => {
    const crd = asCRD(obj);
    const storage = storageVersionOf(crd);
    if (!storage) return;
    crd.status ??= {};
    crd.status.storedVersions ??= [];
    if (!crd.status.storedVersions.includes(storage)) crd.status.storedVersions.push(storage);
  },
  validate: (obj, old) => validateCRD(asCRD(obj), old ? asCRD(old) : undefined),
  // Upstream's CRD REST Delete: the objects go first (crd-controller.ts
  // removes the finalizer once they are gone).
  prepareDelete: (obj) => {
    const crd = asCRD(obj);
    crd.metadata.finalizers ??= [];
    if (!crd.metadata.finalizers.includes(CLEANUP_FINALIZER)) crd.metadata.finalizers.push(CLEANUP_FINALIZER);
    setCondition(
      crd,
      {
        type: 'Terminating',
        status: 'True',
        reason: 'InstanceDeletionPending',
        message: 'CustomResourceDefinition marked for deletion; CustomResource deletion will begin soon',
      },
      new Date(),
    );
  },
};
