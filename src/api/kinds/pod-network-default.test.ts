import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject } from '../object.js';
import { clusterNetworkConfigOf, defaultClusterNetworkConfig, setDefaultNetworkInterface, validateBridgeOnPodNetwork } from './pod-network-default.js';

const kubevirt = (network: Record<string, unknown>): KObject => ({ apiVersion: 'kubevirt.io/v1', kind: 'KubeVirt', metadata: { name: 'kubevirt' }, spec: { configuration: { network } } });

test('the cluster network configuration: KubeVirt’s defaults (bridge, bridge permitted) unless the CR says otherwise', () => {
  assert.deepEqual(clusterNetworkConfigOf(undefined), defaultClusterNetworkConfig);
  assert.deepEqual(clusterNetworkConfigOf(kubevirt({ defaultNetworkInterface: 'masquerade', permitBridgeInterfaceOnPodNetwork: false })), { defaultNetworkInterface: 'masquerade', permitBridgeInterfaceOnPodNetwork: false });
});

test('the pod network is added only to a spec with no networks and no interfaces that does not opt out', () => {
  const bare: Record<string, unknown> = { domain: { devices: {} } };
  assert.equal(setDefaultNetworkInterface('spec', bare, defaultClusterNetworkConfig), undefined);
  assert.deepEqual(bare, { domain: { devices: { interfaces: [{ name: 'default', bridge: {} }] } }, networks: [{ name: 'default', pod: {} }] });
  const noDomain: Record<string, unknown> = {};
  setDefaultNetworkInterface('spec', noDomain, { ...defaultClusterNetworkConfig, defaultNetworkInterface: 'masquerade' });
  assert.deepEqual(noDomain, { domain: { devices: { interfaces: [{ name: 'default', masquerade: {} }] } }, networks: [{ name: 'default', pod: {} }] });
  const optOut = { domain: { devices: { autoattachPodInterface: false } } };
  setDefaultNetworkInterface('spec', optOut, defaultClusterNetworkConfig);
  assert.deepEqual(optOut, { domain: { devices: { autoattachPodInterface: false } } });
  const own = { domain: { devices: { interfaces: [{ name: 'x', masquerade: {} }] } } };
  setDefaultNetworkInterface('spec', own, defaultClusterNetworkConfig);
  assert.deepEqual(own, { domain: { devices: { interfaces: [{ name: 'x', masquerade: {} }] } } });
});

test('a default the cluster forbids or Vireo cannot give is an error naming the KubeVirt CR field; bridge on the pod network is refused when not permitted', () => {
  const noBridge = { defaultNetworkInterface: 'bridge', permitBridgeInterfaceOnPodNetwork: false };
  assert.match(setDefaultNetworkInterface('spec', {}, noBridge)?.message ?? '', /bridge interface is not enabled in kubevirt-config/);
  assert.match(setDefaultNetworkInterface('spec', {}, { ...noBridge, defaultNetworkInterface: 'passt' })?.message ?? '', /"passt" is not a binding Vireo can default to/);
  const spec = { domain: { devices: { interfaces: [{ name: 'lan', bridge: {} }, { name: 'default', bridge: {} }] } }, networks: [{ name: 'default', pod: {} }, { name: 'lan', multus: { networkName: 'lan' } }] };
  assert.deepEqual(validateBridgeOnPodNetwork('spec', spec, noBridge).map((e) => e.field), ['spec.domain.devices.interfaces[1].name']);
  assert.deepEqual(validateBridgeOnPodNetwork('spec', spec, defaultClusterNetworkConfig), []);
});
