import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject } from './object.js';
import type { ResourceDef } from './resource.js';
import { buildTable, tableConvertorFor } from './table.js';

function def(overrides: Partial<ResourceDef> = {}): ResourceDef {
  return {
    group: 'kubevirt.io',
    version: 'v1',
    kind: 'VirtualMachineInstance',
    listKind: 'VirtualMachineInstanceList',
    plural: 'virtualmachineinstances',
    singular: 'virtualmachineinstance',
    namespaced: true,
    shortNames: ['vmi'],
    categories: ['all'],
    subresources: { status: true },
    printerColumns: [],
    schema: undefined,
    builtin: false,
    ...overrides,
  };
}

// KubeVirt's VMI columns (pkg/virt-operator/resource/generate/components/crds.go).
const vmiDef = def({
  printerColumns: [
    { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
    { name: 'Phase', type: 'string', jsonPath: '.status.phase' },
    { name: 'IP', type: 'string', jsonPath: '.status.interfaces[0].ipAddress' },
    { name: 'NodeName', type: 'string', jsonPath: '.status.nodeName' },
    { name: 'Ready', type: 'string', jsonPath: ".status.conditions[?(@.type=='Ready')].status" },
    { name: 'Live-Migratable', type: 'string', jsonPath: ".status.conditions[?(@.type=='LiveMigratable')].status", priority: 1 },
    { name: 'Cores', type: 'integer', jsonPath: '.spec.domain.cpu.cores', description: 'vCPU cores' },
  ],
});

const now = new Date('2024-01-01T01:00:00Z');

const vmi: KObject = {
  apiVersion: 'kubevirt.io/v1',
  kind: 'VirtualMachineInstance',
  metadata: { name: 'vm1', namespace: 'default', uid: 'u1', resourceVersion: '810', creationTimestamp: '2024-01-01T00:55:00Z', labels: { app: 'web' } },
  spec: { domain: { cpu: { cores: 2.0 } } },
  status: {
    phase: 'Running',
    nodeName: 'node1',
    interfaces: [{ ipAddress: '10.0.0.5' }],
    conditions: [{ type: 'Ready', status: 'True' }],
  },
};
const pending: KObject = { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', metadata: { name: 'vm2', namespace: 'default', creationTimestamp: '2023-12-29T00:00:00Z' } };

test('KubeVirt VMI table: columns, cells, partial metadata rows', () => {
  const table = buildTable(vmiDef, [vmi, pending], { now, listMeta: { resourceVersion: '812', continue: '' } });
  assert.equal(table.kind, 'Table');
  assert.equal(table.apiVersion, 'meta.k8s.io/v1');
  assert.deepEqual(table.metadata, { resourceVersion: '812' });
  assert.deepEqual(
    table.columnDefinitions?.map((c) => [c.name, c.type, c.format, c.priority]),
    [
      ['Name', 'string', 'name', 0],
      ['Age', 'date', '', 0],
      ['Phase', 'string', '', 0],
      ['IP', 'string', '', 0],
      ['NodeName', 'string', '', 0],
      ['Ready', 'string', '', 0],
      ['Live-Migratable', 'string', '', 1],
      ['Cores', 'integer', '', 0],
    ],
  );
  assert.equal(table.columnDefinitions?.[2]?.description, 'Custom resource definition column (in JSONPath format): .status.phase');
  assert.equal(table.columnDefinitions?.[7]?.description, 'vCPU cores');
  assert.match(table.columnDefinitions?.[0]?.description ?? '', /^Name must be unique within a namespace/);
  assert.deepEqual(table.rows[0]?.cells, ['vm1', '5m', 'Running', '10.0.0.5', 'node1', 'True', null, 2]);
  assert.deepEqual(table.rows[1]?.cells, ['vm2', '3d1h', null, null, null, null, null, null]);
  assert.deepEqual(table.rows[0]?.object, { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: vmi.metadata });
});

test('includeObject and noHeaders', () => {
  const full = buildTable(vmiDef, [vmi], { now, includeObject: 'Object', listMeta: { resourceVersion: '9', continue: 'abc', remainingItemCount: 3 } });
  assert.equal(full.rows[0]?.object, vmi);
  assert.deepEqual(full.metadata, { resourceVersion: '9', continue: 'abc', remainingItemCount: 3 });
  const none = buildTable(vmiDef, [vmi], { now, includeObject: 'None', noHeaders: true });
  assert.equal(none.rows[0]?.object, null);
  assert.equal(none.columnDefinitions, null);
  assert.deepEqual(JSON.parse(JSON.stringify(none)), {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: {},
    columnDefinitions: null,
    rows: [{ cells: ['vm1', '5m', 'Running', '10.0.0.5', 'node1', 'True', null, 2], object: null }],
  });
});

test('a resource without columns gets the CRD default Age column', () => {
  const table = buildTable(def(), [vmi], { now });
  assert.deepEqual(
    table.columnDefinitions?.map((c) => c.name),
    ['Name', 'Age'],
  );
  assert.match(table.columnDefinitions?.[1]?.description ?? '', /^CreationTimestamp is a timestamp/);
  assert.deepEqual(table.rows[0]?.cells, ['vm1', '5m']);
});

test('cell types: values that do not fit the column type are empty', () => {
  const d = def({
    printerColumns: [
      { name: 'N', type: 'number', jsonPath: '.v.n' },
      { name: 'I', type: 'integer', jsonPath: '.v.f' },
      { name: 'B', type: 'boolean', jsonPath: '.v.b' },
      { name: 'S', type: 'string', jsonPath: '.v.obj' },
      { name: 'Bad', type: 'integer', jsonPath: '.v.s' },
      { name: 'When', type: 'date', jsonPath: '.v.s' },
      { name: 'Null', type: 'string', jsonPath: '.v.nil' },
      { name: 'Broken', type: 'string', jsonPath: '.v[' },
    ],
  });
  const obj: KObject = { apiVersion: 'x/v1', kind: 'X', metadata: { name: 'x' }, v: { n: 1.5, f: 2.9, b: false, obj: { b: 1, a: [1] }, s: 'soon', nil: null } };
  assert.deepEqual(buildTable(d, [obj], { now }).rows[0]?.cells, ['x', 1.5, 2, false, '{"a":[1],"b":1}', null, '<invalid>', '<no value>', null]);
});

test('built-in kinds can compute their own cells', () => {
  const d = def({
    builtin: true,
    printerColumns: [
      { name: 'Data', type: 'integer', jsonPath: '.data' },
      { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
    ],
    printRow: (obj, at) => [Object.keys((obj['data'] as Record<string, string> | undefined) ?? {}).length, at.toISOString()],
  });
  const cm: KObject = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cm' }, data: { a: '1', b: '2' } };
  const table = buildTable(d, [cm], { now });
  assert.deepEqual(table.rows[0]?.cells, ['cm', 2, '2024-01-01T01:00:00.000Z']);
  assert.equal(table.columnDefinitions?.[1]?.description, '');
});

test('the convertor is compiled once per ResourceDef', () => {
  assert.equal(tableConvertorFor(vmiDef), tableConvertorFor(vmiDef));
  assert.deepEqual(tableConvertorFor(vmiDef).row(vmi, { now }).cells[0], 'vm1');
});
