// Light and dark themes: the system's choice until the user picks one.

import { useEffect, useState } from 'preact/hooks';
import { html } from './html.ts';

const KEY = 'skiff.dashboard.theme';
type Theme = 'light' | 'dark';

function initial(): Theme {
  const saved = localStorage.getItem(KEY);
  if (saved === 'light' || saved === 'dark') return saved;
  return matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
}

export function applyTheme(theme: Theme = initial()): void {
  document.documentElement.dataset['theme'] = theme;
}

export function ThemeToggle() {
  const [theme, setTheme] = useState<Theme>(initial);
  useEffect(() => applyTheme(theme), [theme]);
  const next: Theme = theme === 'dark' ? 'light' : 'dark';
  return html`<button
    type="button"
    class="ghost"
    aria-label=${`Switch to the ${next} theme`}
    title=${`Switch to the ${next} theme`}
    onClick=${() => {
      localStorage.setItem(KEY, next);
      setTheme(next);
    }}
  >
    ${theme === 'dark' ? '☀' : '☾'}
  </button>`;
}
