/**
 * Cloud-init data sources as KubeVirt builds them: NoCloud (an ISO labelled
 * `cidata` with `user-data`, `meta-data`, `network-config`) and ConfigDrive
 * (an ISO labelled `config-2` with `openstack/latest/…`). User and network
 * data come inline, base64-encoded, or from a Secret.
 */
import type { KObject } from '../api/object.js';
import { recordAt, stringAt } from '../api/kinds/read.js';
import type { Client } from '../client/index.js';
import { resources } from '../client/index.js';
import type { IsoFile } from './iso.js';
import { VolumeError } from './volume-error.js';

/** The two cloud-init volume types. */
export type CloudInitKind = 'cloudInitNoCloud' | 'cloudInitConfigDrive';

/** The ISO contents for a cloud-init volume. */
export interface CloudInitDisk {
  volumeId: string;
  files: IsoFile[];
}

interface DataFields {
  inline: string;
  base64: string;
  secretRef: string;
  /** Keys KubeVirt reads from the Secret, in order. */
  secretKeys: string[];
}

// KubeVirt names the user-data Secret reference plainly `secretRef`.
const userDataFields: DataFields = { inline: 'userData', base64: 'userDataBase64', secretRef: 'secretRef', secretKeys: ['userdata', 'userData'] };
const networkDataFields: DataFields = { inline: 'networkData', base64: 'networkDataBase64', secretRef: 'networkDataSecretRef', secretKeys: ['networkdata', 'networkData'] };

/** Builds the files of the cloud-init volume `volume` (an entry of `spec.volumes`). */
export async function cloudInitDisk(vmi: KObject, volume: Record<string, unknown>, kind: CloudInitKind, client: Client): Promise<CloudInitDisk> {
  const volumeName = stringAt(volume, 'name') ?? '';
  const source = recordAt(volume, kind) ?? {};
  const namespace = vmi.metadata.namespace ?? 'default';
  const userData = (await readData(source, userDataFields, { namespace, volumeName, client })) ?? '';
  const networkData = await readData(source, networkDataFields, { namespace, volumeName, client });
  const uid = vmi.metadata.uid ?? '';
  const name = vmi.metadata.name ?? '';
  const hostname = stringAt(vmi, 'spec', 'hostname') ?? name;
  if (kind === 'cloudInitNoCloud') {
    const files: IsoFile[] = [
      { path: 'user-data', content: userData },
      { path: 'meta-data', content: `instance-id: ${uid}\nlocal-hostname: ${hostname}\n` },
    ];
    if (networkData !== undefined) files.push({ path: 'network-config', content: networkData });
    return { volumeId: 'cidata', files };
  }
  const meta = { uuid: uid, instance_id: uid, hostname, name, launch_index: 0, availability_zone: '' };
  const files: IsoFile[] = [
    { path: 'openstack/latest/user_data', content: userData },
    { path: 'openstack/latest/meta_data.json', content: `${JSON.stringify(meta)}\n` },
  ];
  if (networkData !== undefined) files.push({ path: 'openstack/latest/network_data.json', content: networkData });
  return { volumeId: 'config-2', files };
}

async function readData(
  source: Record<string, unknown>,
  fields: DataFields,
  ctx: { namespace: string; volumeName: string; client: Client },
): Promise<string | undefined> {
  const inline = stringAt(source, fields.inline);
  if (inline !== undefined && inline !== '') return inline;
  const encoded = stringAt(source, fields.base64);
  if (encoded !== undefined && encoded !== '') return Buffer.from(encoded, 'base64').toString('utf8');
  const secretName = stringAt(source, fields.secretRef, 'name');
  if (secretName === undefined || secretName === '') return undefined;
  const secret = await ctx.client.tryGet(resources.secrets, ctx.namespace, secretName);
  if (secret === undefined) {
    throw new VolumeError(
      'NotReady',
      ctx.volumeName,
      `volume "${ctx.volumeName}": secret "${secretName}" (${fields.secretRef}) not found in namespace "${ctx.namespace}"; the VMI starts once it exists`,
    );
  }
  for (const key of fields.secretKeys) {
    const value = stringAt(secret, 'data', key);
    if (value !== undefined) return Buffer.from(value, 'base64').toString('utf8');
    const plain = stringAt(secret, 'stringData', key);
    if (plain !== undefined) return plain;
  }
  throw new VolumeError(
    'NotReady',
    ctx.volumeName,
    `volume "${ctx.volumeName}": secret "${secretName}" in namespace "${ctx.namespace}" has no key ${fields.secretKeys.map((k) => `"${k}"`).join(' or ')}; add the data under one of them`,
  );
}
