// What the user may do, asked of the API as the user: a
// SelfSubjectAccessReview per action, so a `view` user sees no edit buttons.
// The API stays the judge: a write it forbids still shows its 403.

import { useEffect, useState } from 'preact/hooks';
import { request } from './api.ts';

export interface AccessAttributes {
  verb: string;
  group: string;
  resource: string;
  subresource?: string;
  namespace?: string;
  name?: string;
}

const answers = new Map<string, Promise<boolean>>();

/** Forgets the cached answers (after a login as someone else). */
export function clearAccessCache(): void {
  answers.clear();
}

export function canI(attrs: AccessAttributes): Promise<boolean> {
  const key = JSON.stringify(attrs);
  let answer = answers.get(key);
  if (!answer) {
    answer = request('/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', {
      method: 'POST',
      body: {
        apiVersion: 'authorization.k8s.io/v1',
        kind: 'SelfSubjectAccessReview',
        spec: { resourceAttributes: attrs },
      },
    }).then(
      (r) => r.status?.allowed === true,
      () => false,
    );
    answers.set(key, answer);
  }
  return answer;
}

/** Whether the user may do each of `checks` (false until the API has answered). */
export function useCan<K extends string>(
  checks: Record<K, AccessAttributes | undefined>,
): Record<K, boolean> {
  const key = JSON.stringify(checks);
  const [allowed, setAllowed] = useState({} as Record<K, boolean>);
  useEffect(() => {
    let live = true;
    setAllowed({} as Record<K, boolean>);
    const entries = Object.entries(checks) as [K, AccessAttributes | undefined][];
    void Promise.all(entries.map(async ([k, a]) => [k, a ? await canI(a) : false] as const)).then((pairs) => {
      if (live) setAllowed(Object.fromEntries(pairs) as Record<K, boolean>);
    });
    return () => {
      live = false;
    };
  }, [key]);
  return allowed;
}
