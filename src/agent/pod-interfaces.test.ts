import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject } from '../api/object.js';
import { derivedMac, interfacesOf, podInterfaceOf } from './pod-interfaces.js';

function vmi(spec: Record<string, unknown>, owner?: string): KObject {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name: 'v', namespace: 'default', uid: 'vmi-uid', ...(owner === undefined ? {} : { ownerReferences: [{ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachine', name: 'v', uid: owner, controller: true }] }) },
    spec,
  };
}
const pod = (iface: Record<string, unknown>): Record<string, unknown> => ({ domain: { devices: { interfaces: [{ name: 'default', ...iface }] } }, networks: [{ name: 'default', pod: {} }] });

test('no networks and no interfaces: no pod NIC', () => {
  assert.equal(podInterfaceOf(vmi({ domain: { devices: {} } })), undefined);
});

test('masquerade with ports, model, MAC from the owning VM (stable across its VMIs)', () => {
  const nic = podInterfaceOf(vmi(pod({ masquerade: {}, model: 'e1000e', ports: [{ port: 80 }, { port: 53, protocol: 'UDP' }] }), 'vm-uid'));
  assert.deepEqual(nic, { name: 'default', binding: 'masquerade', model: 'e1000e', mac: derivedMac('vm-uid', 'default'), ports: [{ protocol: 'tcp', port: 80 }, { protocol: 'udp', port: 53 }] });
  assert.equal(podInterfaceOf(vmi(pod({ masquerade: {} }), 'vm-uid'))?.mac, nic?.mac);
  assert.notEqual(podInterfaceOf(vmi(pod({ masquerade: {} }), 'other-vm'))?.mac, nic?.mac);
});

test('bridge with a given MAC, PCI address and boot order', () => {
  const nic = podInterfaceOf(vmi(pod({ bridge: {}, macAddress: '02-AA-bb-cc-dd-ee', pciAddress: '0000:00:0a.0', bootOrder: 3 })));
  assert.equal(nic?.mac, '02:aa:bb:cc:dd:ee');
  assert.equal(nic?.pciAddress, '0000:00:0a.0');
  assert.equal(nic?.bootOrder, 3);
});

test('what cannot be attached is refused with its field', () => {
  assert.throws(() => podInterfaceOf(vmi(pod({ sriov: {} }))), /interfaces\[0\]\.sriov: the sriov binding is not supported/);
  assert.throws(() => podInterfaceOf(vmi(pod({ bridge: {}, ports: [{ port: 80 }] }))), /ports are forwarded only by the masquerade binding/);
  assert.throws(() => podInterfaceOf(vmi(pod({ masquerade: {}, macAddress: 'nope' }))), /macAddress: "nope" is not a MAC address/);
  assert.throws(() => podInterfaceOf(vmi(pod({ masquerade: {}, model: 'virtio-net' }))), /model: "virtio-net" is not a NIC model/);
  assert.throws(() => podInterfaceOf(vmi(pod({ masquerade: {}, ports: [{ port: 70000 }] }))), /a port is 1-65535/);
  assert.throws(() => podInterfaceOf(vmi({ domain: { devices: { interfaces: [{ name: 'n', bridge: {} }] } }, networks: [{ name: 'n', multus: { networkName: 'x' } }] })), /spec\.networks: Multus networks are attached beside the pod network/);
  assert.throws(() => podInterfaceOf(vmi({ domain: { devices: {} }, networks: [{ name: 'default', pod: {} }] })), /no interface is named "default"/);
  assert.throws(() => podInterfaceOf(vmi({ domain: { devices: { interfaces: [{ name: 'other', masquerade: {} }] } }, networks: [{ name: 'default', pod: {} }] })), /interfaces\[0\]: no network is named "other"/);
  assert.throws(() => podInterfaceOf(vmi({ domain: { devices: { interfaces: [{ name: 'x', masquerade: {} }] } } })), /no network is named "x"/);
});

const withMultus = (extra: Record<string, unknown>[], networks: Record<string, unknown>[]): Record<string, unknown> => ({
  domain: { devices: { interfaces: [{ name: 'default', masquerade: {} }, ...extra] } },
  networks: [{ name: 'default', pod: {} }, ...networks],
});

test('Multus networks become net1, net2… in network order, bridge binding, MAC given (passed to plugins) or derived', () => {
  const nics = interfacesOf(vmi(withMultus(
    [{ name: 'blue', bridge: {}, macAddress: '02:00:00:00:00:b1' }, { name: 'red' }],
    [{ name: 'red', multus: { networkName: 'vms/red' } }, { name: 'blue', multus: { networkName: 'blue' } }],
  ), 'vm-uid'));
  assert.equal(nics.pod?.name, 'default');
  assert.deepEqual(nics.multus, [
    { name: 'red', model: 'virtio', mac: derivedMac('vm-uid', 'red'), networkName: 'vms/red', interfaceName: 'net1' },
    { name: 'blue', model: 'virtio', mac: '02:00:00:00:00:b1', networkName: 'blue', interfaceName: 'net2', requestedMac: '02:00:00:00:00:b1' },
  ]);
});

test('Multus networks that cannot be attached are refused with their field', () => {
  assert.throws(() => interfacesOf(vmi(withMultus([{ name: 'b', masquerade: {} }], [{ name: 'b', multus: { networkName: 'x' } }]))), /interfaces\[1\]\.masquerade: the masquerade binding is for the pod network only/);
  assert.throws(() => interfacesOf(vmi(withMultus([{ name: 'b', bridge: {} }], [{ name: 'b', multus: { networkName: 'x', default: true } }]))), /spec\.networks: Pod network cannot be defined when Multus default network is defined/);
  assert.throws(() => interfacesOf(vmi(withMultus([], [{ name: 'b', multus: { networkName: 'x' } }]))), /no interface is named "b" for the Multus network "b"/);
  assert.throws(() => interfacesOf(vmi(withMultus([{ name: 'b', bridge: {} }], [{ name: 'b', multus: {} }]))), /networks\[1\]: a network is either/);
});

test('a Multus default network is eth0 and comes first, the others net1… after it; no pod NIC; one default at most; bridge only', () => {
  const spec = (networks: Record<string, unknown>[], interfaces: Record<string, unknown>[]): Record<string, unknown> => ({ domain: { devices: { interfaces } }, networks });
  const nics = interfacesOf(vmi(spec(
    [{ name: 'lan', multus: { networkName: 'lan' } }, { name: 'main', multus: { networkName: 'vms/main', default: true } }],
    [{ name: 'lan', bridge: {} }, { name: 'main', bridge: {} }],
  ), 'vm-uid'));
  assert.equal(nics.pod, undefined);
  assert.deepEqual(nics.multus.map((m) => [m.name, m.interfaceName, m.isDefault]), [['main', 'eth0', true], ['lan', 'net1', undefined]]);
  assert.throws(() => interfacesOf(vmi(spec([{ name: 'a', multus: { networkName: 'a', default: true } }, { name: 'b', multus: { networkName: 'b', default: true } }], [{ name: 'a', bridge: {} }, { name: 'b', bridge: {} }]))), /Multus CNI should only have one default network/);
  assert.throws(() => interfacesOf(vmi(spec([{ name: 'a', multus: { networkName: 'a', default: true } }], [{ name: 'a', masquerade: {} }]))), /masquerade binding is for the pod network only/);
});
