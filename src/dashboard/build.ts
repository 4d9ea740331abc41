// Builds the dashboard's browser bundle (src/dashboard/app/) into
// dist/dashboard-ui/, which `skiff server` and `skiff dashboard` serve. It
// runs in scripts/setup.sh, offline: esbuild bundles the app with Preact,
// htm, xterm.js and yaml from node_modules, so no asset comes from a CDN.
//
// Cached by content, as images/build.sh: the output is rebuilt only when the
// app's sources, this script or the package lock changed (<out>/.key).
//
//   node src/dashboard/build.ts [OUT_DIR]

import { createHash } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

import { DASHBOARD_UI_DIR } from './serve.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const appDir = join(root, 'src/dashboard/app');

/** The files the bundle is made from, sorted, for the cache key. */
function inputs(): string[] {
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else files.push(p);
    }
  };
  walk(appDir);
  files.push(fileURLToPath(import.meta.url), join(root, 'package-lock.json'));
  return files.sort();
}

function contentKey(): string {
  const h = createHash('sha256');
  for (const f of inputs()) h.update(relative(root, f)).update('\0').update(readFileSync(f)).update('\0');
  return h.digest('hex');
}

/** Builds the bundle into outDir unless it is current; returns whether it built. */
export async function buildDashboard(outDir = DASHBOARD_UI_DIR): Promise<boolean> {
  const key = contentKey();
  const keyFile = join(outDir, '.key');
  if (existsSync(keyFile) && readFileSync(keyFile, 'utf8') === key) return false;
  // esbuild is a build-time tool: loaded only here, never by the server.
  const esbuild = await import('esbuild');
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  await esbuild.build({
    entryPoints: [join(appDir, 'main.ts')],
    bundle: true,
    format: 'esm',
    target: 'chrome120',
    minify: true,
    sourcemap: true,
    outfile: join(outDir, 'app.js'),
    legalComments: 'linked',
    logLevel: 'warning',
  });
  copyFileSync(join(appDir, 'index.html'), join(outDir, 'index.html'));
  writeFileSync(keyFile, key);
  return true;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const out = process.argv[2] ?? DASHBOARD_UI_DIR;
  const built = await buildDashboard(out);
  console.error(`skiff dashboard: ${built ? 'built' : 'up to date'} in ${out}`);
}
