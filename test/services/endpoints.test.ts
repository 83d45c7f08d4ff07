/**
 * The endpoints controller on a real server, with VMIs whose status is
 * written the way the node agent writes it (a merge patch on the VMI with
 * the components' token): Endpoints and EndpointSlices follow VMIs as they
 * get addresses, turn ready, change address, go; named target ports
 * resolve against the VMI's interface ports; kubectl prints them as on a
 * real cluster. Boots nothing.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { KObject } from '../../src/api/object.js';
import { HttpClient, resources } from '../../src/client/index.js';
import { startTestServer } from '../../src/testing/server.js';
import type { TestServer } from '../../src/testing/server.js';
import { kubectl } from '../../src/testing/kubectl.js';
import { eventually } from '../../src/testing/wait.js';

const ns = 'default';

function vmi(name: string, labels: Record<string, string>, ports: { name: string; port: number }[] = [], extra: Record<string, unknown> = {}): KObject {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name, namespace: ns, labels },
    spec: {
      domain: { devices: { interfaces: [{ name: 'default', masquerade: {}, ...(ports.length > 0 ? { ports } : {}) }] }, resources: { requests: { memory: '64Mi' } } },
      networks: [{ name: 'default', pod: {} }],
      ...extra,
    },
  };
}

describe('endpoints controller', () => {
  let server: TestServer;
  let user: HttpClient;
  /** Writes as the node agent does. */
  let agent: HttpClient;

  before(async () => {
    server = await startTestServer();
    user = new HttpClient({ server: server.url, token: server.token, caCert: server.pki.caCert, userAgent: 'test-user' });
    agent = new HttpClient({ server: server.url, token: server.componentToken, caCert: server.pki.caCert, userAgent: 'test-agent' });
  });
  after(async () => {
    user.close();
    agent.close();
    await server.stop();
  });

  async function report(name: string, status: Record<string, unknown>): Promise<void> {
    await agent.patch(resources.virtualMachineInstances, ns, name, 'merge', { status });
  }
  const running = (ip: string, ready: boolean): Record<string, unknown> => ({
    phase: 'Running',
    nodeName: 'node-a',
    conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }],
    interfaces: [{ name: 'default', ipAddress: ip, ipAddresses: [ip, 'fe80::1'], mac: '02:00:00:00:00:01' }],
  });
  const endpointsOf = (name: string) => user.tryGet(resources.endpoints, ns, name);
  const slicesOf = async (name: string) => (await user.list(resources.endpointSlices, { namespace: ns, labelSelector: `kubernetes.io/service-name=${name}` })).items;

  test('Endpoints and EndpointSlices follow the VMIs a Service selects', async () => {
    await user.create(resources.services, {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'web', namespace: ns, labels: { tier: 'front' } },
      spec: { selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 'http' }, { name: 'ssh', port: 22 }] },
    });
    await user.create(resources.virtualMachineInstances, vmi('web-a', { app: 'web' }, [{ name: 'http', port: 8080 }]));
    await user.create(resources.virtualMachineInstances, vmi('web-b', { app: 'web' }));
    await user.create(resources.virtualMachineInstances, vmi('db', { app: 'db' }, [{ name: 'http', port: 8080 }]));

    // No addresses yet: an Endpoints without subsets and one empty placeholder slice.
    const empty = await eventually(async () => ((await slicesOf('web')).length === 1 ? endpointsOf('web') : undefined), { what: 'the empty Endpoints' });
    assert.equal(empty.subsets, undefined);
    const placeholder = (await slicesOf('web'))[0];
    assert.deepEqual([placeholder?.addressType, placeholder?.endpoints], ['IPv4', []]);
    assert.equal(placeholder?.metadata.labels?.['endpointslice.kubernetes.io/managed-by'], 'endpointslice-controller.k8s.io');
    assert.equal(placeholder?.metadata.labels?.tier, 'front');
    assert.equal(placeholder?.metadata.ownerReferences?.[0]?.kind, 'Service');

    await report('web-a', running('10.244.0.5', true));
    await report('web-b', { phase: 'Scheduled', nodeName: 'node-b', interfaces: [{ name: 'default', ipAddress: '10.244.0.6' }] });
    await report('db', running('10.244.0.9', true));
    const ep = await eventually(async () => {
      const e = await endpointsOf('web');
      return Array.isArray(e?.subsets) && e.subsets.length === 2 ? e : undefined;
    }, { what: 'two subsets' });
    const subsets = ep.subsets as { addresses?: { ip: string; nodeName: string; targetRef: { kind: string; name: string } }[]; notReadyAddresses?: { ip: string }[]; ports: { name: string; port: number; protocol: string }[] }[];
    const ready = subsets.find((s) => s.addresses !== undefined);
    const notReady = subsets.find((s) => s.notReadyAddresses !== undefined);
    assert.deepEqual(ready?.addresses?.map((a) => [a.ip, a.nodeName, a.targetRef.kind, a.targetRef.name]), [['10.244.0.5', 'node-a', 'VirtualMachineInstance', 'web-a']]);
    // The named target port "http" resolves to the VMI's interface port 8080.
    assert.deepEqual(ready?.ports, [{ name: 'http', port: 8080, protocol: 'TCP' }, { name: 'ssh', port: 22, protocol: 'TCP' }]);
    // web-b has no port named http: only ssh, and not ready.
    assert.deepEqual(notReady?.notReadyAddresses?.map((a) => a.ip), ['10.244.0.6']);
    assert.deepEqual(notReady?.ports, [{ name: 'ssh', port: 22, protocol: 'TCP' }]);

    const slices = await eventually(async () => {
      const list = await slicesOf('web');
      return list.length === 2 ? list : undefined;
    }, { what: 'two slices' });
    const endpoints = slices.flatMap((s) => (s.endpoints as { addresses: string[]; conditions: Record<string, boolean>; nodeName: string; targetRef: { name: string } }[]));
    assert.deepEqual(
      endpoints.map((e) => [e.addresses, e.conditions, e.nodeName, e.targetRef.name]).sort(),
      [
        [['10.244.0.5'], { ready: true, serving: true, terminating: false }, 'node-a', 'web-a'],
        [['10.244.0.6'], { ready: false, serving: false, terminating: false }, 'node-b', 'web-b'],
      ],
    );

    const got = await kubectl(['get', 'endpoints', 'web'], { kubeconfig: server.kubeconfig });
    assert.match(got.stdout, /^web\s+10\.244\.0\.5:8080,10\.244\.0\.5:22\s+\d+s$/m, got.stderr);
    const gotSlices = await kubectl(['get', 'endpointslices', '-l', 'kubernetes.io/service-name=web'], { kubeconfig: server.kubeconfig });
    assert.match(gotSlices.stdout, /^NAME\s+ADDRESSTYPE\s+PORTS\s+ENDPOINTS\s+AGE$/m);
    assert.match(gotSlices.stdout, /^web-\w+\s+IPv4\s+8080,22\s+10\.244\.0\.5\s+\d+s$/m);
    assert.match(gotSlices.stdout, /^web-\w+\s+IPv4\s+22\s+10\.244\.0\.6\s+\d+s$/m);
  });

  test('a new address, readiness and deletion show up', async () => {
    await report('web-a', running('10.244.0.7', true));
    await report('web-b', running('10.244.0.6', true));
    await eventually(async () => {
      const list = (await slicesOf('web')).flatMap((s) => (s.endpoints as { addresses: string[]; conditions: { ready: boolean } }[]).map((e) => `${e.addresses[0] ?? ''}=${String(e.conditions.ready)}`));
      return list.sort().join(' ') === '10.244.0.6=true 10.244.0.7=true';
    }, { what: 'the new address and web-b ready' });
    await user.delete(resources.virtualMachineInstances, ns, 'web-a');
    await user.delete(resources.virtualMachineInstances, ns, 'web-b');
    await eventually(async () => (await endpointsOf('web'))?.subsets === undefined, { what: 'the Endpoints to empty' });
    const slices = await eventually(async () => {
      const list = await slicesOf('web');
      return list.length === 1 ? list : undefined;
    }, { what: 'one placeholder slice' });
    assert.deepEqual(slices[0]?.endpoints, []);
  });

  test('a headless Service publishes VMI hostnames under its subdomain; deleting the Service removes its endpoints', async () => {
    await user.create(resources.services, { apiVersion: 'v1', kind: 'Service', metadata: { name: 'db', namespace: ns }, spec: { clusterIP: 'None', selector: { app: 'db' }, ports: [{ port: 5432 }] } });
    await user.create(resources.virtualMachineInstances, vmi('db-0', { app: 'db' }, [], { hostname: 'db-0', subdomain: 'db' }));
    await report('db-0', running('10.244.1.2', true));
    const slices = await eventually(async () => {
      const list = await slicesOf('db');
      return list.some((s) => (s.endpoints as unknown[]).length === 2) ? list : undefined;
    }, { what: 'the db slice with both VMIs' });
    const db0 = slices.flatMap((s) => s.endpoints as { addresses: string[]; hostname?: string }[]).find((e) => e.addresses[0] === '10.244.1.2');
    assert.equal(db0?.hostname, 'db-0');
    assert.equal(slices[0]?.metadata.labels?.['service.kubernetes.io/headless'], '');
    await user.delete(resources.services, ns, 'db');
    await eventually(async () => (await endpointsOf('db')) === undefined && (await slicesOf('db')).length === 0, { what: 'the db endpoints to go' });
  });
});
