// `npm run bench -- NAME` runs bench/NAME.ts, which prints its figures and
// writes bench/results/NAME.json ({ headline: {metric, value, unit}, ... }).
//
// Most benchmarks run the built server (bin/skiff, dist/). A dist/ older
// than src/ would measure yesterday's code, and miss today's APIs, so it is
// rebuilt first (BENCH_FROM_SOURCE=1 runs src/ and needs no build).

import { execFileSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('../', import.meta.url).pathname;

/** The newest modification time of any file under dir, in ms. */
function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) newest = Math.max(newest, statSync(join(entry.parentPath, entry.name)).mtimeMs);
  }
  return newest;
}

function ensureBuilt(): void {
  let built = 0;
  try {
    built = statSync(join(root, 'dist/cli/main.js')).mtimeMs;
  } catch {}
  if (built >= newestMtime(join(root, 'src'))) return;
  console.log('building dist/ (src/ changed since the last build)');
  const run = (file: string, args: string[]) => execFileSync(file, args, { cwd: root, stdio: 'inherit' });
  run(process.execPath, ['src/dashboard/build.ts']);
  run(join(root, 'node_modules/.bin/tsc'), ['-p', 'tsconfig.build.json']);
}

const name = process.argv[2];
const available = readdirSync(new URL('.', import.meta.url))
  .filter((f) => f.endsWith('.ts') && !['run.ts', 'lib.ts'].includes(f))
  .map((f) => f.slice(0, -3));
if (!name || !available.includes(name)) {
  console.error(`usage: npm run bench -- NAME\navailable: ${available.join(', ')}`);
  process.exit(2);
}
if (process.env.BENCH_FROM_SOURCE !== '1') ensureBuilt();
await import(`./${name}.ts`);
