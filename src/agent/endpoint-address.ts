/**
 * Where a node agent's HTTPS endpoint is, as its Node publishes it (a
 * kubelet's way): `status.addresses`, `status.daemonEndpoints.kubeletEndpoint.Port`
 * and the endpoint's self-signed certificate in an annotation. Read by the
 * API server to reach an agent, and by an agent to reach another one for a
 * volume copy across nodes.
 */
import { badRequest } from '../api/errors.js';
import type { KObject } from '../api/object.js';
import { numberAt, recordsAt, stringAt } from '../api/kinds/read.js';
import { agentCertificateAnnotation } from './endpoint-api.js';

/** Where a remote agent listens, as its Node says. */
export interface RemoteEndpoint {
  address: string;
  port: number;
  /** PEM of the agent's self-signed certificate. */
  certificate: string;
}

/** The Node address the server connects to, by preference. */
const addressPreference = ['InternalIP', 'ExternalIP', 'Hostname'];

const startAgentHint = 'start vireo agent --kubeconfig FILE --data-dir DIR on that host (it publishes its address, port and certificate on the Node), then try again';

/** True when the Node publishes an agent endpoint (a `vireo agent`; the agent inside `vireo server` publishes none). */
export function publishesEndpoint(node: KObject | undefined): boolean {
  const certificate = node?.metadata.annotations?.[agentCertificateAnnotation];
  return certificate !== undefined && certificate !== '' && (numberAt(node, 'status', 'daemonEndpoints', 'kubeletEndpoint', 'Port') ?? 0) > 0;
}

/**
 * True when other nodes can copy volumes from the Node's agent: it
 * publishes an endpoint, or it is the control plane's node, whose agent
 * (inside `vireo server`) serves its exports on the API server's port.
 */
export function servesExports(node: KObject | undefined): boolean {
  return publishesEndpoint(node) || node?.metadata.labels?.['node-role.kubernetes.io/control-plane'] !== undefined;
}

/**
 * The endpoint published on Node `nodeName`, or the ApiError that says why
 * there is none (400: a state of the cluster, not a server failure).
 */
export function endpointOfNode(nodeName: string, node: KObject | undefined): RemoteEndpoint {
  if (node === undefined) throw badRequest(`node ${nodeName} does not exist, so no agent can be reached there: ${startAgentHint}`);
  const port = numberAt(node, 'status', 'daemonEndpoints', 'kubeletEndpoint', 'Port') ?? 0;
  const certificate = node.metadata.annotations?.[agentCertificateAnnotation];
  const addresses = recordsAt(node, 'status', 'addresses');
  const address = addressPreference.map((type) => stringAt(addresses.find((a) => a.type === type), 'address')).find((a) => a !== undefined && a !== '');
  if (!(port > 0 && port < 65536) || certificate === undefined || certificate === '' || address === undefined) {
    throw badRequest(
      `node ${nodeName} has no agent this server can reach: its agent publishes no endpoint (status.daemonEndpoints.kubeletEndpoint.Port, status.addresses and the ${agentCertificateAnnotation} annotation); ${startAgentHint}`,
    );
  }
  return { address, port, certificate };
}
