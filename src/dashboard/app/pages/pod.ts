// The pod a logs or terminal page is about, live, and its container picker.

import { html } from '../html.ts';
import { useLiveList } from '../live.ts';
import { href, navigate } from '../router.ts';

export function usePod(namespace: string, name: string): { pod?: any; error?: string | undefined } {
  const live = useLiveList(
    `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods?fieldSelector=${encodeURIComponent(`metadata.name=${name}`)}`,
  );
  return { pod: live.items.get(`${namespace}/${name}`), error: live.error };
}

export function containerNames(pod: any): string[] {
  return [...(pod?.spec?.initContainers ?? []), ...(pod?.spec?.containers ?? [])].map((c: any) => c.name);
}

export function ContainerSelect(props: {
  page: string;
  namespace: string;
  name: string;
  pod: any;
  value: string;
}) {
  const names = containerNames(props.pod);
  return html`<label>Container
    <select name="container" value=${props.value} onChange=${(e: Event) =>
      navigate(
        href([props.page, props.namespace, props.name], { c: (e.target as HTMLSelectElement).value }),
        true,
      )}>
      ${names.map((n) => html`<option value=${n}>${n}</option>`)}
    </select>
  </label>`;
}

export function PodHeader(props: { title: string; namespace: string; name: string }) {
  return html`<nav aria-label="Breadcrumb" class="crumbs">
      <a href=${href(['r', 'core', 'pods'], { ns: props.namespace })}>Pod</a>${` / ${props.namespace} / `}<a href=${href(['r', 'core', 'pods', props.namespace, props.name])}>${props.name}</a>
    </nav>
    <h1>${props.title}</h1>`;
}
