// Audit logging (--audit-policy-file, --audit-log-path), as upstream's
// audit.k8s.io/v1 Event: one JSON line per request and stage, at the level
// the policy gives it (policy.ts).
//   - Metadata: who, what, from where, when, the response code, and the
//     annotations: the authorization decision (authorization.k8s.io/decision
//     and /reason) and what admission plugins noted
//     (pod-security.kubernetes.io/enforce-policy, ...);
//   - Request: and the request's object;
//   - RequestResponse: and the response's object.
// Stages: RequestReceived as the request arrives, ResponseStarted for
// long-running requests (watch, exec) once they are under way, and
// ResponseComplete when the response is done.

import { randomUUID } from 'node:crypto';
import { createWriteStream, type WriteStream } from 'node:fs';
import { rfc3339Micro } from '../../api/meta.ts';
import type { UserInfo } from '../authn/user.ts';
import type { RequestInfo } from '../request-info.ts';
import { evaluate, type Level, type Policy, type Stage } from './policy.ts';

export interface AuditEvent {
  kind: 'Event';
  apiVersion: 'audit.k8s.io/v1';
  level: Level;
  auditID: string;
  stage: Stage;
  requestURI: string;
  verb: string;
  user: { username: string; groups: string[]; uid?: string; extra?: Record<string, string[]> };
  impersonatedUser?: AuditEvent['user'];
  sourceIPs: string[];
  userAgent?: string;
  objectRef?: {
    resource: string;
    namespace?: string;
    name?: string;
    apiGroup?: string;
    apiVersion: string;
    subresource?: string;
  };
  responseStatus?: {
    metadata: Record<string, never>;
    code: number;
    status?: string;
    reason?: string;
    message?: string;
  };
  requestObject?: unknown;
  responseObject?: unknown;
  requestReceivedTimestamp: string;
  stageTimestamp: string;
  annotations?: Record<string, string>;
}

/** Where events go: a file (JSON lines), or any sink (tests). */
export type AuditSink = (line: string) => void;

export function fileSink(path: string): AuditSink & { close(): Promise<void> } {
  const out: WriteStream | NodeJS.WriteStream =
    path === '-' ? process.stdout : createWriteStream(path, { flags: 'a', mode: 0o600 });
  return Object.assign((line: string) => void out.write(line), {
    close: () =>
      new Promise<void>((resolve) =>
        out === process.stdout ? resolve() : (out as WriteStream).end(resolve),
      ),
  });
}

const wire = (u: UserInfo & { uid?: string; extra?: Record<string, string[]> }): AuditEvent['user'] => ({
  username: u.name,
  groups: u.groups,
  ...(u.uid ? { uid: u.uid } : {}),
  ...(u.extra && Object.keys(u.extra).length ? { extra: u.extra } : {}),
});

/** One request's audit record: stages are written as they happen. */
export interface AuditRecord {
  readonly level: Level;
  /** The user after impersonation, when it differs. */
  impersonated(user: UserInfo): void;
  authorized(decision: 'allow' | 'forbid', reason: string): void;
  /**
   * Adds an annotation to the stages still to be written, as upstream's
   * audit.AddAuditAnnotation (admission plugins' notes come this way): a key
   * keeps its first value.
   */
  annotate(key: string, value: string): void;
  requestObject(obj: unknown): void;
  responseObject(obj: unknown): void;
  /** A long-running request is under way. */
  started(code: number): void;
  complete(code: number, status?: { status?: string; reason?: string; message?: string }): void;
}

export interface RequestFacts {
  uri: string;
  sourceIP: string | undefined;
  userAgent: string | undefined;
}

export class Auditor {
  readonly #policy: Policy;
  readonly #sink: AuditSink;
  readonly #now: () => Date;

  constructor(policy: Policy, sink: AuditSink, now: () => Date = () => new Date()) {
    this.#policy = policy;
    this.#sink = sink;
    this.#now = now;
  }

  /** Starts a request's record (writing RequestReceived), or undefined when the policy says None. */
  begin(info: RequestInfo, user: UserInfo, facts: RequestFacts): AuditRecord | undefined {
    const decision = evaluate(this.#policy, info, user);
    if (decision.level === 'None') return undefined;
    const received = rfc3339Micro(this.#now());
    const event: AuditEvent = {
      kind: 'Event',
      apiVersion: 'audit.k8s.io/v1',
      level: decision.level,
      auditID: randomUUID(),
      stage: 'RequestReceived',
      requestURI: facts.uri,
      verb: info.verb,
      user: wire(user),
      sourceIPs: facts.sourceIP ? [facts.sourceIP.replace(/^::ffff:/, '')] : [],
      ...(facts.userAgent ? { userAgent: facts.userAgent } : {}),
      ...(info.isResourceRequest
        ? {
            objectRef: {
              resource: info.resource,
              ...(info.namespace ? { namespace: info.namespace } : {}),
              ...(info.name ? { name: info.name } : {}),
              ...(info.group ? { apiGroup: info.group } : {}),
              apiVersion: info.version,
              ...(info.subresource ? { subresource: info.subresource } : {}),
            },
          }
        : {}),
      requestReceivedTimestamp: received,
      stageTimestamp: received,
    };
    const annotations: Record<string, string> = {};
    const withBodies = decision.level === 'Request' || decision.level === 'RequestResponse';
    const omitManaged = (o: unknown) => {
      if (!decision.omitManagedFields || typeof o !== 'object' || o === null) return o;
      const meta = (o as { metadata?: Record<string, unknown> }).metadata;
      if (!meta?.managedFields) return o;
      const { managedFields: _, ...rest } = meta;
      return { ...(o as object), metadata: rest };
    };
    const emit = (stage: Stage) => {
      if (decision.omitStages.includes(stage)) return;
      const e: AuditEvent = {
        ...event,
        stage,
        stageTimestamp: rfc3339Micro(this.#now()),
        ...(Object.keys(annotations).length ? { annotations: { ...annotations } } : {}),
      };
      this.#sink(`${JSON.stringify(e)}\n`);
    };
    emit('RequestReceived');
    let done = false;
    const annotate = (key: string, value: string) => {
      if (!(key in annotations)) annotations[key] = value;
    };
    return {
      level: decision.level,
      impersonated(u) {
        if (u.name !== event.user.username) event.impersonatedUser = wire(u);
      },
      authorized(d, reason) {
        annotate('authorization.k8s.io/decision', d);
        if (reason) annotate('authorization.k8s.io/reason', reason);
      },
      annotate,
      requestObject(obj) {
        // A copy: the handler goes on to default and change the object it decoded.
        if (withBodies && obj !== undefined)
          event.requestObject = omitManaged(JSON.parse(JSON.stringify(obj)));
      },
      responseObject(obj) {
        if (decision.level === 'RequestResponse' && obj !== undefined)
          event.responseObject = omitManaged(obj);
      },
      started(code) {
        event.responseStatus = { metadata: {}, code };
        emit('ResponseStarted');
      },
      complete(code, status) {
        if (done) return;
        done = true;
        event.responseStatus = {
          metadata: {},
          code,
          ...(status?.status ? { status: status.status } : {}),
          ...(status?.reason ? { reason: status.reason } : {}),
          ...(status?.message ? { message: status.message } : {}),
        };
        emit('ResponseComplete');
      },
    };
  }
}

/**
 * Keeps a JSON response's object for the record (RequestResponse level):
 * the last chunk ended with is parsed, if it is JSON.
 */
export function captureResponse(
  res: { end(chunk?: string | Uint8Array): unknown; writeObject?: ((body: unknown) => void) | undefined },
  record: AuditRecord,
): void {
  // The body is what the record keeps: it must go out as text, through end.
  res.writeObject = undefined;
  const end = res.end.bind(res);
  res.end = (chunk?: string | Uint8Array) => {
    if (chunk !== undefined && chunk.length > 0) {
      try {
        record.responseObject(
          JSON.parse(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8')),
        );
      } catch {
        // Not JSON (a log, a table in protobuf): no responseObject, as upstream for non-JSON bodies.
      }
    }
    return end(chunk);
  };
}
