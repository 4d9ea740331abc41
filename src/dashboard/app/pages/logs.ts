// A container's log, streamed (follow), with the previous instance's log
// and a search that keeps only matching lines.

import { useEffect, useRef, useState } from 'preact/hooks';
import { describeError, readLines, stream } from '../api.ts';
import { ErrorBox } from '../components.ts';
import { html } from '../html.ts';
import { ContainerSelect, containerNames, PodHeader, usePod } from './pod.ts';

const MAX_LINES = 10_000;

export function LogsPage(props: { namespace: string; name: string; container: string }) {
  const { pod, error: podError } = usePod(props.namespace, props.name);
  const container = props.container || containerNames(pod).at(-1) || '';
  const [follow, setFollow] = useState(true);
  const [previous, setPrevious] = useState(false);
  const [search, setSearch] = useState('');
  const [lines, setLines] = useState<string[]>([]);
  const [error, setError] = useState<string>();
  const bottom = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!container) return;
    const abort = new AbortController();
    const buffer: string[] = [];
    let frame = 0;
    setLines([]);
    setError(undefined);
    const q = new URLSearchParams({ container, tailLines: '1000' });
    if (follow && !previous) q.set('follow', 'true');
    if (previous) q.set('previous', 'true');
    const path = `/api/v1/namespaces/${encodeURIComponent(props.namespace)}/pods/${encodeURIComponent(props.name)}/log?${q}`;
    stream(path, abort.signal)
      .then((res) =>
        readLines(res, abort.signal, (line) => {
          buffer.push(line);
          if (buffer.length > MAX_LINES) buffer.splice(0, buffer.length - MAX_LINES);
          if (!frame)
            frame = requestAnimationFrame(() => {
              frame = 0;
              setLines([...buffer]);
            });
        }),
      )
      .catch((err) => !abort.signal.aborted && setError(describeError(err)));
    return () => {
      abort.abort();
      if (frame) cancelAnimationFrame(frame);
    };
  }, [props.namespace, props.name, container, follow, previous]);
  useEffect(() => {
    if (follow) bottom.current?.scrollIntoView({ block: 'end' });
  }, [lines, follow]);
  const shown = search ? lines.filter((l) => l.toLowerCase().includes(search.toLowerCase())) : lines;
  return html`<div class="page logs">
    <${PodHeader} title="Logs" namespace=${props.namespace} name=${props.name} />
    <div class="filters">
      ${pod ? html`<${ContainerSelect} page="logs" namespace=${props.namespace} name=${props.name} pod=${pod} value=${container} />` : null}
      <label class="check"><input type="checkbox" checked=${follow} onChange=${(e: Event) => setFollow((e.target as HTMLInputElement).checked)} /> Follow</label>
      <label class="check"><input type="checkbox" checked=${previous} onChange=${(e: Event) => setPrevious((e.target as HTMLInputElement).checked)} /> Previous instance</label>
      <label>Search <input type="search" name="search" value=${search} onInput=${(e: Event) => setSearch((e.target as HTMLInputElement).value)} /></label>
      <span class="muted" aria-live="polite">${shown.length} lines</span>
    </div>
    <${ErrorBox} error=${podError ?? error} />
    <pre class="log" aria-label=${`Log of ${container}`} tabindex="0">${shown.join('\n')}<div ref=${bottom}></div></pre>
  </div>`;
}
