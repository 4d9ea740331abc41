// A terminal in a container: xterm.js over the API server's exec WebSocket
// (v5.channel.k8s.io, as kubectl 1.30+ speaks it). Each binary message
// starts with its channel: 0 stdin, 1 stdout, 2 stderr, 3 the final Status,
// 4 terminal size. A browser cannot set an Authorization header on a
// WebSocket, so the token goes as the base64url.bearer.authorization.k8s.io
// subprotocol, which the API server takes out again.

import { FitAddon } from '@xterm/addon-fit';
import { Terminal } from '@xterm/xterm';
import { useEffect, useRef, useState } from 'preact/hooks';
import { session } from '../api.ts';
import { ErrorBox } from '../components.ts';
import { html } from '../html.ts';
import { ContainerSelect, containerNames, PodHeader, usePod } from './pod.ts';

const STDIN = 0;
const STDOUT = 1;
const STDERR = 2;
const ERROR = 3;
const RESIZE = 4;

export function execProtocols(token: string | undefined): string[] {
  const protocols = ['v5.channel.k8s.io'];
  if (token) {
    const b64url = btoa(String.fromCharCode(...new TextEncoder().encode(token)))
      .replace(/\+/g, '-')
      .replace(/\//g, '_')
      .replace(/=+$/, '');
    protocols.push(`base64url.bearer.authorization.k8s.io.${b64url}`);
  }
  return protocols;
}

export function ExecPage(props: { namespace: string; name: string; container: string }) {
  const { pod, error: podError } = usePod(props.namespace, props.name);
  const container = props.container || containerNames(pod).at(-1) || '';
  const host = useRef<HTMLDivElement>(null);
  const [state, setState] = useState('connecting');
  useEffect(() => {
    if (!container || !host.current) return;
    const term = new Terminal({ convertEol: false, cursorBlink: true, fontSize: 14, screenReaderMode: true });
    const fit = new FitAddon();
    term.loadAddon(fit);
    term.open(host.current);
    fit.fit();
    const q = new URLSearchParams({ container, stdin: 'true', stdout: 'true', tty: 'true' });
    q.append('command', 'sh');
    const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/api/v1/namespaces/${encodeURIComponent(props.namespace)}/pods/${encodeURIComponent(props.name)}/exec?${q}`;
    const ws = new WebSocket(url, execProtocols(session.token));
    ws.binaryType = 'arraybuffer';
    const encoder = new TextEncoder();
    const send = (channel: number, data: Uint8Array) => {
      if (ws.readyState !== WebSocket.OPEN) return;
      const frame = new Uint8Array(data.length + 1);
      frame[0] = channel;
      frame.set(data, 1);
      ws.send(frame);
    };
    const resize = () =>
      send(RESIZE, encoder.encode(JSON.stringify({ Width: term.cols, Height: term.rows })));
    ws.onopen = () => {
      setState('connected');
      resize();
      term.focus();
    };
    ws.onmessage = (m) => {
      const data = new Uint8Array(m.data as ArrayBuffer);
      const channel = data[0];
      const body = data.subarray(1);
      if (channel === STDOUT || channel === STDERR) term.write(body);
      else if (channel === ERROR && body.length) {
        const status = JSON.parse(new TextDecoder().decode(body));
        term.write(
          `\r\n[${status.status === 'Success' ? 'session ended' : (status.message ?? 'failed')}]\r\n`,
        );
      }
    };
    ws.onclose = (e) => setState(e.code === 1000 || e.code === 1005 ? 'closed' : `closed (${e.code})`);
    ws.onerror = () => setState('failed: the API server refused the WebSocket');
    const input = term.onData((d) => send(STDIN, encoder.encode(d)));
    const onResize = () => {
      fit.fit();
      resize();
    };
    window.addEventListener('resize', onResize);
    return () => {
      window.removeEventListener('resize', onResize);
      input.dispose();
      ws.close();
      term.dispose();
    };
  }, [props.namespace, props.name, container]);
  return html`<div class="page exec">
    <${PodHeader} title="Terminal" namespace=${props.namespace} name=${props.name} />
    <div class="filters">
      ${pod ? html`<${ContainerSelect} page="exec" namespace=${props.namespace} name=${props.name} pod=${pod} value=${container} />` : null}
      <span class="muted" role="status">${state}</span>
    </div>
    <${ErrorBox} error=${podError} />
    <div class="terminal" ref=${host} role="region" aria-label=${`Terminal in ${container}`}></div>
  </div>`;
}
