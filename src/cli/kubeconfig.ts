/** The kubeconfig a server writes for its admin: bearer token plus the CA. */
import { stringify } from 'yaml';
import { serversExtension } from './commands/connection.js';

export interface KubeconfigInput {
  server: string;
  caCert: string;
  token: string;
  /** Name of the cluster, user and context. */
  name?: string;
  /** More servers of the cluster, for the vireo CLI and agents (the `vireo.io/servers` extension; kubectl uses `server` only). */
  moreServers?: readonly string[];
}

export function renderKubeconfig(input: KubeconfigInput): string {
  const name = input.name ?? 'vireo';
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name, cluster: { server: input.server, 'certificate-authority-data': Buffer.from(input.caCert).toString('base64'), ...moreServersExtension(input.moreServers) } }],
    users: [{ name: `${name}-admin`, user: { token: input.token } }],
    contexts: [{ name, context: { cluster: name, user: `${name}-admin`, namespace: 'default' } }],
    'current-context': name,
    preferences: {},
  });
}

function moreServersExtension(more: readonly string[] | undefined): { extensions?: unknown[] } {
  if (more === undefined || more.length === 0) return {};
  return { extensions: [{ name: serversExtension, extension: { servers: [...more] } }] };
}
