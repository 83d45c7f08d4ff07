/**
 * CDI's CustomResourceDefinitions as cdi-operator installs them
 * (`pkg/operator/resources/crds_generated.go`), and Multus'
 * NetworkAttachmentDefinition, which KubeVirt's secondary networks name.
 */
import type { KObject } from '../object.js';
import type { JSONSchemaProps } from '../resource.js';
import type { CrdSpec } from './crd-builder.js';
import { customResourceDefinition, printerColumn } from './crd-builder.js';

const cdiLabels = { 'cdi.kubevirt.io': '' };

function cdiCrdSpecs(): CrdSpec[] {
  const v1beta1 = [{ name: 'v1beta1', storage: true }];
  const common = { group: 'cdi.kubevirt.io', labels: cdiLabels };
  return [
    {
      ...common,
      kind: 'DataVolume',
      plural: 'datavolumes',
      singular: 'datavolume',
      scope: 'Namespaced',
      shortNames: ['dv', 'dvs'],
      categories: ['all'],
      versions: v1beta1,
      columns: [
        printerColumn('Phase', 'string', '.status.phase', { description: 'The phase the data volume is in' }),
        printerColumn('Progress', 'string', '.status.progress', {
          description: 'Transfer progress in percentage if known, N/A otherwise',
        }),
        printerColumn('Restarts', 'integer', '.status.restartCount', {
          description: 'The number of times the transfer has been restarted.',
        }),
        printerColumn('Age', 'date', '.metadata.creationTimestamp'),
      ],
      status: true,
      model: 'V1beta1DataVolume',
    },
    {
      ...common,
      kind: 'DataSource',
      plural: 'datasources',
      singular: 'datasource',
      scope: 'Namespaced',
      shortNames: ['das'],
      categories: ['all'],
      versions: v1beta1,
      model: 'V1beta1DataSource',
    },
    {
      ...common,
      kind: 'DataImportCron',
      plural: 'dataimportcrons',
      singular: 'dataimportcron',
      scope: 'Namespaced',
      shortNames: ['dic', 'dics'],
      categories: ['all'],
      versions: v1beta1,
      columns: [
        printerColumn('Format', 'string', '.status.sourceFormat', { description: 'The format in which created sources are saved' }),
      ],
      model: 'V1beta1DataImportCron',
    },
    {
      ...common,
      kind: 'CDIConfig',
      plural: 'cdiconfigs',
      singular: 'cdiconfig',
      scope: 'Cluster',
      versions: v1beta1,
      model: 'V1beta1CDIConfig',
    },
    {
      ...common,
      kind: 'StorageProfile',
      plural: 'storageprofiles',
      singular: 'storageprofile',
      scope: 'Cluster',
      versions: v1beta1,
      status: true,
      schema: storageProfileSchema,
    },
    {
      group: 'cdi.kubevirt.io',
      kind: 'CDI',
      plural: 'cdis',
      singular: 'cdi',
      scope: 'Cluster',
      shortNames: ['cdi', 'cdis'],
      versions: [{ name: 'v1beta1', storage: true }, { name: 'v1alpha1' }],
      columns: [printerColumn('Age', 'date', '.metadata.creationTimestamp'), printerColumn('Phase', 'string', '.status.phase')],
      model: 'V1beta1CDI',
      labels: { 'operator.cdi.kubevirt.io': '' },
    },
  ];
}

/**
 * StorageProfile is missing from the models package, so its schema is
 * written here: the spec fields CDI defines, and a status kept as written
 * (the controller owns it).
 */
function storageProfileSchema(): JSONSchemaProps {
  const claimPropertySets: JSONSchemaProps = {
    type: 'array',
    maxItems: 8,
    items: {
      type: 'object',
      required: ['accessModes', 'volumeMode'],
      properties: {
        accessModes: {
          type: 'array',
          maxItems: 4,
          items: { type: 'string', enum: ['ReadWriteOnce', 'ReadOnlyMany', 'ReadWriteMany', 'ReadWriteOncePod'] },
        },
        volumeMode: { type: 'string', enum: ['Block', 'Filesystem'] },
      },
    },
  };
  return {
    type: 'object',
    required: ['spec'],
    properties: {
      apiVersion: { type: 'string' },
      kind: { type: 'string' },
      metadata: { type: 'object' },
      spec: {
        type: 'object',
        properties: {
          claimPropertySets,
          cloneStrategy: { type: 'string' },
          dataImportCronSourceFormat: { type: 'string' },
          snapshotClass: { type: 'string' },
        },
      },
      status: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
    },
  };
}

/** CDI's CRD objects, fresh on every call; schemas are built on first read and shared. */
export function cdiCustomResourceDefinitions(): KObject[] {
  return cdiCrdSpecs().map(customResourceDefinition);
}

/**
 * Multus' `network-attachment-definitions.k8s.cni.cncf.io`, with the schema
 * Multus ships: `spec.config`, a JSON-encoded CNI configuration string.
 */
export function networkAttachmentDefinitionCrd(): KObject {
  return customResourceDefinition({
    group: 'k8s.cni.cncf.io',
    kind: 'NetworkAttachmentDefinition',
    plural: 'network-attachment-definitions',
    singular: 'network-attachment-definition',
    scope: 'Namespaced',
    shortNames: ['nad', 'net-attach-def'],
    versions: [{ name: 'v1', storage: true }],
    schema: () => ({
      type: 'object',
      properties: {
        apiVersion: { type: 'string' },
        kind: { type: 'string' },
        metadata: { type: 'object' },
        spec: {
          type: 'object',
          description: 'The network this attachment connects to.',
          properties: {
            config: { type: 'string', description: 'CNI configuration (a single config or a config list) encoded as JSON.' },
          },
        },
      },
    }),
  });
}
