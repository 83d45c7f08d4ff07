/**
 * Local storage: volumes that are files on one node (TopoLVM's model with
 * files for logical volumes). What the API server, the controllers, the
 * scheduler and the node agent use of it: pure functions on API objects,
 * no I/O. The node agent's provisioner, which does the I/O, is
 * `provisioner.ts`.
 */
export * from './names.js';
export { parseClassParameters } from './parameters.js';
export type { EncryptionSecretRef, LocalClassParameters, Preallocation, VolumeFormat } from './parameters.js';
export { compressionAnnotation, encryptionAnnotation, encryptionAnnotations, encryptionSecretAnnotation, encryptionSecretKey, volumeEncryptionOf } from './encryption.js';
export type { VolumeEncryption } from './encryption.js';
export { bindingModeOf, classParameters, defaultClassName, defaultStorageClass, isDefaultClass, isLocalClass, pickDefaultClass, reclaimPolicyOf } from './storage-class.js';
export { claimNameOf, claimNamesOf, claimNode, exportTargetWhere, importInProgress, isLocalVolume, localVolumeOf, requestedBytes, volumeBytes, volumeDir, volumeFile, volumeModeOf, volumeNameFor, volumeNode, volumesRoot } from './volume.js';
export type { LocalVolume, VolumeMode } from './volume.js';
export { committedBytes, formatBytes, freeBytes, isPendingLocalClaim, nodeLocalCapacity } from './capacity.js';
export type { StorageView } from './capacity.js';
