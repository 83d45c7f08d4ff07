/**
 * The action commands, as virtctl has them: `start`, `stop`, `restart` on a
 * VM, and `pause`, `unpause`, `soft-reboot`, `reset` on a guest (`vm NAME`,
 * `vmi NAME`, or `NAME` for the VMI). Each is one PUT to
 * `subresources.kubevirt.io`, answered 202.
 */
import { parseArgs } from 'node:util';
import { resources } from '../../client/index.js';
import { errorFromResponse } from '../../client/index.js';
import { CliError } from '../errors.js';
import { clientFor, connectionFlags, connectionFor, subresourcePath } from './connection.js';
import { explain, expectStatus } from './failures.js';
import type { Subject } from './failures.js';

const dryRunFlag = { 'dry-run': { type: 'boolean' } } as const;

function oneName(positionals: string[], usage: string): string {
  const [name, extra] = positionals;
  if (name === undefined || extra !== undefined) throw new CliError('usage', `usage: ${usage}`);
  return name;
}

function gracePeriodOf(values: { force?: boolean | undefined; 'grace-period'?: string | undefined }, command: string): number | undefined {
  const raw = values['grace-period'];
  if (raw === undefined) return undefined;
  const seconds = Number(raw);
  if (!Number.isSafeInteger(seconds) || seconds < 0) throw new CliError('usage', `--grace-period ${raw} is not valid: give a whole number of seconds, 0 or more`);
  if (values.force !== true) throw new CliError('usage', `vireo ${command}: --grace-period needs --force (it cuts the guest's shutdown short)`);
  return seconds;
}

/** `start|stop|restart NAME`: prints "VM NAME was scheduled to start" like virtctl. */
export async function runVmAction(command: 'start' | 'stop' | 'restart', args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    options: { ...connectionFlags, ...dryRunFlag, paused: { type: 'boolean' }, force: { type: 'boolean' }, 'grace-period': { type: 'string' } },
    allowPositionals: true,
    strict: true,
  });
  const usage: Record<typeof command, string> = {
    start: 'vireo start NAME [--paused] [--dry-run] [-n NAMESPACE]',
    stop: 'vireo stop NAME [--force --grace-period SECONDS] [--dry-run] [-n NAMESPACE]',
    restart: 'vireo restart NAME [--force --grace-period 0] [--dry-run] [-n NAMESPACE]',
  };
  const name = oneName(positionals, usage[command]);
  if (values.paused === true && command !== 'start') throw new CliError('usage', `--paused applies to vireo start, not vireo ${command}`);
  const grace = command === 'start' ? undefined : gracePeriodOf(values, command);
  const body: Record<string, unknown> = {};
  if (values.paused === true) body.paused = true;
  if (grace !== undefined) body[command === 'stop' ? 'gracePeriod' : 'gracePeriodSeconds'] = grace;
  if (values['dry-run'] === true) body.dryRun = ['All'];
  const connection = connectionFor(values);
  const client = clientFor(connection);
  const subject: Subject = { kind: 'VM', name, namespace: connection.namespace, action: `${command} VM ${name}` };
  try {
    const response = await client.raw('PUT', subresourcePath(connection, 'virtualmachines', name, command), Object.keys(body).length === 0 ? undefined : body);
    expectStatus(response, 202, errorFromResponse);
    process.stdout.write(`VM ${name} was scheduled to ${command}${values['dry-run'] === true ? ' (dry run)' : ''}\n`);
  } catch (err) {
    throw await explain(err, subject, client);
  } finally {
    client.close();
  }
}

type GuestCommand = 'pause' | 'unpause' | 'soft-reboot' | 'reset';

const guestSubresource: Record<GuestCommand, string> = { pause: 'pause', unpause: 'unpause', 'soft-reboot': 'softreboot', reset: 'reset' };

/** `pause|unpause|soft-reboot|reset (vm|vmi) NAME`: `vm` first checks the VM exists, then acts on its VMI. */
export async function runGuestAction(command: GuestCommand, args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({ args, options: { ...connectionFlags, ...dryRunFlag }, allowPositionals: true, strict: true });
  const usage = `vireo ${command} vm|vmi NAME${command === 'pause' || command === 'unpause' ? ' [--dry-run]' : ''} [-n NAMESPACE]`;
  const [first, second, extra] = positionals;
  const kindWord = second === undefined ? 'vmi' : first;
  const name = second ?? first;
  if (name === undefined || extra !== undefined || (second === undefined && (first === 'vm' || first === 'vmi'))) throw new CliError('usage', `usage: ${usage}`);
  const kind = kindWord === 'vm' || kindWord === 'vms' || kindWord === 'virtualmachine' ? 'VM' : kindWord === 'vmi' || kindWord === 'vmis' || kindWord === 'virtualmachineinstance' ? 'VMI' : undefined;
  if (kind === undefined) throw new CliError('usage', `unknown kind "${kindWord ?? ''}": use vm or vmi (usage: ${usage})`);
  if (values['dry-run'] === true && command !== 'pause' && command !== 'unpause') throw new CliError('usage', `--dry-run applies to pause and unpause, not ${command}`);
  const connection = connectionFor(values);
  const client = clientFor(connection);
  try {
    if (kind === 'VM') {
      try {
        await client.get(resources.virtualMachines, connection.namespace, name);
      } catch (err) {
        throw await explain(err, { kind: 'VM', name, namespace: connection.namespace, action: `${command} VM ${name}` }, client);
      }
    }
    const subject: Subject = { kind: 'VMI', name, namespace: connection.namespace, action: `${command} VMI ${name}` };
    try {
      const response = await client.raw('PUT', subresourcePath(connection, 'virtualmachineinstances', name, guestSubresource[command]), values['dry-run'] === true ? { dryRun: ['All'] } : undefined);
      expectStatus(response, 202, errorFromResponse);
    } catch (err) {
      throw await explain(err, subject, client);
    }
    process.stdout.write(`VMI ${name} was scheduled to ${command}${values['dry-run'] === true ? ' (dry run)' : ''}\n`);
  } finally {
    client.close();
  }
}
