// Events, cluster-wide or in one namespace, as a live timeline.

import { ErrorBox } from '../components.ts';
import { html } from '../html.ts';
import { useLiveList } from '../live.ts';
import { EventList } from './overview.ts';

export function EventsPage({ namespace }: { namespace: string }) {
  const events = useLiveList(
    namespace ? `/api/v1/namespaces/${encodeURIComponent(namespace)}/events` : '/api/v1/events',
  );
  return html`<div class="page">
    <h1>Events${namespace ? ` in ${namespace}` : ''}</h1>
    <${ErrorBox} error=${events.error} />
    <${EventList} events=${[...events.items.values()]} />
  </div>`;
}
