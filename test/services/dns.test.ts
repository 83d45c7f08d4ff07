/**
 * The cluster DNS queried with Debian's real `dig` over UDP and TCP on
 * loopback: Service names (ClusterIP, headless, ExternalName), SRV for
 * named ports, VMI hostnames under a headless Service's subdomain, PTR,
 * NXDOMAIN inside the cluster domain, REFUSED outside it, FORMERR for
 * garbage, and a new Service answered within a second.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { HttpClient, resources } from '../../src/client/index.js';
import { startTestServer } from '../../src/testing/server.js';
import type { TestServer } from '../../src/testing/server.js';
import { eventually } from '../../src/testing/wait.js';

interface Dig {
  status: string;
  answers: string[];
}

describe('cluster DNS', () => {
  let server: TestServer;
  let client: HttpClient;
  let port = 0;

  function dig(args: string[]): Promise<Dig> {
    return new Promise((resolve, reject) => {
      execFile('dig', ['@127.0.0.1', '-p', String(port), '+tries=1', '+time=2', '+noall', '+comments', '+answer', ...args], (err, stdout) => {
        if (err !== null && stdout === '') {
          reject(new Error(`dig ${args.join(' ')} failed: ${err.message}`));
          return;
        }
        const status = /status: (\w+)/.exec(stdout)?.[1] ?? '';
        const answers = stdout.split('\n').filter((l) => l !== '' && !l.startsWith(';')).map((l) => l.split(/\s+/).slice(3).join(' '));
        resolve({ status, answers });
      });
    });
  }

  before(async () => {
    server = await startTestServer({ clusterDns: true });
    port = server.plane.dns?.address.port ?? 0;
    client = new HttpClient({ server: server.url, token: server.componentToken, caCert: server.pki.caCert, userAgent: 'test' });
    await client.create(resources.services, { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'default' }, spec: { clusterIP: '10.96.0.80', selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 8080 }] } });
    await client.create(resources.services, { apiVersion: 'v1', kind: 'Service', metadata: { name: 'db', namespace: 'default' }, spec: { clusterIP: 'None', selector: { app: 'db' }, ports: [{ name: 'pg', port: 5432 }] } });
    await client.create(resources.services, { apiVersion: 'v1', kind: 'Service', metadata: { name: 'ext', namespace: 'default' }, spec: { type: 'ExternalName', externalName: 'db.example.org' } });
    await client.create(resources.virtualMachineInstances, {
      apiVersion: 'kubevirt.io/v1',
      kind: 'VirtualMachineInstance',
      metadata: { name: 'db-0', namespace: 'default', labels: { app: 'db' } },
      spec: { hostname: 'db-0', subdomain: 'db', domain: { devices: {}, resources: { requests: { memory: '64Mi' } } } },
    });
    await client.patch(resources.virtualMachineInstances, 'default', 'db-0', 'merge', {
      status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }], interfaces: [{ name: 'default', ipAddress: '10.244.3.4' }] },
    });
  });
  after(async () => {
    client.close();
    await server.stop();
  });

  test('a ClusterIP Service resolves to its cluster IP, over UDP and TCP; AAAA is NODATA', async () => {
    const a = await eventually(async () => {
      const r = await dig(['web.default.svc.cluster.local', 'A']);
      return r.answers.length > 0 ? r : undefined;
    }, { what: 'the A record of web' });
    assert.deepEqual([a.status, a.answers], ['NOERROR', ['A 10.96.0.80']]);
    assert.deepEqual((await dig(['+tcp', 'WEB.default.svc.cluster.local', 'A'])).answers, ['A 10.96.0.80']);
    assert.deepEqual(await dig(['web.default.svc.cluster.local', 'AAAA']), { status: 'NOERROR', answers: [] });
  });

  test('SRV for a named port, PTR for the cluster IP, CNAME for ExternalName', async () => {
    assert.deepEqual((await dig(['_http._tcp.web.default.svc.cluster.local', 'SRV'])).answers, ['SRV 0 100 80 web.default.svc.cluster.local.']);
    assert.deepEqual((await dig(['-x', '10.96.0.80'])).answers, ['PTR web.default.svc.cluster.local.']);
    assert.deepEqual((await dig(['ext.default.svc.cluster.local', 'A'])).answers, ['CNAME db.example.org.']);
  });

  test('a headless Service resolves to its ready endpoints, and a VMI hostname under its subdomain', async () => {
    const headless = await eventually(async () => {
      const r = await dig(['db.default.svc.cluster.local', 'A']);
      return r.answers.length > 0 ? r : undefined;
    }, { what: 'the headless Service to have its endpoint' });
    assert.deepEqual(headless.answers, ['A 10.244.3.4']);
    assert.deepEqual((await dig(['db-0.db.default.svc.cluster.local', 'A'])).answers, ['A 10.244.3.4']);
    assert.deepEqual((await dig(['-x', '10.244.3.4'])).answers, ['PTR db-0.db.default.svc.cluster.local.']);
    assert.deepEqual((await dig(['_pg._tcp.db.default.svc.cluster.local', 'SRV'])).answers, ['SRV 0 100 5432 db-0.db.default.svc.cluster.local.']);
  });

  test('unknown names in the cluster domain are NXDOMAIN; other names are REFUSED', async () => {
    assert.equal((await dig(['nope.default.svc.cluster.local', 'A'])).status, 'NXDOMAIN');
    assert.equal((await dig(['nope.db.default.svc.cluster.local', 'A'])).status, 'NXDOMAIN');
    assert.equal((await dig(['example.com', 'A'])).status, 'REFUSED');
  });

  test('garbage gets FORMERR, and the server keeps answering', async () => {
    const socket = createSocket('udp4');
    try {
      const reply = await new Promise<Buffer>((resolve, reject) => {
        socket.once('message', resolve);
        socket.once('error', reject);
        // A header with id 0x1234 and no question.
        socket.send(Buffer.from([0x12, 0x34, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0]), port, '127.0.0.1');
      });
      assert.equal(reply.readUInt16BE(0), 0x1234);
      assert.equal(reply.readUInt16BE(2) & 0xf, 1);
    } finally {
      socket.close();
    }
    assert.equal((await dig(['web.default.svc.cluster.local', 'A'])).status, 'NOERROR');
  });

  test('an answer too big for UDP is truncated (TC) and dig gets it whole over TCP', async () => {
    // A selectorless headless Service with a slice of its own, as a user may manage one.
    await client.create(resources.services, { apiVersion: 'v1', kind: 'Service', metadata: { name: 'many', namespace: 'default' }, spec: { clusterIP: 'None', ports: [{ port: 80 }] } });
    const addresses = Array.from({ length: 60 }, (_, i) => `10.244.9.${i + 1}`);
    await client.create(resources.endpointSlices, {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name: 'many-1', namespace: 'default', labels: { 'kubernetes.io/service-name': 'many' } },
      addressType: 'IPv4',
      endpoints: addresses.map((a) => ({ addresses: [a], conditions: { ready: true } })),
      ports: [{ port: 80, protocol: 'TCP' }],
    });
    const whole = await eventually(async () => {
      const r = await dig(['+noedns', 'many.default.svc.cluster.local', 'A']);
      return r.answers.length === 60 ? r : undefined;
    }, { what: 'all 60 addresses of many' });
    assert.deepEqual(whole.answers.map((a) => a.replace('A ', '')).sort(), [...addresses].sort());
    const truncated = await new Promise<string>((resolve) => {
      execFile('dig', ['@127.0.0.1', '-p', String(port), '+noedns', '+ignore', '+tries=1', 'many.default.svc.cluster.local', 'A'], (_err, stdout) => { resolve(stdout); });
    });
    assert.match(truncated, /flags: qr aa tc/);
  });

  test('a new Service is answered within a second of its creation', async () => {
    const created = await client.create(resources.services, { apiVersion: 'v1', kind: 'Service', metadata: { name: 'fresh', namespace: 'default' }, spec: { ports: [{ port: 80 }] } });
    const ip = (created.spec as { clusterIP: string }).clusterIP;
    const r = await eventually(async () => {
      const d = await dig(['fresh.default.svc.cluster.local', 'A']);
      return d.answers.length > 0 ? d : undefined;
    }, { timeoutMs: 1000, intervalMs: 50, what: 'fresh to resolve within a second' });
    assert.deepEqual(r.answers, [`A ${ip}`]);
  });
});

describe('cluster DNS address', () => {
  test('an address that is taken stops the server with a clear error, unless the DNS is optional', async () => {
    const first = await startTestServer({ clusterDns: true });
    try {
      const port = first.plane.dns?.address.port ?? 0;
      await assert.rejects(startTestServer({ clusterDns: { port } }), /the cluster DNS cannot listen on 127\.0\.0\.1:\d+ \(.*EADDRINUSE.*\): pick a free address with --cluster-dns-listen HOST:PORT, or "off"/);
      const second = await startTestServer({ clusterDns: { port, optional: true } });
      try {
        assert.equal(second.plane.dns, undefined);
        assert.equal((await second.fetch('GET', '/api/v1/namespaces/default/services')).status, 200);
      } finally {
        await second.stop();
      }
    } finally {
      await first.stop();
    }
  });

  test('vireo server refuses a service range that is not a CIDR', async () => {
    const cli = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
    const result = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      execFile(process.execPath, [cli, 'server', '--data-dir', '/nonexistent/vireo-test', '--service-cluster-ip-range', '10.96.0.1/12'], (err, _stdout, stderr) => {
        resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stderr });
      });
    });
    assert.equal(result.code, 2);
    assert.match(result.stderr, /service cluster IP range "10\.96\.0\.1\/12" is not a CIDR/);
  });
});
