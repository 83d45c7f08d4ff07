/**
 * Whether a VMI's claims can move with it in a live migration, and which
 * ones are copied. Vireo has no storage every node reaches: each claim's
 * volume is a file on one node (the local provisioner's), so every claim
 * of a migrating VMI is copied to the target node (a ReadWriteMany claim
 * too: its volume is still one node's file). The copy is a block mirror
 * of the running disk, so a claim is refused when another guest could
 * write it meanwhile (another unfinished VMI uses it), when the guest
 * does not write it through a disk QEMU mirrors (read-only, hotplugged),
 * or when the source node holds more of it than the disk (VolumeSnapshot
 * layers), with what to do. Pure: the caller looks the objects up.
 */
import type { KObject } from '../object.js';
import { booleanAt, recordsAt, stringAt } from './read.js';
import { isFinal } from './vm-state.js';

/** Where the check reads claims, volumes, VMIs and VolumeSnapshots. */
export interface ClaimLookup {
  claim: (namespace: string, name: string) => KObject | undefined;
  volume: (name: string) => KObject | undefined;
  /** Every VMI (finished ones are passed over). */
  vmis: () => readonly KObject[];
  /** The VolumeSnapshots of `namespace`. */
  snapshots: (namespace: string) => readonly KObject[];
}

/** A claim whose volume is copied to the target node. */
export interface CopiedClaim {
  /** The VMI volume using it. */
  volume: string;
  claim: KObject;
  pv: KObject;
}

/** The claims to copy, or why the VMI cannot migrate (KubeVirt's reason and a message saying what to do). */
export type ClaimMigratability = { migratable: true; copied: CopiedClaim[] } | { migratable: false; reason: string; message: string };

/** The local storage's names (src/storage/local/names.ts; the API layer does not import storage). */
const provisionedBy = 'pv.kubernetes.io/provisioned-by';
const localProvisioner = 'vireo.io/local';
const importPhase = 'cdi.kubevirt.io/storage.pod.phase';
const encryption = 'vireo.io/encryption';

function refuse(message: string): ClaimMigratability {
  return { migratable: false, reason: 'DisksNotLiveMigratable', message };
}

function claimOf(volume: Record<string, unknown>): string | undefined {
  const name = stringAt(volume, 'persistentVolumeClaim', 'claimName') ?? stringAt(volume, 'dataVolume', 'name');
  return name === '' ? undefined : name;
}

function isHotplugged(volume: Record<string, unknown>): boolean {
  return booleanAt(volume, 'persistentVolumeClaim', 'hotpluggable') === true || booleanAt(volume, 'dataVolume', 'hotpluggable') === true;
}

/** The other unfinished VMIs of the namespace that use claim `name`. */
function otherUsers(vmi: KObject, name: string, lookup: ClaimLookup): string[] {
  return lookup
    .vmis()
    .filter((other) => other.metadata.uid !== vmi.metadata.uid && other.metadata.namespace === vmi.metadata.namespace && !isFinal(other))
    .filter((other) => recordsAt(other, 'spec', 'volumes').some((v) => claimOf(v) === name))
    .map((other) => other.metadata.name ?? '');
}

/** Which of `vmi`'s claims are copied to the target node, or why one cannot be. */
export function claimMigratabilityOf(vmi: KObject, lookup: ClaimLookup): ClaimMigratability {
  const namespace = vmi.metadata.namespace ?? '';
  const copied: CopiedClaim[] = [];
  const seen = new Set<string>();
  for (const volume of recordsAt(vmi, 'spec', 'volumes')) {
    const name = claimOf(volume);
    if (name === undefined) continue;
    const volumeName = stringAt(volume, 'name') ?? '';
    const what = `volume ${volumeName} (claim ${name})`;
    if (seen.has(name)) return refuse(`${what}: the claim is used by two volumes of the VMI; the copy to the target node must be made once, through one disk`);
    seen.add(name);
    if (isHotplugged(volume)) return refuse(`${what} is hotplugged: hotplugged volumes are not copied to the target node yet; unplug it (vireo removevolume) or restart the VM, which makes it a regular disk, to migrate`);
    if (booleanAt(volume, 'persistentVolumeClaim', 'readOnly') === true) return refuse(`${what} is read-only in the guest: the copy to the target node goes through the guest's writable disk; mount it writable to migrate`);
    const claim = lookup.claim(namespace, name);
    if (claim === undefined) return refuse(`${what}: PersistentVolumeClaim ${namespace}/${name} does not exist`);
    const phase = claim.metadata.annotations?.[importPhase];
    if (phase !== undefined && phase !== 'Succeeded') return refuse(`${what} is still being populated (import phase ${phase}); migrate once its DataVolume has Succeeded`);
    const pvName = stringAt(claim, 'spec', 'volumeName') ?? '';
    const pv = pvName === '' ? undefined : lookup.volume(pvName);
    if (pv === undefined) return refuse(`${what} is not bound to a PersistentVolume`);
    if (pv.metadata.annotations?.[provisionedBy] !== localProvisioner || stringAt(pv, 'spec', 'local', 'path') === undefined) {
      return refuse(`${what}: PersistentVolume ${pvName} was not made by the ${localProvisioner} provisioner, so this node's agent cannot copy it to another node`);
    }
    if (pv.metadata.annotations?.[encryption] !== undefined) return refuse(`${what} is an encrypted (LUKS) local volume: encrypted volumes are not copied to another node yet; stop the VM to move it`);
    const users = otherUsers(vmi, name, lookup);
    if (users.length > 0) {
      return refuse(`${what} is also used by VMI ${users.join(', ')}: a local volume that another guest writes cannot be copied while both run; stop ${users.length === 1 ? 'it' : 'them'} to migrate`);
    }
    const snapshots = lookup.snapshots(namespace).filter((s) => stringAt(s, 'spec', 'source', 'persistentVolumeClaimName') === name);
    if (snapshots.length > 0) {
      return refuse(`${what} has VolumeSnapshots (${snapshots.map((s) => s.metadata.name ?? '').join(', ')}) whose layers stay on the source node: delete them to migrate`);
    }
    copied.push({ volume: volumeName, claim, pv });
  }
  return { migratable: true, copied };
}
