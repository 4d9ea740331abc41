// The `skiff` command: dispatches to a subcommand. Each subcommand lives in
// its own module and is loaded only when used, so `skiff version` stays fast.

import { readFileSync } from 'node:fs';

interface Command {
  summary: string;
  run(args: string[]): Promise<number>;
}

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

const commands: Record<string, Command> = {
  version: {
    summary: 'Print the Skiff version',
    async run() {
      console.log(`skiff version v${pkg.version} (node ${process.version})`);
      return 0;
    },
  },
  server: {
    summary: 'Run the control plane (API server on an embedded store)',
    async run(args) {
      const { runServer } = await import('./server.ts');
      return runServer(args);
    },
  },
  images: {
    summary: 'Import image tarballs into the node (skiff images import FILE)',
    async run(args) {
      const { runImages } = await import('./images.ts');
      return runImages(args);
    },
  },
  agent: {
    summary: 'Run a node agent that joins a cluster (the kubelet)',
    async run(args) {
      const { runAgent } = await import('./agent.ts');
      return runAgent(args);
    },
  },
  hosts: {
    summary: 'A cluster of hosts on this machine, one network namespace each (skiff hosts up --hosts N)',
    async run(args) {
      const { runHosts } = await import('./hosts.ts');
      return runHosts(args);
    },
  },
  kubeconfig: {
    summary: 'Write a kubeconfig for a new user (skiff kubeconfig --user NAME --group G)',
    async run(args) {
      const { runKubeconfig } = await import('./kubeconfig.ts');
      return runKubeconfig(args);
    },
  },
  'secrets-encrypt': {
    summary: 'Secrets encryption at rest: status, rotate, prune (as k3s secrets-encrypt)',
    async run(args) {
      const { runSecretsEncrypt } = await import('./secrets-encrypt.ts');
      return runSecretsEncrypt(args);
    },
  },
  'etcd-snapshot': {
    summary: 'Datastore snapshots: save, ls, delete, prune (as k3s etcd-snapshot; SQLite or etcd)',
    async run(args) {
      const { runEtcdSnapshot } = await import('./etcd-snapshot.ts');
      return runEtcdSnapshot(args);
    },
  },
  snapshot: {
    summary: 'The same as etcd-snapshot',
    async run(args) {
      const { runEtcdSnapshot } = await import('./etcd-snapshot.ts');
      return runEtcdSnapshot(args);
    },
  },
  certificate: {
    summary: 'Certificates: check expiry, rotate leaf certificates (as k3s certificate)',
    async run(args) {
      const { runCertificate } = await import('./certificate.ts');
      return runCertificate(args);
    },
  },
  check: {
    summary: 'Check the cluster: `skiff check network` prints node-to-node reachability over the pod network',
    async run(args) {
      const { runCheck } = await import('./check.ts');
      return runCheck(args);
    },
  },
  debug: {
    summary: 'A CPU profile or heap snapshot of a running server (skiff debug profile --seconds N)',
    async run(args) {
      const { runDebug } = await import('./debug.ts');
      return runDebug(args);
    },
  },
  kubectl: {
    summary: "Run kubectl against this machine's cluster (skiff kubectl get nodes)",
    async run(args) {
      const { runKubectl } = await import('./kubectl.ts');
      return runKubectl(args);
    },
  },
  dashboard: {
    summary: 'Serve the web UI on 127.0.0.1 with the admin kubeconfig (as kubectl proxy plus the UI)',
    async run(args) {
      const { runDashboard } = await import('./dashboard.ts');
      return runDashboard(args);
    },
  },
  help: {
    summary: 'Show this help',
    async run() {
      console.log(usage());
      return 0;
    },
  },
};

function usage(): string {
  const width = Math.max(...Object.keys(commands).map((c) => c.length));
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return [
    'Skiff: a lightweight Kubernetes.',
    '',
    'Usage: skiff <command> [flags]',
    '',
    'Commands:',
    ...lines,
  ].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h') return commands.help!.run([]);
  const command = commands[name];
  if (!command) {
    console.error(`skiff: unknown command "${name}"\n\n${usage()}`);
    return 2;
  }
  return command.run(rest);
}

process.exitCode = await main(process.argv.slice(2));
