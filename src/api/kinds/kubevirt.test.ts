import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject } from '../object.js';
import type { ResourceDef } from '../resource.js';
import { hasModel } from '../models.js';
import { crdToResourceDef, defaultCustomResourceDefinition } from './crd.js';
import { validateCustomResourceDefinition } from './crd-validation.js';
import { kubevirtCustomResourceDefinitions } from './kubevirt.js';
import { arrayAt, recordsAt, stringAt } from './read.js';

function crd(name: string): KObject {
  const found = kubevirtCustomResourceDefinitions().find((c) => c.metadata.name === name);
  assert.ok(found, `no CRD ${name}`);
  return found;
}

function served(name: string): ResourceDef {
  const defs = crdToResourceDef(crd(name));
  const first = defs[0];
  assert.ok(first, `${name} serves nothing`);
  return first;
}

function columns(def: ResourceDef): [string, string, string, number][] {
  return def.printerColumns.map((c) => [c.name, c.type, c.jsonPath, c.priority ?? 0]);
}

test('every CRD is valid, named <plural>.<group>, and stores its first version', () => {
  const crds = kubevirtCustomResourceDefinitions();
  assert.equal(crds.length, 24);
  for (const c of crds) {
    assert.deepEqual(validateCustomResourceDefinition(c), [], c.metadata.name);
    assert.equal(c.metadata.name, `${stringAt(c, 'spec', 'names', 'plural') ?? ''}.${stringAt(c, 'spec', 'group') ?? ''}`);
    const first = recordsAt(c, 'spec', 'versions')[0];
    assert.equal(first?.['served'], true, c.metadata.name);
    assert.equal(first?.['storage'], true, c.metadata.name);
  }
});

test('names, scopes, short names and categories are upstream\'s', () => {
  const expected: [string, string, boolean, string[], string[]][] = [
    ['virtualmachines.kubevirt.io', 'VirtualMachine', true, ['vm', 'vms'], ['all']],
    ['virtualmachineinstances.kubevirt.io', 'VirtualMachineInstance', true, ['vmi', 'vmis'], ['all']],
    ['virtualmachineinstancemigrations.kubevirt.io', 'VirtualMachineInstanceMigration', true, ['vmim', 'vmims'], ['all']],
    ['virtualmachineinstancereplicasets.kubevirt.io', 'VirtualMachineInstanceReplicaSet', true, ['vmirs', 'vmirss'], ['all']],
    ['virtualmachineinstancepresets.kubevirt.io', 'VirtualMachineInstancePreset', true, ['vmipreset', 'vmipresets'], ['all']],
    ['kubevirts.kubevirt.io', 'KubeVirt', true, ['kv', 'kvs'], ['all']],
    ['virtualmachineinstancetypes.instancetype.kubevirt.io', 'VirtualMachineInstancetype', true, ['vminstancetype', 'vminstancetypes', 'vmf', 'vmfs'], ['all']],
    ['virtualmachineclusterinstancetypes.instancetype.kubevirt.io', 'VirtualMachineClusterInstancetype', false, ['vmclusterinstancetype', 'vmclusterinstancetypes', 'vmcf', 'vmcfs'], []],
    ['virtualmachinepreferences.instancetype.kubevirt.io', 'VirtualMachinePreference', true, ['vmpref', 'vmprefs', 'vmp', 'vmps'], ['all']],
    ['virtualmachineclusterpreferences.instancetype.kubevirt.io', 'VirtualMachineClusterPreference', false, ['vmcp', 'vmcps'], []],
    ['virtualmachinepools.pool.kubevirt.io', 'VirtualMachinePool', true, ['vmpool', 'vmpools'], ['all']],
    ['virtualmachinesnapshots.snapshot.kubevirt.io', 'VirtualMachineSnapshot', true, ['vmsnapshot', 'vmsnapshots'], ['all']],
    ['virtualmachinerestores.snapshot.kubevirt.io', 'VirtualMachineRestore', true, ['vmrestore', 'vmrestores'], ['all']],
    ['virtualmachineclones.clone.kubevirt.io', 'VirtualMachineClone', true, ['vmclone', 'vmclones'], ['all']],
    ['virtualmachineexports.export.kubevirt.io', 'VirtualMachineExport', true, ['vmexport', 'vmexports'], ['all']],
    ['migrationpolicies.migrations.kubevirt.io', 'MigrationPolicy', false, [], []],
    ['datavolumes.cdi.kubevirt.io', 'DataVolume', true, ['dv', 'dvs'], ['all']],
    ['datasources.cdi.kubevirt.io', 'DataSource', true, ['das'], ['all']],
    ['dataimportcrons.cdi.kubevirt.io', 'DataImportCron', true, ['dic', 'dics'], ['all']],
    ['cdiconfigs.cdi.kubevirt.io', 'CDIConfig', false, [], []],
    ['storageprofiles.cdi.kubevirt.io', 'StorageProfile', false, [], []],
    ['cdis.cdi.kubevirt.io', 'CDI', false, ['cdi', 'cdis'], []],
    ['network-attachment-definitions.k8s.cni.cncf.io', 'NetworkAttachmentDefinition', true, ['nad', 'net-attach-def'], []],
  ];
  for (const [name, kind, namespaced, shortNames, categories] of expected) {
    const d = served(name);
    assert.deepEqual([d.kind, d.listKind, d.namespaced, d.shortNames, d.categories, d.builtin], [kind, `${kind}List`, namespaced, shortNames, categories, false], name);
  }
});

test('served versions: storage version first, deprecated ones as upstream keeps them', () => {
  const versions = (name: string): string[] => crdToResourceDef(crd(name)).map((d) => d.version);
  assert.deepEqual(versions('virtualmachines.kubevirt.io'), ['v1', 'v1alpha3']);
  assert.deepEqual(versions('virtualmachinepools.pool.kubevirt.io'), ['v1beta1', 'v1alpha1']);
  assert.deepEqual(versions('virtualmachineexports.export.kubevirt.io'), ['v1', 'v1beta1']);
  assert.deepEqual(versions('datavolumes.cdi.kubevirt.io'), ['v1beta1']);
  const alpha = recordsAt(crd('virtualmachines.kubevirt.io'), 'spec', 'versions')[1];
  assert.equal(alpha?.['deprecated'], true);
  assert.match(String(alpha?.['deprecationWarning']), /v1alpha3 is now deprecated/);
});

test('printer columns are upstream\'s', () => {
  assert.deepEqual(columns(served('virtualmachines.kubevirt.io')), [
    ['Age', 'date', '.metadata.creationTimestamp', 0],
    ['Status', 'string', '.status.printableStatus', 0],
    ['Ready', 'string', ".status.conditions[?(@.type=='Ready')].status", 0],
  ]);
  assert.deepEqual(columns(served('virtualmachineinstances.kubevirt.io')), [
    ['Age', 'date', '.metadata.creationTimestamp', 0],
    ['Phase', 'string', '.status.phase', 0],
    ['IP', 'string', '.status.interfaces[0].ipAddress', 0],
    ['NodeName', 'string', '.status.nodeName', 0],
    ['Ready', 'string', ".status.conditions[?(@.type=='Ready')].status", 0],
    ['Live-Migratable', 'string', ".status.conditions[?(@.type=='LiveMigratable')].status", 1],
    ['Paused', 'string', ".status.conditions[?(@.type=='Paused')].status", 1],
  ]);
  assert.deepEqual(columns(served('datavolumes.cdi.kubevirt.io')), [
    ['Phase', 'string', '.status.phase', 0],
    ['Progress', 'string', '.status.progress', 0],
    ['Restarts', 'integer', '.status.restartCount', 0],
    ['Age', 'date', '.metadata.creationTimestamp', 0],
  ]);
  assert.deepEqual(columns(served('virtualmachineinstancemigrations.kubevirt.io')), [
    ['Phase', 'string', '.status.phase', 0],
    ['VMI', 'string', '.spec.vmiName', 0],
  ]);
  assert.deepEqual(columns(served('virtualmachinesnapshots.snapshot.kubevirt.io')).map((c) => c[0]), [
    'SourceKind',
    'SourceName',
    'Phase',
    'ReadyToUse',
    'CreationTime',
    'Error',
  ]);
  assert.deepEqual(served('virtualmachineinstancetypes.instancetype.kubevirt.io').printerColumns, []);
});

test('subresources are upstream\'s: VMIs have no status subresource, replica sets and pools scale', () => {
  assert.deepEqual(served('virtualmachineinstances.kubevirt.io').subresources, { status: false });
  assert.deepEqual(served('virtualmachines.kubevirt.io').subresources, { status: true });
  const scale = { specReplicasPath: '.spec.replicas', statusReplicasPath: '.status.replicas', labelSelectorPath: '.status.labelSelector' };
  assert.deepEqual(served('virtualmachineinstancereplicasets.kubevirt.io').subresources, { status: true, scale });
  assert.deepEqual(served('virtualmachinepools.pool.kubevirt.io').subresources, { status: true, scale });
  assert.deepEqual(served('datavolumes.cdi.kubevirt.io').subresources, { status: true });
  assert.deepEqual(served('datasources.cdi.kubevirt.io').subresources, { status: false });
  assert.deepEqual(served('migrationpolicies.migrations.kubevirt.io').subresources, { status: true });
});

test('CRD objects come already defaulted, so defaulting changes nothing', () => {
  const c = crd('virtualmachines.kubevirt.io');
  const names = structuredClone(c['spec']);
  defaultCustomResourceDefinition(c);
  assert.deepEqual(c['spec'], names);
  assert.equal(stringAt(c, 'spec', 'conversion', 'strategy'), 'None');
  assert.deepEqual(arrayAt(c, 'spec', 'names', 'shortNames'), ['vm', 'vms']);
});

test('calls return fresh objects: changing one does not change the next', () => {
  const first = crd('virtualmachines.kubevirt.io');
  first.metadata.name = 'changed';
  assert.equal(crd('virtualmachines.kubevirt.io').metadata.name, 'virtualmachines.kubevirt.io');
});

function modelsAvailable(): boolean {
  try {
    return hasModel('V1VirtualMachine');
  } catch {
    return false;
  }
}

const models = modelsAvailable();
test(
  models ? 'schemas are the OpenAPI models, with a bare metadata object as CRDs require' : 'CRD schemas (skipped: OpenAPI models not generated; run node scripts/gen-api.mjs)',
  { skip: !models },
  () => {
    for (const c of kubevirtCustomResourceDefinitions()) {
      for (const def of crdToResourceDef(c)) {
        assert.equal(def.schema?.type, 'object', `${c.metadata.name ?? ''} ${def.version}`);
        assert.deepEqual(def.schema.properties?.['metadata'], { type: 'object' }, c.metadata.name);
      }
    }
    const vm = served('virtualmachines.kubevirt.io').schema;
    assert.ok(vm?.properties?.['spec']?.properties?.['template']);
    assert.ok(vm.properties['status']);
    const nad = served('network-attachment-definitions.k8s.cni.cncf.io').schema;
    assert.equal(nad?.properties?.['spec']?.properties?.['config']?.type, 'string');
    // One schema per model, however many CRD objects or versions are made.
    assert.equal(served('virtualmachines.kubevirt.io').schema, crdToResourceDef(crd('virtualmachines.kubevirt.io'))[1]?.schema);
  },
);
