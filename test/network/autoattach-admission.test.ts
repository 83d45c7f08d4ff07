/**
 * autoattachPodInterface through the real server: a VMI created without
 * networks gets the pod network with the KubeVirt CR's default binding
 * (bridge when unset), unless it opts out; `permitBridgeInterfaceOnPodNetwork:
 * false` refuses bridge on the pod network, defaulted or asked for, on VMIs
 * and VM templates. kubectl sees what was stored.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { KObject } from '../../src/api/object.js';
import { HttpClient, resources } from '../../src/client/index.js';
import { kubectl } from '../../src/testing/kubectl.js';
import { startTestServer } from '../../src/testing/server.js';
import type { TestServer } from '../../src/testing/server.js';

interface StatusJson {
  code: number;
  message: string;
  details?: { causes?: { field: string; message: string }[] };
}

function vmi(name: string, devices: Record<string, unknown> = {}, networks?: unknown[]): KObject {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name, namespace: 'default' },
    spec: { domain: { devices, resources: { requests: { memory: '64Mi' } } }, ...(networks === undefined ? {} : { networks }) },
  };
}

describe('autoattachPodInterface', () => {
  let server: TestServer;
  let client: HttpClient;
  before(async () => {
    server = await startTestServer();
    client = new HttpClient({ server: server.url, token: server.token, caCert: server.pki.caCert });
    await client.create(resources.namespaces, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'kubevirt' } });
  });
  after(async () => {
    client.close();
    await server.stop();
  });

  async function setNetworkConfig(network: Record<string, unknown> | undefined): Promise<void> {
    await client.delete(resources.kubeVirts, 'kubevirt', 'kubevirt').catch(() => undefined);
    if (network === undefined) return;
    await client.create(resources.kubeVirts, { apiVersion: 'kubevirt.io/v1', kind: 'KubeVirt', metadata: { name: 'kubevirt', namespace: 'kubevirt' }, spec: { configuration: { network } } });
  }

  async function refusal(body: KObject, plural = 'virtualmachineinstances'): Promise<StatusJson> {
    const res = await server.fetch('POST', `/apis/kubevirt.io/v1/namespaces/default/${plural}`, { body: JSON.stringify(body) });
    assert.equal(res.status, 422, res.body);
    return res.json() as StatusJson;
  }

  test('without a KubeVirt CR, a VMI with no networks gets the pod network with the bridge binding (KubeVirt\'s default)', async () => {
    await setNetworkConfig(undefined);
    const created = await kubectl(['create', '-f', '-'], { kubeconfig: server.kubeconfig, stdin: JSON.stringify(vmi('auto-bridge')) });
    assert.equal(created.code, 0, created.stderr);
    const got = await kubectl(['get', 'vmi', 'auto-bridge', '-o', 'json'], { kubeconfig: server.kubeconfig });
    const spec = (JSON.parse(got.stdout) as KObject).spec as { domain: { devices: { interfaces: unknown } }; networks: unknown };
    assert.deepEqual(spec.domain.devices.interfaces, [{ name: 'default', bridge: {} }]);
    assert.deepEqual(spec.networks, [{ name: 'default', pod: {} }]);
  });

  test('the KubeVirt CR\'s defaultNetworkInterface: masquerade is the binding given', async () => {
    await setNetworkConfig({ defaultNetworkInterface: 'masquerade' });
    const created = await client.create(resources.virtualMachineInstances, vmi('auto-masq'));
    const spec = created.spec as { domain: { devices: { interfaces: unknown } }; networks: unknown };
    assert.deepEqual(spec.domain.devices.interfaces, [{ name: 'default', masquerade: {} }]);
    assert.deepEqual(spec.networks, [{ name: 'default', pod: {} }]);
  });

  test('autoattachPodInterface: false, or any interface or network given, leaves the spec as it is', async () => {
    await setNetworkConfig(undefined);
    const off = await client.create(resources.virtualMachineInstances, vmi('no-nic', { autoattachPodInterface: false }));
    assert.equal((off.spec as { networks?: unknown }).networks, undefined);
    assert.equal((off.spec as { domain: { devices: { interfaces?: unknown } } }).domain.devices.interfaces, undefined);
    const own = await client.create(resources.virtualMachineInstances, vmi('own-nic', { interfaces: [{ name: 'pod', masquerade: {} }] }, [{ name: 'pod', pod: {} }]));
    assert.deepEqual((own.spec as { networks: unknown }).networks, [{ name: 'pod', pod: {} }]);
  });

  test('permitBridgeInterfaceOnPodNetwork: false refuses a defaulted bridge and an explicit one, on VMIs and VM templates', async () => {
    await setNetworkConfig({ permitBridgeInterfaceOnPodNetwork: false });
    const defaulted = await refusal(vmi('no-bridge'));
    assert.match(defaulted.message, /bridge interface is not enabled in kubevirt-config/);
    assert.match(defaulted.message, /set defaultNetworkInterface to masquerade/);
    assert.equal(defaulted.details?.causes?.[0]?.field, 'spec.domain.devices.interfaces');

    const explicit = await refusal(vmi('explicit-bridge', { interfaces: [{ name: 'default', bridge: {} }] }, [{ name: 'default', pod: {} }]));
    assert.equal(explicit.details?.causes?.[0]?.field, 'spec.domain.devices.interfaces[0].name');
    assert.match(explicit.message, /Bridge on pod network configuration is not enabled under kubevirt-config/);

    const template = { domain: { devices: { interfaces: [{ name: 'default', bridge: {} }] }, resources: { requests: { memory: '64Mi' } } }, networks: [{ name: 'default', pod: {} }] };
    const vm = await refusal({ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachine', metadata: { name: 'vm-bridge', namespace: 'default' }, spec: { runStrategy: 'Halted', template: { spec: template } } }, 'virtualmachines');
    assert.equal(vm.details?.causes?.[0]?.field, 'spec.template.spec.domain.devices.interfaces[0].name');

    // Masquerade is still fine, and so is bridge on a Multus network.
    await client.create(resources.virtualMachineInstances, vmi('masq-ok', { interfaces: [{ name: 'default', masquerade: {} }, { name: 'sec', bridge: {} }] }, [{ name: 'default', pod: {} }, { name: 'sec', multus: { networkName: 'br1' } }]));
  });

  test('a default binding Vireo cannot give is refused with the KubeVirt CR field to change', async () => {
    await setNetworkConfig({ defaultNetworkInterface: 'slirp' });
    const slirp = await refusal(vmi('auto-slirp'));
    assert.match(slirp.message, /slirp binding is deprecated/);
    assert.match(slirp.message, /spec\.configuration\.network\.defaultNetworkInterface/);
    await setNetworkConfig(undefined);
  });
});
