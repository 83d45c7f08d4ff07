import { test } from 'node:test';
import assert from 'node:assert/strict';
import { agentRequestMethod, agentRequestPath, parseAgentRequest, parseUnfreezeTimeout } from './endpoint-api.js';
import type { AgentOperation } from './endpoint-api.js';

const operations: AgentOperation[] = [
  { kind: 'action', action: 'pause' },
  { kind: 'action', action: 'unpause' },
  { kind: 'action', action: 'softreboot' },
  { kind: 'action', action: 'reset' },
  { kind: 'action', action: 'freeze' },
  { kind: 'action', action: 'unfreeze' },
  { kind: 'stream', stream: 'console' },
  { kind: 'stream', stream: 'vnc' },
  { kind: 'portforward', port: 22 },
  { kind: 'portforward', port: 65535 },
  { kind: 'log' },
  { kind: 'upload', async: false },
  { kind: 'upload', async: true },
];

test('every operation survives a round trip through its path', () => {
  for (const operation of operations) {
    const path = agentRequestPath('default', 'vm-1.a', operation);
    assert.deepEqual(parseAgentRequest(path), { namespace: 'default', name: 'vm-1.a', operation }, path);
  }
});

test('a freeze carries its unfreeze timeout in the query', () => {
  const path = agentRequestPath('ns', 'vm', { kind: 'action', action: 'freeze', unfreezeTimeoutSeconds: 90 });
  const url = new URL(path, 'https://agent.invalid');
  assert.equal(url.pathname, '/v1/namespaces/ns/virtualmachineinstances/vm/freeze');
  assert.deepEqual(parseAgentRequest(url.pathname)?.operation, { kind: 'action', action: 'freeze' });
  assert.equal(parseUnfreezeTimeout(url.searchParams), 90);
  assert.equal(parseUnfreezeTimeout(new URLSearchParams('')), undefined);
  assert.throws(() => parseUnfreezeTimeout(new URLSearchParams('unfreezeTimeoutSeconds=-1')), /whole number of seconds/);
});

test('actions are PUT, streams and the log GET', () => {
  assert.equal(agentRequestMethod({ kind: 'action', action: 'reset' }), 'PUT');
  assert.equal(agentRequestMethod({ kind: 'stream', stream: 'vnc' }), 'GET');
  assert.equal(agentRequestMethod({ kind: 'log' }), 'GET');
  assert.equal(agentRequestMethod({ kind: 'upload', async: true }), 'POST');
});

test('uploads address a PVC, guest operations a VMI', () => {
  assert.equal(agentRequestPath('ns', 'disk', { kind: 'upload', async: true }), '/v1/namespaces/ns/persistentvolumeclaims/disk/upload-async');
  assert.equal(parseAgentRequest('/v1/namespaces/ns/persistentvolumeclaims/disk/pause'), undefined);
  assert.equal(parseAgentRequest('/v1/namespaces/ns/virtualmachineinstances/vm/upload'), undefined);
});

test('paths the endpoint does not serve parse to nothing', () => {
  for (const path of [
    '/',
    '/v1/namespaces/default/virtualmachineinstances/vm',
    '/v1/namespaces/default/virtualmachineinstances/vm/stop',
    '/v1/namespaces/default/virtualmachineinstances/vm/pause/extra',
    '/v1/namespaces/default/virtualmachineinstances/vm/portforward',
    '/v1/namespaces/default/virtualmachineinstances/vm/portforward/0',
    '/v1/namespaces/default/virtualmachineinstances/vm/portforward/65536',
    '/v1/namespaces/default/virtualmachineinstances/vm/portforward/22/tcp',
    '/v1/namespaces/default/virtualmachineinstances/vm/portforward/x',
    '/v1/namespaces/default/persistentvolumeclaims/vm/portforward/22',
    '/v1/namespaces/default/virtualmachines/vm/pause',
    '/v2/namespaces/default/virtualmachineinstances/vm/pause',
    '/v1/namespaces/Default/virtualmachineinstances/vm/pause',
    '/v1/namespaces/default/virtualmachineinstances/..%2Fx/pause',
    'v1/namespaces/default/virtualmachineinstances/vm/pause',
  ]) {
    assert.equal(parseAgentRequest(path), undefined, path);
  }
});
