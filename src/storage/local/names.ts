/**
 * The names the local storage speaks in: its provisioner, the annotations
 * Kubernetes' volume machinery and CDI put on claims and volumes, and the
 * ones Vireo adds (the file format of a volume, a node's free capacity).
 */

/** The provisioner of StorageClasses whose volumes are files on one node. */
export const localProvisioner = 'vireo.io/local';

/** The node a WaitForFirstConsumer claim goes to, set by the scheduler (or the Immediate binder). */
export const selectedNodeAnnotation = 'volume.kubernetes.io/selected-node';
/** Which provisioner made a PersistentVolume (as external-provisioner sets it). */
export const provisionedByAnnotation = 'pv.kubernetes.io/provisioned-by';
/** The provisioner expected to serve a claim (set by the PV controller; CDI reads it). */
export const storageProvisionerAnnotation = 'volume.kubernetes.io/storage-provisioner';
/** The file format of a local volume: `raw` or `qcow2`. */
export const volumeFormatAnnotation = 'storage.vireo.io/format';
/** A node's free local-storage bytes (TopoLVM's `capacity.topolvm.io/<class>`). */
export const capacityAnnotation = 'capacity.vireo.io/local';
/** The extended resource a node's local-storage capacity is reported as, in bytes. */
export const localStorageResource = 'vireo.io/local-storage';
/** The default-class annotation of StorageClasses. */
export const defaultClassAnnotation = 'storageclass.kubernetes.io/is-default-class';
/** Kubernetes' finalizer that keeps a claim while a workload uses it. */
export const pvcProtectionFinalizer = 'kubernetes.io/pvc-protection';
/** CDI's importer phase on a claim it populates: the volume is usable only once it says `Succeeded`. */
export const importPhaseAnnotation = 'cdi.kubevirt.io/storage.pod.phase';
/** The node label local volumes are pinned with. */
export const hostnameLabel = 'kubernetes.io/hostname';
