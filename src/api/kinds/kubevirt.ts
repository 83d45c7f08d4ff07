/**
 * KubeVirt's CustomResourceDefinitions, as virt-operator installs them
 * (`pkg/virt-operator/resource/generate/components/crds.go`): names, short
 * names, categories, scopes, versions, subresources and printer columns as
 * upstream declares them, with schemas from KubeVirt's OpenAPI models.
 */
import type { KObject } from '../object.js';
import type { PrinterColumn } from '../resource.js';
import { cdiCustomResourceDefinitions, networkAttachmentDefinitionCrd } from './cdi.js';
import type { CrdSpec, CrdVersionSpec } from './crd-builder.js';
import { customResourceDefinition, printerColumn } from './crd-builder.js';

const created = '.metadata.creationTimestamp';
const kubevirtLabels = { 'kubevirt.io': '' };

/** `kubevirt.io` serves v1 and, deprecated, v1alpha3 with the same schema. */
const coreVersions: CrdVersionSpec[] = [
  { name: 'v1', storage: true },
  { name: 'v1alpha3', deprecationWarning: 'kubevirt.io/v1alpha3 is now deprecated and will be removed in a future release.' },
];

const ageColumn = printerColumn('Age', 'date', created);
const readyColumn = printerColumn('Ready', 'string', ".status.conditions[?(@.type=='Ready')].status");

function replicaColumns(what: string): PrinterColumn[] {
  return [
    printerColumn('Desired', 'integer', '.spec.replicas', { description: `Number of desired ${what}` }),
    printerColumn('Current', 'integer', '.status.replicas', {
      description: `Number of managed and not final or deleted ${what}`,
    }),
    printerColumn('Ready', 'integer', '.status.readyReplicas', {
      description: `Number of managed ${what} which are ready to receive traffic`,
    }),
    ageColumn,
  ];
}

const replicaScale = { specReplicasPath: '.spec.replicas', statusReplicasPath: '.status.replicas', labelSelectorPath: '.status.labelSelector' };

function kubevirtCrdSpecs(): CrdSpec[] {
  return [
    {
      group: 'kubevirt.io',
      kind: 'VirtualMachineInstance',
      plural: 'virtualmachineinstances',
      singular: 'virtualmachineinstance',
      scope: 'Namespaced',
      shortNames: ['vmi', 'vmis'],
      categories: ['all'],
      versions: coreVersions,
      // Upstream gives VMIs no status subresource: virt-handler writes spec and status together.
      columns: [
        ageColumn,
        printerColumn('Phase', 'string', '.status.phase'),
        printerColumn('IP', 'string', '.status.interfaces[0].ipAddress'),
        printerColumn('NodeName', 'string', '.status.nodeName'),
        readyColumn,
        printerColumn('Live-Migratable', 'string', ".status.conditions[?(@.type=='LiveMigratable')].status", { priority: 1 }),
        printerColumn('Paused', 'string', ".status.conditions[?(@.type=='Paused')].status", { priority: 1 }),
      ],
      model: 'V1VirtualMachineInstance',
      labels: kubevirtLabels,
    },
    {
      group: 'kubevirt.io',
      kind: 'VirtualMachine',
      plural: 'virtualmachines',
      singular: 'virtualmachine',
      scope: 'Namespaced',
      shortNames: ['vm', 'vms'],
      categories: ['all'],
      versions: coreVersions,
      columns: [
        ageColumn,
        printerColumn('Status', 'string', '.status.printableStatus', { description: 'Human Readable Status' }),
        readyColumn,
      ],
      status: true,
      model: 'V1VirtualMachine',
      labels: kubevirtLabels,
    },
    {
      group: 'kubevirt.io',
      kind: 'VirtualMachineInstancePreset',
      plural: 'virtualmachineinstancepresets',
      singular: 'virtualmachineinstancepreset',
      scope: 'Namespaced',
      shortNames: ['vmipreset', 'vmipresets'],
      categories: ['all'],
      // Upstream stores presets as v1alpha3; Vireo stores the served v1 shape, which is identical.
      versions: [
        {
          name: 'v1',
          storage: true,
          deprecationWarning: 'kubevirt.io/v1 VirtualMachineInstancePresets is now deprecated and will be removed in v2.',
        },
        {
          name: 'v1alpha3',
          deprecationWarning: 'kubevirt.io/v1alpha3 VirtualMachineInstancePresets is now deprecated and will be removed in v2.',
        },
      ],
      model: 'V1VirtualMachineInstancePreset',
      labels: kubevirtLabels,
    },
    {
      group: 'kubevirt.io',
      kind: 'VirtualMachineInstanceReplicaSet',
      plural: 'virtualmachineinstancereplicasets',
      singular: 'virtualmachineinstancereplicaset',
      scope: 'Namespaced',
      shortNames: ['vmirs', 'vmirss'],
      categories: ['all'],
      versions: coreVersions,
      columns: replicaColumns('VirtualMachineInstances'),
      status: true,
      scale: replicaScale,
      model: 'V1VirtualMachineInstanceReplicaSet',
      labels: kubevirtLabels,
    },
    {
      group: 'kubevirt.io',
      kind: 'VirtualMachineInstanceMigration',
      plural: 'virtualmachineinstancemigrations',
      singular: 'virtualmachineinstancemigration',
      scope: 'Namespaced',
      shortNames: ['vmim', 'vmims'],
      categories: ['all'],
      versions: coreVersions,
      columns: [
        printerColumn('Phase', 'string', '.status.phase', { description: 'The current phase of VM instance migration' }),
        printerColumn('VMI', 'string', '.spec.vmiName', { description: 'The name of the VMI to perform the migration on' }),
      ],
      status: true,
      model: 'V1VirtualMachineInstanceMigration',
      labels: kubevirtLabels,
    },
    {
      group: 'kubevirt.io',
      kind: 'KubeVirt',
      plural: 'kubevirts',
      singular: 'kubevirt',
      scope: 'Namespaced',
      shortNames: ['kv', 'kvs'],
      categories: ['all'],
      versions: coreVersions,
      columns: [ageColumn, printerColumn('Phase', 'string', '.status.phase')],
      status: true,
      model: 'V1KubeVirt',
      labels: { 'operator.kubevirt.io': '' },
    },
    {
      group: 'pool.kubevirt.io',
      kind: 'VirtualMachinePool',
      plural: 'virtualmachinepools',
      singular: 'virtualmachinepool',
      scope: 'Namespaced',
      shortNames: ['vmpool', 'vmpools'],
      categories: ['all'],
      versions: [{ name: 'v1beta1', storage: true }, { name: 'v1alpha1', model: 'V1alpha1VirtualMachinePool' }],
      columns: replicaColumns('VirtualMachines'),
      status: true,
      scale: replicaScale,
      model: 'V1beta1VirtualMachinePool',
      labels: kubevirtLabels,
    },
    ...snapshotCrdSpecs(),
    ...instancetypeCrdSpecs(),
    {
      group: 'clone.kubevirt.io',
      kind: 'VirtualMachineClone',
      plural: 'virtualmachineclones',
      singular: 'virtualmachineclone',
      scope: 'Namespaced',
      shortNames: ['vmclone', 'vmclones'],
      categories: ['all'],
      versions: [{ name: 'v1beta1', storage: true }, { name: 'v1alpha1' }],
      columns: [
        printerColumn('Phase', 'string', '.status.phase'),
        printerColumn('SourceVirtualMachine', 'string', '.spec.source.name'),
        printerColumn('TargetVirtualMachine', 'string', '.spec.target.name'),
      ],
      status: true,
      model: 'V1beta1VirtualMachineClone',
      labels: kubevirtLabels,
    },
    {
      group: 'export.kubevirt.io',
      kind: 'VirtualMachineExport',
      plural: 'virtualmachineexports',
      singular: 'virtualmachineexport',
      scope: 'Namespaced',
      shortNames: ['vmexport', 'vmexports'],
      categories: ['all'],
      // v1 and v1beta1 share one shape; the models package only names it v1beta1.
      versions: [
        { name: 'v1', storage: true },
        {
          name: 'v1beta1',
          deprecationWarning: 'export.kubevirt.io/v1beta1 VirtualMachineExport is now deprecated and will be removed in a future version.',
        },
      ],
      columns: [
        printerColumn('SourceKind', 'string', '.spec.source.kind'),
        printerColumn('SourceName', 'string', '.spec.source.name'),
        printerColumn('Phase', 'string', '.status.phase'),
      ],
      status: true,
      model: 'V1beta1VirtualMachineExport',
      labels: kubevirtLabels,
    },
    {
      group: 'migrations.kubevirt.io',
      kind: 'MigrationPolicy',
      plural: 'migrationpolicies',
      singular: 'migrationpolicy',
      scope: 'Cluster',
      versions: [{ name: 'v1alpha1', storage: true }],
      status: true,
      model: 'V1alpha1MigrationPolicy',
      labels: kubevirtLabels,
    },
  ];
}

function snapshotCrdSpecs(): CrdSpec[] {
  const versions: CrdVersionSpec[] = [{ name: 'v1beta1', storage: true }, { name: 'v1alpha1' }];
  const errorColumn = printerColumn('Error', 'string', '.status.error.message');
  const readyToUse = printerColumn('ReadyToUse', 'boolean', '.status.readyToUse');
  const creationTime = printerColumn('CreationTime', 'date', '.status.creationTime');
  const common = { group: 'snapshot.kubevirt.io', scope: 'Namespaced' as const, categories: ['all'], versions, status: true, labels: kubevirtLabels };
  return [
    {
      ...common,
      kind: 'VirtualMachineSnapshot',
      plural: 'virtualmachinesnapshots',
      singular: 'virtualmachinesnapshot',
      shortNames: ['vmsnapshot', 'vmsnapshots'],
      columns: [
        printerColumn('SourceKind', 'string', '.spec.source.kind'),
        printerColumn('SourceName', 'string', '.spec.source.name'),
        printerColumn('Phase', 'string', '.status.phase'),
        readyToUse,
        creationTime,
        errorColumn,
      ],
      model: 'V1beta1VirtualMachineSnapshot',
    },
    {
      ...common,
      kind: 'VirtualMachineSnapshotContent',
      plural: 'virtualmachinesnapshotcontents',
      singular: 'virtualmachinesnapshotcontent',
      shortNames: ['vmsnapshotcontent', 'vmsnapshotcontents'],
      columns: [readyToUse, creationTime, errorColumn],
      model: 'V1beta1VirtualMachineSnapshotContent',
    },
    {
      ...common,
      kind: 'VirtualMachineRestore',
      plural: 'virtualmachinerestores',
      singular: 'virtualmachinerestore',
      shortNames: ['vmrestore', 'vmrestores'],
      columns: [
        printerColumn('TargetKind', 'string', '.spec.target.kind'),
        printerColumn('TargetName', 'string', '.spec.target.name'),
        printerColumn('Complete', 'boolean', '.status.complete'),
        printerColumn('RestoreTime', 'date', '.status.restoreTime'),
      ],
      model: 'V1beta1VirtualMachineRestore',
    },
  ];
}

function instancetypeCrdSpecs(): CrdSpec[] {
  const common = { group: 'instancetype.kubevirt.io', versions: [{ name: 'v1beta1', storage: true }], labels: kubevirtLabels };
  return [
    {
      ...common,
      kind: 'VirtualMachineInstancetype',
      plural: 'virtualmachineinstancetypes',
      singular: 'virtualmachineinstancetype',
      scope: 'Namespaced',
      shortNames: ['vminstancetype', 'vminstancetypes', 'vmf', 'vmfs'],
      categories: ['all'],
      model: 'V1beta1VirtualMachineInstancetype',
    },
    {
      ...common,
      kind: 'VirtualMachineClusterInstancetype',
      plural: 'virtualmachineclusterinstancetypes',
      singular: 'virtualmachineclusterinstancetype',
      scope: 'Cluster',
      shortNames: ['vmclusterinstancetype', 'vmclusterinstancetypes', 'vmcf', 'vmcfs'],
      model: 'V1beta1VirtualMachineClusterInstancetype',
    },
    {
      ...common,
      kind: 'VirtualMachinePreference',
      plural: 'virtualmachinepreferences',
      singular: 'virtualmachinepreference',
      scope: 'Namespaced',
      shortNames: ['vmpref', 'vmprefs', 'vmp', 'vmps'],
      categories: ['all'],
      model: 'V1beta1VirtualMachinePreference',
    },
    {
      ...common,
      kind: 'VirtualMachineClusterPreference',
      plural: 'virtualmachineclusterpreferences',
      singular: 'virtualmachineclusterpreference',
      scope: 'Cluster',
      shortNames: ['vmcp', 'vmcps'],
      model: 'V1beta1VirtualMachineClusterPreference',
    },
  ];
}

/**
 * Every CRD a KubeVirt installation brings: KubeVirt's own (virt-operator),
 * CDI's (cdi-operator) and Multus' NetworkAttachmentDefinition. Fresh
 * objects on every call (callers may change them); schemas are built on
 * first read and shared between calls.
 */
export function kubevirtCustomResourceDefinitions(): KObject[] {
  return [...kubevirtCrdSpecs().map(customResourceDefinition), ...cdiCustomResourceDefinitions(), networkAttachmentDefinitionCrd()];
}
