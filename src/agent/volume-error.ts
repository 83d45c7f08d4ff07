/**
 * Why a VMI's volumes could not be prepared, sorted by what the agent does
 * about it: an image that is not there yet is retried with backoff (the
 * VMI shows `ErrImagePull`/`ImagePullBackOff`, as a launcher pod would); a
 * missing ConfigMap or Secret is retried too (KubeVirt's pod would wait in
 * `ContainerCreating`); a volume the agent cannot serve fails the VMI.
 */

/** What went wrong, and so what happens next. */
export type VolumeProblem =
  /** A containerDisk or kernelBoot image is not in the node's image store. Retried. */
  | 'ImagePull'
  /** A referenced object (Secret, ConfigMap, ServiceAccount) is missing. Retried. */
  | 'NotReady'
  /** The volume cannot work on this node (unsupported type, bad size, missing host file). Fails the VMI. */
  | 'Invalid';

/** A volume that could not be prepared, and which kind of problem that is. */
export class VolumeError extends Error {
  constructor(
    readonly problem: VolumeProblem,
    /** The volume's name in `spec.volumes`. */
    readonly volume: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'VolumeError';
  }
}
