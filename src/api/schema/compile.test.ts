import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { JSONSchemaProps } from '../resource.js';
import { compileSchema } from './compile.js';

const str: JSONSchemaProps = { type: 'string' };
const int: JSONSchemaProps = { type: 'integer' };

/** A small CRD-like schema exercising every extension the engine honours. */
const widget: JSONSchemaProps = {
  type: 'object',
  properties: {
    metadata: { type: 'object', properties: { name: { type: 'string', maxLength: 8 } } },
    spec: {
      type: 'object',
      required: ['size'],
      properties: {
        size: { ...int, minimum: 1, maximum: 10 },
        mode: { type: 'string', enum: ['Always', 'Halted'], default: 'Always' },
        port: { 'x-kubernetes-int-or-string': true },
        owner: { type: 'string', nullable: true },
        note: { type: 'string' },
        when: { type: 'string', format: 'date-time' },
        blob: { type: 'string', format: 'byte' },
        speed: { type: 'integer', format: 'int64' },
        color: { type: 'string', format: 'not-a-k8s-format' },
        tags: { type: 'array', items: str, 'x-kubernetes-list-type': 'set' },
        ports: {
          type: 'array',
          'x-kubernetes-list-type': 'map',
          'x-kubernetes-list-map-keys': ['name'],
          items: { type: 'object', properties: { name: str, number: { ...int, default: 80 } } },
        },
        labels: { type: 'object', additionalProperties: str },
        limits: { type: 'object', default: { cpu: 1 }, properties: { cpu: int, memory: { ...str, default: '1Gi' } } },
        config: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true, properties: { known: { type: 'object', properties: { a: int } } } },
        anything: { 'x-kubernetes-preserve-unknown-fields': true },
        template: {
          type: 'object',
          'x-kubernetes-embedded-resource': true,
          properties: { spec: { type: 'object', properties: { replicas: int } } },
        },
      },
    },
  },
};

const sample = (): Record<string, unknown> => ({
  apiVersion: 'example.com/v1',
  kind: 'Widget',
  metadata: { name: 'w', namespace: 'default', labels: { app: 'w' } },
  spec: { size: 3 },
});

test('prune removes unknown fields and reports their paths, sorted', () => {
  const obj = sample();
  obj['extra'] = true;
  obj['spec'] = {
    size: 3,
    bogus: 1,
    ports: [{ name: 'http', number: 80, proto: 'TCP' }],
    limits: { cpu: 1, gpu: 2 },
  };
  const removed = compileSchema(widget).prune(obj);
  assert.deepEqual(removed, ['extra', 'spec.bogus', 'spec.limits.gpu', 'spec.ports[0].proto']);
  assert.deepEqual(obj['spec'], { size: 3, ports: [{ name: 'http', number: 80 }], limits: { cpu: 1 } });
});

test('prune keeps every ObjectMeta field and drops the rest of metadata', () => {
  const obj = sample();
  obj['metadata'] = {
    name: 'w',
    annotations: { a: 'b' },
    finalizers: ['f'],
    ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'c', uid: 'u', nonsense: 1 }],
    creationTimestamp: null,
    surprise: 'x',
  };
  const removed = compileSchema(widget).prune(obj);
  assert.deepEqual(removed, ['metadata.ownerReferences[0].nonsense', 'metadata.surprise']);
  assert.deepEqual(obj['metadata'], {
    name: 'w',
    annotations: { a: 'b' },
    finalizers: ['f'],
    ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'c', uid: 'u' }],
  });
});

test('prune honours x-kubernetes-preserve-unknown-fields but still prunes its known properties', () => {
  const obj = sample();
  obj['spec'] = {
    size: 1,
    config: { free: { deep: [1, { x: 2 }] }, known: { a: 1, b: 2 } },
    anything: { whatever: { nested: true } },
  };
  assert.deepEqual(compileSchema(widget).prune(obj), ['spec.config.known.b']);
  assert.deepEqual(obj['spec'], { size: 1, config: { free: { deep: [1, { x: 2 }] }, known: { a: 1 } }, anything: { whatever: { nested: true } } });
});

test('prune lets embedded resources keep apiVersion, kind and metadata', () => {
  const obj = sample();
  obj['spec'] = { size: 1, template: { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', junk: 1 }, spec: { replicas: 2, junk: 3 }, status: {} } };
  assert.deepEqual(compileSchema(widget).prune(obj), ['spec.template.metadata.junk', 'spec.template.spec.junk', 'spec.template.status']);
  assert.deepEqual(obj['spec'], { size: 1, template: { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec: { replicas: 2 } } });
});

test('an undefined schema accepts any content but still cleans metadata', () => {
  const compiled = compileSchema(undefined);
  const obj = { apiVersion: 'x/v1', kind: 'X', metadata: { name: 'a', junk: 1 }, spec: { anything: [1, 'two'] } };
  assert.deepEqual(compiled.prune(obj), ['metadata.junk']);
  assert.deepEqual(obj.spec, { anything: [1, 'two'] });
  assert.deepEqual(compiled.validate(obj), []);
});

test('applyDefaults fills missing fields, nested and in list items, with copies', () => {
  const compiled = compileSchema(widget);
  const a = sample();
  a['spec'] = { size: 2, ports: [{ name: 'http' }, { name: 'https', number: 443 }] };
  compiled.applyDefaults(a);
  assert.deepEqual(a['spec'], { size: 2, mode: 'Always', limits: { cpu: 1, memory: '1Gi' }, ports: [{ name: 'http', number: 80 }, { name: 'https', number: 443 }] });
  const b = sample();
  compiled.applyDefaults(b);
  const limitsA = (a['spec'] as { limits: Record<string, unknown> }).limits;
  limitsA['cpu'] = 99;
  assert.deepEqual((b['spec'] as { limits: unknown }).limits, { cpu: 1, memory: '1Gi' }, 'defaults are not shared between objects');
});

test('applyDefaults drops nulls unless the field is nullable, and defaults null fields that have a default', () => {
  const obj = sample();
  obj['spec'] = { size: 2, note: null, owner: null, mode: null };
  compileSchema(widget).applyDefaults(obj);
  assert.deepEqual(obj['spec'], { size: 2, owner: null, mode: 'Always', limits: { cpu: 1, memory: '1Gi' } });
});

test('validate accepts a valid object', () => {
  const obj = sample();
  obj['spec'] = {
    size: 10,
    mode: 'Halted',
    port: 'http',
    owner: null,
    when: '2024-05-01T10:00:00Z',
    blob: 'aGVsbG8=',
    speed: 12,
    color: 'anything: unknown formats are not checked',
    tags: ['a', 'b'],
    ports: [{ name: 'a', number: 1 }, { name: 'b', number: 1 }],
    labels: { x: 'y' },
  };
  assert.deepEqual(compileSchema(widget).validate(obj), []);
});

test('validate reports type errors as Kubernetes words them', () => {
  const obj = sample();
  obj['spec'] = { size: 'three', note: 5, labels: { x: true }, tags: 'a' };
  assert.deepEqual(compileSchema(widget).validate(obj), [
    { field: 'spec.size', reason: 'FieldValueTypeInvalid', message: 'Invalid value: "string": spec.size in body must be of type integer: "string"' },
    { field: 'spec.note', reason: 'FieldValueTypeInvalid', message: 'Invalid value: "integer": spec.note in body must be of type string: "integer"' },
    { field: 'spec.tags', reason: 'FieldValueTypeInvalid', message: 'Invalid value: "string": spec.tags in body must be of type array: "string"' },
    { field: 'spec.labels.x', reason: 'FieldValueTypeInvalid', message: 'Invalid value: "boolean": spec.labels.x in body must be of type string: "boolean"' },
  ]);
});

test('validate reports missing required fields and unsupported enum values', () => {
  const obj = sample();
  obj['spec'] = { mode: 'Foo' };
  assert.deepEqual(compileSchema(widget).validate(obj), [
    { field: 'spec.size', reason: 'FieldValueRequired', message: 'Required value' },
    { field: 'spec.mode', reason: 'FieldValueNotSupported', message: 'Unsupported value: "Foo": supported values: "Always", "Halted"' },
  ]);
});

test('validate: nullable fields accept null, others do not', () => {
  const compiled = compileSchema(widget);
  const ok = sample();
  ok['spec'] = { size: 1, owner: null };
  assert.deepEqual(compiled.validate(ok), []);
  const bad = sample();
  bad['spec'] = { size: 1, note: null };
  assert.deepEqual(compiled.validate(bad), [
    { field: 'spec.note', reason: 'FieldValueTypeInvalid', message: 'Invalid value: "null": spec.note in body must be of type string: "null"' },
  ]);
});

test('validate: x-kubernetes-int-or-string takes integers and strings only', () => {
  const compiled = compileSchema(widget);
  for (const port of [8080, 'http']) {
    const obj = sample();
    obj['spec'] = { size: 1, port };
    assert.deepEqual(compiled.validate(obj), [], `port ${String(port)}`);
  }
  for (const [port, type] of [[1.5, 'number'], [true, 'boolean'], [{}, 'object']] as const) {
    const obj = sample();
    obj['spec'] = { size: 1, port };
    assert.deepEqual(compiled.validate(obj), [
      { field: 'spec.port', reason: 'FieldValueTypeInvalid', message: `Invalid value: "${type}": spec.port in body must be of type integer,string: "${type}"` },
    ]);
  }
});

test('validate: int-or-string spelled as anyOf (as controller-gen writes it) reports one error', () => {
  const schema: JSONSchemaProps = {
    type: 'object',
    properties: { spec: { type: 'object', properties: { q: { 'x-kubernetes-int-or-string': true, anyOf: [int, str], pattern: '^[0-9]+[KMG]?$' } } } },
  };
  const compiled = compileSchema(schema);
  assert.deepEqual(compiled.validate({ spec: { q: 4 } }), []);
  assert.deepEqual(compiled.validate({ spec: { q: '4G' } }), []);
  assert.deepEqual(compiled.validate({ spec: { q: false } }).map((e) => e.field), ['spec.q']);
  assert.deepEqual(compiled.validate({ spec: { q: 'lots' } }), [
    { field: 'spec.q', reason: 'FieldValueInvalid', message: `Invalid value: "lots": spec.q in body should match '^[0-9]+[KMG]?$'` },
  ]);
});

test('validate checks the formats Kubernetes checks and ignores the others', () => {
  const obj = sample();
  obj['spec'] = { size: 1, when: 'yesterday', blob: 'not base64!', speed: 1, color: '#nope' };
  assert.deepEqual(compileSchema(widget).validate(obj), [
    { field: 'spec.when', reason: 'FieldValueTypeInvalid', message: 'Invalid value: "yesterday": spec.when in body must be of type date-time: "yesterday"' },
    { field: 'spec.blob', reason: 'FieldValueTypeInvalid', message: 'Invalid value: "not base64!": spec.blob in body must be of type byte: "not base64!"' },
  ]);
});

test('validate reports bounds and lengths', () => {
  const schema: JSONSchemaProps = {
    type: 'object',
    properties: {
      spec: {
        type: 'object',
        properties: {
          n: { type: 'integer', minimum: 1, maximum: 5, exclusiveMaximum: true },
          s: { type: 'string', minLength: 2, maxLength: 3 },
          l: { type: 'array', items: int, maxItems: 1 },
        },
      },
    },
  };
  const compiled = compileSchema(schema);
  assert.deepEqual(compiled.validate({ spec: { n: 5, s: 'toolong', l: [1, 2] } }), [
    { field: 'spec.n', reason: 'FieldValueInvalid', message: 'Invalid value: 5: spec.n in body should be less than 5' },
    { field: 'spec.s', reason: 'FieldValueTooLong', message: 'Too long: may not be more than 3 bytes' },
    { field: 'spec.l', reason: 'FieldValueTooMany', message: 'Too many: 2: must have at most 1 item' },
  ]);
  assert.deepEqual(compiled.validate({ spec: { n: 0, s: 'a' } }), [
    { field: 'spec.n', reason: 'FieldValueInvalid', message: 'Invalid value: 0: spec.n in body should be greater than or equal to 1' },
    { field: 'spec.s', reason: 'FieldValueInvalid', message: 'Invalid value: "a": spec.s in body should be at least 2 chars long' },
  ]);
});

test('validate checks metadata as ObjectMeta plus the schema\'s name constraint', () => {
  const obj = sample();
  obj['metadata'] = { name: 'much-too-long', labels: { a: 1 }, creationTimestamp: null, generation: 'one' };
  assert.deepEqual(compileSchema(widget).validate(obj), [
    { field: 'metadata.generation', reason: 'FieldValueTypeInvalid', message: 'Invalid value: "string": metadata.generation in body must be of type integer: "string"' },
    { field: 'metadata.labels.a', reason: 'FieldValueTypeInvalid', message: 'Invalid value: "integer": metadata.labels.a in body must be of type string: "integer"' },
    { field: 'metadata.name', reason: 'FieldValueTooLong', message: 'Too long: may not be more than 8 bytes' },
  ]);
});

test('validate reports duplicates in set and map lists', () => {
  const obj = sample();
  obj['spec'] = { size: 1, tags: ['a', 'b', 'a'], ports: [{ name: 'x', number: 1 }, { name: 'x', number: 2 }] };
  assert.deepEqual(compileSchema(widget).validate(obj), [
    { field: 'spec.tags[2]', reason: 'FieldValueDuplicate', message: 'Duplicate value: "a"' },
    { field: 'spec.ports[1]', reason: 'FieldValueDuplicate', message: 'Duplicate value: {"name":"x"}' },
  ]);
});

test('embedded resources must have string apiVersion and kind', () => {
  const obj = sample();
  obj['spec'] = { size: 1, template: { apiVersion: 1, kind: 'Pod' } };
  assert.deepEqual(compileSchema(widget).validate(obj), [
    { field: 'spec.template.apiVersion', reason: 'FieldValueTypeInvalid', message: 'Invalid value: "integer": spec.template.apiVersion in body must be of type string: "integer"' },
  ]);
});

test('a pattern JavaScript cannot compile is not checked', () => {
  const compiled = compileSchema({ type: 'object', properties: { spec: { type: 'object', properties: { s: { type: 'string', pattern: '(?i)^abc$' } } } } });
  assert.deepEqual(compiled.validate({ spec: { s: 'anything' } }), []);
});

test('compileSchema caches per schema object', () => {
  assert.equal(compileSchema(widget), compileSchema(widget));
  assert.notEqual(compileSchema(widget), compileSchema({ ...widget }));
  assert.equal(compileSchema(undefined), compileSchema(undefined));
});
