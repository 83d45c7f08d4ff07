import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError } from '../errors.js';
import { applyJsonPatch, escapeJsonPointerToken, parseJsonPointer } from './json-patch.js';

function rejects(reason: string, pattern: RegExp): (err: unknown) => boolean {
  return (err) => err instanceof ApiError && err.reason === reason && pattern.test(err.message);
}

const vm = {
  metadata: { name: 'vm1', labels: { 'kubevirt.io/vm': 'vm1' }, finalizers: ['a', 'b'] },
  spec: { runStrategy: 'Halted', template: { spec: { volumes: [{ name: 'root' }] } } },
};

test('add, remove, replace on objects and arrays', () => {
  const out = applyJsonPatch(vm, [
    { op: 'replace', path: '/spec/runStrategy', value: 'Always' },
    { op: 'add', path: '/metadata/annotations', value: { x: 'y' } },
    { op: 'add', path: '/metadata/finalizers/1', value: 'c' },
    { op: 'add', path: '/metadata/finalizers/-', value: 'd' },
    { op: 'remove', path: '/metadata/finalizers/0' },
    { op: 'add', path: '/spec/template/spec/volumes/-', value: { name: 'cloudinit' } },
    { op: 'replace', path: '/spec/template/spec/volumes/0', value: { name: 'disk0' } },
  ]);
  assert.deepEqual(out, {
    metadata: { name: 'vm1', labels: { 'kubevirt.io/vm': 'vm1' }, finalizers: ['c', 'b', 'd'], annotations: { x: 'y' } },
    spec: { runStrategy: 'Always', template: { spec: { volumes: [{ name: 'disk0' }, { name: 'cloudinit' }] } } },
  });
  assert.equal(vm.spec.runStrategy, 'Halted', 'input untouched');
  assert.deepEqual(vm.metadata.finalizers, ['a', 'b']);
});

test('RFC 6901 escaping: ~1 is / and ~0 is ~', () => {
  assert.deepEqual(parseJsonPointer('/metadata/labels/kubevirt.io~1vm'), ['metadata', 'labels', 'kubevirt.io/vm']);
  assert.deepEqual(parseJsonPointer('/a~01'), ['a~1']);
  assert.equal(escapeJsonPointerToken('a~/b'), 'a~0~1b');
  const out = applyJsonPatch(vm, [{ op: 'remove', path: '/metadata/labels/kubevirt.io~1vm' }]) as typeof vm;
  assert.deepEqual(out.metadata.labels, {});
});

test('move and copy', () => {
  const out = applyJsonPatch({ a: { x: 1 }, b: [1, 2] }, [
    { op: 'copy', from: '/a', path: '/c' },
    { op: 'move', from: '/a/x', path: '/b/0' },
    { op: 'move', from: '/c', path: '/d' },
  ]);
  assert.deepEqual(out, { a: {}, b: [1, 1, 2], d: { x: 1 } });
  assert.throws(() => applyJsonPatch({ a: { b: 1 } }, [{ op: 'move', from: '/a', path: '/a/b/c' }]), rejects('Invalid', /moved into itself/));
});

test('test operation: the KubeVirt optimistic-concurrency pattern', () => {
  const ok = applyJsonPatch(vm, [
    { op: 'test', path: '/spec/runStrategy', value: 'Halted' },
    { op: 'test', path: '/spec/template', value: { spec: { volumes: [{ name: 'root' }] } } },
    { op: 'test', path: '/spec/missing', value: null },
    { op: 'replace', path: '/spec/runStrategy', value: 'Always' },
  ]) as typeof vm;
  assert.equal(ok.spec.runStrategy, 'Always');
  assert.throws(
    () => applyJsonPatch(vm, [{ op: 'test', path: '/spec/runStrategy', value: 'Always' }]),
    (err: unknown) =>
      err instanceof ApiError &&
      err.httpCode === 422 &&
      err.reason === 'Invalid' &&
      err.message ===
        'the server rejected our request due to an error in our request: json patch test operation 0 does not apply: testing value /spec/runStrategy failed: expected "Always", found "Halted"',
  );
});

test('paths that do not exist are 422s', () => {
  assert.throws(() => applyJsonPatch(vm, [{ op: 'add', path: '/spec/a/b', value: 1 }]), rejects('Invalid', /doc is missing path: "\/spec\/a"/));
  assert.throws(() => applyJsonPatch(vm, [{ op: 'remove', path: '/spec/nope' }]), rejects('Invalid', /remove operation 0 does not apply: doc is missing path: "\/spec\/nope"/));
  assert.throws(() => applyJsonPatch(vm, [{ op: 'replace', path: '/spec/nope', value: 1 }]), rejects('Invalid', /doc is missing path/));
  assert.throws(() => applyJsonPatch(vm, [{ op: 'add', path: '/metadata/finalizers/5', value: 'x' }]), rejects('Invalid', /invalid index "5"/));
  assert.throws(() => applyJsonPatch(vm, [{ op: 'remove', path: '/metadata/finalizers/-' }]), rejects('Invalid', /invalid index "-"/));
  assert.throws(() => applyJsonPatch(vm, [{ op: 'add', path: '/metadata/finalizers/01', value: 'x' }]), rejects('Invalid', /invalid index "01"/));
  assert.throws(() => applyJsonPatch(vm, [{ op: 'copy', from: '/nope', path: '/x' }]), rejects('Invalid', /from: doc is missing path/));
  assert.throws(() => applyJsonPatch(vm, [{ op: 'add', path: '/metadata/name/x', value: 1 }]), rejects('Invalid', /neither an object nor an array/));
});

test('malformed patches are 400s', () => {
  assert.throws(() => applyJsonPatch(vm, { op: 'add' }), rejects('BadRequest', /must be a JSON array/));
  assert.throws(() => applyJsonPatch(vm, [{ op: 'add', path: '/a' }]), rejects('BadRequest', /missing its "value" field/));
  assert.throws(() => applyJsonPatch(vm, [{ op: 'frob', path: '/a' }]), rejects('BadRequest', /unknown op "frob"/));
  assert.throws(() => applyJsonPatch(vm, [{ op: 'remove' }]), rejects('BadRequest', /missing its "path" field/));
  assert.throws(() => applyJsonPatch(vm, [{ op: 'remove', path: 'spec' }]), rejects('BadRequest', /must be empty or start with '\/'/));
  assert.throws(() => applyJsonPatch(vm, [{ op: 'remove', path: '/a~2' }]), rejects('BadRequest', /'~' must be followed by 0/));
  assert.throws(() => applyJsonPatch(vm, [{ op: 'move', path: '/a' }]), rejects('BadRequest', /"from"/));
  assert.throws(() => applyJsonPatch(vm, [1]), rejects('BadRequest', /operation 0 is not an object/));
  const huge = Array.from({ length: 10001 }, () => ({ op: 'test', path: '', value: null }));
  assert.throws(() => applyJsonPatch(vm, huge), rejects('RequestEntityTooLarge', /maximum operations in a JSON patch is 10000, got 10001/));
});

test('whole-document operations', () => {
  assert.deepEqual(applyJsonPatch({ a: 1 }, [{ op: 'replace', path: '', value: { b: 2 } }]), { b: 2 });
  assert.deepEqual(applyJsonPatch({ a: 1 }, [{ op: 'add', path: '', value: [] }]), []);
  assert.throws(() => applyJsonPatch({ a: 1 }, [{ op: 'remove', path: '' }]), rejects('Invalid', /whole document/));
});
