/**
 * The names the CSI snapshot machinery speaks in (external-snapshotter's
 * finalizers and annotations), and the ones Vireo adds.
 */

/** The API group of VolumeSnapshot, VolumeSnapshotContent and VolumeSnapshotClass. */
export const snapshotGroup = 'snapshot.storage.k8s.io';
/** The default-class annotation of VolumeSnapshotClasses. */
export const defaultSnapshotClassAnnotation = 'snapshot.storage.kubernetes.io/is-default-class';
/** Kept on a VolumeSnapshot while claims being restored from it wait for their volume. */
export const snapshotAsSourceFinalizer = 'snapshot.storage.kubernetes.io/volumesnapshot-as-source-protection';
/** Kept on a VolumeSnapshot bound to its content, so deleting it first deals with the content. */
export const snapshotBoundFinalizer = 'snapshot.storage.kubernetes.io/volumesnapshot-bound-protection';
/** Kept on a VolumeSnapshotContent until the driver has removed (or, for Retain, let go of) the snapshot. */
export const contentFinalizer = 'snapshot.storage.kubernetes.io/volumesnapshotcontent-bound-protection';
/** Kept on a claim while a snapshot of it is being cut. */
export const claimAsSourceFinalizer = 'snapshot.storage.kubernetes.io/pvc-as-source-protection';
/**
 * The node holding the data a claim is cloned or restored from, set on the
 * unbound claim by the snapshot controller: local volumes clone only on
 * their own node, so the scheduler and the Immediate binder send the claim
 * there.
 */
export const dataSourceNodeAnnotation = 'storage.vireo.io/data-source-node';
/**
 * CDI's annotation on a clone's target claim naming its source claim,
 * `namespace/name`. It is how a clone from another namespace is asked for
 * (Kubernetes' `spec.dataSource` names only claims of the claim's own
 * namespace), and what a copy across nodes reads its source from.
 */
export const cloneRequestAnnotation = 'k8s.io/CloneRequest';
/** CDI's annotation saying how a clone is made; `copy` (a host-assisted copy) for a copy across nodes. */
export const cloneTypeAnnotation = 'cdi.kubevirt.io/cloneType';
/** The prefix of the contents the controller makes for VolumeSnapshots: `snapcontent-<snapshot uid>`. */
export const contentPrefix = 'snapcontent-';
