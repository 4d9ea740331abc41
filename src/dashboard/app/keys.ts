// Keyboard navigation: "g" then a letter goes to a page, "?" lists the
// keys, and lists move a selection with j/k (or the arrows) and open it
// with Enter. Keys typed into a field are the field's, never shortcuts.

import { useEffect, useRef } from 'preact/hooks';
import { navigate } from './router.ts';

/** "g" then the key: where it goes, and what the help says. */
export const GO_TO: Record<string, { to: string; label: string }> = {
  o: { to: '#/', label: 'Overview' },
  m: { to: '#/map', label: 'Live map' },
  e: { to: '#/events', label: 'Events' },
  c: { to: '#/create', label: 'Create from YAML' },
  p: { to: '#/r/core/pods', label: 'Pods' },
  d: { to: '#/r/apps/deployments', label: 'Deployments' },
  s: { to: '#/r/core/services', label: 'Services' },
  n: { to: '#/r/core/nodes', label: 'Nodes' },
};

export const LIST_KEYS: [string, string][] = [
  ['/', 'Search the list'],
  ['j or ↓', 'Next row'],
  ['k or ↑', 'Previous row'],
  ['Enter', 'Open the selected row'],
  ['?', 'Show these keys'],
  ['Escape', 'Close a dialog'],
];

/** Whether the key was typed into something that takes text (or has a modifier held). */
export function isTyping(e: KeyboardEvent): boolean {
  if (e.ctrlKey || e.metaKey || e.altKey) return true;
  const t = e.target as HTMLElement | null;
  return Boolean(
    t &&
      (t instanceof HTMLInputElement ||
        t instanceof HTMLTextAreaElement ||
        t instanceof HTMLSelectElement ||
        t.isContentEditable ||
        t.closest('.xterm')),
  );
}

/** Calls onKey for each key pressed outside a text field, for as long as the component lives. */
export function useKeys(onKey: (e: KeyboardEvent) => void): void {
  const handler = useRef(onKey);
  handler.current = onKey;
  useEffect(() => {
    const listener = (e: KeyboardEvent) => {
      if (!isTyping(e)) handler.current(e);
    };
    window.addEventListener('keydown', listener);
    return () => window.removeEventListener('keydown', listener);
  }, []);
}

/** The app-wide keys: "g" + letter to go to a page, "?" for the help. */
export function useGlobalKeys(showHelp: () => void): void {
  const pendingG = useRef(0);
  useKeys((e) => {
    if (e.key === '?') {
      e.preventDefault();
      showHelp();
      return;
    }
    if (e.key === 'g') {
      pendingG.current = Date.now();
      return;
    }
    const target = GO_TO[e.key];
    if (target && Date.now() - pendingG.current < 1500) {
      e.preventDefault();
      navigate(target.to);
    }
    pendingG.current = 0;
  });
}
