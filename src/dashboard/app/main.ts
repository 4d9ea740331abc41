// The dashboard's entry point: styles, theme, and the app.

import '@xterm/xterm/css/xterm.css';
import './styles.css';
import { render } from 'preact';
import { App } from './app.ts';
import { html } from './html.ts';
import { applyTheme } from './theme.ts';

applyTheme();
render(html`<${App} />`, document.getElementById('app')!);
