import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject } from '../../api/object.js';
import { compileServices } from './compile.js';
import { proxiedPorts } from './model.js';

function service(name: string, spec: Record<string, unknown>): KObject {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'default' }, spec: { type: 'ClusterIP', ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 8080 }], ...spec } };
}

function slice(serviceName: string, addressType: 'IPv4' | 'IPv6', endpoints: { ip: string; ready?: boolean; serving?: boolean; terminating?: boolean }[], port = 8080): KObject {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: `${serviceName}-${addressType}`, namespace: 'default', labels: { 'kubernetes.io/service-name': serviceName } },
    addressType,
    ports: [{ name: 'http', port, protocol: 'TCP' }],
    endpoints: endpoints.map((e) => ({ addresses: [e.ip], conditions: { ready: e.ready ?? true, serving: e.serving ?? e.ready ?? true, terminating: e.terminating ?? false } })),
  };
}

test('ready endpoints per family, the serving-terminating fallback, and what is not proxied', () => {
  const ports = proxiedPorts(
    [
      service('web', { clusterIP: '10.96.0.5', clusterIPs: ['10.96.0.5', 'fd00:96::5'], ipFamilies: ['IPv4', 'IPv6'] }),
      service('rolling', { clusterIP: '10.96.0.6' }),
      service('headless', { clusterIP: 'None' }),
      service('external', { type: 'ExternalName', externalName: 'example.org' }),
      service('empty', { clusterIP: '10.96.0.7' }),
    ],
    [
      slice('web', 'IPv4', [{ ip: '10.244.0.3' }, { ip: '10.244.0.2' }, { ip: '10.244.0.9', ready: false }]),
      slice('web', 'IPv6', [{ ip: 'fd10::3' }]),
      slice('rolling', 'IPv4', [{ ip: '10.244.0.4', ready: false, serving: true, terminating: true }, { ip: '10.244.0.5', ready: false, serving: false }]),
      slice('headless', 'IPv4', [{ ip: '10.244.0.8' }]),
    ],
  );
  assert.deepEqual(ports.map((p) => [p.service, p.family, p.clusterIps, p.endpoints.map((e) => `${e.address}:${e.port}`)]), [
    ['empty', 4, ['10.96.0.7'], []],
    ['rolling', 4, ['10.96.0.6'], ['10.244.0.4:8080']],
    ['web', 4, ['10.96.0.5'], ['10.244.0.2:8080', '10.244.0.3:8080']],
    ['web', 6, ['fd00:96::5'], ['fd10::3:8080']],
  ]);
});

test('a port is matched by name and protocol; each slice may map it to its own number', () => {
  const svc = service('web', { clusterIP: '10.96.0.5', ports: [{ name: 'http', port: 80, protocol: 'TCP' }, { name: 'dns', port: 53, protocol: 'UDP' }] });
  const first = slice('web', 'IPv4', [{ ip: '10.244.0.2' }], 8080);
  const second = { ...slice('web', 'IPv4', [{ ip: '10.244.0.3' }], 9090), metadata: { name: 'web-2', namespace: 'default', labels: { 'kubernetes.io/service-name': 'web' } } };
  const ports = proxiedPorts([svc], [first, second]);
  const http = ports.find((p) => p.portName === 'http');
  const dns = ports.find((p) => p.portName === 'dns');
  assert.deepEqual(http?.endpoints, [{ address: '10.244.0.2', port: 8080 }, { address: '10.244.0.3', port: 9090 }]);
  assert.equal(dns?.protocol, 'udp');
  assert.deepEqual(dns?.endpoints, [], 'no slice names a UDP port "dns"');
});

test('the compiled table: maps to per-port chains, random choice, hairpin and node-port masquerade, rejects without endpoints', () => {
  const ports = proxiedPorts(
    [
      service('web', { type: 'NodePort', clusterIP: '10.96.0.5', ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 8080, nodePort: 30080 }] }),
      service('empty', { type: 'NodePort', clusterIP: '10.96.0.7', ports: [{ name: 'http', port: 80, protocol: 'TCP', nodePort: 30081 }] }),
      service('sticky', { clusterIP: 'fd00:96::8', clusterIPs: ['fd00:96::8'], sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 60 } } }),
    ],
    [slice('web', 'IPv4', [{ ip: '10.244.0.2' }, { ip: '10.244.0.3' }]), slice('sticky', 'IPv6', [{ ip: 'fd10::2' }])],
  );
  const text = compileServices(ports, { tableName: 'vireo_svc_test' });
  // Replaced whole, in one transaction.
  assert.match(text, /^table inet vireo_svc_test \{\}\ndelete table inet vireo_svc_test\ntable inet vireo_svc_test \{/);
  const webChain = /10\.96\.0\.5 \. tcp \. 80 : goto (svc4-[0-9a-f]{8}-default\/web\/tcp\/http)/.exec(text)?.[1];
  assert.ok(webChain !== undefined, text);
  assert.match(text, /tcp \. 30080 : goto ext4-[0-9a-f]{8}-default\/web\/tcp\/http/);
  assert.match(text, /numgen random mod 2 vmap \{ 0 : goto ep4-\w+-default\/web\/http, 1 : goto ep4-\w+-default\/web\/http \}/);
  assert.match(text, /ip saddr 10\.244\.0\.2 jump mark-for-masquerade\n\s+meta l4proto tcp dnat ip to 10\.244\.0\.2:8080/);
  assert.match(text, /chain ext4-[^{]+\{\n\s+jump mark-for-masquerade\n\s+goto svc4-/);
  // No endpoints: the cluster IP and the node port are rejected, not DNATed.
  assert.match(text, /map no-endpoint-services4 \{\n[^}]*10\.96\.0\.7 \. tcp \. 80 : goto reject-chain/);
  assert.match(text, /map no-endpoint-nodeports4 \{\n[^}]*tcp \. 30081 : goto reject-chain/);
  assert.doesNotMatch(text, /default\/empty/);
  // Session affinity: a dynamic set per endpoint, consulted before the random choice.
  assert.match(text, /set aff6-[0-9a-f]{8} \{\n\s+type ipv6_addr; flags dynamic,timeout; timeout 60s/);
  assert.match(text, /ip6 saddr @aff6-[0-9a-f]{8} goto ep6-/);
  assert.match(text, /update @aff6-[0-9a-f]{8} \{ ip6 saddr \}\n\s+meta l4proto tcp dnat ip6 to \[fd10::2\]:8080/);
  // The node's own processes are proxied too; loopback node ports are not (kube-proxy's nftables mode).
  assert.match(text, /chain nat-output \{\n\s+type nat hook output priority -100; policy accept;\n\s+jump services/);
  assert.match(text, /fib daddr type local ip daddr != 127\.0\.0\.0\/8 meta l4proto \. th dport vmap @service-nodeports4/);
});

test('equal inputs compile to equal text, whatever the listing order', () => {
  const services = [service('a', { clusterIP: '10.96.0.5' }), service('b', { clusterIP: '10.96.0.6' })];
  const slices = [slice('a', 'IPv4', [{ ip: '10.244.0.3' }, { ip: '10.244.0.2' }]), slice('b', 'IPv4', [{ ip: '10.244.0.4' }])];
  const one = compileServices(proxiedPorts(services, slices), { tableName: 't' });
  const two = compileServices(proxiedPorts([...services].reverse(), [...slices].reverse()), { tableName: 't' });
  assert.equal(one, two);
});
