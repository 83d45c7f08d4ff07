/**
 * KubeVirt's network admission on VMIs and VM templates, and Multus'
 * NetworkAttachmentDefinition config check, through the real server and
 * real kubectl: 422s with KubeVirt's field paths.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestServer } from '../../src/testing/server.js';
import type { TestServer } from '../../src/testing/server.js';
import { kubectl } from '../../src/testing/kubectl.js';

interface StatusJson {
  code: number;
  message: string;
  details: { causes: { field: string; reason: string; message: string }[] };
}

function vmiSpec(interfaces: unknown[], networks: unknown[]): Record<string, unknown> {
  return { domain: { devices: { interfaces }, resources: { requests: { memory: '64Mi' } } }, networks };
}

describe('network admission', () => {
  let server: TestServer;
  before(async () => { server = await startTestServer(); });
  after(() => server.stop());

  async function causes(path: string, body: unknown): Promise<string[]> {
    const res = await server.fetch('POST', path, { body: JSON.stringify(body) });
    assert.equal(res.status, 422, res.body);
    return (res.json() as StatusJson).details.causes.map((c) => `${c.field}: ${c.message}`);
  }

  test('a VMI with mismatched interfaces and networks, bad ports and a reserved MAC is refused with KubeVirt field paths', async () => {
    const found = await causes('/apis/kubevirt.io/v1/namespaces/default/virtualmachineinstances', {
      apiVersion: 'kubevirt.io/v1',
      kind: 'VirtualMachineInstance',
      metadata: { name: 'bad-net' },
      spec: vmiSpec(
        [
          { name: 'default', masquerade: {}, macAddress: '02:00:00:00:00:00', ports: [{ name: 'Web_Port', port: 80 }, { port: 0 }] },
          { name: 'orphan', bridge: {} },
          { name: 'sec', masquerade: {} },
        ],
        [{ name: 'default', pod: {} }, { name: 'sec', multus: { networkName: 'br1' } }, { name: 'unused', pod: {} }],
      ),
    });
    const fields = found.map((c) => c.split(':')[0]);
    for (const expected of [
      'spec.domain.devices.interfaces[0].macAddress',
      'spec.domain.devices.interfaces[0].ports[0].name',
      'spec.domain.devices.interfaces[0].ports[1].port',
      'spec.domain.devices.interfaces[1].name',
      'spec.domain.devices.interfaces[2].name',
      'spec.networks[2].name',
      'spec.interfaces',
    ]) {
      assert.ok(fields.includes(expected), `${expected} in ${JSON.stringify(found)}`);
    }
    assert.ok(found.some((c) => c.includes('Masquerade interface only implemented with pod network')), JSON.stringify(found));
  });

  test('a VM template is checked the same way, under spec.template.spec', async () => {
    const found = await causes('/apis/kubevirt.io/v1/namespaces/default/virtualmachines', {
      apiVersion: 'kubevirt.io/v1',
      kind: 'VirtualMachine',
      metadata: { name: 'bad-net-vm' },
      spec: { runStrategy: 'Halted', template: { spec: vmiSpec([{ name: 'default', masquerade: {}, model: 'tulip' }], [{ name: 'default', multus: {} }]) } },
    });
    assert.ok(found.some((c) => c.startsWith('spec.template.spec.domain.devices.interfaces[0].model')), JSON.stringify(found));
    assert.ok(found.some((c) => c.startsWith('spec.template.spec.networks[0]: ') && c.includes('networkName')), JSON.stringify(found));
  });

  test('a NetworkAttachmentDefinition needs a JSON CNI config with cniVersion and type or plugins', async () => {
    const nad = (name: string, config: string) => `apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata:
  name: ${name}
spec:
  config: '${config}'
`;
    const broken = await kubectl(['apply', '-f', '-'], { kubeconfig: server.kubeconfig, stdin: nad('broken', '{"cniVersion": "1.0.0", "type": "bridge"') });
    assert.notEqual(broken.code, 0);
    assert.match(broken.stderr, /spec\.config: .*invalid CNI configuration: it is not valid JSON/);
    const noType = await kubectl(['apply', '-f', '-'], { kubeconfig: server.kubeconfig, stdin: nad('no-type', '{"cniVersion": "1.0.0", "bridge": "br1"}') });
    assert.match(noType.stderr, /it has neither type nor plugins/);
    const noVersion = await kubectl(['apply', '-f', '-'], { kubeconfig: server.kubeconfig, stdin: nad('no-version', '{"plugins": [{"type": "bridge"}, {}]}') });
    assert.match(noVersion.stderr, /cniVersion is missing/);
    assert.match(noVersion.stderr, /plugins\[1\] has no type/);
    const good = await kubectl(['apply', '-f', '-'], { kubeconfig: server.kubeconfig, stdin: nad('br1', '{"cniVersion": "1.0.0", "name": "br1", "plugins": [{"type": "bridge", "bridge": "br1"}]}') });
    assert.equal(good.code, 0, good.stderr);
    const fileBased = await kubectl(['apply', '-f', '-'], { kubeconfig: server.kubeconfig, stdin: 'apiVersion: k8s.cni.cncf.io/v1\nkind: NetworkAttachmentDefinition\nmetadata:\n  name: from-file\n' });
    assert.equal(fileBased.code, 0, fileBased.stderr);
  });
});
