/**
 * The CSI snapshot API (`snapshot.storage.k8s.io/v1`) as the
 * external-snapshotter project installs it: VolumeSnapshotClass and
 * VolumeSnapshotContent (cluster-scoped) and VolumeSnapshot (namespaced),
 * with their short names, printer columns and structural schemas. The
 * schemas are written here (the models package has no snapshot kinds),
 * with the fields of the v1 API; status fields are those the snapshot
 * controller and the CSI sidecar write.
 */
import type { KObject } from '../object.js';
import type { JSONSchemaProps } from '../resource.js';
import type { CrdSpec } from './crd-builder.js';
import { customResourceDefinition, printerColumn } from './crd-builder.js';

const group = 'snapshot.storage.k8s.io';
const v1 = [{ name: 'v1', storage: true }];
const str: JSONSchemaProps = { type: 'string' };
const bool: JSONSchemaProps = { type: 'boolean' };
const int64: JSONSchemaProps = { type: 'integer', format: 'int64' };
const quantity: JSONSchemaProps = { anyOf: [{ type: 'integer' }, { type: 'string' }], 'x-kubernetes-int-or-string': true, pattern: '^(\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))))?$' };
const deletionPolicy: JSONSchemaProps = { type: 'string', enum: ['Delete', 'Retain'], description: 'Delete removes the physical snapshot with its VolumeSnapshotContent; Retain keeps it.' };

/** `error` of a snapshot's or content's status. */
const snapshotError: JSONSchemaProps = {
  type: 'object',
  description: 'The last error of creating the snapshot, if any; cleared once it succeeds.',
  properties: { message: str, time: { type: 'string', format: 'date-time' } },
};

function root(properties: Record<string, JSONSchemaProps>, required: string[]): JSONSchemaProps {
  return { type: 'object', required, properties: { apiVersion: str, kind: str, metadata: { type: 'object' }, ...properties } };
}

function classSchema(): JSONSchemaProps {
  return root(
    {
      driver: { type: 'string', description: 'The CSI driver whose snapshots this class describes.' },
      deletionPolicy,
      parameters: { type: 'object', additionalProperties: str, description: 'Driver-specific parameters.' },
    },
    ['deletionPolicy', 'driver'],
  );
}

function snapshotSchema(): JSONSchemaProps {
  return root(
    {
      spec: {
        type: 'object',
        required: ['source'],
        properties: {
          source: {
            type: 'object',
            description: 'Where the snapshot comes from: a claim to cut it from, or an existing VolumeSnapshotContent. Exactly one.',
            properties: {
              persistentVolumeClaimName: { type: 'string', description: 'The claim, in the snapshot\'s namespace, to snapshot.' },
              volumeSnapshotContentName: { type: 'string', description: 'A pre-existing VolumeSnapshotContent to bind to.' },
            },
            oneOf: [{ required: ['persistentVolumeClaimName'] }, { required: ['volumeSnapshotContentName'] }],
          },
          volumeSnapshotClassName: { type: 'string', description: 'The VolumeSnapshotClass; the default class of the claim\'s driver when unset.' },
        },
      },
      status: {
        type: 'object',
        properties: {
          boundVolumeSnapshotContentName: str,
          creationTime: { type: 'string', format: 'date-time' },
          readyToUse: bool,
          restoreSize: quantity,
          error: snapshotError,
          volumeGroupSnapshotName: str,
        },
      },
    },
    ['spec'],
  );
}

function contentSchema(): JSONSchemaProps {
  return root(
    {
      spec: {
        type: 'object',
        required: ['deletionPolicy', 'driver', 'source', 'volumeSnapshotRef'],
        properties: {
          deletionPolicy,
          driver: str,
          source: {
            type: 'object',
            properties: { volumeHandle: str, snapshotHandle: str },
            oneOf: [{ required: ['snapshotHandle'] }, { required: ['volumeHandle'] }],
          },
          sourceVolumeMode: { type: 'string', enum: ['Block', 'Filesystem'] },
          volumeSnapshotClassName: str,
          volumeSnapshotRef: {
            type: 'object',
            'x-kubernetes-map-type': 'atomic',
            properties: { apiVersion: str, fieldPath: str, kind: str, name: str, namespace: str, resourceVersion: str, uid: str },
          },
        },
      },
      status: {
        type: 'object',
        properties: {
          creationTime: int64,
          error: snapshotError,
          readyToUse: bool,
          restoreSize: { type: 'integer', format: 'int64', minimum: 0 },
          snapshotHandle: str,
          volumeGroupSnapshotHandle: str,
        },
      },
    },
    ['spec'],
  );
}

function csiSnapshotCrdSpecs(): CrdSpec[] {
  const age = printerColumn('Age', 'date', '.metadata.creationTimestamp');
  return [
    {
      group,
      kind: 'VolumeSnapshotClass',
      plural: 'volumesnapshotclasses',
      singular: 'volumesnapshotclass',
      scope: 'Cluster',
      shortNames: ['vsclass', 'vsclasses'],
      versions: v1,
      columns: [printerColumn('Driver', 'string', '.driver'), printerColumn('DeletionPolicy', 'string', '.deletionPolicy', { description: 'Whether a VolumeSnapshotContent made through this class is deleted with its VolumeSnapshot.' }), age],
      schema: classSchema,
    },
    {
      group,
      kind: 'VolumeSnapshot',
      plural: 'volumesnapshots',
      singular: 'volumesnapshot',
      scope: 'Namespaced',
      shortNames: ['vs'],
      versions: v1,
      status: true,
      columns: [
        printerColumn('ReadyToUse', 'boolean', '.status.readyToUse', { description: 'Whether the snapshot can restore a volume.' }),
        printerColumn('SourcePVC', 'string', '.spec.source.persistentVolumeClaimName', { description: 'The claim the snapshot is cut from.' }),
        printerColumn('SourceSnapshotContent', 'string', '.spec.source.volumeSnapshotContentName', { description: 'The existing VolumeSnapshotContent the snapshot binds to.' }),
        printerColumn('RestoreSize', 'string', '.status.restoreSize', { description: 'The smallest volume the snapshot restores into.' }),
        printerColumn('SnapshotClass', 'string', '.spec.volumeSnapshotClassName'),
        printerColumn('SnapshotContent', 'string', '.status.boundVolumeSnapshotContentName'),
        printerColumn('CreationTime', 'date', '.status.creationTime', { description: 'When the storage took the point-in-time snapshot.' }),
        age,
      ],
      schema: snapshotSchema,
    },
    {
      group,
      kind: 'VolumeSnapshotContent',
      plural: 'volumesnapshotcontents',
      singular: 'volumesnapshotcontent',
      scope: 'Cluster',
      shortNames: ['vsc', 'vscs'],
      versions: v1,
      status: true,
      columns: [
        printerColumn('ReadyToUse', 'boolean', '.status.readyToUse'),
        printerColumn('RestoreSize', 'integer', '.status.restoreSize', { description: 'The size of the snapshot in bytes.' }),
        printerColumn('DeletionPolicy', 'string', '.spec.deletionPolicy'),
        printerColumn('Driver', 'string', '.spec.driver'),
        printerColumn('VolumeSnapshotClass', 'string', '.spec.volumeSnapshotClassName'),
        printerColumn('VolumeSnapshot', 'string', '.spec.volumeSnapshotRef.name'),
        printerColumn('VolumeSnapshotNamespace', 'string', '.spec.volumeSnapshotRef.namespace'),
        age,
      ],
      schema: contentSchema,
    },
  ];
}

/** The three CRDs of `snapshot.storage.k8s.io`, fresh on every call. */
export function csiSnapshotCustomResourceDefinitions(): KObject[] {
  return csiSnapshotCrdSpecs().map(customResourceDefinition);
}
