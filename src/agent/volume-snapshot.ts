/**
 * Snapshots and clones of volumes in use: the {@link LiveGuests} the
 * provisioner and the snapshot sidecar ask before they freeze a volume's
 * top. A guest that runs gets its disk moved onto the new qcow2 top
 * through QMP (`blockdev-add` of the overlay without a backing, then
 * `blockdev-snapshot`, which makes the old top its backing), so it keeps
 * running and never writes to the frozen layer again; a raw disk is copied
 * with the guest paused (`stop`, whose drain flushes its I/O, then `cont`).
 * A VMI of this node using the claim whose QEMU is not up (starting,
 * stopping, or the agent just restarted) makes the operation wait.
 *
 * While the guest agent answers, the guest's filesystems are frozen
 * (`guest-fsfreeze-freeze`) for the moment the overlay is put on top and
 * thawed right after, also when that fails, so the frozen layer is
 * application-consistent; without an agent the layer is crash-consistent.
 * Filesystems a user froze (the `freeze` subresource) stay as they are.
 */
import type { KObject } from '../api/object.js';
import { recordsAt, stringAt } from '../api/kinds/read.js';
import { isFinal } from '../api/kinds/vm-state.js';
import { claimNameOf, claimNamesOf } from '../storage/local/index.js';
import type { LiveGuest, LiveGuests, LiveUse } from '../storage/snapshots/index.js';
import type { Machine } from './machine.js';
import { diskDeviceId } from './qemu/index.js';
import { blockOf } from './volume-resize.js';

/** Where the live guests are found. */
export interface LiveSnapshotOptions {
  /** The VMIs of this node, now. */
  vmis: () => readonly KObject[];
  /** The running machine of a VMI, if this node runs it. */
  machineOf: (namespace: string, name: string) => Machine | undefined;
}

/** A start that failed and waits for its retry: no QEMU opens the files until then. */
function startFailed(vmi: KObject): boolean {
  return recordsAt(vmi, 'status', 'conditions').some((c) => c.type === 'Synchronized' && c.status === 'False');
}

/** The {@link LiveGuests} of this node's VMIs and machines. */
export function liveGuests(options: LiveSnapshotOptions): LiveGuests {
  return (claim) => Promise.resolve(use(claim));

  function use(claim: { namespace: string; name: string }): LiveUse {
    const users = options.vmis().filter((vmi) => vmi.metadata.namespace === claim.namespace && !isFinal(vmi) && claimNamesOf(vmi).includes(claim.name));
    const names = users.map((vmi) => vmi.metadata.name ?? '');
    if (users.length === 0) return { kind: 'idle' };
    const [vmi] = users;
    if (users.length > 1 || vmi === undefined) return { kind: 'busy', reason: `claim ${claim.namespace}/${claim.name} is used by VMIs ${names.join(', ')} at once; a shared volume is snapshotted once only one of them runs` };
    const machine = options.machineOf(claim.namespace, vmi.metadata.name ?? '');
    if (machine === undefined) {
      if (startFailed(vmi)) return { kind: 'idle' };
      return { kind: 'busy', reason: `VMI ${claim.namespace}/${vmi.metadata.name ?? ''}, which uses claim ${claim.name}, is starting or stopping` };
    }
    return { kind: 'running', guest: machineGuest(vmi, machine, claim.name) };
  }
}

function machineGuest(vmi: KObject, machine: Machine, claimName: string): LiveGuest {
  const who = `${vmi.metadata.namespace ?? ''}/${vmi.metadata.name ?? ''}`;
  const disks = recordsAt(vmi, 'spec', 'volumes').filter((v) => claimNameOf(v) === claimName).map((v) => stringAt(v, 'name') ?? '');
  return {
    vmi: who,
    async snapshot(overlay) {
      if (disks.length !== 1) throw new Error(`VMI ${who} uses claim ${claimName} as ${disks.length} disks; a live snapshot needs exactly one`);
      const device = diskDeviceId(disks[0] ?? '');
      const block = blockOf(await machine.execute('query-block'), device);
      const top = block?.inserted?.['node-name'];
      if (block?.inserted === undefined || top === undefined) throw new Error(`the running guest of VMI ${who} has no block node for disk "${disks[0] ?? ''}"`);
      if (top === overlay.nodeName) return;
      const cache = { direct: block.inserted.cache.direct, 'no-flush': block.inserted.cache['no-flush'] };
      const file = `${overlay.nodeName}-file`;
      const cut = async (): Promise<void> => {
        // A node left by an interrupted attempt would make the name a duplicate; none is the usual case.
        await machine.execute('blockdev-del', { 'node-name': overlay.nodeName }).catch(() => undefined);
        await machine.execute('blockdev-del', { 'node-name': file }).catch(() => undefined);
        await machine.execute('blockdev-add', { driver: 'file', 'node-name': file, filename: overlay.path, cache, discard: 'unmap' });
        await machine.execute('blockdev-add', { driver: 'qcow2', 'node-name': overlay.nodeName, file, backing: null, cache, discard: 'unmap' });
        await machine.execute('blockdev-snapshot', { node: top, overlay: overlay.nodeName });
        // The overlay was added with `backing: null`. When a later snapshot makes it a backing, QEMU
        // reopens it read-only with its options (so other guests may open the frozen layer), and that
        // reopen fails silently unless the options name the backing node it has by then.
        await machine.execute('blockdev-reopen', { options: [{ driver: 'qcow2', 'node-name': overlay.nodeName, file, backing: top, cache, discard: 'unmap' }] });
      };
      const agent = machine.guestAgent;
      // A paused guest's agent cannot answer; its snapshot is crash-consistent (indication Paused).
      if (!agent.state.connected || agent.state.frozen || (await machine.refreshRunState()) !== 'running') return cut();
      return agent.whileFrozen(cut);
    },
    async whilePaused(work) {
      const wasRunning = (await machine.refreshRunState()) === 'running';
      if (wasRunning) await machine.execute('stop');
      try {
        return await work();
      } finally {
        if (wasRunning) await machine.execute('cont');
      }
    },
  };
}
