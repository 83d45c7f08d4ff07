import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Exposition, parseSamples } from './exposition.js';
import { GuestPanics, panicLabels } from './guest-panics.js';

test('a panic without info is of type and code unknown; Hyper-V crash info gives its type and bugcheck code in hex', () => {
  assert.deepEqual(panicLabels(undefined), { type: 'unknown', bugcheck_code: 'unknown' });
  assert.deepEqual(panicLabels({ type: 'hyper-v', arg1: 0x7e, arg2: 1 }), { type: 'hyper-v', bugcheck_code: '0x7e' });
  assert.deepEqual(panicLabels({ type: 's390', core: 0 }), { type: 's390', bugcheck_code: 'unknown' });
});

test('panics are counted per VMI, type and code', () => {
  const panics = new GuestPanics('node-a');
  const empty = new Exposition();
  panics.write(empty);
  assert.equal(empty.text(), '', 'no family before the first panic');
  panics.record('ns', 'vm', undefined);
  panics.record('ns', 'vm', undefined);
  panics.record('ns', 'other', { type: 'hyper-v', arg1: 0x7e });
  const out = new Exposition();
  panics.write(out);
  assert.deepEqual(parseSamples(out.text()), [
    { name: 'kubevirt_vmi_guest_os_panic_total', labels: { node: 'node-a', namespace: 'ns', name: 'vm', type: 'unknown', bugcheck_code: 'unknown' }, value: 2 },
    { name: 'kubevirt_vmi_guest_os_panic_total', labels: { node: 'node-a', namespace: 'ns', name: 'other', type: 'hyper-v', bugcheck_code: '0x7e' }, value: 1 },
  ]);
});
