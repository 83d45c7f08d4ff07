/**
 * Kind-specific admission validation (KubeVirt's and CDI's webhooks).
 */
export { validateKind, hasKindValidation } from './registry.js';
export type { WriterOptions } from './virtualmachine.js';
export { parseQuantity } from './quantity.js';
