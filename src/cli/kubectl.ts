// `skiff kubectl ARGS...`: the machine's kubectl, pointed at this machine's
// Skiff cluster, as `k3s kubectl` is. A newcomer who just ran
// scripts/up.sh types `skiff kubectl get nodes` and needs to know nothing
// about kubeconfigs. Like k3s, an explicit KUBECONFIG or --kubeconfig wins:
// the wrapper then only finds kubectl.

import { spawn } from 'node:child_process';
import { accessSync, existsSync, constants as fsConstants } from 'node:fs';
import { constants } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const kubectlUsage = `Usage: skiff kubectl [--data-dir DIR] ARGS...

Runs kubectl with ARGS against the Skiff cluster on this machine, using the
admin kubeconfig \`skiff server\` wrote to <data-dir>/kubeconfig.yaml
(data dir: /var/lib/skiff as root, ~/.skiff otherwise). When KUBECONFIG is
set, or ARGS has --kubeconfig, kubectl gets that one instead.

kubectl is the one on PATH, else the one scripts/up.sh installed in .tools/.
`;

/** Where scripts/up.sh puts kubectl on a machine that had none. */
const BUNDLED_KUBECTL = fileURLToPath(new URL('../../.tools/kubectl/kubectl', import.meta.url));

export function defaultDataDir(): string {
  return process.getuid?.() === 0 ? '/var/lib/skiff' : `${process.env.HOME ?? '.'}/.skiff`;
}

/** The kubectl to run: the first executable `kubectl` on PATH, else the bundled one. */
export function findKubectl(path = process.env.PATH ?? ''): string | undefined {
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, 'kubectl');
    if (isExecutable(candidate)) return candidate;
  }
  return isExecutable(BUNDLED_KUBECTL) ? BUNDLED_KUBECTL : undefined;
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export interface KubectlInvocation {
  /** The arguments kubectl gets (skiff's own --data-dir removed). */
  args: string[];
  /** The kubeconfig to set as KUBECONFIG, or undefined to leave kubectl's own choice alone. */
  kubeconfig?: string;
}

/**
 * Works out what kubectl runs with. Only a leading --data-dir is Skiff's:
 * kubectl has no such flag, and anything later belongs to kubectl.
 */
export function planKubectl(argv: string[], env: NodeJS.ProcessEnv = process.env): KubectlInvocation {
  let args = argv;
  let dataDir: string | undefined;
  if (args[0] === '--data-dir' && args[1] !== undefined) {
    dataDir = args[1];
    args = args.slice(2);
  } else if (args[0]?.startsWith('--data-dir=')) {
    dataDir = args[0].slice('--data-dir='.length);
    args = args.slice(1);
  }
  const explicit = args.some((a) => a === '--kubeconfig' || a.startsWith('--kubeconfig='));
  if (explicit || (env.KUBECONFIG && dataDir === undefined)) return { args };
  return { args, kubeconfig: join(dataDir ?? defaultDataDir(), 'kubeconfig.yaml') };
}

export async function runKubectl(argv: string[]): Promise<number> {
  if (argv[0] === '--help' && argv.length === 1) {
    console.log(kubectlUsage);
    return 0;
  }
  const plan = planKubectl(argv);
  const kubectl = findKubectl();
  if (!kubectl) {
    console.error('skiff kubectl: no kubectl on PATH; scripts/up.sh installs one, or install it yourself');
    return 1;
  }
  if (plan.kubeconfig && !existsSync(plan.kubeconfig)) {
    console.error(
      `skiff kubectl: no cluster here (${plan.kubeconfig} does not exist); start one with scripts/up.sh or skiff server`,
    );
    return 1;
  }
  const child = spawn(kubectl, plan.args, {
    stdio: 'inherit',
    env: plan.kubeconfig ? { ...process.env, KUBECONFIG: plan.kubeconfig } : process.env,
  });
  // Ctrl-C reaches kubectl itself (same process group); we only outlive it,
  // so `kubectl logs -f` or `port-forward` end the way they do when run bare.
  // SIGTERM sent to skiff alone is passed on, so kubectl is not left behind.
  const onInt = () => undefined;
  const onTerm = () => child.kill('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  return new Promise((resolve) => {
    child.once('error', (err) => {
      console.error(`skiff kubectl: ${err.message}`);
      resolve(1);
    });
    child.once('exit', (code, signal) => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      // A shell reports death by signal N as 128+N; do the same.
      resolve(code ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 0));
    });
  });
}
