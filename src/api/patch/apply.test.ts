import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError } from '../errors.js';
import type { ManagedFieldsEntry } from '../object.js';
import type { JSONSchemaProps } from '../resource.js';
import { applyPatch, updateManagedFields } from './apply.js';

const str: JSONSchemaProps = { type: 'string' };
const schema: JSONSchemaProps = {
  type: 'object',
  properties: {
    metadata: { type: 'object', properties: { name: str, labels: { type: 'object', additionalProperties: str } } },
    spec: {
      type: 'object',
      properties: {
        runStrategy: str,
        disks: {
          type: 'array',
          'x-kubernetes-list-type': 'map',
          'x-kubernetes-list-map-keys': ['name'],
          items: { type: 'object', properties: { name: str, bus: str, bootOrder: { type: 'integer' } } },
        },
        ports: {
          type: 'array',
          'x-kubernetes-patch-strategy': 'merge',
          'x-kubernetes-patch-merge-key': 'port',
          items: { type: 'object', properties: { port: { type: 'integer' }, name: str } },
        },
        hostnames: { type: 'array', 'x-kubernetes-list-type': 'set', items: str },
        args: { type: 'array', items: str },
        selector: { type: 'object', additionalProperties: str, 'x-kubernetes-map-type': 'atomic' },
      },
    },
  },
};

const live = {
  apiVersion: 'kubevirt.io/v1',
  kind: 'VirtualMachine',
  metadata: { name: 'vm1', uid: 'u1', resourceVersion: '5', labels: { a: '1' } },
  spec: {
    runStrategy: 'Halted',
    disks: [{ name: 'root', bus: 'virtio', bootOrder: 1 }, { name: 'server-added' }, { name: 'data' }],
    ports: [{ port: 80, name: 'http' }],
    hostnames: ['a', 'b'],
    args: ['--x'],
    selector: { app: 'web', old: 'y' },
  },
  status: { ready: true },
};

test('apply creates from the intent when nothing exists, dropping nulls', () => {
  assert.deepEqual(applyPatch(undefined, { kind: 'X', spec: { a: 1, b: null } }, { schema: undefined }), { kind: 'X', spec: { a: 1 } });
});

test('maps merge, keyed lists merge by key in applied order, sets union, atomic lists and maps replace', () => {
  const intent = {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachine',
    metadata: { name: 'vm1', labels: { b: '2' } },
    spec: {
      runStrategy: 'Always',
      disks: [{ name: 'data', bus: 'scsi' }, { name: 'root', bus: 'sata' }],
      ports: [{ port: 443 }],
      hostnames: ['c', 'a'],
      args: ['--y'],
      selector: { app: 'web' },
    },
  };
  const out = applyPatch(live, intent, { schema });
  assert.deepEqual(out, {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachine',
    metadata: { name: 'vm1', uid: 'u1', resourceVersion: '5', labels: { a: '1', b: '2' } },
    spec: {
      runStrategy: 'Always',
      disks: [{ name: 'server-added' }, { name: 'data', bus: 'scsi' }, { name: 'root', bus: 'sata', bootOrder: 1 }],
      ports: [{ port: 80, name: 'http' }, { port: 443 }],
      hostnames: ['c', 'a', 'b'],
      args: ['--y'],
      selector: { app: 'web' },
    },
    status: { ready: true },
  });
  assert.equal(live.spec.runStrategy, 'Halted', 'input untouched');
});

test('fields the manager applied before and dropped now are removed, unless someone else owns them', () => {
  const managedFields: ManagedFieldsEntry[] = [
    {
      manager: 'kubectl',
      operation: 'Apply',
      apiVersion: 'kubevirt.io/v1',
      time: '2024-01-01T00:00:00Z',
      fieldsType: 'FieldsV1',
      fieldsV1: {
        'f:metadata': { 'f:labels': { 'f:a': {} } },
        'f:spec': { 'f:runStrategy': {}, 'f:args': {}, 'f:disks': { 'k:{"name":"data"}': { '.': {}, 'f:name': {} }, 'k:{"name":"root"}': { '.': {}, 'f:name': {}, 'f:bus': {} } } },
      },
    },
    {
      manager: 'virt-controller',
      operation: 'Update',
      apiVersion: 'kubevirt.io/v1',
      time: '2024-01-01T00:00:00Z',
      fieldsType: 'FieldsV1',
      fieldsV1: { 'f:spec': { 'f:args': {} } },
    },
  ];
  const current = { ...live, metadata: { ...live.metadata, managedFields } };
  const intent = { metadata: { name: 'vm1' }, spec: { runStrategy: 'Always', disks: [{ name: 'root' }] } };
  const out = applyPatch(current, intent, { schema, manager: 'kubectl' }) as typeof live;
  assert.deepEqual(out.metadata.labels, {}, 'label a dropped');
  assert.deepEqual(out.spec.args, ['--x'], 'still owned by virt-controller');
  assert.deepEqual(out.spec.disks, [{ name: 'root', bootOrder: 1 }, { name: 'server-added' }], 'data disk and root bus dropped');
  // Another manager's apply leaves kubectl's fields alone.
  const other = applyPatch(current, { spec: { runStrategy: 'Always' } }, { schema, manager: 'someone-else' }) as typeof live;
  assert.deepEqual(other.metadata.labels, { a: '1' });
});

test('a non-object intent is a 400', () => {
  assert.throws(() => applyPatch(live, [1], { schema }), (e: unknown) => e instanceof ApiError && e.httpCode === 400);
});

test('managedFields: apply records the applied set; updates take over changed fields', () => {
  const created = { metadata: { name: 'vm1' }, spec: { runStrategy: 'Halted', disks: [{ name: 'root' }] } };
  let entries = updateManagedFields(undefined, {
    manager: 'kubectl',
    operation: 'Apply',
    apiVersion: 'kubevirt.io/v1',
    time: '2024-01-01T00:00:00Z',
    before: undefined,
    after: created,
    applied: created,
    schema,
  });
  assert.deepEqual(entries, [
    {
      manager: 'kubectl',
      operation: 'Apply',
      apiVersion: 'kubevirt.io/v1',
      time: '2024-01-01T00:00:00Z',
      fieldsType: 'FieldsV1',
      fieldsV1: { 'f:spec': { 'f:disks': { 'k:{"name":"root"}': { '.': {}, 'f:name': {} } }, 'f:runStrategy': {} } },
    },
  ]);
  const updated = { ...created, spec: { ...created.spec, runStrategy: 'Always' } };
  entries = updateManagedFields(entries, {
    manager: 'virtctl',
    operation: 'Update',
    apiVersion: 'kubevirt.io/v1',
    time: '2024-01-01T00:01:00Z',
    subresource: 'status',
    before: created,
    after: updated,
    schema,
  });
  assert.deepEqual(
    entries.map((e) => [e.manager, e.operation, e.subresource, e.fieldsV1]),
    [
      ['kubectl', 'Apply', undefined, { 'f:spec': { 'f:disks': { 'k:{"name":"root"}': { '.': {}, 'f:name': {} } } } }],
      ['virtctl', 'Update', 'status', { 'f:spec': { 'f:runStrategy': {} } }],
    ],
  );
  // A no-op update changes nothing and adds no entry.
  assert.deepEqual(
    updateManagedFields(entries, { manager: 'x', operation: 'Update', apiVersion: 'v1', time: 't', before: updated, after: updated, schema }),
    entries,
  );
});
