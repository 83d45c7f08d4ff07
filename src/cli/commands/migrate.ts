/**
 * `vireo migrate NAME` and `vireo migrate-cancel NAME`, as virtctl has
 * them: the first creates a VirtualMachineInstanceMigration of the VMI
 * NAME, the second deletes the migration of NAME that is still in flight,
 * which cancels it before the switch-over; one in post-copy mode cannot be
 * cancelled (the guest already runs on the target), and is refused.
 */
import { parseArgs } from 'node:util';
import { ApiError } from '../../api/errors.js';
import { recordAt, stringAt } from '../../api/kinds/read.js';
import { resources } from '../../client/index.js';
import { CliError } from '../errors.js';
import { clientFor, connectionFlags, connectionFor } from './connection.js';
import { explain } from './failures.js';

const finishedPhases = ['Succeeded', 'Failed'];

function nameOf(positionals: string[], usage: string): string {
  const [name, extra] = positionals;
  if (name === undefined || extra !== undefined) throw new CliError('usage', `usage: ${usage}`);
  return name;
}

/** `migrate NAME [--dry-run]`: prints "VM NAME was scheduled to migrate". */
export async function runMigrate(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({ args, options: { ...connectionFlags, 'dry-run': { type: 'boolean' } }, allowPositionals: true, strict: true });
  const name = nameOf(positionals, 'vireo migrate NAME [--dry-run] [-n NAMESPACE]');
  const connection = connectionFor(values);
  const client = clientFor(connection);
  try {
    const migration = {
      apiVersion: 'kubevirt.io/v1',
      kind: 'VirtualMachineInstanceMigration',
      metadata: { generateName: `kubevirt-migrate-vm-`, namespace: connection.namespace },
      spec: { vmiName: name },
    };
    if (values['dry-run'] === true) {
      if ((await client.tryGet(resources.virtualMachineInstances, connection.namespace, name)) === undefined) throw new CliError('not-found', `VMI ${name} not found in namespace ${connection.namespace}: nothing to migrate`);
    } else {
      await client.create(resources.virtualMachineInstanceMigrations, migration);
    }
    process.stdout.write(`VM ${name} was scheduled to migrate${values['dry-run'] === true ? ' (dry run)' : ''}\n`);
  } catch (err) {
    throw await explain(err, { kind: 'VMI', name, namespace: connection.namespace, action: `migrate VM ${name}` }, client);
  } finally {
    client.close();
  }
}

/** `migrate-cancel NAME`: deletes the unfinished migration of VMI NAME. */
export async function runMigrateCancel(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({ args, options: { ...connectionFlags }, allowPositionals: true, strict: true });
  const name = nameOf(positionals, 'vireo migrate-cancel NAME [-n NAMESPACE]');
  const connection = connectionFor(values);
  const client = clientFor(connection);
  try {
    const list = await client.list(resources.virtualMachineInstanceMigrations, { namespace: connection.namespace });
    const active = list.items.find((m) => stringAt(m, 'spec', 'vmiName') === name && !finishedPhases.includes(stringAt(m, 'status', 'phase') ?? '') && m.metadata.deletionTimestamp === undefined);
    if (active === undefined) throw new CliError('not-found', `VMI ${name} in namespace ${connection.namespace} has no migration in flight: nothing to cancel`);
    const vmi = await client.tryGet(resources.virtualMachineInstances, connection.namespace, name);
    const state = recordAt(vmi, 'status', 'migrationState');
    if (stringAt(state, 'migrationUid') === active.metadata.uid && stringAt(state, 'mode') === 'PostCopy') {
      throw new ApiError('Conflict', `it is in post-copy mode: the guest already runs on ${stringAt(state, 'targetNode') ?? 'the target'} with part of its memory still on ${stringAt(state, 'sourceNode') ?? 'the source'}; it completes by itself (kubectl get vmim ${active.metadata.name ?? ''} -n ${connection.namespace} follows it)`);
    }
    await client.delete(resources.virtualMachineInstanceMigrations, connection.namespace, active.metadata.name ?? '');
    process.stdout.write(`VM ${name} was scheduled to migrate-cancel\n`);
  } catch (err) {
    throw await explain(err, { kind: 'VMI', name, namespace: connection.namespace, action: `cancel the migration of VM ${name}` }, client);
  } finally {
    client.close();
  }
}
