/** What other controllers and the scheduler may use of the VMI model. */
export type { Condition } from './conditions.js';
export { conditionsOf, findCondition, hasCondition, removeCondition, setCondition, timestamp } from './conditions.js';
export {
  canonicalJson,
  conditionTypes,
  controllerRefOf,
  controllerRefTo,
  errorMessage,
  isControlledBy,
  isFinal,
  isMarkedForDeletion,
  isUnprocessed,
  keyOf,
  kubevirtApiVersion,
  logFieldsOf,
  nodeNameOf,
  vmiPhase,
  vmiPhases,
  wasRunning,
} from './model.js';
