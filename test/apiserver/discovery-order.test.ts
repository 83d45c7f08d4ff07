/**
 * Discovery lists API groups in kube-apiserver's order: the built-in
 * groups by their priority (core first, then apps, …, networking.k8s.io,
 * …), then CRD and aggregated groups by name. kubectl resolves a bare
 * resource name to the first group that has it, so this order decides
 * what `kubectl get networkpolicy` means once Calico's CRDs are served.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { compareGroups } from '../../src/apiserver/group-priority.js';
import { startTestServer } from '../../src/testing/server.js';
import type { TestServer } from '../../src/testing/server.js';

let server: TestServer;
before(async () => { server = await startTestServer(); });
after(async () => { await server.stop(); });

function assertKubeOrder(names: readonly string[]): void {
  assert.deepEqual([...names].sort(compareGroups), names, 'listed in priority order');
  const at = (name: string): number => names.indexOf(name);
  for (const name of ['networking.k8s.io', 'crd.projectcalico.org', 'kubevirt.io', 'storage.k8s.io', 'subresources.kubevirt.io']) assert.ok(at(name) >= 0, `${name} is listed`);
  assert.ok(at('networking.k8s.io') < at('storage.k8s.io'), 'networking.k8s.io (17200) before storage.k8s.io (16800)');
  assert.ok(at('storage.k8s.io') < at('apiextensions.k8s.io'), 'storage.k8s.io before apiextensions.k8s.io (16700)');
  assert.ok(at('discovery.k8s.io') < at('cdi.kubevirt.io'), 'every built-in group before the CRD groups');
  assert.ok(at('networking.k8s.io') < at('crd.projectcalico.org'), 'Kubernetes NetworkPolicy before Calico\'s');
  assert.ok(at('crd.projectcalico.org') < at('kubevirt.io') && at('kubevirt.io') < at('subresources.kubevirt.io'), 'CRD and aggregated groups by name');
}

test('/apis lists the groups in kube-apiserver\'s order', async () => {
  const res = await server.fetch('GET', '/apis');
  assert.equal(res.status, 200);
  assertKubeOrder((res.json() as { groups: { name: string }[] }).groups.map((g) => g.name));
});

for (const version of ['v2', 'v2beta1']) {
  test(`aggregated discovery (${version}) lists the groups in the same order`, async () => {
    const res = await server.fetch('GET', '/apis', { headers: { accept: `application/json;g=apidiscovery.k8s.io;v=${version};as=APIGroupDiscoveryList` } });
    assert.equal(res.status, 200);
    assertKubeOrder((res.json() as { items: { metadata: { name: string } }[] }).items.map((i) => i.metadata.name));
  });
}

test('the core group comes first, unknown groups after the built-in ones, ties by name', () => {
  assert.deepEqual(['zeta.example.com', 'apps', 'networking.k8s.io', '', 'alpha.example.com', 'apiextensions.k8s.io', 'admissionregistration.k8s.io'].sort(compareGroups), ['', 'apps', 'networking.k8s.io', 'admissionregistration.k8s.io', 'apiextensions.k8s.io', 'alpha.example.com', 'zeta.example.com']);
});
