/** Live migration: the controller, and what others may read of its model. */
export { MigrationController } from './controller.js';
export { liveMigratableCondition, migratabilityOf, migrationMethodOf } from './migratable.js';
export type { Migratability } from './migratable.js';
export { downtimeAnnotation, migrationFinalizer, migrationPhases, totalTimeAnnotation } from './model.js';
export type { MigrationPhase } from './model.js';
