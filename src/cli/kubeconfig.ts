/** The kubeconfig a server writes for its admin: bearer token plus the CA. */
import { stringify } from 'yaml';

export interface KubeconfigInput {
  server: string;
  caCert: string;
  token: string;
  /** Name of the cluster, user and context. */
  name?: string;
}

export function renderKubeconfig(input: KubeconfigInput): string {
  const name = input.name ?? 'vireo';
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name, cluster: { server: input.server, 'certificate-authority-data': Buffer.from(input.caCert).toString('base64') } }],
    users: [{ name: `${name}-admin`, user: { token: input.token } }],
    contexts: [{ name, context: { cluster: name, user: `${name}-admin`, namespace: 'default' } }],
    'current-context': name,
    preferences: {},
  });
}
