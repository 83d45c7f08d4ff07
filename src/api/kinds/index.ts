/**
 * The kinds Vireo serves: built-in Kubernetes kinds, the CRDs of KubeVirt,
 * CDI and Multus, and the CustomResourceDefinition machinery every CRD uses.
 */
export { builtinResources } from './builtin.js';
export type { BuiltinResourceDef, PrintRow } from './builtin-def.js';
export { kubevirtCustomResourceDefinitions } from './kubevirt.js';
export { cdiCustomResourceDefinitions, networkAttachmentDefinitionCrd } from './cdi.js';
export { csiSnapshotCustomResourceDefinitions } from './csi-snapshot.js';
export { calicoCustomResourceDefinitions } from './calico.js';
export { crdToResourceDef, defaultCustomResourceDefinition, establishCustomResourceDefinition, storageVersionOf } from './crd.js';
export { validateCustomResourceDefinition } from './crd-validation.js';
