/** The endpoints controller: Endpoints and EndpointSlices of Services, over VMIs. */
export { EndpointsController } from './controller.js';
export type { EndpointsControllerOptions } from './controller.js';
export { desiredEndpoints, managedByLabel, managedByValue, serviceNameLabel } from './desired.js';
