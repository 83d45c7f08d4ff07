import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError } from './errors.js';
import { compileJsonPath, formatJsonPathValue, goJson } from './jsonpath.js';

const vmi = {
  apiVersion: 'kubevirt.io/v1',
  kind: 'VirtualMachineInstance',
  metadata: { name: 'vm1', labels: { 'kubevirt.io/domain': 'vm1', app: 'web' }, creationTimestamp: '2024-01-01T00:00:00Z' },
  spec: { domain: { cpu: { cores: 2 }, devices: { disks: [{ name: 'root' }, { name: 'cloudinit' }] } } },
  status: {
    phase: 'Running',
    nodeName: 'node1',
    interfaces: [{ ipAddress: '10.0.0.5', name: 'default' }, { ipAddress: '10.0.1.5', name: 'secondary' }],
    conditions: [
      { type: 'LiveMigratable', status: 'False', reason: 'DisksNotLiveMigratable' },
      { type: 'Ready', status: 'True', lastProbeTime: null },
    ],
    guestOSInfo: {},
    count: 3,
  },
};

function run(expr: string, data: unknown = vmi): unknown[] {
  return compileJsonPath(expr)(data);
}

test('dotted fields, with or without braces and $', () => {
  assert.deepEqual(run('.status.phase'), ['Running']);
  assert.deepEqual(run('{.status.phase}'), ['Running']);
  assert.deepEqual(run('$.status.nodeName'), ['node1']);
  assert.deepEqual(run('.spec.domain.cpu.cores'), [2]);
  assert.deepEqual(run('.status.guestOSInfo'), [{}]);
  assert.deepEqual(run('{.}'), [vmi]);
});

test('missing keys give no results', () => {
  assert.deepEqual(run('.status.missing'), []);
  assert.deepEqual(run('.status.missing.deeper'), []);
  assert.deepEqual(run('.status.phase.deeper'), []);
  assert.deepEqual(run('.status.conditions[1].lastProbeTime'), [null]);
});

test("KubeVirt's Ready column filter", () => {
  assert.deepEqual(run(".status.conditions[?(@.type=='Ready')].status"), ['True']);
  assert.deepEqual(run('.status.conditions[?(@.type=="Ready")].status'), ['True']);
  assert.deepEqual(run(".status.conditions[?(@.type == 'Missing')].status"), []);
  assert.deepEqual(run(".status.conditions[?(@.type!='Ready')].type"), ['LiveMigratable']);
  assert.deepEqual(run('.status.conditions[?(@.reason)].type'), ['LiveMigratable']);
  assert.deepEqual(run('.status[?(@.x)]'), []);
});

test('numeric filters and cross-type comparisons', () => {
  const data = { items: [{ n: 1 }, { n: 5 }, { n: 'x' }, { n: 10 }] };
  assert.deepEqual(run('.items[?(@.n>2)].n', data), [5, 10]);
  assert.deepEqual(run('.items[?(@.n<=5)].n', data), [1, 5]);
  assert.deepEqual(run('.items[?(@.n==5)].n', data), [5]);
  assert.deepEqual(run('.items[?(@.n>=1.5)].n', data), [5, 10]);
  assert.deepEqual(run('.items[?(@.n==true)].n', { items: [{ n: true }, { n: false }] }), [true]);
});

test('indexes, slices, wildcards and unions', () => {
  assert.deepEqual(run('.status.interfaces[0].ipAddress'), ['10.0.0.5']);
  assert.deepEqual(run('.status.interfaces[-1].name'), ['secondary']);
  assert.deepEqual(run('.status.interfaces[5].name'), []);
  assert.deepEqual(run('.status.interfaces[*].ipAddress'), ['10.0.0.5', '10.0.1.5']);
  assert.deepEqual(run('.status.interfaces[0:1].name'), ['default']);
  assert.deepEqual(run('.status.interfaces[:].name'), ['default', 'secondary']);
  assert.deepEqual(run('.spec.domain.devices.disks[0,1].name'), ['root', 'cloudinit']);
  assert.deepEqual(run(".metadata['name','kind']"), ['vm1']);
  assert.deepEqual(run('.metadata.labels.*'), ['vm1', 'web']);
  assert.deepEqual(run('.metadata.labels[*]'), ['vm1', 'web']);
  assert.deepEqual(run('.items[0:4:2]', { items: [0, 1, 2, 3] }), [0, 2]);
});

test('keys with dots and slashes', () => {
  assert.deepEqual(run(".metadata.labels['kubevirt.io/domain']"), ['vm1']);
  assert.deepEqual(run('.metadata.labels.kubevirt\\.io/domain'), ['vm1']);
});

test('recursive descent', () => {
  assert.deepEqual(run('..ipAddress'), ['10.0.0.5', '10.0.1.5']);
  assert.deepEqual(run('.spec..name'), ['root', 'cloudinit']);
});

test('malformed expressions are 400s with the position', () => {
  const bad = (expr: string, pattern: RegExp): void => {
    assert.throws(
      () => compileJsonPath(expr),
      (err: unknown) => err instanceof ApiError && err.reason === 'BadRequest' && pattern.test(err.message),
      expr,
    );
  };
  bad('.status.conditions[?(@.type==Ready)]', /cannot compare with 'Ready'/);
  bad('.status.conditions[?(@.type==\'Ready\')', /unterminated filter at position 18/);
  bad('.items[0', /unterminated array index/);
  bad('.items[a]', /invalid array index 'a'/);
  bad('.a{.b}', /braces/);
  bad('{.a}{.b}', /single \{…\} action/);
  bad('{range .items[*]}{.name}{end}', /single \{…\} action/);
  bad('.a....b', /invalid multiple recursive descent/);
  bad('status', /unexpected character 's'/);
  bad('.a#b[0]x', /unexpected character 'x'/);
});

test('printing results as the JSONPath printer does', () => {
  assert.equal(formatJsonPathValue('Running'), 'Running');
  assert.equal(formatJsonPathValue(2), '2');
  assert.equal(formatJsonPathValue(0.5), '0.5');
  assert.equal(formatJsonPathValue(0.00001), '1e-05');
  assert.equal(formatJsonPathValue(true), 'true');
  assert.equal(formatJsonPathValue(null), '<no value>');
  assert.equal(formatJsonPathValue({ b: 1, a: ['<x>'] }), '{"a":["\\u003cx\\u003e"],"b":1}');
  assert.equal(goJson([{ z: 1, y: { d: 2, c: 3 } }]), '[{"y":{"c":3,"d":2},"z":1}]');
});
