/** Live migration: the controller, and what others may read of its model. */
export { MigrationController } from './controller.js';
export { liveMigratableCondition, migratabilityOf, migrationMethodOf } from '../../api/kinds/vmi-migratable.js';
export type { Migratability } from '../../api/kinds/vmi-migratable.js';
export { downtimeAnnotation, migrationFinalizer, migrationPhases, totalTimeAnnotation } from './model.js';
export type { MigrationPhase } from './model.js';
