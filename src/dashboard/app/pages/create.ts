// Create from YAML: each document of the text is created with POST, as
// `kubectl create -f`, in the page's namespace unless it names its own.
// Each object's result (or the API's error, a 403 included) is listed.

import { useState } from 'preact/hooks';
import { parseAllDocuments } from 'yaml';
import { describeError, request } from '../api.ts';
import { groupSegment, useSession } from '../context.ts';
import { resourcePath, typeForKind } from '../discovery.ts';
import { html } from '../html.ts';
import { href } from '../router.ts';

interface Result {
  what: string;
  ok: boolean;
  message: string;
  link?: string;
}

const EXAMPLE = `apiVersion: v1
kind: ConfigMap
metadata:
  name: example
data:
  greeting: hello
`;

export function CreatePage({ namespace }: { namespace: string }) {
  const { types } = useSession();
  const [text, setText] = useState(EXAMPLE);
  const [ns, setNs] = useState(namespace);
  const [results, setResults] = useState<Result[]>([]);
  const [busy, setBusy] = useState(false);
  const create = async () => {
    setBusy(true);
    const out: Result[] = [];
    for (const doc of parseAllDocuments(text)) {
      if (doc.errors.length) {
        out.push({ what: 'YAML', ok: false, message: doc.errors.map((e) => e.message).join('; ') });
        continue;
      }
      const obj = doc.toJS();
      if (!obj) continue;
      const what = `${obj.kind ?? '?'}/${obj.metadata?.name ?? obj.metadata?.generateName ?? '?'}`;
      const type = typeForKind(types, String(obj.apiVersion ?? ''), String(obj.kind ?? ''));
      if (!type) {
        out.push({ what, ok: false, message: `the cluster serves no kind ${obj.kind} in ${obj.apiVersion}` });
        continue;
      }
      const objNs = type.namespaced ? (obj.metadata?.namespace ?? ns) : undefined;
      try {
        const created = await request(resourcePath(type, objNs), { method: 'POST', body: obj });
        out.push({
          what,
          ok: true,
          message: 'created',
          link: href(['r', groupSegment(type.group), type.resource, objNs || '_', created.metadata.name]),
        });
      } catch (err) {
        out.push({ what, ok: false, message: describeError(err) });
      }
    }
    setResults(out);
    setBusy(false);
  };
  return html`<div class="page create">
    <h1>Create from YAML</h1>
    <form onSubmit=${(e: Event) => {
      e.preventDefault();
      void create();
    }}>
      <label>Namespace (for objects that name none)
        <input type="text" name="namespace" value=${ns} onInput=${(e: Event) => setNs((e.target as HTMLInputElement).value)} />
      </label>
      <label for="create-yaml">Manifests (several documents separated by ---)</label>
      <textarea id="create-yaml" class="code" rows="24" spellcheck="false" value=${text}
        onInput=${(e: Event) => setText((e.target as HTMLTextAreaElement).value)}></textarea>
      <button type="submit" disabled=${busy}>Create</button>
    </form>
    <ul class="results" aria-label="Results" aria-live="polite">
      ${results.map(
        (r) => html`<li class=${r.ok ? 'good' : 'bad'} role=${r.ok ? undefined : 'alert'}>
          ${r.link ? html`<a href=${r.link}>${r.what}</a>` : r.what}: ${r.message}
        </li>`,
      )}
    </ul>
  </div>`;
}
