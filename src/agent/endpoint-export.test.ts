import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { rangeOf } from './endpoint-export.js';
import { agentRequestPath, parseAgentRequest } from './endpoint-api.js';

const exported = { path: '/x', bytes: 1000, etag: '"a-3e8-1"' };
const request = (headers: Record<string, string>): IncomingMessage => ({ headers }) as unknown as IncomingMessage;

test('an export resumes at a byte range only while If-Range names the same file', () => {
  assert.equal(rangeOf(request({}), exported), undefined, 'no Range: the whole file');
  assert.deepEqual(rangeOf(request({ range: 'bytes=400-' }), exported), { start: 400 });
  assert.deepEqual(rangeOf(request({ range: 'bytes=400-', 'if-range': '"a-3e8-1"' }), exported), { start: 400 });
  assert.equal(rangeOf(request({ range: 'bytes=400-', 'if-range': '"another-file"' }), exported), undefined, 'a partial copy of another export starts over');
  assert.equal(rangeOf(request({ range: 'bytes=1000-' }), exported), 'unsatisfiable');
  assert.equal(rangeOf(request({ range: 'bytes=0-99' }), exported), undefined, 'only open-ended ranges, as the importer asks');
});

test('the export path round-trips, and names only claims and VolumeSnapshots', () => {
  const path = agentRequestPath('ns', 'disk', { kind: 'export', of: 'persistentvolumeclaims' });
  assert.equal(path, '/v1/namespaces/ns/persistentvolumeclaims/disk/export');
  assert.deepEqual(parseAgentRequest(path), { namespace: 'ns', name: 'disk', operation: { kind: 'export', of: 'persistentvolumeclaims' } });
  assert.deepEqual(parseAgentRequest('/v1/namespaces/ns/volumesnapshots/monday/export'), { namespace: 'ns', name: 'monday', operation: { kind: 'export', of: 'volumesnapshots' } });
  assert.equal(parseAgentRequest('/v1/namespaces/ns/volumesnapshots/monday/upload'), undefined);
  assert.equal(parseAgentRequest('/v1/namespaces/ns/virtualmachineinstances/vm/export'), undefined);
});
