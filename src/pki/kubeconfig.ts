// A kubeconfig with one cluster and one client-certificate user.

const b64 = (s: string) => Buffer.from(s).toString('base64');

export function kubeconfigYaml(
  server: string,
  caPem: string,
  certPem: string,
  keyPem: string,
  user = 'admin',
): string {
  return `apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority-data: ${b64(caPem)}
    server: ${server}
  name: skiff
contexts:
- context:
    cluster: skiff
    user: ${user}
  name: skiff
current-context: skiff
preferences: {}
users:
- name: ${user}
  user:
    client-certificate-data: ${b64(certPem)}
    client-key-data: ${b64(keyPem)}
`;
}

/** The server URL of a kubeconfig we wrote (its one cluster). */
export function kubeconfigServer(yaml: string): string | undefined {
  return /^\s+server:\s*(\S+)\s*$/m.exec(yaml)?.[1];
}
