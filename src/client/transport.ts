// The client's transport interface. Every component reaches the cluster
// through it: over HTTPS (agents on other machines, tests) or, later, in
// process (supplied by the apiserver, so client/ never imports apiserver/).

import type { Status } from '../api/errors.ts';
import type { KubeObject } from '../api/meta.ts';

export interface TransportRequest {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** Absolute API path, e.g. /api/v1/namespaces/default/pods. */
  path: string;
  query?: Record<string, string | undefined>;
  body?: unknown;
  /** Defaults to application/json for bodies. */
  contentType?: string;
}

export interface TransportResponse {
  status: number;
  body: unknown;
  /** Warning headers, as upstream's warning handler reports them. */
  warnings: string[];
}

export interface WatchEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: KubeObject | Status;
}

export interface WatchHandle {
  stop(): void;
}

export interface Transport {
  request(req: TransportRequest): Promise<TransportResponse>;
  /**
   * Streams watch events. `onClose` runs once when the stream ends: with an
   * error for a failed request (an ApiError for a non-2xx answer) or
   * undefined for a normal end (timeoutSeconds, server shutdown, stop()).
   */
  watch(
    req: Omit<TransportRequest, 'method' | 'body' | 'contentType'>,
    onEvent: (event: WatchEvent) => void,
    onClose: (err?: Error) => void,
  ): WatchHandle;
}
