/** virt-controller's object metrics (`controller-metrics.ts`) and their pure families (`object-families.ts`). */
export { VirtControllerMetrics } from './controller-metrics.js';
export { objectFamilies, objectSamples } from './object-families.js';
export type { FamilyDef, ObjectSnapshot, Sample } from './object-families.js';
export { inventoryFamilies, inventorySamples } from './inventory-families.js';
