/**
 * Services as kube-apiserver admits them, through real kubectl and raw
 * requests: defaults, cluster IP and node port allocation (requested,
 * random, conflicts, out of range), headless Services, immutability of the
 * cluster IP, release on delete, and allocations that survive a restart of
 * the server on the same store.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { openStore } from '../../src/store/index.js';
import { startTestServer } from '../../src/testing/server.js';
import type { TestServer } from '../../src/testing/server.js';
import { kubectl } from '../../src/testing/kubectl.js';
import { parseServiceNetwork } from '../../src/apiserver/index.js';

interface ServiceJson {
  metadata: { name: string };
  spec: {
    type: string;
    clusterIP: string;
    clusterIPs: string[];
    ipFamilies: string[];
    ipFamilyPolicy: string;
    sessionAffinity: string;
    internalTrafficPolicy: string;
    externalTrafficPolicy?: string;
    ports: { port: number; targetPort: number | string; protocol: string; nodePort?: number; name?: string }[];
  };
}

interface StatusJson {
  code: number;
  reason: string;
  message: string;
  details: { causes: { field: string; reason: string; message: string }[] };
}

function service(name: string, spec: Record<string, unknown>): string {
  return JSON.stringify({ apiVersion: 'v1', kind: 'Service', metadata: { name }, spec });
}

describe('Service admission', () => {
  let server: TestServer;
  const base = '/api/v1/namespaces/default/services';
  const create = (body: string) => server.fetch('POST', base, { body });

  before(async () => { server = await startTestServer(); });
  after(() => server.stop());

  test('a Service gets kube-apiserver defaults and a cluster IP from 10.96.0.0/12', async () => {
    const res = await create(service('web', { selector: { app: 'web' }, ports: [{ port: 80 }] }));
    assert.equal(res.status, 201, res.body);
    const svc = res.json() as ServiceJson;
    assert.equal(svc.spec.type, 'ClusterIP');
    assert.equal(svc.spec.sessionAffinity, 'None');
    assert.equal(svc.spec.internalTrafficPolicy, 'Cluster');
    assert.equal(svc.spec.externalTrafficPolicy, undefined);
    assert.equal(svc.spec.ipFamilyPolicy, 'SingleStack');
    assert.deepEqual(svc.spec.ipFamilies, ['IPv4']);
    assert.deepEqual(svc.spec.ports, [{ port: 80, targetPort: 80, protocol: 'TCP' }]);
    assert.match(svc.spec.clusterIP, /^10\.(9[6-9]|10[0-9]|11[01])\.\d+\.\d+$/);
    assert.deepEqual(svc.spec.clusterIPs, [svc.spec.clusterIP]);
  });

  test('a requested cluster IP is honoured, a taken one and one outside the range are refused as kube refuses them', async () => {
    const ok = await create(service('fixed', { clusterIP: '10.96.0.10', ports: [{ port: 53, protocol: 'UDP', name: 'dns' }] }));
    assert.equal(ok.status, 201, ok.body);
    assert.deepEqual((ok.json() as ServiceJson).spec.clusterIPs, ['10.96.0.10']);

    const taken = await create(service('taken', { clusterIP: '10.96.0.10', ports: [{ port: 53 }] }));
    assert.equal(taken.status, 422, taken.body);
    const takenStatus = taken.json() as StatusJson;
    assert.equal(takenStatus.message, 'Service "taken" is invalid: spec.clusterIPs: Invalid value: []string{"10.96.0.10"}: failed to allocate IP 10.96.0.10: provided IP is already allocated');
    assert.deepEqual(takenStatus.details.causes.map((c) => c.field), ['spec.clusterIPs']);

    const outside = await create(service('outside', { clusterIP: '192.168.7.7', ports: [{ port: 53 }] }));
    assert.equal(outside.status, 422, outside.body);
    assert.match((outside.json() as StatusJson).message, /the provided IP \(192\.168\.7\.7\) is not in the valid range\. The range of valid IPs is 10\.96\.0\.0\/12$/);

    const malformed = await create(service('malformed', { clusterIP: '10.96.0.300', ports: [{ port: 53 }] }));
    assert.equal(malformed.status, 422, malformed.body);
    assert.match((malformed.json() as StatusJson).message, /spec\.clusterIPs\[0\]: Invalid value: "10\.96\.0\.300": must be a valid IP address/);
  });

  test('NodePort Services get a node port from 30000-32767; a taken or out-of-range one is refused', async () => {
    const random = await create(service('np', { type: 'NodePort', selector: { app: 'web' }, ports: [{ port: 80, targetPort: 8080 }] }));
    assert.equal(random.status, 201, random.body);
    const svc = random.json() as ServiceJson;
    assert.equal(svc.spec.externalTrafficPolicy, 'Cluster');
    const nodePort = svc.spec.ports[0]?.nodePort ?? 0;
    assert.ok(nodePort >= 30000 && nodePort <= 32767, `node port ${nodePort}`);
    assert.equal(svc.spec.ports[0]?.targetPort, 8080);

    const asked = await create(service('np-fixed', { type: 'NodePort', ports: [{ port: 80, nodePort: 30080 }] }));
    assert.equal(asked.status, 201, asked.body);
    const again = await create(service('np-again', { type: 'NodePort', ports: [{ port: 81, nodePort: 30080 }] }));
    assert.equal(again.status, 422);
    assert.equal((again.json() as StatusJson).message, 'Service "np-again" is invalid: spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated');
    const low = await create(service('np-low', { type: 'NodePort', ports: [{ port: 80, nodePort: 8080 }] }));
    assert.equal(low.status, 422);
    assert.equal((low.json() as StatusJson).message, 'Service "np-low" is invalid: spec.ports[0].nodePort: Invalid value: 8080: provided port is not in the valid range. The range of valid ports is 30000-32767');
    const onClusterIp = await create(service('cip-np', { ports: [{ port: 80, nodePort: 30099 }] }));
    assert.equal(onClusterIp.status, 422);
    assert.match((onClusterIp.json() as StatusJson).message, /spec\.ports\[0\]\.nodePort: Forbidden: may not be used when `type` is 'ClusterIP'/);
  });

  test('headless Services have no address; None is refused for NodePort', async () => {
    const res = await create(service('headless', { clusterIP: 'None', selector: { app: 'db' }, ports: [{ port: 5432 }] }));
    assert.equal(res.status, 201, res.body);
    const svc = res.json() as ServiceJson;
    assert.deepEqual([svc.spec.clusterIP, svc.spec.clusterIPs, svc.spec.ipFamilyPolicy], ['None', ['None'], 'SingleStack']);
    const bad = await create(service('headless-np', { type: 'NodePort', clusterIP: 'None', ports: [{ port: 80 }] }));
    assert.equal(bad.status, 422);
    assert.match((bad.json() as StatusJson).message, /spec\.clusterIPs\[0\]: Invalid value: "None": may not be set to 'None' for LoadBalancer or NodePort services/);
  });

  test('bad ports are refused with kube field paths', async () => {
    const res = await create(service('bad-ports', { ports: [{ port: 0, protocol: 'ICMP' }, { port: 81, targetPort: 'Not_A_Name' }] }));
    assert.equal(res.status, 422);
    const fields = (res.json() as StatusJson).details.causes.map((c) => `${c.field} ${c.reason}`);
    assert.deepEqual(fields.sort(), [
      'spec.ports[0].name FieldValueRequired',
      'spec.ports[0].port FieldValueInvalid',
      'spec.ports[0].protocol FieldValueNotSupported',
      'spec.ports[0].targetPort FieldValueInvalid',
      'spec.ports[1].name FieldValueRequired',
      'spec.ports[1].targetPort FieldValueInvalid',
    ]);
  });

  test('the cluster IP may not change; an update that leaves it out keeps it', async () => {
    const created = (await create(service('keep', { type: 'NodePort', ports: [{ port: 80 }] }))).json() as ServiceJson & { metadata: { resourceVersion: string } };
    const change = await server.fetch('PUT', `${base}/keep`, { body: JSON.stringify({ ...created, spec: { ...created.spec, clusterIP: '10.96.0.77', clusterIPs: ['10.96.0.77'] } }) });
    assert.equal(change.status, 422);
    assert.match((change.json() as StatusJson).message, /spec\.clusterIPs\[0\]: Invalid value: \[\]string\{"10\.96\.0\.77"\}: may not change once set/);
    const { clusterIP: _ip, clusterIPs: _ips, ...rest } = created.spec;
    const ports = rest.ports.map(({ nodePort: _np, ...p }) => p);
    const kept = await server.fetch('PUT', `${base}/keep`, { body: JSON.stringify({ ...created, spec: { ...rest, ports, selector: { app: 'x' } } }) });
    assert.equal(kept.status, 200, kept.body);
    const after = kept.json() as ServiceJson;
    assert.deepEqual([after.spec.clusterIP, after.spec.ports[0]?.nodePort], [created.spec.clusterIP, created.spec.ports[0]?.nodePort]);
  });

  test('deleting a Service frees its cluster IP and node port', async () => {
    assert.equal((await create(service('free', { type: 'NodePort', clusterIP: '10.96.0.20', ports: [{ port: 80, nodePort: 30555 }] }))).status, 201);
    assert.equal((await server.fetch('DELETE', `${base}/free`)).status, 200);
    const reuse = await create(service('reuse', { type: 'NodePort', clusterIP: '10.96.0.20', ports: [{ port: 80, nodePort: 30555 }] }));
    assert.equal(reuse.status, 201, reuse.body);
  });

  test('kubectl create service and get svc show the allocated cluster IP and node port', async () => {
    const made = await kubectl(['create', 'service', 'nodeport', 'kc', '--tcp=8080:80', '--node-port=30777'], { kubeconfig: server.kubeconfig });
    assert.equal(made.code, 0, made.stderr);
    const got = await kubectl(['get', 'svc', 'kc'], { kubeconfig: server.kubeconfig });
    assert.equal(got.code, 0, got.stderr);
    assert.match(got.stdout, /^kc\s+NodePort\s+10\.\d+\.\d+\.\d+\s+<none>\s+8080:30777\/TCP\s+\d+s$/m);
    const clash = await kubectl(['create', 'service', 'nodeport', 'kc2', '--tcp=8080:80', '--node-port=30777'], { kubeconfig: server.kubeconfig });
    assert.notEqual(clash.code, 0);
    assert.match(clash.stderr, /spec\.ports\[0\]\.nodePort: Invalid value: 30777: provided port is already allocated/);
    // Turning it into a ClusterIP Service drops its node port and traffic policy (kube's dropTypeDependentFields), freeing the port.
    const patched = await kubectl(['patch', 'svc', 'kc', '-p', '{"spec":{"type":"ClusterIP"}}'], { kubeconfig: server.kubeconfig });
    assert.equal(patched.code, 0, patched.stderr);
    const now = await kubectl(['get', 'svc', 'kc', '--no-headers'], { kubeconfig: server.kubeconfig });
    assert.match(now.stdout, /^kc\s+ClusterIP\s+10\.\d+\.\d+\.\d+\s+<none>\s+8080\/TCP\s+\d+s$/m);
    const reuse = await kubectl(['create', 'service', 'nodeport', 'kc2', '--tcp=8080:80', '--node-port=30777'], { kubeconfig: server.kubeconfig });
    assert.equal(reuse.code, 0, reuse.stderr);
  });
});

describe('Service allocations across a restart', () => {
  test('a restarted server on the same store knows which IPs and ports are taken', async () => {
    const store = await openStore({ backend: 'memory' });
    try {
      const first = await startTestServer({ store });
      const res = await first.fetch('POST', '/api/v1/namespaces/default/services', { body: service('survivor', { type: 'NodePort', clusterIP: '10.96.0.30', ports: [{ port: 80, nodePort: 30600 }] }) });
      assert.equal(res.status, 201, res.body);
      await first.stop();
      const second = await startTestServer({ store });
      try {
        const ip = await second.fetch('POST', '/api/v1/namespaces/default/services', { body: service('ip-clash', { clusterIP: '10.96.0.30', ports: [{ port: 80 }] }) });
        assert.equal(ip.status, 422);
        const port = await second.fetch('POST', '/api/v1/namespaces/default/services', { body: service('port-clash', { type: 'NodePort', ports: [{ port: 80, nodePort: 30600 }] }) });
        assert.equal(port.status, 422);
      } finally {
        await second.stop();
      }
    } finally {
      await store.close();
    }
  });
});

describe('dual-stack Services', () => {
  let server: TestServer;
  const base = '/api/v1/namespaces/default/services';
  before(async () => { server = await startTestServer({ serviceNetwork: parseServiceNetwork('10.97.0.0/24,fd00:10:97::/120', '30000-30002') }); });
  after(() => server.stop());

  test('PreferDualStack gets one address of each family; IPv6 alone comes from the IPv6 range', async () => {
    const dual = await server.fetch('POST', base, { body: service('dual', { ipFamilyPolicy: 'PreferDualStack', ports: [{ port: 80 }] }) });
    assert.equal(dual.status, 201, dual.body);
    const spec = (dual.json() as ServiceJson).spec;
    assert.deepEqual(spec.ipFamilies, ['IPv4', 'IPv6']);
    assert.match(spec.clusterIPs[0] ?? '', /^10\.97\.0\.\d+$/);
    assert.match(spec.clusterIPs[1] ?? '', /^fd00:10:97::[0-9a-f]+$/);
    const v6 = await server.fetch('POST', base, { body: service('v6', { ipFamilies: ['IPv6'], ports: [{ port: 80 }] }) });
    assert.equal(v6.status, 201, v6.body);
    assert.match((v6.json() as ServiceJson).spec.clusterIP, /^fd00:10:97::[0-9a-f]+$/);
    const asked = await server.fetch('POST', base, { body: service('v6-fixed', { clusterIP: 'fd00:10:97:0::a', ports: [{ port: 80 }] }) });
    assert.equal(asked.status, 201, asked.body);
    assert.deepEqual((asked.json() as ServiceJson).spec.clusterIPs, ['fd00:10:97::a']);
    const again = await server.fetch('POST', base, { body: service('v6-again', { clusterIP: 'fd00:10:97::A', ports: [{ port: 80 }] }) });
    assert.equal(again.status, 422);
    assert.match((again.json() as StatusJson).message, /provided IP is already allocated/);
  });

  test('a full node port range is refused with a message that says what to do', async () => {
    for (const name of ['np1', 'np2', 'np3']) {
      const res = await server.fetch('POST', base, { body: service(name, { type: 'NodePort', ports: [{ port: 80 }] }) });
      assert.equal(res.status, 201, res.body);
    }
    const full = await server.fetch('POST', base, { body: service('np4', { type: 'NodePort', ports: [{ port: 80 }] }) });
    assert.equal(full.status, 422);
    assert.match((full.json() as StatusJson).message, /range 30000-30002 is full; delete unused NodePort Services/);
  });
});

describe('single-stack cluster', () => {
  test('RequireDualStack and an unconfigured family are refused', async () => {
    const server = await startTestServer();
    try {
      const base = '/api/v1/namespaces/default/services';
      const dual = await server.fetch('POST', base, { body: service('dual', { ipFamilyPolicy: 'RequireDualStack', ports: [{ port: 80 }] }) });
      assert.equal(dual.status, 422);
      assert.match((dual.json() as StatusJson).message, /spec\.ipFamilyPolicy: Invalid value: "RequireDualStack": this cluster is not configured for dual-stack services/);
      const v6 = await server.fetch('POST', base, { body: service('v6', { ipFamilies: ['IPv6'], ports: [{ port: 80 }] }) });
      assert.equal(v6.status, 422);
      assert.match((v6.json() as StatusJson).message, /spec\.ipFamilies\[0\]: Invalid value: "IPv6": not configured on this cluster/);
    } finally {
      await server.stop();
    }
  });
});
