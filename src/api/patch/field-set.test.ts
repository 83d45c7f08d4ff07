import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError } from '../errors.js';
import type { JSONSchemaProps } from '../resource.js';
import { changedFieldSet, differenceFieldSets, fieldSetOf, fromFieldsV1, intersectFieldSets, toFieldsV1, unionFieldSets } from './field-set.js';

const str: JSONSchemaProps = { type: 'string' };
const vmSchema: JSONSchemaProps = {
  type: 'object',
  properties: {
    apiVersion: str,
    kind: str,
    metadata: { type: 'object', properties: { name: str, namespace: str, labels: { type: 'object', additionalProperties: str } } },
    spec: {
      type: 'object',
      properties: {
        runStrategy: str,
        template: {
          type: 'object',
          properties: {
            spec: {
              type: 'object',
              properties: {
                volumes: {
                  type: 'array',
                  'x-kubernetes-list-type': 'map',
                  'x-kubernetes-list-map-keys': ['name'],
                  items: { type: 'object', properties: { name: str, containerDisk: { type: 'object', properties: { image: str } } } },
                },
                nodeSelector: { type: 'object', additionalProperties: str, 'x-kubernetes-map-type': 'atomic' },
                tolerations: { type: 'array', items: { type: 'object' } },
                hostnames: { type: 'array', 'x-kubernetes-list-type': 'set', items: str },
              },
            },
          },
        },
      },
    },
  },
};

const vm = {
  apiVersion: 'kubevirt.io/v1',
  kind: 'VirtualMachine',
  metadata: { name: 'vm1', namespace: 'default', labels: { app: 'web' } },
  spec: {
    runStrategy: 'Always',
    template: {
      spec: {
        volumes: [{ name: 'root', containerDisk: { image: 'fedora' } }],
        nodeSelector: { zone: 'a' },
        tolerations: [{ key: 'x' }],
        hostnames: ['a', 'b'],
      },
    },
  },
};

test('the FieldsV1 set of an applied VirtualMachine', () => {
  assert.deepEqual(toFieldsV1(fieldSetOf(vm, vmSchema)), {
    'f:metadata': { 'f:labels': { 'f:app': {} } },
    'f:spec': {
      'f:runStrategy': {},
      'f:template': {
        'f:spec': {
          'f:hostnames': { 'v:"a"': {}, 'v:"b"': {} },
          'f:nodeSelector': {},
          'f:tolerations': {},
          'f:volumes': { 'k:{"name":"root"}': { '.': {}, 'f:containerDisk': { 'f:image': {} }, 'f:name': {} } },
        },
      },
    },
  });
});

test('without a schema every key is a map entry and lists are atomic', () => {
  assert.deepEqual(toFieldsV1(fieldSetOf({ spec: { a: { b: 1 }, l: [1] } }, undefined)), {
    'f:spec': { '.': {}, 'f:a': { '.': {}, 'f:b': {} }, 'f:l': {} },
  });
});

test('ignored paths and keyed items that omit their keys', () => {
  assert.deepEqual(toFieldsV1(fieldSetOf({ spec: { x: 1 }, status: { y: 1 } }, undefined, [['status']])), { 'f:spec': { '.': {}, 'f:x': {} } });
  assert.throws(
    () => fieldSetOf({ spec: { template: { spec: { volumes: [{ containerDisk: {} }] } } } }, vmSchema),
    (e: unknown) => e instanceof ApiError && e.reason === 'Invalid' && /omits every key field/.test(e.message),
  );
});

test('FieldsV1 round trip and set algebra', () => {
  const json = toFieldsV1(fieldSetOf(vm, vmSchema));
  assert.deepEqual(toFieldsV1(fromFieldsV1(json)), json);
  const a = fromFieldsV1({ 'f:spec': { 'f:a': {}, 'f:b': {} } });
  const b = fromFieldsV1({ 'f:spec': { 'f:b': {}, 'f:c': {} } });
  assert.deepEqual(toFieldsV1(unionFieldSets(a, b)), { 'f:spec': { 'f:a': {}, 'f:b': {}, 'f:c': {} } });
  assert.deepEqual(toFieldsV1(differenceFieldSets(a, b)), { 'f:spec': { 'f:a': {} } });
  assert.deepEqual(toFieldsV1(intersectFieldSets(a, b)), { 'f:spec': { 'f:b': {} } });
});

test('changed fields of an update', () => {
  const after = structuredClone(vm);
  after.spec.runStrategy = 'Halted';
  after.spec.template.spec.volumes.push({ name: 'data', containerDisk: { image: 'x' } });
  const labels: Record<string, string> = after.metadata.labels;
  labels['tier'] = 'db';
  assert.deepEqual(toFieldsV1(changedFieldSet(vm, after, vmSchema)), {
    'f:metadata': { 'f:labels': { 'f:tier': {} } },
    'f:spec': {
      'f:runStrategy': {},
      'f:template': { 'f:spec': { 'f:volumes': { 'k:{"name":"data"}': { '.': {}, 'f:containerDisk': { 'f:image': {} }, 'f:name': {} } } } },
    },
  });
  assert.deepEqual(toFieldsV1(changedFieldSet(undefined, { spec: { x: 1 } }, undefined)), { 'f:spec': { '.': {}, 'f:x': {} } });
});
