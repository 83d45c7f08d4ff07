/**
 * The subresources that act on a running guest through its node's agent
 * (virt-api → virt-handler in KubeVirt): pause, unpause, softreboot,
 * reset, freeze and unfreeze (the guest agent), and the kept serial output (`consolelog`). KubeVirt's checks come
 * first, so a refusal names the VMI's state rather than the agent's.
 */
import { ApiError, conflict } from '../../api/errors.js';
import type { KObject } from '../../api/object.js';
import { booleanAt, has, recordAt } from '../../api/kinds/read.js';
import type { GuestAction } from '../../agent/handle.js';
import type { SubresourceContext } from './context.js';
import { agentOn, kubevirtDefs, vmiNotRunning } from './context.js';
import type { GuestActionOptions } from './options.js';
import { nodeNameOf, vmiPhase } from '../../api/kinds/vm-state.js';
import { hasTrueCondition } from './state.js';

function vmiConflict(vmi: KObject, why: string): ApiError {
  return conflict('virtualmachineinstance', 'kubevirt.io', vmi.metadata.name ?? '', why);
}

/** KubeVirt's preconditions of each action (`lifecycle.go`), as the error to answer, if any. */
export function refusal(vmi: KObject, action: GuestAction): ApiError | undefined {
  if (vmiPhase(vmi) !== 'Running') return vmiNotRunning(vmi);
  const paused = hasTrueCondition(vmi, 'Paused');
  const name = vmi.metadata.name ?? '';
  switch (action) {
    case 'pause': {
      if (has(vmi, 'spec', 'livenessProbe')) {
        return new ApiError('Forbidden', `virtualmachineinstance.kubevirt.io "${name}" is forbidden: Pausing VMIs with LivenessProbe is currently not supported`);
      }
      if (paused) return vmiConflict(vmi, 'VMI is already paused');
      const migration = recordAt(vmi, 'status', 'migrationState');
      if (migration !== undefined && booleanAt(migration, 'completed') !== true) {
        return vmiConflict(vmi, `Cannot pause VMI '${name}' because it is currently being migrated: wait for the migration to finish`);
      }
      return undefined;
    }
    case 'unpause':
      return paused ? undefined : vmiConflict(vmi, 'VMI is not paused');
    case 'softreboot':
      if (paused) return vmiConflict(vmi, 'VMI is paused: unpause it before a soft reboot');
      if (booleanAt(vmi, 'spec', 'domain', 'features', 'acpi', 'enabled') === false && !hasTrueCondition(vmi, 'AgentConnected')) {
        return vmiConflict(vmi, 'VMI neither have the agent connected nor the ACPI feature enabled: a soft reboot needs one of them; use reset for a hard reset');
      }
      return undefined;
    case 'reset':
      return undefined;
    case 'freeze':
    case 'unfreeze':
      if (paused) return vmiConflict(vmi, `VMI is paused: unpause it before ${action === 'freeze' ? 'freezing' : 'unfreezing'} its filesystems`);
      if (!hasTrueCondition(vmi, 'AgentConnected')) {
        return vmiConflict(vmi, 'the guest agent is not connected (no AgentConnected condition): freezing filesystems needs qemu-ga running in the guest');
      }
      return undefined;
  }
}

/** Runs `action` on the guest of VMI `namespace/name`. */
export async function runGuestAction(
  context: SubresourceContext,
  target: { namespace: string; name: string },
  action: GuestAction,
  options: GuestActionOptions,
): Promise<void> {
  const vmi = await context.objects.get(kubevirtDefs(context.registry).vmi, target.namespace, target.name);
  const refused = refusal(vmi, action);
  if (refused !== undefined) throw refused;
  const node = nodeNameOf(vmi);
  if (node === undefined) throw vmiNotRunning(vmi);
  const agent = agentOn(context, node);
  if (options.dryRun) return;
  await agent.guestAction(target.namespace, target.name, action, options.unfreezeTimeoutSeconds === undefined ? {} : { unfreezeTimeoutSeconds: options.unfreezeTimeoutSeconds });
  context.logger.info('guest action', { action, namespace: target.namespace, name: target.name, uid: vmi.metadata.uid, node });
}

/**
 * The serial output kept for the VMI, oldest first. A VMI that has not
 * reached a node has printed nothing yet: empty, not an error.
 */
export async function readConsoleLog(context: SubresourceContext, target: { namespace: string; name: string }): Promise<string> {
  const vmi = await context.objects.get(kubevirtDefs(context.registry).vmi, target.namespace, target.name);
  const node = nodeNameOf(vmi);
  if (node === undefined) return '';
  return agentOn(context, node).serialLog(target.namespace, target.name);
}
