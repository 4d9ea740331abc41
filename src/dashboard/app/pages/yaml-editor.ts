// An object's YAML, edited in place and saved by server-side apply
// (kubectl apply --server-side). A field another manager owns is a 409
// Conflict from the API: its message names the fields and managers, and the
// user may then apply with force, as --force-conflicts.

import { useEffect, useState } from 'preact/hooks';
import { ApiError, describeError, request } from '../api.ts';
import { ErrorBox, Notice } from '../components.ts';
import type { ResourceType } from '../discovery.ts';
import { resourcePath } from '../discovery.ts';
import { html } from '../html.ts';
import { editable } from './detail.ts';

export const FIELD_MANAGER = 'skiff-dashboard';

export function YamlEditor({ type, obj, canEdit }: { type: ResourceType; obj: any; canEdit: boolean }) {
  const [editing, setEditing] = useState(false);
  const [text, setText] = useState(() => editable(obj));
  const [error, setError] = useState<string>();
  const [conflict, setConflict] = useState(false);
  const [notice, setNotice] = useState<string>();
  // While not editing, the YAML follows the live object.
  useEffect(() => {
    if (!editing) setText(editable(obj));
  }, [obj, editing]);
  const apply = async (force: boolean) => {
    setError(undefined);
    setNotice(undefined);
    try {
      const path = resourcePath(type, obj.metadata.namespace, obj.metadata.name);
      await request(`${path}?fieldManager=${FIELD_MANAGER}${force ? '&force=true' : ''}`, {
        method: 'PATCH',
        body: text,
        contentType: 'application/apply-patch+yaml',
      });
      setConflict(false);
      setEditing(false);
      setNotice('Applied');
    } catch (err) {
      setConflict(err instanceof ApiError && err.code === 409 && err.status.reason === 'Conflict');
      setError(describeError(err));
    }
  };
  return html`<div class="yaml">
    <div class="actions" role="toolbar" aria-label="YAML actions">
      ${canEdit && !editing ? html`<button type="button" onClick=${() => setEditing(true)}>Edit YAML</button>` : null}
      ${editing ? html`<button type="button" onClick=${() => apply(false)}>Apply</button>` : null}
      ${editing && conflict ? html`<button type="button" class="danger" onClick=${() => apply(true)}>Apply with force</button>` : null}
      ${
        editing
          ? html`<button type="button" class="ghost" onClick=${() => {
              setEditing(false);
              setError(undefined);
              setConflict(false);
            }}>Cancel</button>`
          : null
      }
    </div>
    <${ErrorBox} error=${error} />
    <${Notice} text=${notice} />
    <label class="sr-only" for="yaml-text">YAML of ${obj.metadata.name}</label>
    <textarea
      id="yaml-text"
      class="code"
      spellcheck="false"
      readonly=${!editing}
      rows=${Math.min(40, text.split('\n').length + 1)}
      value=${text}
      onInput=${(e: Event) => setText((e.target as HTMLTextAreaElement).value)}
    ></textarea>
  </div>`;
}
