import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resourceSamples } from './inventory-families.js';

const mi = 2 ** 20;

test('resource requests: a memory limit without a request is the guest\'s memory; the hugepage size is reported as KubeVirt does', () => {
  const { requests, limits } = resourceSamples({ domain: { memory: { hugepages: { pageSize: '2Mi' } }, resources: { limits: { memory: '1Gi' } } } });
  assert.deepEqual(requests, [
    ['memory', 'bytes', 'hugepages', 2 * mi],
    ['cpu', 'cores', 'default', 1], ['cpu', 'threads', 'default', 1], ['cpu', 'sockets', 'default', 1],
    ['cpu', 'cores', 'guest_effective', 1],
    ['memory', 'bytes', 'guest_effective', 1024 * mi],
  ]);
  assert.deepEqual(limits, [['memory', 'bytes', 1024 * mi]]);
});

test('resource requests: a CPU topology without counts has no default and no vCPUs; CPU requests round up to milli-CPUs', () => {
  const { requests } = resourceSamples({ domain: { cpu: { model: 'host-passthrough' }, resources: { requests: { cpu: '0.0001', memory: '100M' } } } });
  assert.deepEqual(requests, [
    ['memory', 'bytes', 'domain', 100e6],
    ['cpu', 'cores', 'requests', 0.001],
    ['cpu', 'cores', 'guest_effective', 0],
    ['memory', 'bytes', 'guest_effective', 100e6],
  ]);
});

test('resource requests: sockets alone are the vCPU count; a malformed quantity is left out, not reported as 0', () => {
  const { requests, limits } = resourceSamples({ domain: { cpu: { sockets: 4 }, memory: { guest: 'lots' }, resources: { limits: { cpu: 'x' } } } });
  assert.deepEqual(requests, [['cpu', 'sockets', 'domain', 4], ['cpu', 'cores', 'guest_effective', 4]]);
  assert.deepEqual(limits, []);
});
