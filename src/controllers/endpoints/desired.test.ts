import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { KObject } from '../../api/object.js';
import { desiredEndpoints } from './desired.js';

const service = (spec: Record<string, unknown>): KObject => ({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'ns', uid: 'svc-uid' }, spec: { selector: { app: 'web' }, ports: [{ port: 80, targetPort: 8080, protocol: 'TCP' }], ...spec } });

function vmi(name: string, ips: string[], options: { ready?: boolean; deleting?: boolean; phase?: string; labels?: Record<string, string>; namespace?: string } = {}): KObject {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name, namespace: options.namespace ?? 'ns', uid: `${name}-uid`, labels: options.labels ?? { app: 'web' }, ...(options.deleting === true ? { deletionTimestamp: '2026-01-01T00:00:00Z' } : {}) },
    spec: {},
    status: { phase: options.phase ?? 'Running', nodeName: 'n1', conditions: [{ type: 'Ready', status: options.ready === false ? 'False' : 'True' }], interfaces: [{ name: 'default', ipAddresses: ips }] },
  };
}

type Slice = { addressType: string; endpoints: { addresses: string[]; conditions: Record<string, boolean> }[] };

test('dual-stack Services get one slice per family; Endpoints carry the primary family only', () => {
  const desired = desiredEndpoints(service({ ipFamilies: ['IPv6', 'IPv4'] }), [vmi('a', ['10.244.0.5', 'fd00:244::5', 'fe80::1'])]);
  const slices = desired.slices as unknown as Slice[];
  assert.deepEqual(slices.map((s) => [s.addressType, s.endpoints.map((e) => e.addresses[0])]), [['IPv6', ['fd00:244::5']], ['IPv4', ['10.244.0.5']]]);
  assert.deepEqual((desired.endpoints.subsets as { addresses: { ip: string }[] }[])[0]?.addresses.map((a) => a.ip), ['fd00:244::5']);
});

test('terminating, not-ready, finished, foreign and unlabelled VMIs', () => {
  const desired = desiredEndpoints(service({}), [
    vmi('ready', ['10.0.0.1']),
    vmi('starting', ['10.0.0.2'], { ready: false }),
    vmi('leaving', ['10.0.0.3'], { deleting: true }),
    vmi('done', ['10.0.0.4'], { phase: 'Succeeded' }),
    vmi('other-ns', ['10.0.0.5'], { namespace: 'elsewhere' }),
    vmi('other-app', ['10.0.0.6'], { labels: { app: 'db' } }),
  ]);
  const endpoints = (desired.slices[0] as unknown as Slice).endpoints.map((e) => [e.addresses[0], e.conditions]);
  assert.deepEqual(endpoints, [
    ['10.0.0.1', { ready: true, serving: true, terminating: false }],
    ['10.0.0.2', { ready: false, serving: false, terminating: false }],
    ['10.0.0.3', { ready: false, serving: true, terminating: true }],
  ]);
  // Endpoints leave terminating VMIs out, and list not-ready ones apart.
  const subset = (desired.endpoints.subsets as { addresses: { ip: string }[]; notReadyAddresses: { ip: string }[] }[])[0];
  assert.deepEqual([subset?.addresses.map((a) => a.ip), subset?.notReadyAddresses.map((a) => a.ip)], [['10.0.0.1'], ['10.0.0.2']]);
});

test('publishNotReadyAddresses makes every endpoint ready; slice names are stable', () => {
  const svc = service({ publishNotReadyAddresses: true });
  const first = desiredEndpoints(svc, [vmi('starting', ['10.0.0.2'], { ready: false })]);
  assert.deepEqual((first.slices[0] as unknown as Slice).endpoints[0]?.conditions, { ready: true, serving: true, terminating: false });
  const again = desiredEndpoints(svc, [vmi('other', ['10.0.0.9'])]);
  assert.equal(first.slices[0]?.metadata.name, again.slices[0]?.metadata.name);
  assert.match(first.slices[0]?.metadata.name ?? '', /^web-[0-9a-f]{5}$/);
});
