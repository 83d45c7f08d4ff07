import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError } from '../errors.js';
import { applyMergePatch } from './merge-patch.js';

test('RFC 7386 appendix A examples', () => {
  const cases: [unknown, unknown, unknown][] = [
    [{ a: 'b' }, { a: 'c' }, { a: 'c' }],
    [{ a: 'b' }, { b: 'c' }, { a: 'b', b: 'c' }],
    [{ a: 'b' }, { a: null }, {}],
    [{ a: 'b', b: 'c' }, { a: null }, { b: 'c' }],
    [{ a: ['b'] }, { a: 'c' }, { a: 'c' }],
    [{ a: 'c' }, { a: ['b'] }, { a: ['b'] }],
    [{ a: { b: 'c' } }, { a: { b: 'd', c: null } }, { a: { b: 'd' } }],
    [{ a: [{ b: 'c' }] }, { a: [1] }, { a: [1] }],
    [{ e: null }, { a: 1 }, { e: null, a: 1 }],
    [[1, 2], { a: 'b', c: null }, { a: 'b' }],
    [{}, { a: { bb: { ccc: null } } }, { a: { bb: {} } }],
  ];
  for (const [doc, patch, want] of cases) assert.deepEqual(applyMergePatch(doc, patch), want, JSON.stringify(patch));
});

test('kubectl apply patch for a custom resource', () => {
  const vm = {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachine',
    metadata: { name: 'vm1', annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{}\n' }, labels: { a: '1', b: '2' } },
    spec: { runStrategy: 'Halted', template: { spec: { domain: { devices: {} } } } },
  };
  const patch = {
    metadata: { annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{"x":1}\n' }, labels: { b: null } },
    spec: { runStrategy: 'Always' },
  };
  const out = applyMergePatch(vm, patch);
  assert.deepEqual(out, {
    ...vm,
    metadata: { name: 'vm1', annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{"x":1}\n' }, labels: { a: '1' } },
    spec: { runStrategy: 'Always', template: vm.spec.template },
  });
  assert.equal(vm.spec.runStrategy, 'Halted', 'input untouched');
  assert.deepEqual(vm.metadata.labels, { a: '1', b: '2' });
});

test('patch values are copied, and __proto__ stays data', () => {
  const patch = JSON.parse('{"spec":{"list":[1],"__proto__":{"x":1}}}') as unknown;
  const out = applyMergePatch({}, patch) as { spec: Record<string, unknown> };
  assert.deepEqual(Object.keys(out.spec), ['list', '__proto__']);
  assert.equal(Object.getPrototypeOf(out.spec), Object.prototype);
});

test('a non-object patch is a 400', () => {
  for (const patch of [null, [], 'x', 1]) {
    assert.throws(() => applyMergePatch({}, patch), (e: unknown) => e instanceof ApiError && e.httpCode === 400);
  }
});
