// Small pieces the pages share: an error box, a confirmation dialog, a
// virtualised table for the API's Tables.

import { useEffect, useRef, useState } from 'preact/hooks';
import { html } from './html.ts';

export function ErrorBox({ error }: { error?: string | undefined }) {
  if (!error) return null;
  return html`<div class="error" role="alert">${error}</div>`;
}

export function Notice({ text }: { text?: string | undefined }) {
  if (!text) return null;
  return html`<div class="notice" role="status">${text}</div>`;
}

/** A modal dialog, open while rendered: the native <dialog>, so focus and Escape work. */
export function Modal(props: { label: string; class?: string; onClose: () => void; children?: unknown }) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    ref.current?.showModal();
  }, []);
  return html`<dialog ref=${ref} aria-label=${props.label} class=${props.class} onClose=${props.onClose}>
    ${props.children}
  </dialog>`;
}

/** A modal dialog asking to confirm `question`. */
export function Confirm(props: {
  question: string;
  action: string;
  onConfirm: () => void;
  onCancel: () => void;
}) {
  return html`<${Modal} label="Confirm" onClose=${props.onCancel}>
    <p>${props.question}</p>
    <div class="buttons">
      <button type="button" onClick=${props.onCancel}>Cancel</button>
      <button type="button" class="danger" onClick=${props.onConfirm}>${props.action}</button>
    </div>
  <//>`;
}

const ROW_HEIGHT = 33;
const OVERSCAN = 20;

export interface GridColumn {
  name: string;
  description?: string;
}

/**
 * A table that renders only the rows in view (and a few around), so a list
 * of 10,000 pods scrolls as fast as one of ten. Spacer rows keep the
 * scrollbar true to the whole list.
 */
export function VirtualTable(props: {
  label: string;
  columns: GridColumn[];
  rows: { key: string; cells: (string | ReturnType<typeof html>)[] }[];
  /** The row chosen with the keyboard (-1 for none): marked, and scrolled into view. */
  selected?: number;
}) {
  const scroller = useRef<HTMLDivElement>(null);
  const [view, setView] = useState({ top: 0, height: 800 });
  const selected = props.selected ?? -1;
  useEffect(() => {
    const el = scroller.current;
    if (!el || selected < 0) return;
    // Row `selected` sits below the header row, at (selected + 1) row heights.
    const top = (selected + 1) * ROW_HEIGHT;
    if (top < el.scrollTop + ROW_HEIGHT) el.scrollTop = top - ROW_HEIGHT;
    else if (top + ROW_HEIGHT > el.scrollTop + el.clientHeight)
      el.scrollTop = top + ROW_HEIGHT - el.clientHeight;
  }, [selected]);
  useEffect(() => {
    const el = scroller.current;
    if (!el) return;
    const measure = () => setView({ top: el.scrollTop, height: el.clientHeight || 800 });
    measure();
    el.addEventListener('scroll', measure, { passive: true });
    window.addEventListener('resize', measure);
    return () => {
      el.removeEventListener('scroll', measure);
      window.removeEventListener('resize', measure);
    };
  }, []);
  const first = Math.max(0, Math.floor(view.top / ROW_HEIGHT) - OVERSCAN);
  const last = Math.min(props.rows.length, Math.ceil((view.top + view.height) / ROW_HEIGHT) + OVERSCAN);
  const shown = props.rows.slice(first, last);
  return html`<div class="table-scroll" ref=${scroller} tabindex="0" aria-label=${`${props.label}, ${props.rows.length} rows`}>
    <table aria-label=${props.label} aria-rowcount=${props.rows.length + 1}>
      <thead>
        <tr>${props.columns.map((c) => html`<th scope="col" title=${c.description}>${c.name}</th>`)}</tr>
      </thead>
      <tbody>
        ${first > 0 ? html`<tr class="spacer" aria-hidden="true" style=${`height:${first * ROW_HEIGHT}px`}></tr>` : null}
        ${shown.map(
          (r, i) =>
            html`<tr
              key=${r.key}
              aria-rowindex=${first + i + 2}
              aria-current=${first + i === selected ? 'true' : undefined}
              class=${first + i === selected ? 'selected' : undefined}
            >${r.cells.map((c) => html`<td>${c}</td>`)}</tr>`,
        )}
        ${
          last < props.rows.length
            ? html`<tr class="spacer" aria-hidden="true" style=${`height:${(props.rows.length - last) * ROW_HEIGHT}px`}></tr>`
            : null
        }
      </tbody>
    </table>
  </div>`;
}
