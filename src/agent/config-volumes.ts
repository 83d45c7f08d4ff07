/**
 * ConfigMap, Secret and ServiceAccount volumes as ISO disks, the way
 * KubeVirt presents them to a guest: one file per key, volume label
 * `cfgdata` unless `volumeLabel` says otherwise.
 */
import type { KObject } from '../api/object.js';
import { booleanAt, recordAt, stringAt } from '../api/kinds/read.js';
import type { Client, ResourceRef } from '../client/index.js';
import { resources } from '../client/index.js';
import type { IsoFile } from './iso.js';
import { VolumeError } from './volume-error.js';

/** The volume types served as ISOs of an object's keys. */
export type ConfigVolumeKind = 'configMap' | 'secret' | 'serviceAccount';

/** The ISO contents for a config volume. */
export interface ConfigDisk {
  volumeId: string;
  files: IsoFile[];
}

const serviceAccounts: ResourceRef = { group: '', version: 'v1', plural: 'serviceaccounts', namespaced: true };
const defaultLabel = 'cfgdata';

/** Builds the files of a configMap/secret/serviceAccount volume (an entry of `spec.volumes`). */
export async function configDisk(vmi: KObject, volume: Record<string, unknown>, kind: ConfigVolumeKind, client: Client): Promise<ConfigDisk> {
  const volumeName = stringAt(volume, 'name') ?? '';
  const source = recordAt(volume, kind) ?? {};
  const namespace = vmi.metadata.namespace ?? 'default';
  const volumeId = (stringAt(source, 'volumeLabel') ?? '') || defaultLabel;
  switch (kind) {
    case 'configMap': {
      const name = stringAt(source, 'name') ?? '';
      const obj = await fetchSource(client, resources.configMaps, { namespace, name, volumeName, what: 'configmap', optional: booleanAt(source, 'optional') === true });
      const data = obj === undefined ? new Map<string, Buffer>() : keyData(obj, { plain: 'data', encoded: 'binaryData' });
      return { volumeId, files: asFiles(data) };
    }
    case 'secret': {
      const name = stringAt(source, 'secretName') ?? '';
      const obj = await fetchSource(client, resources.secrets, { namespace, name, volumeName, what: 'secret', optional: booleanAt(source, 'optional') === true });
      const data = obj === undefined ? new Map<string, Buffer>() : keyData(obj, { plain: 'stringData', encoded: 'data' });
      return { volumeId, files: asFiles(data) };
    }
    case 'serviceAccount':
      return { volumeId, files: await serviceAccountFiles(client, { namespace, name: stringAt(source, 'serviceAccountName') ?? 'default', volumeName }) };
  }
}

async function fetchSource(
  client: Client,
  ref: ResourceRef,
  what: { namespace: string; name: string; volumeName: string; what: string; optional: boolean },
): Promise<KObject | undefined> {
  const obj = what.name === '' ? undefined : await client.tryGet(ref, what.namespace, what.name);
  if (obj !== undefined || what.optional) return obj;
  throw new VolumeError('NotReady', what.volumeName, `volume "${what.volumeName}": ${what.what} "${what.name}" not found in namespace "${what.namespace}"; the VMI starts once it exists (or mark the volume optional)`);
}

/** Every key of a ConfigMap or Secret with its bytes. */
function keyData(obj: KObject, fields: { plain: string; encoded: string }): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const [key, value] of Object.entries(recordAt(obj, fields.encoded) ?? {})) {
    if (typeof value === 'string') out.set(key, Buffer.from(value, 'base64'));
  }
  for (const [key, value] of Object.entries(recordAt(obj, fields.plain) ?? {})) {
    if (typeof value === 'string') out.set(key, Buffer.from(value, 'utf8'));
  }
  return out;
}

function asFiles(data: Map<string, Buffer>): IsoFile[] {
  return [...data].map(([key, content]) => ({ path: key, content }));
}

/**
 * `namespace`, and `token`/`ca.crt` when a legacy token Secret of the
 * account exists. Vireo has no TokenRequest API yet, so an account without
 * such a Secret gets only its namespace.
 */
async function serviceAccountFiles(client: Client, what: { namespace: string; name: string; volumeName: string }): Promise<IsoFile[]> {
  const account = await client.tryGet(serviceAccounts, what.namespace, what.name);
  if (account === undefined) {
    throw new VolumeError('NotReady', what.volumeName, `volume "${what.volumeName}": serviceaccount "${what.name}" not found in namespace "${what.namespace}"; the VMI starts once it exists`);
  }
  const files: IsoFile[] = [{ path: 'namespace', content: what.namespace }];
  const secrets = await client.list(resources.secrets, { namespace: what.namespace, fieldSelector: 'type=kubernetes.io/service-account-token' });
  const token = secrets.items.find((s) => stringAt(s, 'metadata', 'annotations', 'kubernetes.io/service-account.name') === what.name);
  if (token !== undefined) {
    const data = keyData(token, { plain: 'stringData', encoded: 'data' });
    for (const key of ['token', 'ca.crt']) {
      const content = data.get(key);
      if (content !== undefined) files.push({ path: key, content });
    }
  }
  return files;
}
