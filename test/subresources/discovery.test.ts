/**
 * Discovery of `subresources.kubevirt.io/v1`: listed in `/apis` (legacy and
 * aggregated), its APIGroup and APIResourceList served, and kubectl's
 * discovery takes it without complaint.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { kubectl, kubectlBinary } from '../../src/testing/kubectl.js';
import { startTestServer } from '../../src/testing/server.js';
import type { TestServer } from '../../src/testing/server.js';

let server: TestServer;
before(async () => { server = await startTestServer(); });
after(async () => { await server.stop(); });

interface ResourceList {
  kind: string;
  groupVersion: string;
  resources: { name: string; namespaced: boolean; verbs: string[] }[];
}

test('/apis lists subresources.kubevirt.io with version v1', async () => {
  const res = await server.fetch('GET', '/apis');
  const groups = (res.json() as { groups: { name: string; preferredVersion: { groupVersion: string } }[] }).groups;
  const group = groups.find((g) => g.name === 'subresources.kubevirt.io');
  assert.equal(group?.preferredVersion.groupVersion, 'subresources.kubevirt.io/v1');
  const single = await server.fetch('GET', '/apis/subresources.kubevirt.io');
  assert.equal(single.status, 200);
  assert.equal((single.json() as { kind: string }).kind, 'APIGroup');
});

test('/apis/subresources.kubevirt.io/v1 lists the VM and VMI subresources, namespaced, with KubeVirt\'s verbs', async () => {
  const res = await server.fetch('GET', '/apis/subresources.kubevirt.io/v1');
  assert.equal(res.status, 200);
  const list = res.json() as ResourceList;
  assert.equal(list.kind, 'APIResourceList');
  assert.equal(list.groupVersion, 'subresources.kubevirt.io/v1');
  const verbs = Object.fromEntries(list.resources.map((r) => [r.name, r.verbs.join(',')]));
  for (const name of ['start', 'stop', 'restart', 'migrate']) assert.equal(verbs[`virtualmachines/${name}`], 'update', name);
  for (const name of ['pause', 'unpause', 'softreboot', 'reset', 'freeze', 'unfreeze']) assert.equal(verbs[`virtualmachineinstances/${name}`], 'update', name);
  for (const name of ['console', 'vnc', 'consolelog']) assert.equal(verbs[`virtualmachineinstances/${name}`], 'get', name);
  assert.ok(list.resources.every((r) => r.namespaced));
  assert.equal((await server.fetch('GET', '/apis/subresources.kubevirt.io/v2')).status, 404);
});

test('aggregated discovery lists the group with an empty resource list', async () => {
  const res = await server.fetch('GET', '/apis', { headers: { accept: 'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList' } });
  const items = (res.json() as { items: { metadata: { name: string }; versions: { version: string; resources: unknown[] }[] }[] }).items;
  const group = items.find((i) => i.metadata.name === 'subresources.kubevirt.io');
  assert.deepEqual(group?.versions.map((v) => [v.version, v.resources.length]), [['v1', 0]]);
});

test('kubectl discovery accepts the group and still resolves vm to kubevirt.io', { skip: kubectlBinary() === undefined ? 'kubectl is not installed' : false }, async () => {
  const resources = await kubectl(['api-resources', '--api-group=subresources.kubevirt.io'], { kubeconfig: server.kubeconfig });
  assert.equal(resources.code, 0, resources.stderr);
  assert.equal(resources.stderr, '');
  const versions = await kubectl(['api-versions'], { kubeconfig: server.kubeconfig });
  assert.match(versions.stdout, /^subresources\.kubevirt\.io\/v1$/m);
  const raw = await kubectl(['get', '--raw', '/apis/subresources.kubevirt.io/v1'], { kubeconfig: server.kubeconfig });
  assert.match(raw.stdout, /virtualmachines\/start/);
  const vms = await kubectl(['get', 'vm'], { kubeconfig: server.kubeconfig });
  assert.equal(vms.code, 0, vms.stderr);
});
