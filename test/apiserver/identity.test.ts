/**
 * Who a request is from: users carry the kubeconfig's token, Vireo's own
 * components another one, and only components may write what KubeVirt
 * keeps for its components (the VMI's reserved `kubevirt.io/` labels).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer } from '../../src/testing/server.js';
import type { TestServer } from '../../src/testing/server.js';

let server: TestServer;
before(async () => {
  server = await startTestServer();
});
after(async () => {
  await server.stop();
});

const vmis = '/apis/kubevirt.io/v1/namespaces/default/virtualmachineinstances';
const vmi = {
  apiVersion: 'kubevirt.io/v1',
  kind: 'VirtualMachineInstance',
  metadata: { name: 'labelled' },
  spec: { domain: { devices: {}, memory: { guest: '64Mi' } } },
};
const label = (node: string): string => JSON.stringify({ metadata: { labels: { 'kubevirt.io/nodeName': node } } });
const merge = { 'content-type': 'application/merge-patch+json' };

test('a user may not set the kubevirt.io/nodeName label; a component may', async () => {
  assert.equal((await server.fetch('POST', vmis, { body: JSON.stringify(vmi) })).status, 201);
  const byUser = await server.fetch('PATCH', `${vmis}/labelled`, { body: label('node-a'), headers: merge });
  assert.equal(byUser.status, 422);
  assert.match(byUser.body, /reserved kubevirt\.io\/ labels on a VMI object is prohibited: kubevirt\.io\/nodeName/);
  const byComponent = await server.fetch('PATCH', `${vmis}/labelled`, { body: label('node-a'), headers: merge, token: server.componentToken });
  assert.equal(byComponent.status, 200, byComponent.body);
  assert.equal((byComponent.json() as { metadata: { labels: Record<string, string> } }).metadata.labels['kubevirt.io/nodeName'], 'node-a');
  const moved = await server.fetch('PATCH', `${vmis}/labelled`, { body: label('node-b'), headers: merge });
  assert.equal(moved.status, 422, 'a user cannot move it either');
});

test('a token that is neither the users\' nor the components\' is refused', async () => {
  const res = await server.fetch('GET', vmis, { token: `${server.componentToken}x` });
  assert.equal(res.status, 401);
  assert.equal((await server.fetch('GET', vmis, { token: server.componentToken })).status, 200);
  assert.equal((await server.fetch('GET', vmis)).status, 200);
});
