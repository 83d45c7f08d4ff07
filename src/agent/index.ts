/** What other parts may use of the node agent. */
export { NodeAgent } from './agent.js';
export type { NodeAgentOptions } from './agent.js';
export { LocalAgentDirectory } from './handle.js';
export type { AgentDirectory, AgentHandle, GuestAction, GuestActionParameters, UploadOptions, UploadResult } from './handle.js';
export { agentFinalizer } from './vmi-status.js';
export { AgentEndpoint, bearerMatches } from './endpoint.js';
export { ExportAccess } from './export-access.js';
export { MetricsAccess } from './metrics-access.js';
export type { AgentEndpointOptions } from './endpoint.js';
export { agentCertificateAnnotation, agentRequestMethod, agentRequestPath, defaultAgentPort } from './endpoint-api.js';
export type { AgentEndpointInfo, AgentOperation, ExportedResource } from './endpoint-api.js';
export { endpointOfNode, publishesEndpoint, servesExports } from './endpoint-address.js';
export type { RemoteEndpoint } from './endpoint-address.js';
export type { MigrationAnswer, MigrationCommand, MigrationTarget, MigrationTls, MovedVolume, SourceProgress } from './migration/index.js';
export { parseMigrationTarget } from './migration/index.js';
export type { ConvergenceSettings, MigrationMode } from './migration/index.js';
