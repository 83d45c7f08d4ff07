/**
 * `vireo drain NODE`, `vireo cordon NODE`, `vireo uncordon NODE`: kubectl's
 * node maintenance for VMIs. A drain cordons the node (`spec.unschedulable`,
 * as `kubectl cordon`), decides for every VMI on it what its eviction
 * strategy asks (`src/api/kinds/eviction.ts`), refuses the whole drain
 * before touching a VMI if any is refused (a LiveMigrate VMI that cannot
 * migrate, or a bare VMI without `--force`), then marks the ones that
 * live-migrate with `status.evacuationNodeName` (the evacuation controller
 * creates their migrations), marks `External` ones the same way for their
 * own controller, stops the others (their VM or replica set starts new ones
 * elsewhere: the node is cordoned), and waits until no VMI is left on the
 * node. Uncordon clears the marks a drain left.
 */
import { parseArgs } from 'node:util';
import { ApiError } from '../../api/errors.js';
import { parseGoDuration } from '../../api/duration.js';
import { clusterKubeVirtOf, drainStepOf } from '../../api/kinds/eviction.js';
import type { DrainStep } from '../../api/kinds/eviction.js';
import { booleanAt, stringAt } from '../../api/kinds/read.js';
import { isFinal, runStrategyOf } from '../../api/kinds/vm-state.js';
import type { KObject } from '../../api/object.js';
import { errorFromResponse, resources } from '../../client/index.js';
import type { HttpClient } from '../../client/index.js';
import { claimNamesOf, volumeNode } from '../../storage/local/index.js';
import { CliError } from '../errors.js';
import { clientFor, connectionFor } from './connection.js';
import { MigrationProgress } from './drain-progress.js';
import { expectStatus } from './failures.js';

export const drainUsage = `Node commands (--kubeconfig FILE as above; kubectl cordon/uncordon work too):
  cordon NODE            Mark the node unschedulable: no new VMI goes there.
  uncordon NODE          Mark it schedulable again; VMIs still marked to leave it stay.
  drain NODE [--force] [--grace-period S] [--timeout D] [--dry-run[=client]]
                         Cordon the node and move its VMIs off as their evictionStrategy says
                         (LiveMigrate, and LiveMigrateIfPossible when it can migrate: live
                         migration, the same VMI goes on elsewhere; a LiveMigrate VMI that
                         cannot migrate refuses the drain; None, LiveMigrateIfPossible that
                         cannot migrate: stop, and the VM starts it elsewhere; External: mark
                         status.evacuationNodeName), then wait until none is left (--timeout,
                         e.g. 5m; default: no limit). --force also stops VMIs no VM or replica
                         set owns; --grace-period caps each guest's shutdown (default its own).
`;

/** How often the drain looks whether the node's VMIs are gone. */
const pollMs = 500;

export async function runCordon(command: 'cordon' | 'uncordon', args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({ args: withDryRunValue(args), options: { kubeconfig: { type: 'string' }, 'dry-run': { type: 'string' } }, allowPositionals: true, strict: true });
  const node = oneNode(positionals, `vireo ${command} NODE`);
  const dryRun = dryRunOf(values['dry-run']);
  const client = clientFor(connectionFor(values));
  try {
    await setUnschedulable(client, node, command === 'cordon', dryRun);
    if (command === 'uncordon') await clearEvacuationMarks(client, node, dryRun);
  } finally {
    client.close();
  }
}

export async function runDrain(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: withDryRunValue(args),
    options: {
      kubeconfig: { type: 'string' },
      force: { type: 'boolean' },
      'grace-period': { type: 'string' },
      timeout: { type: 'string' },
      'dry-run': { type: 'string' },
    },
    allowPositionals: true,
    strict: true,
  });
  const options = {
    node: oneNode(positionals, 'vireo drain NODE [--force] [--grace-period S] [--timeout D] [--dry-run[=client]]'),
    force: values.force === true,
    gracePeriodSeconds: gracePeriodOf(values['grace-period']),
    timeoutMs: timeoutOf(values.timeout),
    dryRun: dryRunOf(values['dry-run']),
  };
  const client = clientFor(connectionFor(values));
  try {
    await drain(client, options);
  } finally {
    client.close();
  }
}

interface DrainOptions {
  node: string;
  force: boolean;
  /** Undefined: each guest gets its own terminationGracePeriodSeconds. */
  gracePeriodSeconds: number | undefined;
  /** Undefined: wait as long as it takes. */
  timeoutMs: number | undefined;
  dryRun: boolean;
}

async function drain(client: HttpClient, options: DrainOptions): Promise<void> {
  const { node, dryRun } = options;
  const deadline = options.timeoutMs === undefined ? undefined : Date.now() + options.timeoutMs;
  await setUnschedulable(client, node, true, dryRun);
  const kubevirt = clusterKubeVirtOf((await client.list(resources.kubeVirts)).items);
  const planned = (await vmisOn(client, node)).map((vmi) => ({ vmi, step: drainStepOf(vmi, kubevirt, { force: options.force }) }));
  const refused = planned.flatMap(({ step }) => (step.action === 'refuse' ? [step.why] : []));
  if (refused.length > 0) {
    // As kubectl drain: nothing is evicted when any VMI cannot be; the node stays cordoned.
    throw new CliError('usage', `cannot drain node ${node} (it stays cordoned; nothing was stopped):\n  ${refused.join('\n  ')}`);
  }
  // The migrations there were before: their phases are not this drain's progress.
  const earlier = planned.some(({ step }) => step.action === 'migrate') ? new Set((await client.list(resources.virtualMachineInstanceMigrations)).items.map((m) => m.metadata.uid ?? '')) : new Set<string>();
  const waiting = new Map<string, { vmi: KObject; step: DrainStep }>();
  for (const { vmi, step } of planned) {
    const name = qualified(vmi);
    if (step.action === 'migrate') {
      if (stringAt(vmi, 'status', 'evacuationNodeName') !== node && !dryRun) await markForEvacuation(client, vmi, node);
      process.stdout.write(`evicting virtualmachineinstance ${name} (${step.strategy.strategy}: live migration; marked status.evacuationNodeName=${node} for the evacuation controller)${dryRunNote(dryRun)}\n`);
    } else if (step.action === 'evacuate') {
      if (stringAt(vmi, 'status', 'evacuationNodeName') !== node && !dryRun) await markForEvacuation(client, vmi, node);
      process.stdout.write(`virtualmachineinstance ${name} has eviction strategy External: marked status.evacuationNodeName=${node} for its external controller to move it${dryRunNote(dryRun)}\n`);
    } else if (step.action === 'stop') {
      process.stdout.write(`evicting virtualmachineinstance ${name}${step.strategy.strategy === 'LiveMigrateIfPossible' ? ' (LiveMigrateIfPossible: it cannot be live-migrated, so it stops and restarts elsewhere)' : ''}${dryRunNote(dryRun)}\n`);
      for (const warning of await localVolumeWarnings(client, vmi, node)) process.stderr.write(`warning: ${warning}\n`);
      if (!dryRun) await stop(client, vmi, step, options.gracePeriodSeconds);
    }
    waiting.set(vmi.metadata.uid ?? '', { vmi, step });
  }
  if (dryRun) {
    process.stdout.write(`node/${node} drained (dry run)\n`);
    return;
  }
  const progress = new MigrationProgress();
  const migrating = (): boolean => [...waiting.values()].some(({ step }) => step.action === 'migrate');
  let migrations: KObject[] = [];
  while (waiting.size > 0) {
    const vmis = (await client.list(resources.virtualMachineInstances)).items;
    migrations = migrating() ? (await client.list(resources.virtualMachineInstanceMigrations)).items.filter((m) => !earlier.has(m.metadata.uid ?? '')) : [];
    const byUid = new Map(vmis.map((vmi) => [vmi.metadata.uid ?? '', vmi]));
    for (const [uid, { vmi, step }] of waiting) {
      const now = byUid.get(uid);
      if (now !== undefined && stringAt(now, 'status', 'nodeName') === node && !isFinal(now)) {
        if (step.action === 'migrate') for (const line of progress.lines(now, migrations)) process.stdout.write(`${line}\n`);
        continue;
      }
      const elsewhere = now === undefined || isFinal(now) ? undefined : stringAt(now, 'status', 'nodeName');
      process.stdout.write(`virtualmachineinstance/${vmi.metadata.name ?? ''} evicted${step.action === 'migrate' && elsewhere !== undefined ? ` (live-migrated to ${elsewhere})` : ''}\n`);
      // The mark has done its work (the evacuation controller clears it too, as KubeVirt does at the hand-over).
      if (step.action === 'migrate' && now !== undefined && stringAt(now, 'status', 'evacuationNodeName') === node) await clearMark(client, now);
      waiting.delete(uid);
    }
    if (waiting.size === 0) break;
    if (deadline !== undefined && Date.now() >= deadline) {
      const left = [...waiting.entries()].map(([uid, { vmi, step }]) => `${qualified(vmi)} (${leftReason(step, byUid.get(uid) ?? vmi, migrations)})`);
      throw new CliError('unavailable', `drain of node ${node} did not complete within ${options.timeoutMs ?? 0} ms: still on the node: ${left.join(', ')}. The node stays cordoned; run vireo drain again to keep waiting`);
    }
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
  process.stdout.write(`node/${node} drained\n`);
}

/** Why a VMI is still on the node when the drain gives up. */
function leftReason(step: DrainStep, vmi: KObject, migrations: readonly KObject[]): string {
  if (step.action === 'evacuate') return 'External: waiting for its external controller';
  if (step.action === 'migrate') return `${step.strategy.strategy}: ${MigrationProgress.describe(vmi, migrations)}`;
  return 'still stopping';
}

/** KubeVirt's eviction admission's mark: `status.evacuationNodeName`, which the evacuation controller acts on. */
async function markForEvacuation(client: HttpClient, vmi: KObject, node: string): Promise<void> {
  await client.patch(resources.virtualMachineInstances, vmi.metadata.namespace, vmi.metadata.name ?? '', 'merge', { status: { evacuationNodeName: node } });
}

async function clearMark(client: HttpClient, vmi: KObject): Promise<void> {
  try {
    await client.patch(resources.virtualMachineInstances, vmi.metadata.namespace, vmi.metadata.name ?? '', 'merge', { status: { evacuationNodeName: null } });
  } catch (err) {
    if (!(err instanceof ApiError && err.reason === 'NotFound')) throw err;
  }
}

/**
 * Uncordon: the VMIs a drain marked to leave `node` and that are still
 * there stay (no new migration is made for them); a migration already
 * under way goes on, and the lines say how to stop it.
 */
async function clearEvacuationMarks(client: HttpClient, node: string, dryRun: boolean): Promise<void> {
  const marked = (await client.list(resources.virtualMachineInstances)).items.filter((vmi) => stringAt(vmi, 'status', 'evacuationNodeName') === node && !isFinal(vmi));
  if (marked.length === 0) return;
  const migrations = (await client.list(resources.virtualMachineInstanceMigrations)).items;
  for (const vmi of marked) {
    if (!dryRun) await clearMark(client, vmi);
    const running = migrations.find((m) => m.metadata.namespace === vmi.metadata.namespace && stringAt(m, 'spec', 'vmiName') === vmi.metadata.name && !['Succeeded', 'Failed'].includes(stringAt(m, 'status', 'phase') ?? ''));
    const note = running === undefined ? '' : `; its migration ${running.metadata.name ?? ''} goes on (vireo migrate-cancel ${vmi.metadata.name ?? ''} stops it)`;
    process.stdout.write(`virtualmachineinstance ${qualified(vmi)}: evacuation from node ${node} cancelled (status.evacuationNodeName cleared)${note}${dryRunNote(dryRun)}\n`);
  }
}

/**
 * Stops a VMI as an eviction would (its guest powers off within the grace
 * period). A VM with RerunOnFailure would not start a VMI that was merely
 * deleted, as it would one that failed, so it gets a restart request first.
 */
async function stop(client: HttpClient, vmi: KObject, step: DrainStep & { action: 'stop' }, gracePeriodSeconds: number | undefined): Promise<void> {
  const namespace = vmi.metadata.namespace ?? 'default';
  const name = vmi.metadata.name ?? '';
  if (step.controller?.kind === 'VirtualMachine') {
    const vm = await client.tryGet(resources.virtualMachines, namespace, step.controller.name);
    const strategy = vm === undefined ? undefined : runStrategyOf(vm);
    if (strategy !== undefined && 'strategy' in strategy && strategy.strategy === 'RerunOnFailure') {
      const response = await client.raw('PUT', `/apis/subresources.kubevirt.io/v1/namespaces/${encodeURIComponent(namespace)}/virtualmachines/${encodeURIComponent(step.controller.name)}/restart`);
      // A request already pending (409) is one the VM controller acts on anyway.
      if (response.status !== 409) expectStatus(response, 202, errorFromResponse);
    }
  }
  try {
    await client.delete(resources.virtualMachineInstances, namespace, name, {
      preconditions: { uid: vmi.metadata.uid ?? '' },
      // The agent takes a grace period from a delete when it is shorter than the VMI's own; 0 becomes 1, as kubectl sends it without --force.
      ...(gracePeriodSeconds === undefined ? {} : { gracePeriodSeconds: Math.max(1, gracePeriodSeconds) }),
    });
  } catch (err) {
    // Gone already, or replaced by its controller meanwhile: either way this VMI has left.
    if (err instanceof ApiError && (err.reason === 'NotFound' || err.reason === 'Conflict')) return;
    throw err;
  }
}

/** What stands in the way of a stopped VMI's successor: claims on local volumes of the drained node. */
async function localVolumeWarnings(client: HttpClient, vmi: KObject, node: string): Promise<string[]> {
  const warnings: string[] = [];
  const namespace = vmi.metadata.namespace ?? 'default';
  for (const claim of claimNamesOf(vmi)) {
    const pvc = await client.tryGet(resources.persistentVolumeClaims, namespace, claim);
    const volumeName = pvc === undefined ? undefined : stringAt(pvc, 'spec', 'volumeName');
    const pv = volumeName === undefined ? undefined : await client.tryGet(resources.persistentVolumes, undefined, volumeName);
    if (pv !== undefined && volumeNode(pv) === node) {
      warnings.push(`virtualmachineinstance ${qualified(vmi)} uses claim ${namespace}/${claim}, whose volume lives on node ${node} only: a new VMI of it stays Pending ("volume node affinity conflict") until ${node} is uncordoned`);
    }
  }
  return warnings;
}

/** The VMIs whose guests the node runs (or is stopping): bound to it and not finished. */
async function vmisOn(client: HttpClient, node: string): Promise<KObject[]> {
  const list = await client.list(resources.virtualMachineInstances);
  return list.items.filter((vmi) => stringAt(vmi, 'status', 'nodeName') === node && !isFinal(vmi));
}

/** Sets `spec.unschedulable`, printing kubectl's lines; an unknown node is a clear error. */
async function setUnschedulable(client: HttpClient, node: string, unschedulable: boolean, dryRun: boolean): Promise<void> {
  const verb = unschedulable ? 'cordoned' : 'uncordoned';
  let current: KObject;
  try {
    current = await client.get(resources.nodes, undefined, node);
  } catch (err) {
    if (err instanceof ApiError && err.reason === 'NotFound') throw new CliError('not-found', `node ${node} not found: kubectl get nodes lists the nodes of this cluster`, err);
    throw err;
  }
  if ((booleanAt(current, 'spec', 'unschedulable') === true) === unschedulable) {
    process.stdout.write(`node/${node} already ${verb}\n`);
    return;
  }
  if (!dryRun) await client.patch(resources.nodes, undefined, node, 'merge', { spec: { unschedulable: unschedulable ? true : null } });
  process.stdout.write(`node/${node} ${verb}${dryRunNote(dryRun)}\n`);
}

function qualified(vmi: KObject): string {
  return `${vmi.metadata.namespace ?? ''}/${vmi.metadata.name ?? ''}`;
}

function dryRunNote(dryRun: boolean): string {
  return dryRun ? ' (dry run)' : '';
}

function oneNode(positionals: string[], usage: string): string {
  const [node, extra] = positionals;
  if (node === undefined || extra !== undefined) throw new CliError('usage', `usage: ${usage}`);
  return node;
}

/** A bare `--dry-run` means client, as kubectl still takes it; parseArgs needs the value spelled. */
function withDryRunValue(args: string[]): string[] {
  return args.map((arg) => (arg === '--dry-run' ? '--dry-run=client' : arg));
}

/** `--dry-run`, `--dry-run=client` or `--dry-run=none`; `server` is refused (the drain decides on the client). */
function dryRunOf(flag: string | undefined): boolean {
  if (flag === undefined || flag === 'none') return false;
  if (flag === '' || flag === 'client') return true;
  if (flag === 'server') throw new CliError('usage', '--dry-run=server is not supported: vireo drain decides what to do on the client; use --dry-run=client to see it without changing anything');
  throw new CliError('usage', `--dry-run=${flag} is not valid: use --dry-run=client (or none)`);
}

function gracePeriodOf(flag: string | undefined): number | undefined {
  if (flag === undefined || flag === '-1') return undefined;
  const seconds = Number(flag);
  if (!Number.isSafeInteger(seconds) || seconds < 0) throw new CliError('usage', `--grace-period ${flag} is not valid: give a whole number of seconds, 0 or more (-1: each guest's own)`);
  return seconds;
}

/** `--timeout`: a Go duration as kubectl takes it (0: no limit). */
function timeoutOf(flag: string | undefined): number | undefined {
  if (flag === undefined || flag === '0' || flag === '0s') return undefined;
  const ms = parseGoDuration(flag);
  if (ms === undefined || ms <= 0) throw new CliError('usage', `--timeout ${flag} is not a duration: use e.g. 90s or 5m (0: no limit)`);
  return ms;
}
