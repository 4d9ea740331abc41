// Summarizes a V8 CPU profile (node --cpu-prof): the functions with the most
// self time, and self time by source area (src/scheduler, src/apiserver, ...).
//
//   node --cpu-prof --cpu-prof-dir=/tmp/prof bench/run.ts scheduler --only=SchedulingBasic/5000Nodes_10000Pods/sqlite
//   node bench/scheduler/profile-summary.ts /tmp/prof/<the largest>.cpuprofile [top]
//
// Each workload runs in its own child process, so the largest profile in the
// directory is the workload's; the parent's is nearly empty.

import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const [file, topArg] = process.argv.slice(2);
if (!file) {
  console.error('usage: node bench/scheduler/profile-summary.ts PROFILE.cpuprofile [top]');
  process.exit(2);
}
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const byFunction = new Map<string, number>();
const byArea = new Map<string, number>();
let total = 0;
profile.samples.forEach((id, i) => {
  const micros = profile.timeDeltas[i] ?? 0;
  total += micros;
  const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
  const where = url.split('/').slice(-2).join('/');
  const fn = `${functionName || '(anonymous)'} ${where}:${lineNumber + 1}`;
  byFunction.set(fn, (byFunction.get(fn) ?? 0) + micros);
  const area = /\/src\/([^/]+)\//.exec(url)?.[1] ?? (url ? 'node internals' : functionName);
  byArea.set(area, (byArea.get(area) ?? 0) + micros);
});
const row = ([name, micros]: [string, number]) =>
  `${(micros / 1000).toFixed(0).padStart(7)} ms ${((100 * micros) / total).toFixed(1).padStart(5)}%  ${name}`;
console.log(`total ${(total / 1e6).toFixed(1)} s\n\nby area:`);
for (const r of [...byArea].sort((a, b) => b[1] - a[1]).slice(0, 10)) console.log(row(r));
console.log('\nself time:');
for (const r of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, Number(topArg ?? 25)))
  console.log(row(r));
