// The review kinds of authentication.k8s.io/v1 and authorization.k8s.io/v1:
// create-only, never stored; the API server answers each POST with the
// object and its status filled in (src/apiserver/authz/reviews.ts).

import type { ResourceType } from '../registry.ts';

const review = (group: string, kind: string, plural: string, namespaced = false): ResourceType => ({
  group,
  version: 'v1',
  kind,
  plural,
  singular: kind.toLowerCase(),
  namespaced,
  verbs: ['create'],
});

export const AUTHENTICATION_GROUP = 'authentication.k8s.io';
export const AUTHORIZATION_GROUP = 'authorization.k8s.io';

export const reviewResources: ResourceType[] = [
  review(AUTHENTICATION_GROUP, 'SelfSubjectReview', 'selfsubjectreviews'),
  review(AUTHENTICATION_GROUP, 'TokenReview', 'tokenreviews'),
  review(AUTHORIZATION_GROUP, 'LocalSubjectAccessReview', 'localsubjectaccessreviews', true),
  review(AUTHORIZATION_GROUP, 'SelfSubjectAccessReview', 'selfsubjectaccessreviews'),
  review(AUTHORIZATION_GROUP, 'SelfSubjectRulesReview', 'selfsubjectrulesreviews'),
  review(AUTHORIZATION_GROUP, 'SubjectAccessReview', 'subjectaccessreviews'),
];

/** Whether a resource is one of the review kinds (answered, not stored). */
export const isReview = (rt: { group: string; plural: string }): boolean =>
  reviewResources.some((r) => r.group === rt.group && r.plural === rt.plural);
