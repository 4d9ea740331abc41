// The scale subresource (deployments, replicasets, statefulsets,
// replicationcontrollers): the object's replicas seen and written as an
// autoscaling/v1 Scale.

import { ApiError, methodNotAllowed } from '../../api/errors.ts';
import type { KubeObject } from '../../api/meta.ts';
import {
  applyJsonPatch,
  applyMergePatch,
  applyStrategicMergePatch,
  kubernetesPatchSchema,
} from '../../api/patch/index.ts';
import type { ResourceType, ScaleSubresource } from '../../api/registry.ts';
import { findFirst, setAt } from '../../apiextensions/jsonpath.ts';
import { decodeBody, mediaType, readBody, writeJSON } from '../http.ts';
import type { ResourceStorage } from '../rest.ts';
import { OBJECT_TYPES } from './body.ts';
import type { RequestScope } from './context.ts';
import { isDryRun } from './query.ts';

/** GET, PUT and PATCH of a kind's /scale, as an autoscaling/v1 Scale. */
export async function serveScale(s: RequestScope, rt: ResourceType, storage: ResourceStorage): Promise<void> {
  const { req, res, info, query } = s;
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
      await s.admission.admitObject({
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
      if (rt.custom && rt.scale) {
        setAt(current as unknown as Record<string, unknown>, rt.scale.specReplicasPath, replicas);
        return current;
      }
      const spec = { ...(current.spec as object), replicas };
      return { ...current, spec };
    },
    { dryRun: isDryRun(query) },
  );
  return writeJSON(res, 200, toScale(result.object));
}

/** A custom resource's Scale, read at its CRD's paths (upstream's scale subresource for CRs). */
function customScaleOf(obj: KubeObject, paths: ScaleSubresource) {
  const replicas = (path: string) => {
    const v = findFirst(obj, path);
    return typeof v === 'number' ? v : 0;
  };
  const selector = paths.labelSelectorPath ? findFirst(obj, paths.labelSelectorPath) : undefined;
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
    spec: { replicas: replicas(paths.specReplicasPath) },
    status: {
      replicas: replicas(paths.statusReplicasPath),
      ...(typeof selector === 'string' && selector ? { selector } : {}),
    },
  };
}

function scaleOf(obj: KubeObject, rt: ResourceType) {
  if (rt.custom && rt.scale) return customScaleOf(obj, rt.scale);
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
