// The review APIs (authorization.k8s.io/v1 and authentication.k8s.io/v1):
// what `kubectl auth can-i` (SelfSubjectAccessReview), `kubectl auth can-i
// --list` (SelfSubjectRulesReview), `kubectl auth whoami`
// (SelfSubjectReview) and other components (SubjectAccessReview,
// LocalSubjectAccessReview) ask. Each takes the posted object and answers it
// with its status filled in, as upstream's pkg/registry/authorization.

import { ApiError } from '../../api/errors.ts';
import type { PolicyRule } from '../../api/types/rbac-v1.ts';
import type { UserInfo } from '../authn/user.ts';
import type { Attributes, Authorizer } from './authorizer.ts';

interface ResourceAttributes {
  namespace?: string;
  verb?: string;
  group?: string;
  version?: string;
  resource?: string;
  subresource?: string;
  name?: string;
}

interface NonResourceAttributes {
  path?: string;
  verb?: string;
}

export interface AccessReviewSpec {
  resourceAttributes?: ResourceAttributes;
  nonResourceAttributes?: NonResourceAttributes;
  /** SubjectAccessReview only: whom to ask about. */
  user?: string;
  groups?: string[];
  uid?: string;
  extra?: Record<string, string[]>;
}

export interface AccessReview {
  apiVersion?: string;
  kind?: string;
  metadata?: Record<string, unknown>;
  spec?: AccessReviewSpec;
  status?: { allowed: boolean; denied?: boolean; reason?: string; evaluationError?: string };
}

function invalid(kind: string, field: string, value: unknown, detail: string): ApiError {
  const message = `${kind}.authorization.k8s.io "" is invalid: ${field}: Invalid value: ${JSON.stringify(value)}: ${detail}`;
  return new ApiError(422, 'Invalid', message, {
    group: 'authorization.k8s.io',
    kind,
    causes: [
      { reason: 'FieldValueInvalid', message: `Invalid value: ${JSON.stringify(value)}: ${detail}`, field },
    ],
  });
}

function attributesOf(kind: string, spec: AccessReviewSpec, user: UserInfo): Attributes {
  const r = spec.resourceAttributes;
  const n = spec.nonResourceAttributes;
  if ((r === undefined) === (n === undefined)) {
    throw invalid(
      kind,
      'spec.resourceAttributes',
      r ?? null,
      'exactly one of nonResourceAttributes or resourceAttributes must be specified',
    );
  }
  if (n) {
    return {
      user,
      verb: n.verb ?? '',
      isResourceRequest: false,
      path: n.path ?? '',
      apiGroup: '',
      apiVersion: '',
      namespace: '',
      resource: '',
      subresource: '',
      name: '',
    };
  }
  return {
    user,
    verb: r?.verb ?? '',
    isResourceRequest: true,
    path: '',
    apiGroup: r?.group ?? '',
    apiVersion: r?.version ?? '',
    namespace: r?.namespace ?? '',
    resource: r?.resource ?? '',
    subresource: r?.subresource ?? '',
    name: r?.name ?? '',
  };
}

function answer(review: AccessReview, authz: Authorizer, attrs: Attributes): AccessReview {
  const r = authz.authorize(attrs);
  return {
    ...review,
    metadata: { ...(review.metadata ?? {}), creationTimestamp: null },
    status: {
      allowed: r.decision === 'allow',
      ...(r.decision === 'deny' ? { denied: true } : {}),
      ...(r.reason ? { reason: r.reason } : {}),
    },
  };
}

/** SelfSubjectAccessReview: may the requesting user do this? */
export function selfSubjectAccessReview(
  review: AccessReview,
  user: UserInfo,
  authz: Authorizer,
): AccessReview {
  return answer(review, authz, attributesOf('SelfSubjectAccessReview', review.spec ?? {}, user));
}

/** SubjectAccessReview: may spec.user (with spec.groups) do this? */
export function subjectAccessReview(review: AccessReview, authz: Authorizer): AccessReview {
  const spec = review.spec ?? {};
  if (!spec.user && (spec.groups ?? []).length === 0)
    throw invalid('SubjectAccessReview', 'spec.user', '', 'at least one of user or group must be specified');
  return answer(
    review,
    authz,
    attributesOf('SubjectAccessReview', spec, { name: spec.user ?? '', groups: spec.groups ?? [] }),
  );
}

/** LocalSubjectAccessReview: as SubjectAccessReview, within the namespace of the URL. */
export function localSubjectAccessReview(
  review: AccessReview,
  namespace: string,
  authz: Authorizer,
): AccessReview {
  const spec = review.spec ?? {};
  const kind = 'LocalSubjectAccessReview';
  if (review.metadata?.namespace !== undefined && review.metadata.namespace !== namespace)
    throw new ApiError(
      400,
      'BadRequest',
      'namespace of the request does not match the namespace of the object',
    );
  if (spec.nonResourceAttributes)
    throw invalid(
      kind,
      'spec.nonResourceAttributes',
      spec.nonResourceAttributes,
      'disallowed on this kind of request',
    );
  if ((spec.resourceAttributes?.namespace ?? '') !== namespace)
    throw invalid(
      kind,
      'spec.resourceAttributes.namespace',
      spec.resourceAttributes?.namespace ?? '',
      'must match metadata.namespace',
    );
  if (!spec.user && (spec.groups ?? []).length === 0)
    throw invalid(kind, 'spec.user', '', 'at least one of user or group must be specified');
  return answer(
    review,
    authz,
    attributesOf(kind, spec, { name: spec.user ?? '', groups: spec.groups ?? [] }),
  );
}

export interface RuleList {
  resourceRules: { verbs: string[]; apiGroups?: string[]; resources?: string[]; resourceNames?: string[] }[];
  nonResourceRules: { verbs: string[]; nonResourceURLs: string[] }[];
  /** True when an authorizer cannot list what it allows (the Node authorizer, a webhook). */
  incomplete: boolean;
  errors: string[];
}

/** Something that can list the rules a user has in a namespace (upstream's RuleResolver). */
export interface RuleResolver {
  rulesFor(user: UserInfo, namespace: string): RuleList;
}

/** Splits policy rules into the two lists a SelfSubjectRulesReview shows. */
export function ruleList(rules: PolicyRule[]): Pick<RuleList, 'resourceRules' | 'nonResourceRules'> {
  const out: Pick<RuleList, 'resourceRules' | 'nonResourceRules'> = {
    resourceRules: [],
    nonResourceRules: [],
  };
  for (const r of rules) {
    if ((r.resources ?? []).length > 0)
      out.resourceRules.push({
        verbs: r.verbs ?? [],
        apiGroups: r.apiGroups ?? [],
        resources: r.resources ?? [],
        ...((r.resourceNames ?? []).length > 0 ? { resourceNames: r.resourceNames } : {}),
      });
    if ((r.nonResourceURLs ?? []).length > 0)
      out.nonResourceRules.push({ verbs: r.verbs ?? [], nonResourceURLs: r.nonResourceURLs ?? [] });
  }
  return out;
}

/** Merges several resolvers' answers, in order, as upstream's union RulesFor. */
export function unionRuleResolver(...resolvers: RuleResolver[]): RuleResolver {
  return {
    rulesFor(user, namespace) {
      const all: RuleList = { resourceRules: [], nonResourceRules: [], incomplete: false, errors: [] };
      for (const r of resolvers) {
        const l = r.rulesFor(user, namespace);
        all.resourceRules.push(...l.resourceRules);
        all.nonResourceRules.push(...l.nonResourceRules);
        all.incomplete ||= l.incomplete;
        all.errors.push(...l.errors);
      }
      return all;
    },
  };
}

/** SelfSubjectRulesReview: everything the requesting user may do in spec.namespace. */
export function selfSubjectRulesReview(
  review: {
    apiVersion?: string;
    kind?: string;
    metadata?: Record<string, unknown>;
    spec?: { namespace?: string };
  },
  user: UserInfo,
  resolver: RuleResolver,
) {
  const namespace = review.spec?.namespace ?? '';
  const rules = resolver.rulesFor(user, namespace);
  return {
    ...review,
    metadata: { ...(review.metadata ?? {}), creationTimestamp: null },
    status: {
      resourceRules: rules.resourceRules,
      nonResourceRules: rules.nonResourceRules,
      incomplete: rules.incomplete,
      ...(rules.errors.length ? { evaluationError: rules.errors.join(', ') } : {}),
    },
  };
}

/** SelfSubjectReview (authentication.k8s.io/v1): who am I? (`kubectl auth whoami`) */
export function selfSubjectReview(
  review: { apiVersion?: string; kind?: string; metadata?: Record<string, unknown> },
  user: UserInfo & { uid?: string; extra?: Record<string, string[]> },
) {
  return {
    apiVersion: review.apiVersion ?? 'authentication.k8s.io/v1',
    kind: 'SelfSubjectReview',
    metadata: { ...(review.metadata ?? {}), creationTimestamp: null },
    status: {
      userInfo: {
        username: user.name,
        ...(user.uid ? { uid: user.uid } : {}),
        groups: user.groups,
        ...(user.extra && Object.keys(user.extra).length ? { extra: user.extra } : {}),
      },
    },
  };
}

/** upstream's AlwaysAllow authorizer, with its rules (everything) for the rules review. */
export const alwaysAllow: Authorizer & RuleResolver = {
  authorize: () => ({ decision: 'allow', reason: '' }),
  rulesFor: () => ({
    resourceRules: [{ verbs: ['*'], apiGroups: ['*'], resources: ['*'] }],
    nonResourceRules: [{ verbs: ['*'], nonResourceURLs: ['*'] }],
    incomplete: false,
    errors: [],
  }),
};

export interface ReviewContext {
  user: UserInfo & { uid?: string; extra?: Record<string, string[]> };
  /** The namespace of the URL (LocalSubjectAccessReview). */
  namespace: string;
  authorizer: Authorizer;
  resolver: RuleResolver;
}

/** Answers a POST of one of the review kinds (src/api/resources/auth.ts), by plural. */
export function answerReview(plural: string, body: Record<string, unknown>, ctx: ReviewContext): object {
  const review = body as AccessReview;
  switch (plural) {
    case 'selfsubjectaccessreviews':
      return selfSubjectAccessReview(review, ctx.user, ctx.authorizer);
    case 'subjectaccessreviews':
      return subjectAccessReview(review, ctx.authorizer);
    case 'localsubjectaccessreviews':
      return localSubjectAccessReview(review, ctx.namespace, ctx.authorizer);
    case 'selfsubjectrulesreviews':
      return selfSubjectRulesReview(body, ctx.user, ctx.resolver);
    case 'selfsubjectreviews':
      return selfSubjectReview(body, ctx.user);
    default:
      throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
  }
}
