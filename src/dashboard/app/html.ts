// htm bound to Preact: JSX-like templates in plain TypeScript, with no JSX
// compile step, so the app's files are ordinary .ts for tsc and esbuild.

import htm from 'htm';
import { h } from 'preact';

export const html = htm.bind(h);
