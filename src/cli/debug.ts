// `skiff debug profile`: a CPU profile or a heap snapshot of a running
// `skiff server --enable-pprof`, fetched over its authenticated API with a
// kubeconfig (GET /debug/pprof/profile and /debug/pprof/heap, see
// src/apiserver/profiling.ts), and written to a file: open a .cpuprofile in
// Chrome DevTools (Performance) or speedscope, a .heapsnapshot in DevTools
// (Memory).

import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { clientsFromKubeconfig } from '../agent/agent.ts';

export const debugUsage = `Usage: skiff debug profile [--seconds N] [--heap] [-o FILE] [--kubeconfig FILE]

Takes a CPU profile (default) or a heap snapshot (--heap) of the server the
kubeconfig points at, which must run with --enable-pprof; the kubeconfig's
user needs get on /debug/pprof/* (cluster-admin).
  --seconds N         how long the CPU profile runs (default 30, at most 50)
  --heap              a heap snapshot instead
  -o, --output FILE   default skiff-<time>.cpuprofile or .heapsnapshot
  --kubeconfig FILE   default <data-dir>/kubeconfig.yaml
  --data-dir DIR
`;

export async function runDebug(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      seconds: { type: 'string', default: '30' },
      heap: { type: 'boolean', default: false },
      output: { type: 'string', short: 'o' },
      kubeconfig: { type: 'string' },
      'data-dir': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    console.log(debugUsage);
    return 0;
  }
  if (positionals[0] !== 'profile') {
    console.error(`skiff debug: unknown command ${JSON.stringify(positionals[0] ?? '')}\n\n${debugUsage}`);
    return 2;
  }
  const seconds = Number(values.seconds);
  if (!values.heap && !(seconds > 0 && seconds <= 50)) {
    console.error(
      `skiff debug profile: --seconds must be from 1 to 50, not ${JSON.stringify(values.seconds)}`,
    );
    return 2;
  }
  const dataDir =
    values['data-dir'] ?? (process.getuid?.() === 0 ? '/var/lib/skiff' : `${process.env.HOME ?? '.'}/.skiff`);
  const clients = clientsFromKubeconfig(values.kubeconfig ?? `${dataDir}/kubeconfig.yaml`);
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const output = values.output ?? `skiff-${stamp}.${values.heap ? 'heapsnapshot' : 'cpuprofile'}`;
  try {
    if (!values.heap) console.error(`taking a ${seconds} s CPU profile...`);
    const res = await clients.transport.request({
      method: 'GET',
      path: values.heap ? '/debug/pprof/heap' : '/debug/pprof/profile',
      query: values.heap ? {} : { seconds: String(seconds) },
    });
    writeFileSync(output, typeof res.body === 'string' ? res.body : JSON.stringify(res.body));
    console.log(output);
    return 0;
  } catch (err) {
    const message = (err as Error)?.message ?? String(err);
    console.error(
      `skiff debug profile: ${message}${/not found|404/i.test(message) ? ' (is the server running with --enable-pprof?)' : ''}`,
    );
    return 1;
  } finally {
    clients.close();
  }
}
