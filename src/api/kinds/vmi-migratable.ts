/**
 * Whether a VMI can be live-migrated, as KubeVirt's `LiveMigratable`
 * condition says it, with this slice's limits: volumes that are made again
 * on the target (containerDisk, emptyDisk, cloud-init and config disks)
 * move; host disks and host devices never do; claims (local volumes) are
 * copied, as `vmi-claims-migratable.ts` decides; the pod network or Multus
 * networks are not supported yet.
 */
import type { KObject } from '../object.js';
import { arrayAt, recordAt, recordsAt, stringAt } from './read.js';

/** KubeVirt's condition type. */
export const liveMigratableCondition = 'LiveMigratable';

/** Migratable, or why not (KubeVirt's reason and a message saying what to do). */
export type Migratability = { migratable: true } | { migratable: false; reason: string; message: string };

/** Volume sources whose data moves with the guest: made fresh on the target, writable ones mirrored there. */
const movableVolumes = ['containerDisk', 'emptyDisk', 'cloudInitNoCloud', 'cloudInitConfigDrive', 'configMap', 'secret', 'serviceAccount', 'downwardAPI', 'sysprep'];

/** Why `vmi` cannot be live-migrated, or that it can. */
export function migratabilityOf(vmi: KObject): Migratability {
  const devices = recordAt(vmi, 'spec', 'domain', 'devices');
  const hostDevices = [...arrayAt(devices, 'hostDevices'), ...arrayAt(devices, 'gpus')];
  if (hostDevices.length > 0) {
    return { migratable: false, reason: 'HostDeviceNotLiveMigratable', message: 'VMI uses a PCI host device (hostDevices or gpus): a device of this host cannot move to another; remove it to migrate' };
  }
  for (const volume of recordsAt(vmi, 'spec', 'volumes')) {
    const name = stringAt(volume, 'name') ?? '';
    if (volume.hostDisk !== undefined) {
      return { migratable: false, reason: 'DisksNotLiveMigratable', message: `cannot migrate VMI with non-shared HostDisk: volume ${name} is a file of this host; use a containerDisk or emptyDisk to migrate` };
    }
    // Claims are copied to the target node: whether each can be is `claimMigratabilityOf` (vmi-claims-migratable.ts), which reads them.
    if (volume.persistentVolumeClaim !== undefined || volume.dataVolume !== undefined) continue;
    if (!movableVolumes.some((source) => volume[source] !== undefined)) {
      return { migratable: false, reason: 'DisksNotLiveMigratable', message: `volume ${name} is of a kind live migration does not move yet` };
    }
  }
  for (const network of recordsAt(vmi, 'spec', 'networks')) {
    const name = stringAt(network, 'name') ?? '';
    if (network.pod !== undefined) {
      return { migratable: false, reason: 'InterfaceNotLiveMigratable', message: `live migration of a VMI on the pod network (network ${name}) is not yet supported: its address cannot move to another node yet; the next step keeps the address across the move. A VMI without networks (autoattachPodInterface: false) migrates` };
    }
    if (network.multus !== undefined) {
      return { migratable: false, reason: 'InterfaceNotLiveMigratable', message: `live migration of a VMI on a Multus network (network ${name}) is not yet supported` };
    }
  }
  return { migratable: true };
}

/** KubeVirt's BlockMigration when local disks (claims' local volumes too) are copied, else LiveMigration. */
export function migrationMethodOf(vmi: KObject): 'BlockMigration' | 'LiveMigration' {
  const copied = recordsAt(vmi, 'spec', 'volumes').some((v) => v.containerDisk !== undefined || v.emptyDisk !== undefined || v.persistentVolumeClaim !== undefined || v.dataVolume !== undefined);
  return copied ? 'BlockMigration' : 'LiveMigration';
}
