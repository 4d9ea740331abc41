// `npm run bench -- NAME` runs bench/NAME.ts, which prints its figures and
// writes bench/results/NAME.json ({ headline: {metric, value, unit}, ... }).

import { readdirSync } from 'node:fs';

const name = process.argv[2];
const available = readdirSync(new URL('.', import.meta.url))
  .filter((f) => f.endsWith('.ts') && !['run.ts', 'lib.ts'].includes(f))
  .map((f) => f.slice(0, -3));
if (!name || !available.includes(name)) {
  console.error(`usage: npm run bench -- NAME\navailable: ${available.join(', ')}`);
  process.exit(2);
}
await import(`./${name}.ts`);
