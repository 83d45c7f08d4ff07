/**
 * `vireo addvolume VMI --volume-name=NAME` and `vireo removevolume VMI
 * --volume-name=NAME`, virtctl's volume hotplug: NAME is a DataVolume or,
 * failing that, a PersistentVolumeClaim of the namespace, attached as a
 * `scsi` disk whose serial is NAME unless `--serial` says otherwise.
 * Without `--persist` the running VMI changes only; with it, the VM's
 * spec too (the `virtualmachines` subresource).
 */
import { parseArgs } from 'node:util';
import { ApiError } from '../../api/errors.js';
import { errorFromResponse, resources } from '../../client/index.js';
import type { HttpClient } from '../../client/index.js';
import { CliError } from '../errors.js';
import { clientFor, connectionFlags, connectionFor, subresourcePath } from './connection.js';
import type { Connection } from './connection.js';
import { expectStatus, reasonText } from './failures.js';

const cacheModes = ['none', 'writethrough', 'writeback'];

/** virtctl's lookup: a DataVolume of that name first, else a claim. */
async function volumeSourceOf(client: HttpClient, namespace: string, name: string): Promise<Record<string, unknown>> {
  if ((await client.tryGet(resources.dataVolumes, namespace, name)) !== undefined) return { dataVolume: { name, hotpluggable: true } };
  if ((await client.tryGet(resources.persistentVolumeClaims, namespace, name)) !== undefined) return { persistentVolumeClaim: { claimName: name, hotpluggable: true } };
  throw new CliError('not-found', `error adding volume, Volume ${name} is not a DataVolume or PersistentVolumeClaim (namespace ${namespace})`);
}

async function send(connection: Connection, client: HttpClient, target: { name: string; op: 'addvolume' | 'removevolume'; persist: boolean }, body: Record<string, unknown>): Promise<void> {
  const parent = target.persist ? 'virtualmachines' : 'virtualmachineinstances';
  const verb = target.op === 'addvolume' ? 'adding' : 'removing';
  try {
    const response = await client.raw('PUT', subresourcePath(connection, parent, target.name, target.op), body);
    expectStatus(response, 202, errorFromResponse);
  } catch (err) {
    if (err instanceof ApiError) {
      const what = target.persist ? 'VM' : 'VMI';
      const detail = err.reason === 'NotFound' ? `${what} ${target.name} not found in namespace ${connection.namespace}` : reasonText(err.message);
      throw new ApiError(err.reason, `error ${verb} volume, ${detail}`, { cause: err });
    }
    throw err;
  }
}

function oneName(positionals: string[], usage: string): string {
  const [name, extra] = positionals;
  if (name === undefined || extra !== undefined) throw new CliError('usage', `usage: ${usage}`);
  return name;
}

/** `addvolume VMI --volume-name=NAME [--persist] [--serial S] [--cache C] [--disk-type disk|lun] [--dry-run]` */
export async function runAddVolume(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      ...connectionFlags,
      'volume-name': { type: 'string' },
      persist: { type: 'boolean' },
      serial: { type: 'string' },
      cache: { type: 'string' },
      'disk-type': { type: 'string' },
      'dry-run': { type: 'boolean' },
    },
    allowPositionals: true,
    strict: true,
  });
  const usage = 'vireo addvolume VMI --volume-name=NAME [--persist] [--serial=SERIAL] [--cache=none|writethrough|writeback] [--disk-type=disk|lun] [--dry-run] [-n NAMESPACE]';
  const vmiName = oneName(positionals, usage);
  const volumeName = values['volume-name'];
  if (volumeName === undefined || volumeName === '') throw new CliError('usage', `required flag(s) "volume-name" not set (usage: ${usage})`);
  const diskType = values['disk-type'] ?? 'disk';
  if (diskType !== 'disk' && diskType !== 'lun') throw new CliError('usage', `Invalid disk type '${diskType}'. Only LUN and Disk are supported.`);
  const cache = values.cache;
  if (cache !== undefined && !cacheModes.includes(cache)) throw new CliError('usage', `error adding volume, invalid cache value ${cache}: use ${cacheModes.join(', ')}`);
  const connection = connectionFor(values);
  const client = clientFor(connection);
  try {
    const volumeSource = await volumeSourceOf(client, connection.namespace, volumeName);
    const disk: Record<string, unknown> = { [diskType]: { bus: 'scsi' }, serial: values.serial ?? volumeName };
    if (cache !== undefined) disk.cache = cache;
    const body: Record<string, unknown> = { name: volumeName, disk, volumeSource };
    if (values['dry-run'] === true) body.dryRun = ['All'];
    await send(connection, client, { name: vmiName, op: 'addvolume', persist: values.persist === true }, body);
    process.stdout.write(`Successfully submitted add volume request to VM ${vmiName} for volume ${volumeName}${values['dry-run'] === true ? ' (dry run)' : ''}\n`);
  } finally {
    client.close();
  }
}

/** `removevolume VMI --volume-name=NAME [--persist] [--dry-run]` */
export async function runRemoveVolume(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    options: { ...connectionFlags, 'volume-name': { type: 'string' }, persist: { type: 'boolean' }, 'dry-run': { type: 'boolean' } },
    allowPositionals: true,
    strict: true,
  });
  const usage = 'vireo removevolume VMI --volume-name=NAME [--persist] [--dry-run] [-n NAMESPACE]';
  const vmiName = oneName(positionals, usage);
  const volumeName = values['volume-name'];
  if (volumeName === undefined || volumeName === '') throw new CliError('usage', `required flag(s) "volume-name" not set (usage: ${usage})`);
  const connection = connectionFor(values);
  const client = clientFor(connection);
  try {
    const body: Record<string, unknown> = { name: volumeName };
    if (values['dry-run'] === true) body.dryRun = ['All'];
    await send(connection, client, { name: vmiName, op: 'removevolume', persist: values.persist === true }, body);
    process.stdout.write(`Successfully submitted remove volume request to VM ${vmiName} for volume ${volumeName}${values['dry-run'] === true ? ' (dry run)' : ''}\n`);
  } finally {
    client.close();
  }
}
