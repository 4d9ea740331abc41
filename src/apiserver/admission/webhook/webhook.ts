// The MutatingAdmissionWebhook and ValidatingAdmissionWebhook plugins, as
// upstream's pkg/admission/plugin/webhook/{mutating,validating}: every
// webhook of every configuration (by configuration name, then in order)
// whose rules, selectors and matchConditions match the request is sent an
// AdmissionReview. Mutating webhooks run one after another and their
// JSONPatch changes the object; validating ones run in parallel and may only
// refuse. A webhook that cannot be called (down, slow, garbage) fails the
// request with upstream's "failed calling webhook" error when its
// failurePolicy is Fail, and is skipped when it is Ignore.

import { ApiError, type StatusReason } from '../../../api/errors.ts';
import type { KubeObject } from '../../../api/meta.ts';
import { jsonEqual } from '../../../api/patch/json.ts';
import { applyJsonPatch } from '../../../api/patch/json-patch.ts';
import { matchConditionEnv } from '../../../api/resources/admissionregistration-validation.ts';
import type {
  MatchCondition,
  MutatingWebhook,
  MutatingWebhookConfiguration,
  ValidatingWebhook,
  ValidatingWebhookConfiguration,
} from '../../../api/types/admissionregistration-v1.ts';
import { compile, type Program } from '../../../cel/cel.ts';
import type {
  AdmissionAttributes,
  AdmissionResponse,
  MutatingPlugin,
  ValidatingPlugin,
} from '../admission.ts';
import { callWebhook, WebhookCallError, type WebhookTarget } from './client.ts';
import {
  anyRuleMatches,
  type NamespaceLabels,
  namespaceSelectorMatches,
  objectSelectorMatches,
} from './matching.ts';
import { type AdmissionReviewResponse, admissionReview, verifyResponse } from './review.ts';

export interface WebhookDeps {
  mutatingConfigurations(): Promise<MutatingWebhookConfiguration[]>;
  validatingConfigurations(): Promise<ValidatingWebhookConfiguration[]>;
  namespaceLabels: NamespaceLabels;
  /** An address serving the Service's port: a ready endpoint's IP and target port. Throws when there is none. */
  resolveService(namespace: string, name: string, port: number): Promise<{ host: string; port: number }>;
}

type Webhook = MutatingWebhook | ValidatingWebhook;

/** Objects webhooks are never called for, so a broken webhook cannot lock its own configuration (upstream IsExemptAdmissionConfigurationResource). */
const EXEMPT = new Set([
  'mutatingwebhookconfigurations',
  'validatingwebhookconfigurations',
  'validatingadmissionpolicies',
  'validatingadmissionpolicybindings',
]);
const exempt = (attrs: AdmissionAttributes) =>
  attrs.group === 'admissionregistration.k8s.io' && EXEMPT.has(attrs.resource);

const internalError = (hook: string, why: string) =>
  new ApiError(500, 'InternalError', `Internal error occurred: failed calling webhook "${hook}": ${why}`, {
    causes: [{ message: `failed calling webhook "${hook}": ${why}` }],
  });

const REASONS: Record<number, StatusReason> = {
  400: 'BadRequest',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'NotFound',
  409: 'Conflict',
  422: 'Invalid',
  429: 'TooManyRequests',
  500: 'InternalError',
  503: 'ServiceUnavailable',
};

/** upstream's webhookerrors.ToStatusErr: `admission webhook "x" denied the request: <message>`. */
function denied(
  hook: string,
  status: { code?: number; message?: string; reason?: string } | undefined,
): ApiError {
  const by = `admission webhook "${hook}" denied the request`;
  const message = status?.message
    ? `${by}: ${status.message}`
    : status?.reason
      ? `${by}: ${status.reason}`
      : `${by} without explanation`;
  const code = status?.code && status.code >= 400 ? status.code : 400;
  const reason = (status?.reason as StatusReason | undefined) ?? REASONS[code] ?? ('' as StatusReason);
  return new ApiError(code, reason, message);
}

// matchConditions compile once per expression text.
const compiledConditions = new Map<string, Program | string>();
function conditionProgram(expression: string): Program | string {
  let p = compiledConditions.get(expression);
  if (!p) {
    const c = compile(expression, matchConditionEnv);
    p = c.ok ? c.program : c.errors.map((e) => e.message).join('; ');
    if (compiledConditions.size > 10_000) compiledConditions.clear();
    compiledConditions.set(expression, p);
  }
  return p;
}

/** true when every condition holds; an error text when one cannot be evaluated (upstream's matchconditions). */
export function matchConditionsHold(
  conditions: readonly MatchCondition[] | undefined,
  attrs: AdmissionAttributes,
  review: Record<string, unknown>,
): boolean | string {
  if (!conditions?.length) return true;
  const activation = {
    object: attrs.object ?? null,
    oldObject: attrs.oldObject ?? null,
    request: review.request,
    authorizer: null,
    params: null,
  };
  const errors: string[] = [];
  for (const c of conditions) {
    const program = conditionProgram(c.expression ?? '');
    if (typeof program === 'string') {
      errors.push(`compilation failed for matchCondition ${JSON.stringify(c.name)}: ${program}`);
      continue;
    }
    const r = program.eval(activation);
    if (!r.ok) errors.push(`error evaluating matchCondition ${JSON.stringify(c.name)}: ${r.error}`);
    else if (r.value === false) return false;
    else if (r.value !== true)
      errors.push(`matchCondition ${JSON.stringify(c.name)} did not evaluate to a bool`);
  }
  return errors.length ? errors.join('; ') : true;
}

async function target(hook: Webhook, deps: WebhookDeps): Promise<WebhookTarget> {
  const cc = hook.clientConfig ?? {};
  const ca = cc.caBundle ? Buffer.from(cc.caBundle, 'base64').toString('utf8') : undefined;
  if (cc.url) {
    const u = new URL(cc.url);
    const host = u.hostname.replace(/^\[|\]$/g, '');
    return {
      url: cc.url,
      host,
      port: Number(u.port || 443),
      path: u.pathname || '/',
      serverName: host,
      ...(ca ? { ca } : {}),
    };
  }
  const svc = cc.service ?? {};
  const port = svc.port ?? 443;
  const serverName = `${svc.name}.${svc.namespace}.svc`;
  const url = `https://${serverName}:${port}${svc.path ?? ''}`;
  const endpoint = await deps.resolveService(svc.namespace ?? '', svc.name ?? '', port);
  return { url, ...endpoint, path: svc.path || '/', serverName, ...(ca ? { ca } : {}) };
}

/** Whether the webhook is for this request: its rules, then its selectors (upstream's ShouldCallHook). */
async function matches(hook: Webhook, attrs: AdmissionAttributes, deps: WebhookDeps): Promise<boolean> {
  if (!anyRuleMatches(hook.rules, attrs)) return false;
  if (!objectSelectorMatches(hook.objectSelector, attrs)) return false;
  return namespaceSelectorMatches(hook.namespaceSelector, attrs, deps.namespaceLabels);
}

interface CallResult {
  response?: AdmissionReviewResponse;
}

/**
 * Calls one webhook that matched. Returns undefined when it was skipped
 * (matchConditions false, or failurePolicy Ignore and the call failed);
 * throws the client's error otherwise.
 */
async function call(
  hook: Webhook,
  attrs: AdmissionAttributes,
  deps: WebhookDeps,
  mutating: boolean,
): Promise<CallResult | undefined> {
  const name = hook.name ?? '';
  const ignore = hook.failurePolicy === 'Ignore';
  const review = admissionReview(attrs);
  const uid = (review.request as { uid: string }).uid;
  const held = matchConditionsHold(hook.matchConditions, attrs, review);
  if (held === false) return undefined;
  if (typeof held === 'string') {
    if (ignore) return undefined;
    throw internalError(name, held);
  }
  // upstream's dry-run check: only a webhook without side effects may see a dry run.
  if (attrs.dryRun && hook.sideEffects !== 'None' && hook.sideEffects !== 'NoneOnDryRun')
    throw new ApiError(400, 'BadRequest', `admission webhook "${name}" does not support dry run`);
  try {
    const answer = await callWebhook(await target(hook, deps), review, hook.timeoutSeconds ?? 10);
    const response = verifyResponse(answer, uid, mutating);
    if (typeof response === 'string')
      throw new WebhookCallError(`received invalid webhook response: ${response}`);
    return { response };
  } catch (err) {
    if (ignore) {
      attrs.addAuditAnnotation?.(
        `failed-open.${mutating ? 'mutation' : 'validating'}.webhook.admission.k8s.io/round_0_index_0`,
        name,
      );
      return undefined;
    }
    if (err instanceof ApiError) throw internalError(name, err.message);
    throw internalError(name, (err as Error).message);
  }
}

function passThrough(hook: string, r: CallResult, attrs: AdmissionAttributes, warnings: string[]): void {
  for (const w of r.response?.warnings ?? []) warnings.push(w);
  for (const [k, v] of Object.entries(r.response?.auditAnnotations ?? {})) {
    try {
      attrs.addAuditAnnotation?.(`${hook}/${k}`, v);
    } catch {
      // An annotation key the webhook got wrong is dropped, as upstream logs and drops it.
    }
  }
}

/** Replaces `target`'s contents with `next`'s, so the request's object (held by reference) changes. */
function replaceContents(target: KubeObject, next: KubeObject): void {
  for (const k of Object.keys(target)) delete (target as Record<string, unknown>)[k];
  Object.assign(target, next);
}

function applyPatch(hook: string, object: KubeObject, patch: string): void {
  let ops: unknown;
  try {
    ops = JSON.parse(Buffer.from(patch, 'base64').toString('utf8'));
  } catch (err) {
    throw internalError(hook, `received invalid webhook response: ${(err as Error).message}`);
  }
  let next: unknown;
  try {
    next = applyJsonPatch(structuredClone(object), ops);
  } catch (err) {
    throw internalError(hook, `JSON patch failed: ${(err as Error).message}`);
  }
  if (!next || typeof next !== 'object' || !(next as KubeObject).metadata)
    throw internalError(hook, 'JSON patch produced an object without metadata');
  replaceContents(object, next as KubeObject);
}

async function sortedWebhooks<T extends { metadata: { name?: string }; webhooks?: W[] }, W>(
  list: () => Promise<T[]>,
): Promise<W[]> {
  const configs = await list();
  return [...configs]
    .sort((a, b) => (a.metadata.name ?? '').localeCompare(b.metadata.name ?? ''))
    .flatMap((c) => c.webhooks ?? []);
}

export function mutatingWebhookPlugin(deps: WebhookDeps): MutatingPlugin {
  return {
    name: 'MutatingAdmissionWebhook',
    handles: (attrs) => !exempt(attrs),
    async admit(attrs): Promise<AdmissionResponse> {
      const hooks = await sortedWebhooks<MutatingWebhookConfiguration, MutatingWebhook>(
        deps.mutatingConfigurations,
      );
      const warnings: string[] = [];
      // IfNeeded webhooks that ran, and whether a later webhook changed the object since.
      const reinvoke: MutatingWebhook[] = [];
      let changedSinceReinvocable = false;
      const run = async (hook: MutatingWebhook): Promise<boolean> => {
        if (!(await matches(hook, attrs, deps))) return false;
        const r = await call(hook, attrs, deps, true);
        if (!r?.response) return false;
        const name = hook.name ?? '';
        passThrough(name, r, attrs, warnings);
        if (!r.response.allowed) throw denied(name, r.response.status);
        if (!r.response.patch || !attrs.object) return false;
        const before = structuredClone(attrs.object);
        applyPatch(name, attrs.object, r.response.patch);
        return !jsonEqual(before, attrs.object);
      };
      for (const hook of hooks) {
        const changed = await run(hook);
        if (changed && reinvoke.length > 0) changedSinceReinvocable = true;
        if (hook.reinvocationPolicy === 'IfNeeded') reinvoke.push(hook);
      }
      // upstream's reinvocation: once more for each IfNeeded webhook, when a later one changed the object.
      if (changedSinceReinvocable) for (const hook of reinvoke) await run(hook);
      return { warnings };
    },
  };
}

export function validatingWebhookPlugin(deps: WebhookDeps): ValidatingPlugin {
  return {
    name: 'ValidatingAdmissionWebhook',
    handles: (attrs) => !exempt(attrs),
    async validate(attrs): Promise<AdmissionResponse> {
      const hooks = await sortedWebhooks<ValidatingWebhookConfiguration, ValidatingWebhook>(
        deps.validatingConfigurations,
      );
      const warnings: string[] = [];
      // In parallel, as upstream; the first refusal in webhook order is the one reported.
      const results = await Promise.allSettled(
        hooks.map(async (hook) =>
          (await matches(hook, attrs, deps)) ? call(hook, attrs, deps, false) : undefined,
        ),
      );
      let refusal: ApiError | undefined;
      results.forEach((r, i) => {
        const name = hooks[i]!.name ?? '';
        if (r.status === 'rejected') {
          refusal ??= r.reason instanceof ApiError ? r.reason : internalError(name, String(r.reason));
          return;
        }
        if (!r.value?.response) return;
        passThrough(name, r.value, attrs, warnings);
        if (!r.value.response.allowed) refusal ??= denied(name, r.value.response.status);
      });
      if (refusal) throw refusal;
      return { warnings };
    },
  };
}
