/**
 * The VM a snapshot is taken of, as KubeVirt's `vmSnapshotSource` sees it:
 * whether it runs (online), is paused, has a guest agent; the lock a
 * snapshot holds on it while it runs (`status.snapshotInProgress` plus the
 * `snapshot-source-protection` finalizer), taken only once its claims are
 * bound and nothing else snapshots it; its claims; and the VM as the
 * content stores it.
 */
import type { KObject } from '../../api/object.js';
import { isPlainObject } from '../../api/object.js';
import { recordAt, stringAt } from '../../api/kinds/read.js';
import { resources } from '../../client/index.js';
import { hasCondition, isFinal } from '../vmi/index.js';
import type { SnapshotContext } from './context.js';
import { SnapshotInformers } from './context.js';
import { claimNameOf, finalizers, setFinalizer, simplifiedMeta, vmVolumes } from './model.js';

export const lockedMessage = 'Source locked and operation in progress';

export class VmSource {
  readonly online: boolean;
  readonly paused: boolean;
  readonly guestAgent: boolean;
  locked: boolean;
  lockMessage: string;

  constructor(
    private vm: KObject,
    private readonly snapshot: KObject,
    private readonly ctx: SnapshotContext,
  ) {
    const vmi = SnapshotInformers.at(ctx.informers.vmis, vm.metadata.namespace, vm.metadata.name ?? '');
    this.online = vmi !== undefined;
    this.paused = vmi !== undefined && hasCondition(vmi, 'Paused', 'True');
    this.guestAgent = vmi !== undefined && hasCondition(vmi, 'AgentConnected', 'True');
    this.locked = stringAt(vm, 'status', 'snapshotInProgress') === snapshot.metadata.name && (vm.metadata.finalizers ?? []).includes(finalizers.source);
    this.lockMessage = this.locked ? lockedMessage : 'Source not locked';
  }

  get uid(): string {
    return this.vm.metadata.uid ?? '';
  }

  /** Volume name → claim name of the VM's PVC and DataVolume volumes. */
  claims(): Map<string, string> {
    const out = new Map<string, string>();
    for (const volume of vmVolumes(this.vm)) {
      if (isPlainObject(volume.memoryDump)) continue;
      const claim = claimNameOf(volume);
      const name = stringAt(volume, 'name');
      if (claim !== undefined && name !== undefined) out.set(name, claim);
    }
    return out;
  }

  /** Takes the lock when it may; false (and why, in `lockMessage`) when not yet. */
  async lock(): Promise<boolean> {
    if (this.locked) return true;
    const namespace = this.vm.metadata.namespace;
    const claimNames = [...new Set(this.claims().values())];
    for (const name of claimNames) {
      const pvc = SnapshotInformers.at(this.ctx.informers.pvcs, namespace, name);
      const problem = pvc === undefined ? 'volume doesnt exist' : pvc.metadata.deletionTimestamp !== undefined ? 'volume is being deleted' : stringAt(pvc, 'status', 'phase') !== 'Bound' ? 'volume not bound' : undefined;
      if (problem !== undefined) {
        this.lockMessage += ` source ${namespace ?? ''}/${this.vm.metadata.name ?? ''} ${problem}: ${name}`;
        return false;
      }
    }
    if (!this.online) {
      const users = this.ctx.informers.vmis.list().filter((vmi) => vmi.metadata.namespace === namespace && !isFinal(vmi) && vmVolumesOfVmi(vmi).some((c) => claimNames.includes(c)));
      if (users.length > 0) {
        this.lockMessage += ` source is offline but ${users.length} pods using PVCs [${claimNames.join(' ')}]`;
        return false;
      }
    }
    const other = stringAt(this.vm, 'status', 'snapshotInProgress');
    if (other !== undefined && other !== this.snapshot.metadata.name) {
      this.lockMessage += ` snapshot "${other}" in progress`;
      return false;
    }
    if (other === undefined) {
      this.vm = await this.ctx.client.update(resources.virtualMachines, { ...this.vm, status: { ...(recordAt(this.vm, 'status') ?? {}), snapshotInProgress: this.snapshot.metadata.name } }, 'status');
    }
    this.vm = await setFinalizer(this.ctx.client, resources.virtualMachines, this.vm, finalizers.source, true);
    this.locked = true;
    this.lockMessage = lockedMessage;
    return true;
  }

  /** Releases this snapshot's lock; false when it held none. */
  async unlock(): Promise<boolean> {
    if (stringAt(this.vm, 'status', 'snapshotInProgress') !== this.snapshot.metadata.name) return false;
    this.vm = await setFinalizer(this.ctx.client, resources.virtualMachines, this.vm, finalizers.source, false);
    const status = { ...(recordAt(this.vm, 'status') ?? {}) };
    delete status.snapshotInProgress;
    this.vm = await this.ctx.client.update(resources.virtualMachines, { ...this.vm, status }, 'status');
    this.locked = false;
    return true;
  }

  /**
   * The VM as the content keeps it: metadata without managed fields, the
   * spec, an empty status. KubeVirt takes a running VM's spec from the
   * ControllerRevision its VMI was started from; Vireo keeps no revisions
   * and takes the VM's current spec.
   */
  contentSource(): Record<string, unknown> {
    return { metadata: simplifiedMeta(this.vm), spec: recordAt(this.vm, 'spec') ?? {}, status: {} };
  }
}

/** The claims a VMI's volumes name. */
function vmVolumesOfVmi(vmi: KObject): string[] {
  const out: string[] = [];
  for (const volume of vmVolumes({ spec: { template: { spec: recordAt(vmi, 'spec') } } })) {
    const claim = claimNameOf(volume);
    if (claim !== undefined) out.push(claim);
  }
  return out;
}
