// The AdmissionReview v1 a webhook is sent (admission.k8s.io/v1), built from
// the request's attributes, and the checks on the review it sends back, as
// upstream's pkg/admission/plugin/webhook/request.

import { randomUUID } from 'node:crypto';
import type { AdmissionAttributes } from '../admission.ts';

export interface AdmissionReviewResponse {
  uid: string;
  allowed: boolean;
  status?: { code?: number; message?: string; reason?: string; status?: string; details?: unknown };
  patch?: string;
  patchType?: string;
  warnings?: string[];
  auditAnnotations?: Record<string, string>;
}

const OPTIONS_KIND = { CREATE: 'CreateOptions', UPDATE: 'UpdateOptions', DELETE: 'DeleteOptions' } as const;

export function admissionReview(
  attrs: AdmissionAttributes,
  uid: string = randomUUID(),
): Record<string, unknown> {
  const kind = { group: attrs.group, version: attrs.version, kind: attrs.kind };
  const resource = { group: attrs.group, version: attrs.version, resource: attrs.resource };
  const optionsKind = OPTIONS_KIND[attrs.operation as keyof typeof OPTIONS_KIND];
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid,
      kind,
      resource,
      ...(attrs.subresource ? { subResource: attrs.subresource } : {}),
      requestKind: kind,
      requestResource: resource,
      ...(attrs.subresource ? { requestSubResource: attrs.subresource } : {}),
      name: attrs.name || attrs.object?.metadata.name || '',
      ...(attrs.namespace ? { namespace: attrs.namespace } : {}),
      operation: attrs.operation,
      userInfo: { username: attrs.user.name, groups: attrs.user.groups },
      object: attrs.object ?? null,
      oldObject: attrs.oldObject ?? null,
      dryRun: attrs.dryRun,
      ...(optionsKind
        ? {
            options: {
              apiVersion: 'meta.k8s.io/v1',
              kind: optionsKind,
              ...(attrs.dryRun ? { dryRun: ['All'] } : {}),
            },
          }
        : {}),
    },
  };
}

/** The review's response, or why it is not a valid one (upstream's VerifyAdmissionResponse). */
export function verifyResponse(
  body: unknown,
  uid: string,
  mutating: boolean,
): AdmissionReviewResponse | string {
  const review = body as { apiVersion?: unknown; kind?: unknown; response?: AdmissionReviewResponse } | null;
  if (!review || typeof review !== 'object')
    return 'expected webhook response of admission.k8s.io/v1, Kind=AdmissionReview';
  if (review.apiVersion !== 'admission.k8s.io/v1' || review.kind !== 'AdmissionReview')
    return `expected webhook response of admission.k8s.io/v1, Kind=AdmissionReview, got ${String(review.apiVersion)}, Kind=${String(review.kind)}`;
  const r = review.response;
  if (!r || typeof r !== 'object') return 'webhook response was absent';
  if (r.uid !== uid)
    return `expected response.uid=${JSON.stringify(uid)}, got ${JSON.stringify(r.uid ?? '')}`;
  if (typeof r.allowed !== 'boolean') return 'webhook response was absent';
  if (r.patch !== undefined || r.patchType !== undefined) {
    if (!mutating) return 'validating webhook may not return a patch';
    if (r.patchType !== 'JSONPatch')
      return `expected response.patchType to be set to "JSONPatch", got ${JSON.stringify(r.patchType ?? '')}`;
  }
  return r;
}
