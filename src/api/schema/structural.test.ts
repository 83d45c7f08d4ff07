import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { JSONSchemaProps } from '../resource.js';
import { modelSchema } from '../models.js';
import { checkStructural } from './structural.js';

const fields = (schema: JSONSchemaProps): string[] => checkStructural(schema).map((e) => `${e.field}: ${e.message}`);

test('a structural schema passes', () => {
  const schema: JSONSchemaProps = {
    type: 'object',
    properties: {
      metadata: { type: 'object', properties: { name: { type: 'string', maxLength: 20 } } },
      spec: {
        type: 'object',
        properties: {
          port: { 'x-kubernetes-int-or-string': true, anyOf: [{ type: 'integer' }, { type: 'string' }] },
          free: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
          any: { 'x-kubernetes-preserve-unknown-fields': true },
          list: { type: 'array', items: { type: 'object', properties: { name: { type: 'string' } } }, 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['name'] },
          labels: { type: 'object', additionalProperties: { type: 'string' } },
          pick: { type: 'string', anyOf: [{ pattern: '^a' }, { pattern: '^b' }] },
          pod: { type: 'object', 'x-kubernetes-embedded-resource': true, 'x-kubernetes-preserve-unknown-fields': true },
        },
      },
    },
  };
  assert.deepEqual(checkStructural(schema), []);
});

test('the models KubeVirt CRDs are built from are structural once metadata is left to the server', () => {
  for (const model of ['V1VirtualMachine', 'V1VirtualMachineInstance', 'V1beta1DataVolume', 'V1beta1VirtualMachinePool']) {
    const schema = modelSchema(model);
    assert.deepEqual(checkStructural({ ...schema, properties: { ...schema.properties, metadata: { type: 'object' } } }), [], model);
  }
});

test('every node needs a type unless int-or-string or preserve-unknown-fields', () => {
  const schema: JSONSchemaProps = { properties: { spec: { properties: { a: {}, list: { type: 'array', items: {} } } } } };
  assert.deepEqual(fields(schema), [
    'openAPIV3Schema.type: Required value: must not be empty at the root',
    'openAPIV3Schema.properties[spec].type: Required value: must not be empty for specified object fields',
    'openAPIV3Schema.properties[spec].properties[a].type: Required value: must not be empty for specified object fields',
    'openAPIV3Schema.properties[spec].properties[list].items.type: Required value: must not be empty for specified array items',
  ]);
});

test('the root is an object without additionalProperties; arrays need items', () => {
  assert.deepEqual(fields({ type: 'string' }), ['openAPIV3Schema.type: Invalid value: "string": must be object at the root']);
  assert.deepEqual(fields({ type: 'object', additionalProperties: { type: 'string' } }), ['openAPIV3Schema.additionalProperties: Forbidden: must not be used at the root']);
  assert.deepEqual(fields({ type: 'object', properties: { l: { type: 'array' } } }), ['openAPIV3Schema.properties[l].items: Required value: must be specified']);
});

test('metadata may only constrain name and generateName', () => {
  const ok: JSONSchemaProps = { type: 'object', properties: { metadata: { type: 'object', properties: { name: { type: 'string', pattern: '^a' }, generateName: { type: 'string' } } } } };
  assert.deepEqual(checkStructural(ok), []);
  const bad: JSONSchemaProps = { type: 'object', properties: { metadata: { type: 'object', properties: { labels: { type: 'object' } } } } };
  assert.deepEqual(fields(bad), [
    'openAPIV3Schema.properties[metadata]: Forbidden: must not specify anything other than name and generateName, but metadata is implicitly specified',
  ]);
});

test('value validations must not declare types, defaults or extensions', () => {
  const schema: JSONSchemaProps = { type: 'object', properties: { a: { type: 'string', allOf: [{ type: 'string', default: 'x' }], not: { nullable: true } } } };
  assert.deepEqual(fields(schema), [
    'openAPIV3Schema.properties[a].allOf[0].type: Forbidden: must be empty to be structural',
    'openAPIV3Schema.properties[a].allOf[0].default: Forbidden: must be undefined to be structural',
    'openAPIV3Schema.properties[a].not.nullable: Forbidden: must be false to be structural',
  ]);
});

test('extensions are checked for consistency', () => {
  const schema: JSONSchemaProps = {
    type: 'object',
    properties: {
      a: { 'x-kubernetes-int-or-string': true, 'x-kubernetes-preserve-unknown-fields': true },
      b: { type: 'object', 'x-kubernetes-embedded-resource': true },
      c: { type: 'array', items: { type: 'string' }, 'x-kubernetes-list-type': 'map' },
      d: { type: 'string', pattern: '(' },
      e: { type: 'object', 'x-kubernetes-preserve-unknown-fields': false },
    },
  };
  assert.deepEqual(
    checkStructural(schema, { path: 'spec.versions[0].schema.openAPIV3Schema' }).map((e) => [e.field, e.reason]),
    [
      ['spec.versions[0].schema.openAPIV3Schema.properties[a].x-kubernetes-preserve-unknown-fields', 'FieldValueInvalid'],
      ['spec.versions[0].schema.openAPIV3Schema.properties[b].properties', 'FieldValueRequired'],
      ['spec.versions[0].schema.openAPIV3Schema.properties[c].x-kubernetes-list-map-keys', 'FieldValueRequired'],
      ['spec.versions[0].schema.openAPIV3Schema.properties[c].items.type', 'FieldValueInvalid'],
      ['spec.versions[0].schema.openAPIV3Schema.properties[d].pattern', 'FieldValueInvalid'],
      ['spec.versions[0].schema.openAPIV3Schema.properties[e].x-kubernetes-preserve-unknown-fields', 'FieldValueInvalid'],
    ],
  );
});
