import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject } from '../api/object.js';
import { place } from './placement.js';

const node = (name: string, cpu: string): KObject => ({
  apiVersion: 'v1',
  kind: 'Node',
  metadata: { name, labels: { 'kubernetes.io/hostname': name } },
  status: { allocatable: { cpu, memory: '8Gi' }, conditions: [{ type: 'Ready', status: 'True' }] },
});
const vmi: KObject = { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', metadata: { name: 'v', namespace: 'default' }, spec: { domain: {} } };
const request = { cpu: 100, memory: 128 * 2 ** 20 };

test('a node holding a clone\'s source comes first among the nodes that fit; without it, the least allocated wins', () => {
  const nodes = [node('big', '16'), node('small', '2')];
  assert.deepEqual(place(vmi, request, nodes, new Map()), { node: 'big' });
  assert.deepEqual(place(vmi, request, nodes, new Map(), () => [], (n) => n.metadata.name === 'small'), { node: 'small' }, 'an instant clone beats more room');
  assert.deepEqual(place(vmi, request, nodes, new Map(), (n) => (n.metadata.name === 'small' ? ['no room'] : []), (n) => n.metadata.name === 'small'), { node: 'big' }, 'preferred only when it fits');
});
