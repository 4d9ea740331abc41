// What every page knows: the kinds the cluster serves and who is logged in.

import { createContext } from 'preact';
import { useContext } from 'preact/hooks';
import type { ResourceType } from './discovery.ts';

export interface Session {
  types: ResourceType[];
  /** The user the API says we are (SelfSubjectReview). */
  username: string;
  /** True in `skiff dashboard`'s local mode: the proxy holds the credentials. */
  local: boolean;
  logout(): void;
}

export const SessionContext = createContext<Session | undefined>(undefined);

export function useSession(): Session {
  const s = useContext(SessionContext);
  if (!s) throw new Error('no session');
  return s;
}

/** The group segment of a URL: core for the legacy group. */
export const groupSegment = (group: string) => group || 'core';
export const groupOf = (segment: string) => (segment === 'core' ? '' : segment);
