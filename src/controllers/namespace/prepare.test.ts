import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject } from '../../api/object.js';
import { prepareNamespace } from './prepare.js';

function namespace(extra: Partial<KObject> = {}): KObject {
  return { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'ns' }, ...extra };
}

test('a created namespace gets the kubernetes finalizer and phase Active', () => {
  const ns = namespace();
  prepareNamespace(ns, false);
  assert.deepEqual(ns.spec, { finalizers: ['kubernetes'] });
  assert.deepEqual(ns.status, { phase: 'Active' });
});

test('finalizers a client set are kept, and kubernetes is not added twice', () => {
  const ns = namespace({ spec: { finalizers: ['example.com/x'] }, status: { phase: 'Terminating' } });
  prepareNamespace(ns, false);
  prepareNamespace(ns, false);
  assert.deepEqual(ns.spec, { finalizers: ['example.com/x', 'kubernetes'] });
  assert.deepEqual(ns.status, { phase: 'Active' });
});

test('a namespace being deleted turns Terminating and keeps its conditions and finalizers', () => {
  const conditions = [{ type: 'NamespaceContentRemaining', status: 'True' }];
  const ns = namespace({ spec: { finalizers: [] }, status: { phase: 'Active', conditions } });
  prepareNamespace(ns, true);
  assert.deepEqual(ns.spec, { finalizers: [] });
  assert.deepEqual(ns.status, { phase: 'Terminating', conditions });
});

test('a malformed spec is left for validation to reject', () => {
  const ns = namespace({ spec: 'nonsense' });
  prepareNamespace(ns, false);
  assert.equal(ns.spec, 'nonsense');
});
