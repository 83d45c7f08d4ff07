/**
 * What a PersistentVolume records about its encryption, so the node agent
 * that opens it (and anyone reading the PV) knows it is LUKS-encrypted and
 * where its key is, whatever its StorageClass says later.
 */
import type { KObject } from '../../api/object.js';
import type { EncryptionSecretRef } from './parameters.js';

/** `luks` on an encrypted volume. */
export const encryptionAnnotation = 'vireo.io/encryption';
/** `namespace/name` of the Secret with the key. */
export const encryptionSecretAnnotation = 'vireo.io/encryption-secret';
/** `"true"` on a volume whose imports write compressed qcow2 clusters (the class's `compression`). */
export const compressionAnnotation = 'vireo.io/compression';
/** The Secret entry that holds the passphrase. */
export const encryptionSecretKey = 'key';

/** An encrypted volume's format and key Secret. */
export interface VolumeEncryption {
  format: 'luks';
  secret: EncryptionSecretRef;
}

/** The annotations recording `encryption` on a PV. */
export function encryptionAnnotations(encryption: VolumeEncryption): Record<string, string> {
  return { [encryptionAnnotation]: encryption.format, [encryptionSecretAnnotation]: `${encryption.secret.namespace}/${encryption.secret.name}` };
}

/** The encryption a PV records; undefined for a plain volume. Throws when the annotations are malformed. */
export function volumeEncryptionOf(pv: KObject): VolumeEncryption | undefined {
  const annotations = pv.metadata.annotations ?? {};
  const format = annotations[encryptionAnnotation];
  if (format === undefined) return undefined;
  const ref = annotations[encryptionSecretAnnotation] ?? '';
  const slash = ref.indexOf('/');
  if (format !== 'luks' || slash <= 0 || slash === ref.length - 1) {
    throw new Error(`PersistentVolume "${pv.metadata.name ?? ''}" has ${encryptionAnnotation}="${format}" and ${encryptionSecretAnnotation}="${ref}": expected "luks" and "namespace/name"`);
  }
  return { format: 'luks', secret: { namespace: ref.slice(0, slash), name: ref.slice(slash + 1) } };
}
