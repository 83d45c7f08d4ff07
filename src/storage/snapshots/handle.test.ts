import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bytesQuantity, formatSnapshotHandle, parseSnapshotHandle } from './handle.js';

test('a snapshot handle names the node and the directory, and nothing else', () => {
  const handle = formatSnapshotHandle({ node: 'node-1', id: 'snapcontent-0f9e' });
  assert.equal(handle, 'node-1/snapcontent-0f9e');
  assert.deepEqual(parseSnapshotHandle(handle), { node: 'node-1', id: 'snapcontent-0f9e' });
  for (const bad of [undefined, '', 'node-1', '/x', 'node-1/../etc', 'node-1/a/b', 'Node/x', 'n/..']) assert.equal(parseSnapshotHandle(bad), undefined, String(bad));
});

test('sizes are exact quantities', () => {
  assert.equal(bytesQuantity(10 * 2 ** 30), '10Gi');
  assert.equal(bytesQuantity(80 * 2 ** 20), '80Mi');
  assert.equal(bytesQuantity(1536), '1536');
  assert.equal(bytesQuantity(3 * 2 ** 10 + 1), '3073');
  assert.equal(bytesQuantity(0), '0');
});
