// The Pod Security Standards as upstream's k8s.io/pod-security-admission
// policy package evaluates them: a registry of checks, each at the baseline
// or restricted level and each applying from a policy version on, run in a
// fixed order so messages are stable.
//
// Order, as upstream's registry: baseline checks sorted by ID, then
// restricted checks sorted by ID. A restricted check may override baseline
// checks it supersedes (restrictedVolumes replaces hostPathVolumes), so a
// restricted evaluation does not report the same problem twice.

import type { ObjectMeta } from '../../../api/meta.ts';
import type { Container, PodSpec } from '../../../api/types/core-v1.ts';

export type Level = 'privileged' | 'baseline' | 'restricted';

/** "latest" or "v1.N", as the `-version` labels spell it. */
export type Version = 'latest' | `v1.${number}`;

export interface LevelVersion {
  level: Level;
  version: Version;
}

export const levelVersionString = (lv: LevelVersion) => `${lv.level}:${lv.version}`;

/** A check's verdict on a pod it forbids (upstream's CheckResult with Allowed=false). */
export interface Violation {
  /** Succinct, always shown: "host ports", "privileged". */
  reason: string;
  /** What exactly is wrong, shown in parentheses after the reason. */
  detail?: string;
}

export interface PodView {
  metadata: ObjectMeta;
  spec: PodSpec;
}

export interface Check {
  /** Upstream's check ID; sorting by it gives upstream's message order. */
  id: string;
  level: 'baseline' | 'restricted';
  /** The first policy minor version (v1.N) the check applies to. */
  since: number;
  /** Baseline check IDs this restricted check supersedes. */
  overrides?: readonly string[];
  /** `minor` is the evaluated policy version (Infinity for latest). */
  run(pod: PodView, minor: number): Violation | undefined;
}

/** The minor version a policy version evaluates at; latest is newer than any. */
export const minorOf = (version: Version): number =>
  version === 'latest' ? Number.POSITIVE_INFINITY : Number(version.slice(3));

/** The checks that apply to a level and version, in upstream's order. */
export function checksFor(lv: LevelVersion, registry: readonly Check[]): Check[] {
  if (lv.level === 'privileged') return [];
  const minor = minorOf(lv.version);
  const active = registry.filter(
    (c) => c.since <= minor && (lv.level === 'restricted' || c.level === 'baseline'),
  );
  const overridden = new Set(active.flatMap((c) => (c.level === 'restricted' ? (c.overrides ?? []) : [])));
  const byId = (a: Check, b: Check) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
  const baseline = active.filter((c) => c.level === 'baseline' && !overridden.has(c.id)).sort(byId);
  const restricted = active.filter((c) => c.level === 'restricted').sort(byId);
  return [...baseline, ...restricted];
}

/** Runs the checks for a level and version; an empty result means the pod is allowed. */
export function evaluatePod(lv: LevelVersion, pod: PodView, registry: readonly Check[]): Violation[] {
  const minor = minorOf(lv.version);
  const out: Violation[] = [];
  for (const check of checksFor(lv, registry)) {
    const v = check.run(pod, minor);
    if (v) out.push(v);
  }
  return out;
}

/** "host namespaces, privileged": used when listing many pods (namespace checks). */
export const forbiddenReasons = (violations: readonly Violation[]) =>
  violations.map((v) => v.reason).join(', ');

/** "host namespaces (hostNetwork=true), privileged (container \"a\" must ...)": for one object. */
export const forbiddenDetails = (violations: readonly Violation[]) =>
  violations.map((v) => (v.detail ? `${v.reason} (${v.detail})` : v.reason)).join(', ');

// --- helpers the checks share, as upstream's helpers.go ---

export const pluralize = (singular: string, plural: string, count: number) =>
  count === 1 ? singular : plural;

/** `"a", "b"` */
export const joinQuote = (items: readonly string[]) => (items.length === 0 ? '' : `"${items.join('", "')}"`);

/** `container "a"` or `containers "a", "b"` */
export const containersNamed = (names: readonly string[]) =>
  `${pluralize('container', 'containers', names.length)} ${joinQuote(names)}`;

/** Distinct values in byte order, as upstream's sets.String.List(). */
export const sortedSet = (values: Iterable<string>) => [...new Set(values)].sort();

/** Go's %q for the plain strings labels and annotations hold. */
export const goQuote = (s: string) => JSON.stringify(s);

/** Init containers, then containers, then ephemeral containers, as upstream's visitor. */
export function allContainers(spec: PodSpec): Container[] {
  return [...(spec.initContainers ?? []), ...(spec.containers ?? []), ...(spec.ephemeralContainers ?? [])];
}

/** Names of the containers matching a predicate, in visiting order. */
export const containersWhere = (spec: PodSpec, bad: (c: Container) => boolean) =>
  allContainers(spec)
    .filter(bad)
    .map((c) => c.name ?? '');

/** "pod and containers \"a\", \"b\"": who set a forbidden value, pod first. */
export function setters(pod: boolean, containers: readonly string[]): string[] {
  const out = pod ? ['pod'] : [];
  if (containers.length > 0) out.push(containersNamed(containers));
  return out;
}

export const isWindowsPod = (spec: PodSpec) => spec.os?.name === 'windows';
