/**
 * Online expansion: the disks of running guests that use a claim grow
 * through QMP `block_resize` on their format node, so QEMU grows the file
 * and the guest sees the new size at once (virtio-blk reports a capacity
 * change). The node is found through `query-block` by the disk's device
 * id, not guessed from the command line.
 */
import type { KObject } from '../api/object.js';
import { recordsAt, stringAt } from '../api/kinds/read.js';
import { isFinal } from '../api/kinds/vm-state.js';
import type { Machine } from './machine.js';
import { diskDeviceId } from './qemu/index.js';
import type { QmpBlockInfo } from './qmp/index.js';
import { claimNameOf } from '../storage/local/index.js';

/** What growing live disks needs. */
export interface LiveResizeOptions {
  /** The VMIs of this node. */
  vmis: readonly KObject[];
  /** The running machine of a VMI, if this node runs it. */
  machineOf: (namespace: string, name: string) => Machine | undefined;
}

/** The block backend of the disk with device id `id`, from `query-block`. */
export function blockOf(blocks: readonly QmpBlockInfo[], id: string): QmpBlockInfo | undefined {
  // virtio-blk reports the QOM path of its backend (`/machine/peripheral/<id>/virtio-backend`); other devices their id.
  return blocks.find((b) => b.qdev === id || (b.qdev ?? '').startsWith(`/machine/peripheral/${id}/`));
}

/** The top format node of the disk with device id `id` (after a live snapshot, the newest overlay). */
function formatNodeOf(blocks: readonly QmpBlockInfo[], id: string): string | undefined {
  return blockOf(blocks, id)?.inserted?.['node-name'];
}

/** Grows every running disk of claim `namespace/claim` to `bytes`; resolves with how many it grew. */
export async function resizeLiveDisks(claim: { namespace: string; name: string }, bytes: number, options: LiveResizeOptions): Promise<number> {
  let grown = 0;
  for (const vmi of options.vmis) {
    if (vmi.metadata.namespace !== claim.namespace || isFinal(vmi)) continue;
    const disks = recordsAt(vmi, 'spec', 'volumes').filter((v) => claimNameOf(v) === claim.name).map((v) => stringAt(v, 'name') ?? '');
    if (disks.length === 0) continue;
    const machine = options.machineOf(claim.namespace, vmi.metadata.name ?? '');
    if (machine === undefined) continue;
    const blocks = await machine.execute('query-block');
    for (const disk of disks) {
      const node = formatNodeOf(blocks, diskDeviceId(disk));
      if (node === undefined) throw new Error(`the running guest of VMI ${claim.namespace}/${vmi.metadata.name ?? ''} has no block node for disk "${disk}", so claim ${claim.name} cannot grow online`);
      await machine.execute('block_resize', { 'node-name': node, size: bytes });
      grown++;
    }
  }
  return grown;
}
