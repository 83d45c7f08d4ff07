import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject } from '../api/object.js';
import { filterNode, matchesNodeAffinity, nodeTaints, tolerates, unschedulableMessage } from './filters.js';
import { vmiRequests } from './resources.js';

const node = (labels: Record<string, string>, extra: Record<string, unknown> = {}): KObject => ({
  apiVersion: 'v1',
  kind: 'Node',
  metadata: { name: 'n', labels },
  status: { conditions: [{ type: 'Ready', status: 'True' }] },
  ...extra,
});
const vmi = (spec: Record<string, unknown>): KObject => ({ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', metadata: { name: 'v' }, spec });
const room = { cpu: 1000, memory: 2 ** 30 };

test('tolerations match taints by key, value, operator and effect', () => {
  const taint = { key: 'gpu', value: 'yes', effect: 'NoSchedule' };
  assert.equal(tolerates([{ key: 'gpu', value: 'yes' }], taint), true);
  assert.equal(tolerates([{ key: 'gpu', value: 'no' }], taint), false);
  assert.equal(tolerates([{ key: 'gpu', operator: 'Exists', effect: 'NoSchedule' }], taint), true);
  assert.equal(tolerates([{ key: 'gpu', operator: 'Exists', effect: 'NoExecute' }], taint), false);
  assert.equal(tolerates([{ operator: 'Exists' }], taint), true);
  assert.equal(tolerates([{ value: 'yes' }], taint), false);
});

test('a node that is not Ready carries the not-ready taint; one not heard from, unreachable', () => {
  assert.deepEqual(nodeTaints(node({}, { status: { conditions: [{ type: 'Ready', status: 'False' }] } })), [{ key: 'node.kubernetes.io/not-ready', value: '', effect: 'NoSchedule' }]);
  assert.deepEqual(nodeTaints(node({}, { status: { conditions: [{ type: 'Ready', status: 'Unknown' }] } })), [{ key: 'node.kubernetes.io/unreachable', value: '', effect: 'NoSchedule' }]);
  assert.deepEqual(nodeTaints(node({})), []);
});

test('required node affinity: terms are ORed, expressions ANDed, Gt/Lt compare integers', () => {
  const affinity = (...terms: unknown[]): KObject => vmi({ affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: terms } } } });
  const n = node({ zone: 'a', cores: '16' });
  assert.equal(matchesNodeAffinity(affinity({ matchExpressions: [{ key: 'zone', operator: 'In', values: ['b'] }] }, { matchExpressions: [{ key: 'cores', operator: 'Gt', values: ['8'] }] }), n), true);
  assert.equal(matchesNodeAffinity(affinity({ matchExpressions: [{ key: 'zone', operator: 'In', values: ['a'] }, { key: 'cores', operator: 'Lt', values: ['8'] }] }), n), false);
  assert.equal(matchesNodeAffinity(affinity({ matchExpressions: [{ key: 'gpu', operator: 'DoesNotExist' }] }), n), true);
  assert.equal(matchesNodeAffinity(affinity({ matchFields: [{ key: 'metadata.name', operator: 'In', values: ['n'] }] }), n), true);
  assert.equal(matchesNodeAffinity(affinity({}), n), false, 'an empty term matches nothing');
});

test('filters run in kube-scheduler order and the message is its histogram', () => {
  const cordoned = node({}, { spec: { unschedulable: true, taints: [{ key: 'k', effect: 'NoSchedule' }] } });
  assert.deepEqual(filterNode(vmi({}), cordoned, room, { cpu: 1, memory: 1 }), ["node(s) were unschedulable"]);
  assert.deepEqual(filterNode(vmi({}), node({}), { cpu: 0, memory: 0 }, { cpu: 1, memory: 1 }), ['Insufficient cpu', 'Insufficient memory']);
  assert.equal(unschedulableMessage(3, [['Insufficient memory'], ["node(s) didn't match Pod's node affinity/selector"], ['Insufficient memory']]), "0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 2 Insufficient memory.");
  assert.equal(unschedulableMessage(0, []), 'no nodes available to schedule pods');
});

test('a VMI asks its CPU request, else vCPUs over the allocation ratio, and its memory plus overhead', () => {
  const options = { cpuAllocationRatio: 10, memoryOverheadBytes: 1000 };
  assert.deepEqual(vmiRequests(vmi({ domain: { cpu: { sockets: 2, cores: 2 }, memory: { guest: '1Ki' } } }), options), { cpu: 400, memory: 2024 });
  assert.deepEqual(vmiRequests(vmi({ domain: { cpu: { cores: 2, dedicatedCpuPlacement: true }, resources: { requests: { memory: '1k' } } } }), options), { cpu: 2000, memory: 2000 });
  assert.deepEqual(vmiRequests(vmi({ domain: { resources: { requests: { cpu: '250m' } } } }), options), { cpu: 250, memory: 1000 });
});
