/**
 * The StorageClass parameters of the local provisioner, checked once where
 * a volume is made: `format` (raw | qcow2, default raw), `preallocation`
 * (off | metadata | falloc | full, default off; passed to `qemu-img`),
 * `encryption` (none | luks, default none; the key is the `key` entry of
 * the Secret `encryptionSecretNamespace`/`encryptionSecretName`) and
 * `compression` ("true" | "false", default false: imports write qcow2
 * compressed clusters). A class with a bad value is not rejected when
 * written (Kubernetes keeps parameters opaque); its claims stay Pending
 * with the reason.
 */

export type VolumeFormat = 'raw' | 'qcow2';
export type Preallocation = 'off' | 'metadata' | 'falloc' | 'full';

/** Where an encrypted class's volumes get their key: the `key` entry of this Secret. */
export interface EncryptionSecretRef {
  namespace: string;
  name: string;
}

/** A local class's parameters, defaulted. */
export interface LocalClassParameters {
  format: VolumeFormat;
  preallocation: Preallocation;
  /** LUKS encryption (qcow2's LUKS payload encryption, or a raw LUKS container) with the key from a Secret. */
  encryption?: { format: 'luks'; secret: EncryptionSecretRef };
  /** Imports write compressed qcow2 clusters (only qcow2 has them). */
  compression?: boolean;
}

const formats: readonly VolumeFormat[] = ['raw', 'qcow2'];
const preallocations: readonly Preallocation[] = ['off', 'metadata', 'falloc', 'full'];
const known = new Set(['format', 'preallocation', 'encryption', 'encryptionSecretName', 'encryptionSecretNamespace', 'compression']);
// A Kubernetes object name: DNS subdomain (Secrets) or label (namespaces).
const subdomain = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const label = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

function isOneOf<T extends string>(list: readonly T[], value: string): value is T {
  return (list as readonly string[]).includes(value);
}

/** The parameters of class `className`, or why they cannot make a volume. */
export function parseClassParameters(className: string, parameters: Record<string, string>): { parameters: LocalClassParameters } | { error: string } {
  const where = `StorageClass "${className}"`;
  for (const key of Object.keys(parameters)) {
    if (!known.has(key)) return { error: `${where} has the unknown parameter "${key}": the vireo.io/local provisioner takes only format, preallocation, encryption (with encryptionSecretName and encryptionSecretNamespace) and compression; remove it or use another class` };
  }
  const format = parameters.format ?? 'raw';
  if (!isOneOf(formats, format)) return { error: `${where} has parameter format "${format}", which is not a volume format: use raw or qcow2` };
  const preallocation = parameters.preallocation ?? 'off';
  if (!isOneOf(preallocations, preallocation)) return { error: `${where} has parameter preallocation "${preallocation}": use off, metadata, falloc or full` };
  if (preallocation === 'metadata' && format !== 'qcow2') return { error: `${where} asks for preallocation "metadata", which only qcow2 volumes have: use format qcow2, or off, falloc or full` };
  const out: LocalClassParameters = { format, preallocation };
  const encryption = parseEncryption(where, parameters);
  if ('error' in encryption) return encryption;
  if (encryption.encryption !== undefined) out.encryption = encryption.encryption;
  const compression = parameters.compression ?? 'false';
  if (compression !== 'true' && compression !== 'false') return { error: `${where} has parameter compression "${compression}": use "true" or "false"` };
  if (compression === 'true') {
    if (format !== 'qcow2') return { error: `${where} asks for compression, which only qcow2 volumes have (compressed clusters): set format "qcow2", or compression "false"` };
    out.compression = true;
  }
  return { parameters: out };
}

function parseEncryption(where: string, parameters: Record<string, string>): { encryption?: LocalClassParameters['encryption'] } | { error: string } {
  const encryption = parameters.encryption ?? 'none';
  const name = parameters.encryptionSecretName;
  const namespace = parameters.encryptionSecretNamespace;
  if (encryption === 'none') {
    if (name !== undefined || namespace !== undefined) return { error: `${where} names an encryption Secret but has no encryption "luks": set encryption "luks", or remove encryptionSecretName and encryptionSecretNamespace` };
    return {};
  }
  if (encryption !== 'luks') return { error: `${where} has parameter encryption "${encryption}": use "luks" (or "none")` };
  if (name === undefined || namespace === undefined) {
    return { error: `${where} has encryption "luks" but no key: set encryptionSecretName and encryptionSecretNamespace to a Secret whose "key" entry is the passphrase` };
  }
  if (!subdomain.test(name) || name.length > 253) return { error: `${where} has encryptionSecretName "${name}", which is not a Secret name` };
  if (!label.test(namespace) || namespace.length > 63) return { error: `${where} has encryptionSecretNamespace "${namespace}", which is not a namespace name` };
  return { encryption: { format: 'luks', secret: { namespace, name } } };
}
