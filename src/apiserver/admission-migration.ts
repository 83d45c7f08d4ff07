/**
 * KubeVirt's admission of a new VirtualMachineInstanceMigration that reads
 * the cluster (its migration-create admitter): the VMI named by
 * `spec.vmiName` exists in the namespace and is not finished, can be
 * live-migrated (the `LiveMigratable` reasons, its claims' read from the
 * store), and has no other migration
 * in flight. A VMI that does not run yet is admitted, as in KubeVirt: the
 * migration waits in Pending until it runs.
 * Runs before the synchronous chain, like the network admission.
 */
import { badRequest } from '../api/errors.js';
import type { KObject } from '../api/object.js';
import type { ResourceDef } from '../api/resource.js';
import { recordsAt, stringAt } from '../api/kinds/read.js';
import { isFinal, vmiPhase } from '../api/kinds/vm-state.js';
import { migratabilityOf } from '../api/kinds/vmi-migratable.js';
import type { Migratability } from '../api/kinds/vmi-migratable.js';
import { claimMigratabilityOf } from '../api/kinds/vmi-claims-migratable.js';
import type { Store } from '../store/types.js';

const finishedPhases = ['Succeeded', 'Failed'];

/** True for the writes this module admits. */
export function isMigrationAdmitted(def: ResourceDef): boolean {
  return def.group === 'kubevirt.io' && def.kind === 'VirtualMachineInstanceMigration';
}

/** Refuses (400, saying why and what to do) a new migration of a VMI that cannot be migrated now. */
export async function admitMigration(obj: KObject, old: KObject | undefined, store: Store): Promise<void> {
  if (old !== undefined) return;
  const namespace = obj.metadata.namespace ?? '';
  const name = stringAt(obj, 'spec', 'vmiName') ?? '';
  // A missing name is the synchronous validation's to refuse, with its field.
  if (name === '') return;
  const stored = await store.get(`/registry/kubevirt.io/virtualmachineinstances/${namespace}/${name}`);
  if (stored === undefined) throw badRequest(`virtualmachineinstance.kubevirt.io "${name}" not found: spec.vmiName must name a VMI in namespace ${namespace}`);
  const vmi = JSON.parse(stored.value) as KObject;
  if (isFinal(vmi)) throw badRequest(`Cannot migrate VMI in finalized state: VMI ${name} is ${vmiPhase(vmi)}; start it again to migrate it`);
  const own = migratabilityOf(vmi);
  const verdict = own.migratable ? await claimsVerdict(vmi, store) : own;
  if (!verdict.migratable) throw badRequest(`Cannot migrate VMI, Reason: ${verdict.reason}, Message: ${verdict.message}`);
  const migrations = await store.list(`/registry/kubevirt.io/virtualmachineinstancemigrations/${namespace}/`);
  for (const item of migrations.items) {
    const migration = JSON.parse(item.value) as KObject;
    if (stringAt(migration, 'spec', 'vmiName') !== name || migration.metadata.deletionTimestamp !== undefined) continue;
    if (finishedPhases.includes(stringAt(migration, 'status', 'phase') ?? '')) continue;
    throw badRequest(`in-flight migration detected. Active migration job (${migration.metadata.uid ?? ''}) is currently already in progress for VMI ${name}: wait for it to end, or cancel it (vireo migrate-cancel ${name})`);
  }
}

/** Whether `vmi`'s claims can be copied to another node, read from the store (only for a VMI with claims). */
async function claimsVerdict(vmi: KObject, store: Store): Promise<Migratability> {
  const namespace = vmi.metadata.namespace ?? '';
  const uses = (v: Record<string, unknown>): boolean => v.persistentVolumeClaim !== undefined || v.dataVolume !== undefined;
  if (!recordsAt(vmi, 'spec', 'volumes').some(uses)) return { migratable: true };
  const read = async (prefix: string): Promise<KObject[]> => (await store.list(prefix)).items.map((item) => JSON.parse(item.value) as KObject);
  const [claims, pvs, vmis, snapshots] = await Promise.all([
    read(`/registry/core/persistentvolumeclaims/${namespace}/`),
    read('/registry/core/persistentvolumes/'),
    read(`/registry/kubevirt.io/virtualmachineinstances/${namespace}/`),
    read(`/registry/snapshot.storage.k8s.io/volumesnapshots/${namespace}/`),
  ]);
  const verdict = claimMigratabilityOf(vmi, {
    claim: (_ns, name) => claims.find((c) => c.metadata.name === name),
    volume: (name) => pvs.find((p) => p.metadata.name === name),
    vmis: () => vmis,
    snapshots: () => snapshots,
  });
  return verdict.migratable ? { migratable: true } : verdict;
}
