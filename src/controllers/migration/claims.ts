/**
 * The claims of migrating VMIs, as the migration controller sees them:
 * whether a VMI with claims can migrate (its claims read from informers),
 * whether a target node has room for the copies, and, once the guest runs
 * on the target, the move of each claim's PersistentVolume to it.
 *
 * Why the same PersistentVolume is rewritten rather than a new one bound:
 * a local volume's PV is named after its claim (`pvc-<claim uid>`) and
 * its directory after the same uid on every node, and the scheduler, the
 * provisioner, snapshots and exports find a claim's volume by that name.
 * So after the switch-over the controller (the components' credential,
 * not a user's: for users a PV's source and node affinity stay immutable,
 * as in Kubernetes) points the PV's `spec.local.path` and `nodeAffinity`
 * at the target node, and the claim's `volume.kubernetes.io/selected-node`
 * too; the claim stays bound to the same PV, so `kubectl get pvc/pv` stay
 * true, and a later start of the VM is scheduled where the data now is.
 */
import type { KObject } from '../../api/object.js';
import { ApiError } from '../../api/errors.js';
import { claimMigratabilityOf } from '../../api/kinds/vmi-claims-migratable.js';
import type { ClaimLookup } from '../../api/kinds/vmi-claims-migratable.js';
import { migratabilityOf } from '../../api/kinds/vmi-migratable.js';
import type { Migratability } from '../../api/kinds/vmi-migratable.js';
import type { MovedVolume } from '../../agent/index.js';
import type { Client } from '../../client/index.js';
import { resources } from '../../client/index.js';
import { capacityAnnotation, formatBytes, hostnameLabel, selectedNodeAnnotation, volumeBytes } from '../../storage/local/index.js';

/** The annotation on a moved PersistentVolume naming the node its data came from and the migration that moved it. */
export const movedFromAnnotation = 'storage.vireo.io/migrated-from';

/** Whether `vmi` can migrate: the VMI's own limits, then its claims'. */
export function liveMigratabilityOf(vmi: KObject, claims: ClaimLookup): Migratability {
  const verdict = migratabilityOf(vmi);
  if (!verdict.migratable) return verdict;
  const claimVerdict = claimMigratabilityOf(vmi, claims);
  return claimVerdict.migratable ? { migratable: true } : claimVerdict;
}

/** Why `node` has no room for copies of `vmi`'s claims (its free local storage, as its agent reports it); undefined when it has. */
export function copyRoomShortage(vmi: KObject, node: KObject, claims: ClaimLookup): string | undefined {
  const verdict = claimMigratabilityOf(vmi, claims);
  if (!verdict.migratable || verdict.copied.length === 0) return undefined;
  const wanted = verdict.copied.reduce((sum, c) => sum + volumeBytes(c.pv), 0);
  const free = Number(node.metadata.annotations?.[capacityAnnotation] ?? '');
  if (!Number.isFinite(free)) return `node ${node.metadata.name ?? ''} reports no free local storage for copies of the VMI's claims`;
  if (wanted > free) return `node ${node.metadata.name ?? ''} has ${formatBytes(Math.max(0, free))} of local storage free, the VMI's claims need ${formatBytes(wanted)}`;
  return undefined;
}

/**
 * Points each moved volume's PersistentVolume (and its claim's selected
 * node) at `targetNode`, where the migrated guest now writes it. Retried
 * on a conflict with another writer.
 */
export async function moveClaimVolumes(client: Client, volumes: readonly MovedVolume[], move: { targetNode: string; sourceNode: string; migrationUid: string }): Promise<void> {
  for (const volume of volumes) {
    for (let attempt = 0; ; attempt++) {
      try {
        const pv = await client.get(resources.persistentVolumes, undefined, volume.persistentVolume);
        await client.patch(resources.persistentVolumes, undefined, volume.persistentVolume, 'merge', {
          metadata: { resourceVersion: pv.metadata.resourceVersion, annotations: { [movedFromAnnotation]: `${move.sourceNode} (migration ${move.migrationUid})` } },
          spec: { local: { path: volume.path }, nodeAffinity: { required: { nodeSelectorTerms: [{ matchExpressions: [{ key: hostnameLabel, operator: 'In', values: [move.targetNode] }] }] } } },
        });
        const claimRef = pv.spec === undefined ? undefined : (pv.spec as { claimRef?: { namespace?: string; name?: string; uid?: string } }).claimRef;
        if (claimRef?.name !== undefined && claimRef.uid === volume.claimUid) {
          await client.patch(resources.persistentVolumeClaims, claimRef.namespace, claimRef.name, 'merge', { metadata: { uid: volume.claimUid, annotations: { [selectedNodeAnnotation]: move.targetNode } } });
        }
        break;
      } catch (err) {
        if (!(err instanceof ApiError && err.reason === 'Conflict') || attempt >= 5) throw err;
      }
    }
  }
}
