/**
 * A VM's `dataVolumeTemplates`, as KubeVirt's VM controller handles them:
 * each becomes a DataVolume of its name, owned by the VM; the VMI waits
 * until every one is `Succeeded` — or `WaitForFirstConsumer` /
 * `PendingPopulation`, where the VMI must exist for scheduling to bind the
 * claim. The template's DataVolumes also decide the printable statuses
 * `DataVolumeError` and `Provisioning`. Pure, but for the lookup.
 */
import type { KObject } from '../../api/object.js';
import { arrayAt, recordAt, stringAt, stringMapAt } from '../../api/kinds/read.js';
import { controllerRefTo } from '../vmi/index.js';

/** Phases in which a DataVolume lets the VMI be created. */
const startablePhases: readonly string[] = ['Succeeded', 'WaitForFirstConsumer', 'PendingPopulation'];

/** The DataVolume a template asks for, owned by the VM. */
export function dataVolumeFromTemplate(vm: KObject, template: Record<string, unknown>): KObject {
  return {
    apiVersion: 'cdi.kubevirt.io/v1beta1',
    kind: 'DataVolume',
    metadata: {
      name: stringAt(template, 'metadata', 'name') ?? '',
      namespace: vm.metadata.namespace ?? 'default',
      labels: stringMapAt(template, 'metadata', 'labels'),
      annotations: stringMapAt(template, 'metadata', 'annotations'),
      ownerReferences: [controllerRefTo(vm)],
    },
    spec: structuredClone(recordAt(template, 'spec') ?? {}),
  };
}

/** The VM's `dataVolumeTemplates`, as records with a name. */
export function dataVolumeTemplatesOf(vm: KObject): Record<string, unknown>[] {
  return arrayAt(vm, 'spec', 'dataVolumeTemplates').map((t) => recordAt(t) ?? {}).filter((t) => (stringAt(t, 'metadata', 'name') ?? '') !== '');
}

/** True when the DataVolume lets the VMI start. */
export function isStartable(dv: KObject | undefined): boolean {
  return dv !== undefined && startablePhases.includes(stringAt(dv, 'status', 'phase') ?? '');
}

/** What the template's DataVolumes say about the VM. */
export interface DataVolumeState {
  /** KubeVirt's `HasDataVolumeErrors`: a Failed DataVolume, or an importer stopped by an error. */
  error: string | undefined;
  /** A DataVolume used by the template is still being filled. */
  provisioning: boolean;
}

/** The state of the DataVolumes the VM template's volumes use (`lookup(name)` reads the cache). */
export function dataVolumeStateOf(vm: KObject, lookup: (name: string) => KObject | undefined): DataVolumeState {
  let error: string | undefined;
  let provisioning = false;
  for (const volume of arrayAt(vm, 'spec', 'template', 'spec', 'volumes')) {
    const name = stringAt(volume, 'dataVolume', 'name');
    if (name === undefined) continue;
    const dv = lookup(name);
    if (dv === undefined) continue;
    const phase = stringAt(dv, 'status', 'phase') ?? '';
    const running = arrayAt(dv, 'status', 'conditions').map((c) => recordAt(c) ?? {}).find((c) => c.type === 'Running');
    if (error === undefined && phase === 'Failed') error = `DataVolume ${name} is in Failed phase`;
    else if (error === undefined && running?.status === 'False' && (running.reason === 'Error' || running.reason === 'ImagePullFailed')) {
      error = `DataVolume ${name} importer has stopped running due to an error: ${typeof running.message === 'string' ? running.message : ''}`;
    }
    if (!['Succeeded', 'Failed', 'WaitForFirstConsumer', 'PendingPopulation'].includes(phase)) provisioning = true;
  }
  return { error, provisioning };
}
