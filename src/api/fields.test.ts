import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError } from './errors.js';
import { defaultFieldValue, escapeFieldValue, parseFieldSelector } from './fields.js';
import type { KObject } from './object.js';

const pod: KObject = {
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'virt-launcher-vm1-abcde', namespace: 'default' },
  spec: { nodeName: 'node1', priority: 0, hostNetwork: false },
  status: { phase: 'Running', conditions: [] },
};

const event: KObject = {
  apiVersion: 'v1',
  kind: 'Event',
  metadata: { name: 'vm1.17a', namespace: 'default' },
  involvedObject: { kind: 'VirtualMachine', name: 'vm1', namespace: 'default', uid: 'u-1' },
  type: 'Normal',
  reason: 'a=b,c',
};

function badRequest(pattern: RegExp): (err: unknown) => boolean {
  return (err) => err instanceof ApiError && err.httpCode === 400 && pattern.test(err.message);
}

test('equality, inequality and AND', () => {
  assert.equal(parseFieldSelector('metadata.name=virt-launcher-vm1-abcde').matches(pod), true);
  assert.equal(parseFieldSelector('metadata.name==other').matches(pod), false);
  assert.equal(parseFieldSelector('metadata.namespace=default,status.phase!=Pending').matches(pod), true);
  assert.equal(parseFieldSelector('metadata.namespace=default,status.phase!=Running').matches(pod), false);
  assert.equal(parseFieldSelector('spec.nodeName=node1').matches(pod), true);
});

test('kubectl describe event selector', () => {
  const s = parseFieldSelector('involvedObject.name=vm1,involvedObject.namespace=default,involvedObject.kind=VirtualMachine,involvedObject.uid=u-1');
  assert.equal(s.matches(event), true);
  assert.equal(parseFieldSelector('type=Warning').matches(event), false);
});

test('unset fields read as empty strings; numbers and booleans as JSON text', () => {
  assert.equal(defaultFieldValue(pod, 'spec.schedulerName'), '');
  assert.equal(defaultFieldValue(pod, 'missing.deeper.path'), '');
  assert.equal(defaultFieldValue(pod, 'spec.priority'), '0');
  assert.equal(defaultFieldValue(pod, 'spec.hostNetwork'), 'false');
  assert.equal(parseFieldSelector('spec.schedulerName=').matches(pod), true);
  assert.equal(parseFieldSelector('spec.schedulerName!=').matches(pod), false);
});

test('objects, lists and malformed paths have no selectable value, and matching never throws', () => {
  assert.equal(defaultFieldValue(pod, 'status.conditions'), undefined);
  assert.equal(defaultFieldValue(pod, 'spec'), undefined);
  assert.equal(defaultFieldValue(pod, 'metadata..name'), undefined);
  assert.equal(defaultFieldValue(pod, 'status.phase.x'), undefined);
  assert.equal(parseFieldSelector('status.conditions=x').matches(pod), false);
  assert.equal(parseFieldSelector('status.conditions!=x').matches(pod), true);
  assert.equal(parseFieldSelector('spec=').matches(pod), false);
});

test('supported-field predicate rejects at parse time', () => {
  const supported = (f: string): boolean => f === 'metadata.name' || f === 'metadata.namespace';
  assert.doesNotThrow(() => parseFieldSelector('metadata.name=a', { supported }));
  assert.throws(() => parseFieldSelector('spec.foo=a', { supported }), badRequest(/^field label not supported: spec\.foo$/));
});

test('escaped commas and equals signs in values', () => {
  const s = parseFieldSelector('reason=a\\=b\\,c');
  assert.equal(s.requirements[0]?.value, 'a=b,c');
  assert.equal(s.matches(event), true);
  assert.equal(escapeFieldValue('a=b,c\\'), 'a\\=b\\,c\\\\');
  assert.equal(s.toString(), 'reason=a\\=b\\,c');
});

test('bad syntax is a 400 that explains the expected form', () => {
  assert.throws(() => parseFieldSelector('metadata.name'), badRequest(/can't understand 'metadata\.name': each term must be field=value/));
  assert.throws(() => parseFieldSelector('reason=a,b'), badRequest(/can't understand 'b'/));
  assert.throws(() => parseFieldSelector('reason=a=b'), badRequest(/unescaped character in value: '='/));
  assert.throws(() => parseFieldSelector('reason=a\\x'), badRequest(/invalid escape sequence: \\x/));
  assert.throws(() => parseFieldSelector('reason=a\\'), badRequest(/invalid escape sequence/));
});

test('empty selector and empty terms', () => {
  assert.equal(parseFieldSelector('').matchesEverything, true);
  assert.equal(parseFieldSelector('').matches(pod), true);
  assert.equal(parseFieldSelector(',metadata.name=virt-launcher-vm1-abcde,').requirements.length, 1);
});

test('exactValue finds the object a selector pins down', () => {
  const s = parseFieldSelector('metadata.namespace=default,metadata.name==vm1,status.phase!=x');
  assert.equal(s.exactValue('metadata.name'), 'vm1');
  assert.equal(s.exactValue('status.phase'), undefined);
});

test('a custom value function', () => {
  const valueOf = (o: KObject, f: string): string | undefined => (f === 'spec.nodeName' ? 'x' : defaultFieldValue(o, f));
  assert.equal(parseFieldSelector('spec.nodeName=x').matches(pod, valueOf), true);
});
