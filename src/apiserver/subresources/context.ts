/**
 * What every subresource handler works with: the object store, the
 * definitions of KubeVirt's kinds (looked up per request, since the CRDs
 * are registered after the server starts), and the node agents.
 */
import { ApiError, conflict } from '../../api/errors.js';
import type { KObject } from '../../api/object.js';
import type { ResourceDef } from '../../api/resource.js';
import type { AgentDirectory, AgentHandle } from '../../agent/handle.js';
import type { Logger } from '../../log/logger.js';
import type { ObjectStore } from '../object-store.js';
import type { ResourceRegistry } from '../resources.js';
import { vmiPhase } from '../../api/kinds/vm-state.js';

export interface SubresourceContext {
  objects: ObjectStore;
  registry: ResourceRegistry;
  agents: AgentDirectory | undefined;
  logger: Logger;
}

export interface KubevirtDefs {
  vm: ResourceDef;
  vmi: ResourceDef;
}

function lookup(registry: ResourceRegistry, plural: string): ResourceDef {
  const def = registry.lookupStorage('kubevirt.io', plural);
  if (def === undefined) {
    throw new ApiError('ServiceUnavailable', `the KubeVirt CRDs are not registered yet (${plural}.kubevirt.io is missing): the server is still starting; try again in a moment`);
  }
  return def;
}

export function kubevirtDefs(registry: ResourceRegistry): KubevirtDefs {
  return { vm: lookup(registry, 'virtualmachines'), vmi: lookup(registry, 'virtualmachineinstances') };
}

/** The definition of VirtualMachineInstanceMigration, for `migrate`. */
export function migrationDef(registry: ResourceRegistry): ResourceDef {
  return lookup(registry, 'virtualmachineinstancemigrations');
}

/** The agent of the node a VMI runs on; a 503 that names the node when it is not connected. */
export function agentOn(context: SubresourceContext, nodeName: string): AgentHandle {
  const agent = context.agents?.forNode(nodeName);
  if (agent === undefined) {
    throw new ApiError(
      'ServiceUnavailable',
      `node ${nodeName} has no agent connected: its node agent is not running or has not registered with this server; start it (vireo agent) or wait for it to reconnect, then try again`,
    );
  }
  return agent;
}

/** KubeVirt's "VMI is not running" refusal (409 for actions), with the phase and what to do. */
export function vmiNotRunning(vmi: KObject): ApiError {
  return conflict('virtualmachineinstance', 'kubevirt.io', vmi.metadata.name ?? '', notRunningMessage(vmi));
}

/** "VMI is not running (phase X): …" */
export function notRunningMessage(vmi: KObject): string {
  const phase = vmiPhase(vmi);
  const hint = phase === 'Succeeded' || phase === 'Failed' ? 'the guest has stopped; start it again first' : 'wait until its phase is Running';
  return `VMI is not running (phase ${phase === '' ? 'unset' : phase}): ${hint}`;
}
