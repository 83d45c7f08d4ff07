import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject } from '../../api/object.js';
import { pickNodeFor } from './node-choice.js';

const gi = 2 ** 30;
const node = (name: string, bytes: number | undefined, ready = true): KObject => ({
  apiVersion: 'v1',
  kind: 'Node',
  metadata: { name },
  status: { conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }], allocatable: bytes === undefined ? {} : { 'vireo.io/local-storage': String(bytes) } },
});
const empty = { pvs: [], pvcs: [], isLocalClass: () => true };

test('an Immediate claim goes to the ready node with the most room that fits it', () => {
  assert.deepEqual(pickNodeFor(gi, [node('a', 2 * gi), node('b', 4 * gi), node('c', 8 * gi, false)], empty), { node: 'b' });
  const none = pickNodeFor(10 * gi, [node('a', 2 * gi), node('b', undefined), node('c', 80 * gi, false)], empty);
  assert.deepEqual(none, { reason: 'a has 2Gi free; b reports no local storage; c is not ready or is cordoned' });
});
